"""Coral's external moderation phase: verify its signature, decide, keep its comments.

Coral signs the raw request body with HMAC-SHA256 under each of the phase's active signing
secrets and sends them comma-joined, ``X-Coral-Signature: sha256=<hex>,sha256=<hex>``. The
secrets are Coral's; the site gives us each new one with ``moderation site coral NAME`` and
the previous one is honoured until it expires, as Coral honours it.

Coral waits for a verdict only as long as the phase's timeout (200 ms by default). A worker
scores the comment and decides; the web process waits for it until just before that
deadline, then answers 204 ("no objection") and leaves the worker to finish. Which of the
two happened first is settled once, in Redis (``CoralVerdicts``), and the comment is kept
with what Coral was told: the verdict, or published with reason ``coral_deadline``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import nh3
import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import (
    Article,
    Comment,
    CommentScore,
    CoralSigningSecret,
    Site,
    Status,
)
from moderation.policy import Decision, Reason, SitePolicy, decide
from moderation.schemas import CommentSubmission
from moderation.services.comments import article_for
from moderation.services.decisions import transition
from moderation.services.explanation import held_by_score

# The task a worker runs for each of Coral's requests (sent by name by the web process).
CORAL_MODERATE = "moderation.coral_moderate"
# Why a comment Coral published before our verdict is kept as approved.
CORAL_DEADLINE = "coral_deadline"
# How long a rotated-away secret is honoured unless the site says otherwise.
DEFAULT_PREVIOUS_SECRET_LIFETIME = timedelta(days=1)
# Whether our verdict reached Coral, and the answer Coral got (None: 204).
Told = tuple[bool, dict[str, Any] | None]


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


def signature_valid(secrets: Sequence[str], body: bytes, header: str | None) -> bool:
    """True when one of the header's ``sha256=`` signatures is the body's HMAC under one of
    ``secrets`` (Coral sends one per secret it holds, comma-joined)."""
    if not secrets or not header:
        return False
    candidates = [
        value.strip()
        for prefix, _, value in (part.strip().partition("=") for part in header.split(","))
        if prefix == "sha256"
    ]
    expected = [hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets]
    return any(hmac.compare_digest(c, e) for c in candidates for e in expected)


def active_secrets(session: Session, site: Site, now: datetime | None = None) -> list[str]:
    """The site's current Coral secret and the rotated-away ones not yet expired."""
    if not site.coral_signing_secret:
        return []
    now = now or utcnow()
    previous = session.scalars(
        select(CoralSigningSecret.secret).where(
            CoralSigningSecret.site_id == site.id,
            (CoralSigningSecret.expires_at.is_(None)) | (CoralSigningSecret.expires_at > now),
        )
    )
    return [site.coral_signing_secret, *previous]


MIN_SECRET_LENGTH = 16


def configure_coral(
    session: Session,
    site: Site,
    secret: str | None,
    *,
    store: bool | None = None,
    previous_expires_in: timedelta = DEFAULT_PREVIOUS_SECRET_LIFETIME,
) -> None:
    """Set a new Coral signing secret (the previous one honoured for ``previous_expires_in``),
    or with None remove every secret; and whether comments are kept."""
    if secret is not None:
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LENGTH or len(secret) > 200 or not secret.isprintable():
            raise ValueError(
                f"the signing secret must be {MIN_SECRET_LENGTH}-200 printable characters"
            )
    now = utcnow()
    expired = CoralSigningSecret.expires_at <= now
    if secret is None:
        expired = CoralSigningSecret.id.is_not(None)
    session.execute(
        delete(CoralSigningSecret).where(CoralSigningSecret.site_id == site.id, expired)
    )
    previous = site.coral_signing_secret
    if secret is not None and previous and previous != secret and previous_expires_in:
        session.add(
            CoralSigningSecret(
                site_id=site.id, secret=previous, expires_at=now + previous_expires_in
            )
        )
    site.coral_signing_secret = secret
    if store is not None:
        site.coral_store_comments = store
    session.flush()


def sign(secrets: str | Sequence[str], body: bytes) -> str:
    """The ``X-Coral-Signature`` value Coral would send for ``body`` (one per secret)."""
    secrets = [secrets] if isinstance(secrets, str) else secrets
    return ",".join(
        "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        for secret in secrets
    )


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
    """What a worker answered for Coral's comment: its scores and their model."""

    scores: dict[str, float]
    source: ScoreSource


# Coral's rejection reason codes (GQLREJECTION_REASON_CODE) for the label that decided.
REJECTION_CODES = {"insult": "ABUSIVE", "threat": "ABUSIVE"}
DEFAULT_REJECTION_CODE = "OFFENSIVE"
FLAG_TOXIC = {"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}


def coral_answer(decision: Decision) -> dict[str, Any] | None:
    """The body Coral gets for a decision; None for no objection (204)."""
    if decision.outcome == Status.HELD:
        return {"status": "SYSTEM_WITHHELD", "actions": [FLAG_TOXIC]}
    if decision.outcome != Status.REJECTED:
        return None
    deciding = next((reason for reason in decision.reasons if reason.label), None)
    code = REJECTION_CODES.get(deciding.label or "", DEFAULT_REJECTION_CODE) if deciding else None
    explanation = "; ".join(reason.message for reason in decision.reasons)
    return {
        "status": "REJECTED",
        "actions": [FLAG_TOXIC],
        # Coral records the reason, tells the author and writes its moderation log from it.
        "moderationAction": {
            "rejectionReason": {
                "code": code or DEFAULT_REJECTION_CODE,
                "detailedExplanation": explanation[:500] or None,
            }
        },
    }


class CoralVerdicts:
    """Settles, once per request, whether Coral got our verdict or the deadline passed first.

    The worker offers its verdict and the web process, at the deadline, offers "deadline";
    whichever SET NX lands first is what Coral was told, and both sides read the same answer.
    The web process hears of a verdict through a channel it subscribed to before sending
    the task, and waits for it with a client-side timeout: Redis's own blocking timeouts
    are checked about every 100 ms, too coarse for a 200 ms budget.
    """

    DEADLINE = "deadline"
    TTL_MS = 10 * 60 * 1000
    # Waits in slices no longer than the client's socket timeout allows.
    SLICE_S = 1.0

    def __init__(self, client: redis.Redis, prefix: str):
        self.client, self.prefix = client, prefix

    def _keys(self, request_id: str) -> tuple[str, str]:
        return f"{self.prefix}:coral:{request_id}:told", f"{self.prefix}:coral:{request_id}:ready"

    def offer(self, request_id: str, answer: dict[str, Any] | None) -> bool:
        """The worker's verdict; True when Coral gets it, False when the deadline won."""
        told, ready = self._keys(request_id)
        if not self.client.set(told, json.dumps({"answer": answer}), nx=True, px=self.TTL_MS):
            return False
        self.client.publish(ready, 1)
        return True

    @contextmanager
    def listening(self, request_id: str) -> Iterator[Callable[[float], Told]]:
        """Subscribe before the task is sent; yields ``wait(deadline)``, which returns
        (verdict arrived, Coral's answer) by ``deadline`` (``time.monotonic()``)."""
        _told, ready = self._keys(request_id)
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(ready)

        def wait(deadline: float) -> Told:
            while (left := deadline - time.monotonic()) > 0:
                if pubsub.get_message(timeout=min(left, self.SLICE_S)) is not None:
                    break
            return self.settle(request_id)

        try:
            yield wait
        finally:
            pubsub.close()

    def settle(self, request_id: str) -> Told:
        """Close the race now: the worker's verdict if it came, else the deadline's 204."""
        told, _ready = self._keys(request_id)
        if self.client.set(told, self.DEADLINE, nx=True, px=self.TTL_MS):
            return False, None
        raw = self.client.get(told)
        if raw is None or raw == self.DEADLINE.encode():
            return False, None
        return True, json.loads(raw)["answer"]


def coral_decision(
    session: Session, site: Site, request: CoralRequest, scored: ScoredText
) -> Decision:
    """The site's model policy for these scores (and the story's pre-moderation)."""
    premoderate = session.scalar(
        select(Article.premoderate).where(
            Article.site_id == site.id, Article.external_id == request.story.id
        )
    )
    policy = SitePolicy.from_stored(site.policy).in_force(scored.source.thresholds)
    return decide(scored.scores, policy, premoderate=bool(premoderate))


def moderate_coral_comment(
    session: Session,
    site: Site,
    request: CoralRequest,
    text: str,
    scored: ScoredText,
    tell: Callable[[dict[str, Any] | None], bool],
    request_id: str,
    explain: Callable[[int], None] | None = None,
) -> Decision:
    """Decide Coral's comment, tell Coral (``tell`` is False when the deadline came first)
    and keep the comment as Coral was told. Returns the decision kept.

    ``explain`` gets the id of a comment kept as held by its scores, whose sentences are
    to be scored once this transaction has committed (``explain_held``): Coral never waits
    for them, and no forward pass runs inside the transaction.
    """
    decision = coral_decision(session, site, request, scored)
    if not tell(coral_answer(decision)):
        # Coral published it without our verdict: kept published, with why the model objected.
        reasons = (Reason(CORAL_DEADLINE), *decision.reasons)
        decision = Decision(Status.APPROVED, reasons if decision.outcome != Status.APPROVED else ())
        reason = CORAL_DEADLINE
    else:
        reason = "coral"
    if site.coral_store_comments:
        kept = keep_coral_comment(
            session, site, request, text, scored, decision, reason, request_id
        )
        if kept is not None and explain is not None and held_by_score(decision):
            explain(kept.id)
    return decision


def keep_coral_comment(
    session: Session,
    site: Site,
    request: CoralRequest,
    text: str,
    scored: ScoredText,
    decision: Decision,
    reason: str,
    request_id: str,
) -> Comment | None:
    """Keep Coral's comment in our queue with its scores and this decision (one audit row).

    Our own rules are not run on it: Coral already applied its own, and what we keep must
    say what Coral was told. None when the comment does not fit our queue (Coral keeps
    its copy) or was already kept (a redelivered task).
    """
    key = f"coral:{request_id}"
    if session.scalar(
        select(Comment.id).where(Comment.site_id == site.id, Comment.idempotency_key == key)
    ):
        return None
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
    except ValidationError:
        return None
    comment = Comment(
        site_id=site.id,
        article=article_for(session, site, data),
        author_id=data.author_id,
        author_name=data.author_name,
        text=data.text,
        status=Status.PENDING,
        idempotency_key=key,
        top_score=max(scored.scores.values(), default=None),
    )
    session.add(comment)
    session.flush()
    now = utcnow()
    rows = [
        {
            "comment_id": comment.id,
            "label": label,
            "score": float(score),
            "model_name": scored.source.model_name,
            "model_version": scored.source.model_version,
            "created_at": now,
        }
        for label, score in scored.scores.items()
    ]
    session.execute(insert(CommentScore), rows)
    transition(session, comment, decision, reason=reason)
    return comment
