"""The production stack of docker-compose.yml, run as local processes: each service's own command.

The test reads docker-compose.yml (and the Dockerfile's CMD and ENV for the API, which has no
``command``), substitutes generated secrets for the variables the file requires, and starts
every service of the project's image as a process on this machine: the one-shot migration and
model build first, as the file orders them, then gunicorn, the Celery worker, beat and Flower,
all with ``MODERATION_ENV=production``. Only what a container would get from its network is
changed: the database URL points at a fresh PostgreSQL database, the broker at a Redis
database of its own (``MODERATION_TEST_SMOKE_BROKER_URL``), listening addresses at loopback
ports, beat's schedule file at a temporary directory, and ``MODERATION_MODEL`` at the model
the suite builds (so the compose file's model service finds it and skips the build, as it
does on a volume that has one). Then a site is created with the CLI, a comment is posted
through gunicorn and decided by the worker, and the probes, /metrics and Flower are checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.compose_file import (
    APP_SERVICES,
    generated_secrets,
    load_compose,
    service_command,
    service_environment,
)
from tests.support import ROOT, free_port, post_readme_comment, postgres_database, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(900)]

SMOKE_BROKER_URL = os.environ.get("MODERATION_TEST_SMOKE_BROKER_URL", "redis://127.0.0.1:6379/9")
BIN = Path(sys.executable).parent
HAS_FLOWER = importlib.util.find_spec("flower") is not None
# Seconds for the worker's first decision: two pool processes load the model on two cores.
DECISION_DEADLINE = 240


def _local_database_url(compose_url: str, fresh_url: str) -> str:
    """The fresh database, named with the compose file's driver (postgresql+psycopg)."""
    scheme = urlsplit(compose_url).scheme
    assert scheme.startswith("postgresql"), compose_url
    return urlunsplit(urlsplit(fresh_url)._replace(scheme=scheme))


def _local_broker_url(compose_url: str) -> str:
    """The compose file's Redis URL, on this machine's Redis and the smoke test's database."""
    assert urlsplit(compose_url).scheme == urlsplit(SMOKE_BROKER_URL).scheme, compose_url
    return SMOKE_BROKER_URL


def _executable(command: list[str]) -> list[str]:
    """The command with its program taken from this virtualenv, as the image's PATH has it."""
    program = BIN / command[0]
    assert program.exists(), f"{command[0]} is not installed in {BIN}"
    return [str(program), *command[1:]]


def _replace_option(command: list[str], option: str, value: str) -> list[str]:
    """``--option value`` or ``--option=value`` set to ``value``; the option must be there."""
    for index, part in enumerate(command):
        if part == option:
            return [*command[: index + 1], value, *command[index + 2 :]]
        if part.startswith(f"{option}="):
            return [*command[:index], f"{option}={value}", *command[index + 1 :]]
    raise AssertionError(f"{option} not in {command}")


@dataclass
class Stack:
    """The running services and what the test needs to talk to them."""

    tmp: Path
    environments: dict[str, dict[str, str]]
    commands: dict[str, list[str]]
    secrets: dict[str, str]
    api_url: str = ""
    flower_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name}.log ---\n" + "\n".join(text.splitlines()[-lines:])

    def run_once(self, name: str, command: list[str] | None = None, timeout: float = 600):
        """A one-shot service (or a command in its environment), to completion."""
        command = command or self.commands[name]
        with self.log(name).open("ab") as log:
            log.write(f"$ {shlex.join(command)}\n".encode())
        return subprocess.run(
            command,
            env=self.environments[name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str) -> None:
        with self.log(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(
                self.commands[name],
                env=self.environments[name],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthcheck(stack: Stack, name: str, compose: dict) -> list[str]:
    """The service's compose healthcheck as a command for this machine."""
    test = compose["services"][name]["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        # The shell the container would run it with.
        return ["/bin/sh", "-c", test[1]]
    assert test[0] == "CMD", test
    return _executable(test[1:])


@pytest.fixture(scope="module")
def stack(tmp_path_factory, model_dir) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("production")
    secrets = generated_secrets()
    compose = load_compose(secrets | {"MODERATION_MODEL": str(model_dir)})
    with ExitStack() as cleanup:
        fresh = cleanup.enter_context(postgres_database())
        base = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")}
        base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
        # Runs of the suite side by side share the smoke test's Redis database, not a queue.
        queue = f"smoke-{uuid.uuid4().hex[:10]}"
        environments, commands = {}, {}
        for name in APP_SERVICES:
            environment = service_environment(compose, name)
            assert environment["MODERATION_ENV"] == "production", name
            environment["MODERATION_DATABASE_URL"] = _local_database_url(
                environment["MODERATION_DATABASE_URL"], fresh
            )
            environment["MODERATION_BROKER_URL"] = _local_broker_url(
                environment["MODERATION_BROKER_URL"]
            )
            environment["MODERATION_TASK_QUEUE"] = queue
            environments[name] = base | environment
            commands[name] = _executable(service_command(compose, name))
        api_port, flower_port = free_port(), free_port()
        commands["api"] = _replace_option(commands["api"], "--bind", f"127.0.0.1:{api_port}")
        commands["beat"] = _replace_option(commands["beat"], "--schedule", str(tmp / "beat"))
        commands["flower"] = [
            *_replace_option(commands["flower"], "--port", str(flower_port)),
            "--address=127.0.0.1",
        ]
        stack = Stack(tmp, environments, commands, secrets)
        stack.api_url = f"http://127.0.0.1:{api_port}"
        stack.flower_url = f"http://127.0.0.1:{flower_port}"
        cleanup.callback(stack.stop)

        # The one-shot services, in the order the file's depends_on gives them.
        for name in ("migrate", "model"):
            result = stack.run_once(name)
            assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
        assert "model exists" in stack.run_once("model").stdout

        for name in ("api", "worker", "beat", *(["flower"] if HAS_FLOWER else [])):
            stack.start(name)

        def api_up() -> bool:
            assert stack.alive("api"), stack.tail("api")
            try:
                return requests.get(f"{stack.api_url}/healthz", timeout=5).ok
            except requests.RequestException:
                return False

        assert wait_until(api_up, timeout=60), stack.tail("api")
        # The compose file's own healthchecks, as the engine would run them.
        api_check = [
            part.replace("127.0.0.1:8000", f"127.0.0.1:{api_port}")
            for part in _healthcheck(stack, "api", compose)
        ]
        assert stack.run_once("api", api_check).returncode == 0, stack.tail("api")
        worker_check = _healthcheck(stack, "worker", compose)

        def worker_answers() -> bool:
            assert stack.alive("worker"), stack.tail("worker")
            return stack.run_once("worker", worker_check, timeout=60).returncode == 0

        assert wait_until(worker_answers, timeout=120, interval=1), stack.tail("worker")
        yield stack


def _site_key(stack: Stack) -> str:
    result = stack.run_once("migrate", [str(BIN / "moderation"), "create-site", "smoke-news"])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_comment_posted_through_gunicorn_is_decided_by_the_worker(stack):
    auth = {"Authorization": f"Bearer {_site_key(stack)}"}
    comment_id = post_readme_comment(stack.api_url, auth)
    seen: dict = {}

    def decided() -> bool:
        assert stack.alive("worker"), stack.tail("worker")
        got = requests.get(f"{stack.api_url}/api/v1/comments/{comment_id}", headers=auth, timeout=5)
        seen.update(got.json())
        return seen.get("status") != "pending"

    assert wait_until(decided, timeout=DECISION_DEADLINE, interval=0.5), (
        f"{seen}\n{stack.tail('worker')}"
    )
    assert seen["status"] in {"approved", "held", "rejected"}
    assert seen["scores"] and seen["model"], seen
    # Production logs are JSON lines, and the worker's names the comment it decided.
    lines = [
        json.loads(line)
        for line in stack.log("worker").read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    assert any(
        line.get("comment_id") == comment_id and line["message"].startswith("comment decided")
        for line in lines
    ), stack.tail("worker")


def test_the_probes_answer_and_the_worker_is_seen(stack):
    assert requests.get(f"{stack.api_url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{stack.api_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert {name for name, check in ready.json()["checks"].items() if check["ok"]} >= {
        "database",
        "broker",
    }

    def workers_healthy() -> bool:
        return requests.get(f"{stack.api_url}/healthz/workers", timeout=10).status_code == 200

    assert wait_until(workers_healthy, timeout=60), stack.tail("worker")
    status = stack.run_once("migrate", [str(BIN / "moderation"), "status"], timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr


def test_metrics_want_the_token(stack):
    url = f"{stack.api_url}/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    token = stack.secrets["MODERATION_METRICS_TOKEN"]
    scraped = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert scraped.status_code == 200
    assert "moderation_broker_up 1.0" in scraped.text


def test_beat_keeps_running(stack):
    assert stack.alive("beat"), stack.tail("beat")
    assert wait_until(lambda: "beat: Starting" in stack.log("beat").read_text(), timeout=30), (
        stack.tail("beat")
    )


@pytest.mark.skipif(not HAS_FLOWER, reason="Flower is not installed (the ops extra)")
def test_flower_wants_basic_auth(stack):
    def up() -> bool:
        assert stack.alive("flower"), stack.tail("flower")
        try:
            requests.get(stack.flower_url, timeout=5)
            return True
        except requests.RequestException:
            return False

    assert wait_until(up, timeout=60), stack.tail("flower")
    assert requests.get(stack.flower_url, timeout=10).status_code == 401
    user, password = stack.secrets["FLOWER_BASIC_AUTH"].split(":", 1)
    assert requests.get(stack.flower_url, auth=(user, password), timeout=10).status_code == 200


def test_production_refuses_to_start_without_a_secret_key(stack):
    environment = {
        key: value
        for key, value in stack.environments["migrate"].items()
        if key != "MODERATION_SECRET_KEY"
    }
    result = subprocess.run(
        stack.commands["migrate"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "MODERATION_SECRET_KEY" in result.stdout + result.stderr
