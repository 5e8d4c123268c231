"""Container stack tests run only when asked for: `make compose-test` (`pytest -m compose`)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compose: builds the image and runs docker-compose.yml with podman (opt-in)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "compose" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("compose") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if item.get_closest_marker("compose") is not None]
        )
        items[:] = chosen
