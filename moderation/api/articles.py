"""Per-article settings over the site API: closed, pre-moderated, holding comments with links."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from moderation.api import api_v1
from moderation.api.auth import authenticated_site
from moderation.api.errors import ApiError
from moderation.api.openapi import Answer, documented
from moderation.api.parsing import json_object, validated
from moderation.api.responses import ArticleSettings
from moderation.app_state import db_session
from moderation.models import Article, Site
from moderation.schemas import StorableStr


class ArticleSettingsChange(BaseModel):
    """The settings a site may change; fields left out keep their value."""

    model_config = ConfigDict(strict=True, extra="forbid")

    closed: bool | None = None
    premoderate: bool | None = None
    hold_links: bool | None = None
    title: Annotated[StorableStr, Field(max_length=500)] | None = None
    url: Annotated[StorableStr, Field(max_length=2000, pattern=r"^https?://")] | None = None


@api_v1.get("/articles/<path:article_id>/settings")
@documented("getArticleSettings", Answer(200, ArticleSettings, "the settings"), errors=(401, 404))
def get_article_settings(article_id: str):
    """An article's settings; 404 until the article has a comment or settings."""
    article = _article(authenticated_site(), article_id)
    if article is None:
        raise ApiError(404, "not_found", "no such article")
    return article_settings(article)


@api_v1.patch("/articles/<path:article_id>/settings")
@documented(
    "changeArticleSettings",
    Answer(200, ArticleSettings, "changed"),
    Answer(201, ArticleSettings, "the article was new: created with these settings"),
    body=ArticleSettingsChange,
    errors=(400, 401, 413, 415, 422),
)
def patch_article_settings(article_id: str):
    """Change an article's settings, creating the article if it is new (201 then)."""
    site = authenticated_site()
    _check_article_id(article_id)
    changes = _changes()
    session = db_session()
    article, created = _article_or_new(site, article_id)
    for name, value in changes.items():
        setattr(article, name, value)
    session.commit()
    return article_settings(article), 201 if created else 200


def article_settings(article: Article) -> dict[str, Any]:
    """The settings as the API shows them."""
    return {
        "article_id": article.external_id,
        "title": article.title,
        "url": article.url,
        "closed": article.closed,
        "premoderate": article.premoderate,
        "hold_links": article.hold_links,
    }


def _changes() -> dict[str, Any]:
    settings = validated(ArticleSettingsChange, json_object())
    return settings.model_dump(exclude_unset=True, exclude_none=True)


def _check_article_id(article_id: str) -> None:
    if not 1 <= len(article_id) <= 200 or not article_id.strip():
        raise ApiError(422, "invalid", "article_id must be 1-200 characters", "article_id")


def _article(site: Site, article_id: str) -> Article | None:
    query = select(Article).where(Article.site_id == site.id, Article.external_id == article_id)
    return db_session().scalars(query).one_or_none()


def _article_or_new(site: Site, article_id: str) -> tuple[Article, bool]:
    article = _article(site, article_id)
    if article is not None:
        return article, False
    session = db_session()
    article = Article(
        site_id=site.id,
        external_id=article_id,
        closed=False,
        premoderate=False,
        hold_links=False,
    )
    try:
        with session.begin_nested():
            session.add(article)
    except IntegrityError:
        # A comment or another request created it first.
        return _article(site, article_id), False  # type: ignore[return-value]
    return article, True
