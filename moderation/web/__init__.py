"""The moderator workspace: server-rendered pages with htmx, under /moderate, /login, /audit."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from moderation.config import Settings

web = Blueprint(
    "moderation_web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/moderate/static",
)
csrf = CSRFProtect()

# The workspace's top navigation: (endpoint, label, admins only). Another blueprint that
# extends "moderation/base.html" adds its pages with add_nav_link when it is registered.
NAV_LINKS: list[tuple[str, str, bool]] = [
    ("moderation_web.queue", "Queue", False),
    ("moderation_web.audit", "Audit log", False),
    ("moderation_web.what_if_page", "What if", False),
    ("ops.dashboard", "Ops", True),
]


def add_nav_link(endpoint: str, label: str, admin_only: bool = False) -> None:
    """Add a page to the workspace's top navigation (once)."""
    if all(link[0] != endpoint for link in NAV_LINKS):
        NAV_LINKS.append((endpoint, label, admin_only))


@web.app_context_processor
def _navigation() -> dict[str, object]:
    return {"nav_links": NAV_LINKS}


def init_web(app: Flask, settings: Settings) -> None:
    """Session cookie and CSRF settings for the workspace, then its routes."""
    app.config.update(
        SESSION_COOKIE_NAME="moderation_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_hours),
        # The JSON API authenticates with bearer keys, so CSRF is checked where a browser
        # session authenticates: the workspace's views and login_required/admin_required.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A token lives as long as the session; moderators keep a page open for hours.
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    app.register_blueprint(web)


from moderation.web import auth, authors, views  # noqa: E402, F401  (registers routes)
