"""A demo article with the comment widget under it, served outside production.

``moderation run`` gives the demo site a publishable key and allows the local origins, so
http://127.0.0.1:8000/ shows the whole product: post a comment, watch it be decided.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, redirect, render_template, url_for
from sqlalchemy.orm import Session

from moderation.app_state import db_session
from moderation.services.integration import ensure_publishable_key, set_allowed_origins
from moderation.services.sites import create_site, site_by_name

DEMO_SITE = "demo"
ARTICLE_ID = "demo/the-car-park-that-became-a-forest"
ARTICLE_TITLE = "The car park that became a forest"

demo = Blueprint(
    "demo",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/demo/static",
)


@demo.get("/")
def home():
    """The demo article is the front page in development."""
    return redirect(url_for("demo.article"))


@demo.get("/demo")
def article():
    """The article, and the widget under it when the demo site is set up."""
    site = site_by_name(db_session(), DEMO_SITE)
    key = site.publishable_key if site is not None else None
    return render_template(
        "demo/article.html",
        publishable_key=key,
        article_id=ARTICLE_ID,
        article_title=ARTICLE_TITLE,
    )


def prepare_demo_site(session: Session, origins: Iterable[str]) -> str:
    """Give the demo site (created if missing) a publishable key and these page origins."""
    site = site_by_name(session, DEMO_SITE) or create_site(session, DEMO_SITE)[0]
    set_allowed_origins(session, site, [*site.allowed_origins, *origins])
    return ensure_publishable_key(session, site)
