"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from moderation.app_state import EXTENSION_KEY, AppState, close_db_session
from moderation.config import Settings, load_settings
from moderation.db import make_engine, make_session_factory
from moderation.limits import init_limiter
from moderation.tasks_client import TaskQueue

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; importing or building it runs no database query."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json.sort_keys = False
    engine = make_engine(settings.database_url)
    app.extensions[EXTENSION_KEY] = AppState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        tasks=TaskQueue(settings),
    )
    app.teardown_appcontext(close_db_session)
    init_limiter(app, settings)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from moderation.api import api_v1
    from moderation.api.errors import register_error_handlers
    from moderation.health import health

    app.register_blueprint(api_v1)
    app.register_blueprint(health)
    register_error_handlers(app)
