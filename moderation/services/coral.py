"""Coral's external moderation phase: verify its signature, keep its comments in our queue.

Coral signs the raw request body with HMAC-SHA256 under the phase's signing secret and
sends ``X-Coral-Signature: sha256=<hex>`` (several, comma-separated, while a rotated secret
is still honoured). The secret is Coral's; the site stores it here with
``moderation site coral NAME``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from dataclasses import dataclass
from typing import Any, Literal

import nh3
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from moderation.models import Comment, Site, Status
from moderation.schemas import CommentSubmission
from moderation.services.comments import CommentRefused, submit_comment
from moderation.services.decisions import store_decisions


class CoralComment(BaseModel):
    """``comment`` of an External Moderation Request."""

    model_config = ConfigDict(extra="ignore")

    body: str = Field(max_length=100_000)
    parentID: str | None = None  # Coral's spelling


class CoralAuthor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    role: str | None = None


class CoralStory(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000)


class CoralRequest(BaseModel):
    """Coral's External Moderation Request (fields this service uses; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["NEW", "EDIT"]
    comment: CoralComment
    author: CoralAuthor
    story: CoralStory
    tenantID: str | None = None
    tenantDomain: str | None = None


def signature_valid(secret: str | None, body: bytes, header: str | None) -> bool:
    """True when one of the header's ``sha256=`` signatures is the body's HMAC under ``secret``."""
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    candidates = [
        value.strip()
        for prefix, _, value in (part.strip().partition("=") for part in header.split(","))
        if prefix == "sha256"
    ]
    return any(hmac.compare_digest(candidate, expected) for candidate in candidates)


MIN_SECRET_LENGTH = 16


def configure_coral(
    session: Session, site: Site, secret: str | None, *, store: bool | None = None
) -> None:
    """Set (or with None, remove) the Coral signing secret and whether comments are kept."""
    if secret is not None:
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LENGTH or len(secret) > 200 or not secret.isprintable():
            raise ValueError(
                f"the signing secret must be {MIN_SECRET_LENGTH}-200 printable characters"
            )
    site.coral_signing_secret = secret
    if store is not None:
        site.coral_store_comments = store
    session.flush()


def sign(secret: str, body: bytes) -> str:
    """The ``X-Coral-Signature`` value Coral would send for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def plain_text(body: str) -> str:
    """The comment as a reader sees it: Coral sends HTML unless the phase asks for plain text."""
    if "<" not in body and "&" not in body:
        return body
    return html.unescape(nh3.clean(body, tags=set())).strip()


@dataclass(frozen=True)
class ScoreSource:
    """Names the model that scored a comment elsewhere (in a worker, on request)."""

    model_name: str
    model_version: str
    thresholds: dict[str, float] | None = None


@dataclass(frozen=True)
class ScoredText:
    """What a worker answered for Coral's comment: scores, their model, sentences if several."""

    scores: dict[str, float]
    source: ScoreSource
    sentences: list[dict[str, Any]] | None = None


def store_coral_comment(
    session: Session,
    site: Site,
    request: CoralRequest,
    text: str,
    scored: ScoredText | None,
) -> Comment | None:
    """Keep Coral's comment in our queue, decided with the scores when there are some.

    Returns the comment, or None when a site rule refused it (Coral has its own copy). Without
    scores it stays pending and goes through the normal pipeline once committed.
    """
    url = request.story.url
    if not (url or "").startswith(("http://", "https://")):
        url = None
    try:
        data = CommentSubmission(
            article_id=request.story.id,
            article_url=url,
            author_id=request.author.id,
            author_name=f"Coral user {request.author.id}"[:100],
            text=text,
        )
        accepted = submit_comment(session, site, data)
    except (ValidationError, CommentRefused):
        # Too long or blank for our queue, or refused by a site rule: Coral keeps its copy.
        return None
    comment = accepted.comment
    if scored is not None and comment.status == Status.PENDING:
        sentences = {comment.id: scored.sentences} if scored.sentences else None
        store_decisions(session, {comment.id: scored.scores}, scored.source, sentences)
        session.refresh(comment)
    return comment
