"""What one app instance holds: its settings, database and task queue; one session per request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from moderation.config import Settings
from moderation.tasks_client import TaskQueue

EXTENSION_KEY = "moderation"


@dataclass
class AppState:
    """Long-lived objects shared by every request of one app."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tasks: TaskQueue


def app_state() -> AppState:
    """The current app's state."""
    return current_app.extensions[EXTENSION_KEY]


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = app_state().sessions()
    return g.db_session


def live_model_card() -> dict | None:
    """The model the workers run, as one of them last described it (None if none has)."""
    from moderation.ops.heartbeat import Heartbeats
    from moderation.ops.web import ops_store

    return Heartbeats(ops_store()).model_card()


def live_model_thresholds() -> dict[str, float] | None:
    """The hold thresholds the workers' model recorded; None when no worker has said."""
    card = live_model_card()
    return dict(card.get("thresholds") or {}) if card else None


def close_db_session(_exc: BaseException | None = None) -> None:
    """Close the request's session; anything not committed is rolled back."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
