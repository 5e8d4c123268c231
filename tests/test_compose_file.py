"""docker-compose.yml passes a real compose validator and asks for every production secret.

The validator is ``docker compose`` (the v2 plugin) or ``docker-compose`` (Debian's
``docker-compose`` package); ``config`` checks the file against the Compose specification's
schema and substitutes its variables without talking to any daemon. Without either, these
tests skip and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.compose_file import (
    APP_SERVICES,
    COMPOSE_FILE,
    REQUIRED_SECRETS,
    generated_secrets,
    load_compose,
    service_environment,
)


def _validator() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


VALIDATOR = _validator()

needs_validator = pytest.mark.skipif(
    VALIDATOR is None,
    reason="no compose validator: install the docker compose plugin or Debian's "
    "docker-compose package (apt-get install docker-compose) to validate docker-compose.yml",
)


def _config(tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``compose config`` on the file with only these variables (and no .env) set."""
    assert VALIDATOR is not None
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)} | variables
    return subprocess.run(
        [
            *VALIDATOR,
            "--env-file",
            str(env_file),
            "--project-directory",
            str(COMPOSE_FILE.parent),
            "-f",
            str(COMPOSE_FILE),
            "config",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@needs_validator
def test_the_compose_file_is_valid_and_runs_production(tmp_path):
    secrets = generated_secrets()
    result = _config(tmp_path, secrets)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["MODERATION_ENV"] == "production", name
        assert environment["MODERATION_SECRET_KEY"] == secrets["MODERATION_SECRET_KEY"], name
        assert environment["MODERATION_METRICS_TOKEN"] == secrets["MODERATION_METRICS_TOKEN"]
        assert secrets["POSTGRES_PASSWORD"] in environment["MODERATION_DATABASE_URL"], name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == secrets["POSTGRES_PASSWORD"]
    assert f"--basic-auth={secrets['FLOWER_BASIC_AUTH']}" in services["flower"]["command"]
    # Published ports stay on the host's loopback: a proxy in front terminates TLS.
    for name in ("api", "flower"):
        for port in services[name]["ports"]:
            published = port if isinstance(port, str) else f"{port['host_ip']}:"
            assert published.startswith("127.0.0.1:"), (name, port)
    # The validator and this suite's own reading of the file agree.
    ours = load_compose(secrets)
    for name in APP_SERVICES:
        mine = service_environment(ours, name)
        assert {key: mine[key] for key in services[name]["environment"]} == {
            key: str(value) for key, value in services[name]["environment"].items()
        }


@needs_validator
@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_the_stack_refuses_to_start_without_each_secret(tmp_path, missing):
    variables = {k: v for k, v in generated_secrets().items() if k != missing}
    result = _config(tmp_path, variables)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_the_image_runs_production_and_every_service_gets_the_secrets():
    """Without a validator too: this suite's own reading of the file."""
    secrets = generated_secrets()
    compose = load_compose(secrets)
    for name in APP_SERVICES:
        environment = service_environment(compose, name)
        assert environment["MODERATION_ENV"] == "production", name
        for key in ("MODERATION_SECRET_KEY", "MODERATION_METRICS_TOKEN"):
            assert environment[key] == secrets[key], (name, key)
