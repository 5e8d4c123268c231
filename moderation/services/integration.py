"""How a site plugs in: its publishable key, the page origins allowed to use it, its rules."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, literal, select, true
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import Article, AuthorSanction, Comment, Site
from moderation.rules import RuleContext, SiteRules, Verdict, evaluate, stored_rules
from moderation.services.authors import author_context

PUBLISHABLE_PREFIX = "mpk_"


class InvalidSetting(ValueError):
    """A setting a site asked for is not valid; the message says why."""


def generate_publishable_key() -> str:
    """A new publishable key: public, but unguessable so sites cannot be enumerated."""
    return PUBLISHABLE_PREFIX + secrets.token_urlsafe(18)


def ensure_publishable_key(session: Session, site: Site, *, rotate: bool = False) -> str:
    """The site's publishable key, created on first use or replaced when rotating."""
    if site.publishable_key is None or rotate:
        site.publishable_key = generate_publishable_key()
        session.flush()
    return site.publishable_key


def site_for_publishable_key(session: Session, key: str) -> Site | None:
    """The site a publishable key belongs to, or None."""
    if not key.startswith(PUBLISHABLE_PREFIX) or len(key) > 64:
        return None
    return session.scalars(select(Site).where(Site.publishable_key == key)).one_or_none()


def normalise_origin(value: str) -> str:
    """``https://News.Example:443/path`` -> ``https://news.example``: what browsers send."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSetting(f"{value!r} is not an http(s) origin such as https://news.example")
    if parts.username or parts.password:
        raise InvalidSetting(f"{value!r} must not contain credentials")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def set_allowed_origins(session: Session, site: Site, origins: Iterable[str]) -> list[str]:
    """Replace the origins whose pages may use the site's publishable key."""
    site.allowed_origins = sorted({normalise_origin(origin) for origin in origins})
    session.flush()
    return site.allowed_origins


def origin_allowed(site: Site, origin: str | None) -> bool:
    """True when a browser's Origin header names one of the site's allowed origins."""
    if not origin:
        return False
    try:
        return normalise_origin(origin) in (site.allowed_origins or [])
    except InvalidSetting:
        return False


def site_rules(site: Site) -> SiteRules:
    """The rules a site runs before the model."""
    return stored_rules(site.rules)


def update_rules(session: Session, site: Site, **changes: Any) -> SiteRules:
    """Change some of a site's rule settings, validated as a whole."""
    try:
        rules = SiteRules.model_validate(site_rules(site).model_dump() | changes)
    except ValueError as exc:
        raise InvalidSetting(str(exc)) from None
    site.rules = rules.model_dump(mode="json")
    session.flush()
    return rules


@dataclass(frozen=True)
class AuthorHistory:
    """What a new comment's rules need to know of its author on the site, read at once."""

    # Whether any sanction is not lifted (which of them are in force is read only then).
    sanctioned: bool
    # The author's texts in the repeat-post window, the latest first (at most 50).
    recent_texts: list[str]


def _author_history_queries() -> tuple[Select[Any], Select[Any]]:
    """The two forms of ``author_history``'s query, built once: by site, author and time."""
    sanctioned = (
        select(AuthorSanction.id)
        .where(
            AuthorSanction.site_id == bindparam("site_id"),
            AuthorSanction.author_id == bindparam("author_id"),
            AuthorSanction.lifted_at.is_(None),
        )
        .exists()
        .label("sanctioned")
    )
    recent = (
        select(Comment.text, Comment.created_at)
        .where(
            Comment.site_id == bindparam("site_id"),
            Comment.author_id == bindparam("author_id"),
            Comment.created_at >= bindparam("since", type_=Comment.created_at.type),
        )
        .order_by(Comment.created_at.desc())
        .limit(50)
        .subquery()
    )
    one_row = select(literal(1).label("one")).subquery()
    with_texts = (
        select(sanctioned, recent.c.text)
        .select_from(one_row.outerjoin(recent, true()))
        .order_by(recent.c.created_at.desc())
    )
    return select(sanctioned), with_texts


_SANCTIONED, _SANCTIONED_AND_TEXTS = _author_history_queries()


def author_history(
    session: Session, site: Site, author_id: str, window_seconds: int
) -> AuthorHistory:
    """The author's standing and recent texts on this site, in one query.

    Every accepted comment asks both, and almost every author has no sanction: one row
    left-joined to the recent texts, with the sanctions' EXISTS as a column, answers both
    in one round trip. The statements are built once, not per comment.
    """
    params: dict[str, Any] = {"site_id": site.id, "author_id": author_id}
    if window_seconds <= 0:
        return AuthorHistory(bool(session.scalar(_SANCTIONED, params)), [])
    params["since"] = utcnow() - timedelta(seconds=window_seconds)
    rows = session.execute(_SANCTIONED_AND_TEXTS, params).all()
    return AuthorHistory(
        sanctioned=bool(rows[0].sanctioned),
        recent_texts=[row.text for row in rows if row.text is not None],
    )


def rules_verdict(
    session: Session,
    site: Site,
    rules: SiteRules,
    article: Article,
    text: str,
    author_id: str,
    history: AuthorHistory,
    sanctions: Sequence[AuthorSanction] = (),
) -> Verdict:
    """Run the site's rules on a new comment of this author under this article.

    ``rules`` is ``site_rules(site)``, which the caller has read already (for the repeat
    window); ``history`` is ``author_history`` for that window; ``sanctions`` are the
    author's sanctions in force (an always-pre-moderate one holds).
    """
    context = RuleContext(
        text=text,
        article_closed=article.closed,
        hold_links=article.hold_links,
        recent_texts=history.recent_texts,
        author=author_context(session, site, author_id, text, rules, sanctions),
    )
    return evaluate(context, rules)
