"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from moderation.app_state import EXTENSION_KEY, AppState, close_db_session
from moderation.config import Settings, load_settings
from moderation.db import make_engine, make_session_factory
from moderation.limits import init_limiter
from moderation.security_headers import init_security_headers
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
        tasks=TaskQueue(settings, workers_alive=lambda: _workers_alive(app, settings)),
    )
    app.teardown_appcontext(close_db_session)
    init_limiter(app, settings)
    init_security_headers(app)
    _register_blueprints(app)
    _integrate_sites(app, settings)
    _register_workspace(app, settings)
    _register_ops(app, settings)
    _register_compat(app)
    return app


def _workers_alive(app: Flask, settings: Settings) -> bool:
    """Whether a worker sent a heartbeat lately and has warmed its model (the compatible
    APIs ask before waiting)."""
    from moderation.ops.heartbeat import any_ready
    from moderation.ops.web import STORE_KEY

    store = app.extensions[STORE_KEY]
    return any_ready(store, settings.worker_heartbeat_max_age)


def _register_blueprints(app: Flask) -> None:
    from moderation.api import api_v1
    from moderation.api.dsa import dsa_api
    from moderation.api.errors import register_error_handlers
    from moderation.ops.health import health

    app.register_blueprint(api_v1)
    app.register_blueprint(dsa_api)
    app.register_blueprint(health)
    register_error_handlers(app)


def _integrate_sites(app: Flask, settings: Settings) -> None:
    """The widget, its public API, the demo page, webhooks sent after commit, proxy trust."""
    from moderation.api.public import public_api
    from moderation.services.webhooks import TaskDispatch, attach_dispatch
    from moderation.widget import widget

    if settings.trusted_proxies:
        # The client address (rate limits) and scheme come from the trusted proxies' headers.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    state: AppState = app.extensions[EXTENSION_KEY]
    attach_dispatch(state.sessions, TaskDispatch(lambda: state.tasks.celery, settings.task_queue))
    app.register_blueprint(public_api)
    app.register_blueprint(widget)
    if settings.env != "production":
        from moderation.demo import demo

        app.register_blueprint(demo)


def _register_workspace(app: Flask, settings: Settings) -> None:
    """The moderators' pages: /login, /moderate, /audit, with sessions and CSRF."""
    from moderation.web import init_web
    from moderation.web.dsa import dsa_web
    from moderation.web.dsa_pages import dsa_pages

    init_web(app, settings)
    app.register_blueprint(dsa_web)
    app.register_blueprint(dsa_pages)


def _register_compat(app: Flask) -> None:
    """Perspective-, Coral- and OpenAI-compatible endpoints for sites moving from those."""
    from moderation.compat import init_compat

    init_compat(app)


def _register_ops(app: Flask, settings: Settings) -> None:
    """Request ids and structured logs, /readyz's store, /metrics, and the admins' /ops page."""
    from moderation import request_logging
    from moderation.ops import web as ops_web
    from moderation.ops.views import ops

    request_logging.init_app(app, settings)
    ops_web.init_app(app, settings)
    app.register_blueprint(ops)
