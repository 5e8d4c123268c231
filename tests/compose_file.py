"""Reading docker-compose.yml and the Dockerfile as compose would: services, commands, secrets.

Shared by the compose file's validation test, the production smoke test (which runs each
service's command as a local process) and the container stack test under ``tests/compose``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# What the compose file wants from the environment; it refuses to start without each.
REQUIRED_SECRETS = (
    "MODERATION_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "MODERATION_METRICS_TOKEN",
)

# The services built from the project's image.
APP_SERVICES = ("migrate", "model", "api", "worker", "beat", "flower")

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def generated_secrets() -> dict[str, str]:
    """Fresh values for every required secret (the database password stays URL-safe)."""
    return {
        "MODERATION_SECRET_KEY": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "FLOWER_BASIC_AUTH": f"ops:{secrets.token_hex(12)}",
        "MODERATION_METRICS_TOKEN": secrets.token_urlsafe(24),
    }


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's variable substitution, applied to every string in ``value``."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, variables), value)
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    return value


def _substitute(match: re.Match[str], variables: Mapping[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["plain"]
    value = variables.get(name)
    op, arg = match["op"], match["arg"] or ""
    unset = value is None or (value == "" and op is not None and op.startswith(":"))
    if op in (":-", "-"):
        return arg if unset else value
    if op in (":?", "?"):
        if unset:
            raise MissingVariable(f"{name}: {arg}")
        return value
    return value or ""


def load_compose(variables: Mapping[str, str]) -> dict[str, Any]:
    """docker-compose.yml with its variables substituted (extension fields merged by YAML)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return interpolate(raw, variables)


def image_command() -> list[str]:
    """The Dockerfile's ``CMD`` (exec form): what a service without ``command`` runs."""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("CMD "):
            return json.loads(line.removeprefix("CMD "))
    raise AssertionError("the Dockerfile has no CMD")


def image_environment() -> dict[str, str]:
    """The ``ENV`` values the Dockerfile sets (``KEY=value`` pairs, one or more per line)."""
    found: dict[str, str] = {}
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("ENV "):
            for pair in line.removeprefix("ENV ").split():
                key, _, value = pair.partition("=")
                found[key] = value
    return found


def service_command(compose: Mapping[str, Any], name: str) -> list[str]:
    """What the service runs: its ``command``, else the image's ``CMD``."""
    command = compose["services"][name].get("command")
    if command is None:
        return image_command()
    assert isinstance(command, list), f"{name}: use the exec form (a list) for command"
    return [str(part) for part in command]


def service_environment(compose: Mapping[str, Any], name: str) -> dict[str, str]:
    """The service's environment as its container sees it: the image's, then the file's."""
    environment = compose["services"][name].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return image_environment() | {key: str(value) for key, value in environment.items()}
