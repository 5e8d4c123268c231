"""Signed webhooks: an outbox row per event, written with the transition it reports.

Every audit row of a site with a webhook becomes one event (``comment.decided`` for the
system's decisions, ``comment.moderated`` for a moderator's). The event is stored in the same
transaction as the transition, and its delivery task is sent after that transaction commits;
a periodic sweep sends whatever is due and was not sent (broker down, worker lost). Each HTTP
attempt is logged with its status code; failures are retried with exponential back-off and
then marked failed, from where they can be re-sent.

Bodies are signed like ``Moderation-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the site's webhook secret>``; receivers recompute it and reject old ``t``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from moderation.backoff import Backoff
from moderation.config import Settings
from moderation.db import after_commit, unit_of_work, utcnow
from moderation.models import (
    AuditEvent,
    Comment,
    DeliveryStatus,
    Site,
    WebhookAttempt,
    WebhookDelivery,
    new_event_id,
)
from moderation.ops.metrics import record_webhook_delivery

COMMENT_DECIDED = "comment.decided"
COMMENT_MODERATED = "comment.moderated"
# A published comment reached its site's report threshold and went back to the held queue.
COMMENT_REPORTED = "comment.reported"
# The DSA flows' events (moderation.dsa.events): a statement of reasons was issued, a notice
# or an appeal was decided.
DSA_EVENTS = ("dsa.statement_issued", "dsa.notice_decided", "dsa.appeal_decided")
EVENT_TYPES = (COMMENT_DECIDED, COMMENT_MODERATED, COMMENT_REPORTED, *DSA_EVENTS)
DELIVER_WEBHOOK = "moderation.deliver_webhook"
SWEEP_WEBHOOKS = "moderation.sweep_webhooks"
SIGNATURE_HEADER = "Moderation-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
# A claimed attempt that never reported back (worker died) is retried after this long.
CLAIM_SECONDS = 30.0

log = logging.getLogger(__name__)

Dispatch = Callable[[list[int]], None]


# --- Configuration ---------------------------------------------------------------------------


class InvalidWebhookUrl(ValueError):
    """The URL cannot receive webhooks."""


def configure_webhook(
    session: Session, site: Site, url: str, *, rotate_secret: bool = False
) -> str:
    """Point the site's webhook at a URL; returns its signing secret (new on first use)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookUrl(f"{url!r} is not an http(s) URL")
    site.webhook_url = url
    if site.webhook_secret is None or rotate_secret:
        site.webhook_secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    session.flush()
    return site.webhook_secret


def disable_webhook(session: Session, site: Site) -> None:
    """Stop recording events for the site; the delivery log stays."""
    site.webhook_url = None
    session.flush()


# --- Recording events ------------------------------------------------------------------------


def emit_event(session: Session, comment: Comment, event_type: str) -> WebhookDelivery | None:
    """Record the event for the comment's latest transition, if its site has a webhook."""
    deliveries = emit_events(session, [comment], event_type)
    return deliveries[0] if deliveries else None


def emit_events(
    session: Session, comments: Sequence[Comment], event_type: str
) -> list[WebhookDelivery]:
    """Record one event per comment for its latest audit row; call after writing that row.

    Runs in the caller's transaction, so the event exists exactly when the transition does.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    hooked = _sites_with_webhooks(session, {comment.site_id for comment in comments})
    targets = [comment for comment in comments if comment.site_id in hooked]
    if not targets:
        return []
    audits = _latest_audit_events(session, [comment.id for comment in targets])
    deliveries = [
        _delivery(comment, audits[comment.id], event_type)
        for comment in targets
        if comment.id in audits
    ]
    session.add_all(deliveries)
    session.flush()
    send_after_commit(session, [delivery.id for delivery in deliveries])
    return deliveries


def _sites_with_webhooks(session: Session, site_ids: set[int]) -> set[int]:
    if not site_ids:
        return set()
    query = select(Site.id).where(Site.id.in_(site_ids), Site.webhook_url.is_not(None))
    return set(session.scalars(query))


def _latest_audit_events(session: Session, comment_ids: list[int]) -> dict[int, AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.comment_id.in_(comment_ids)).order_by(AuditEvent.id)
    return {audit.comment_id: audit for audit in session.scalars(query)}


def _delivery(comment: Comment, audit: AuditEvent, event_type: str) -> WebhookDelivery:
    event_id = new_event_id()
    return WebhookDelivery(
        site_id=comment.site_id,
        comment_id=comment.id,
        audit_event_id=audit.id,
        event_id=event_id,
        event_type=event_type,
        payload=event_payload(event_id, event_type, comment, audit),
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )


def event_payload(
    event_id: str, event_type: str, comment: Comment, audit: AuditEvent
) -> dict[str, Any]:
    """The JSON body a receiver gets: the event, the comment as it now is, the transition."""
    detail = audit.detail or {}
    return {
        "id": event_id,
        "type": event_type,
        "created_at": audit.created_at.isoformat(),
        "data": {
            "comment": {
                "id": comment.public_id,
                "article_id": comment.article.external_id,
                "parent_id": comment.parent.public_id if comment.parent else None,
                "author_id": comment.author_id,
                "author_name": comment.author_name,
                "text": comment.text,
                "status": audit.to_status,
                "created_at": comment.created_at.isoformat(),
            },
            "transition": {
                "from": audit.from_status,
                "to": audit.to_status,
                "actor": {"type": audit.actor_type, "id": audit.actor_id},
                "reason": audit.reason,
                # A moderator's reject reason (offensive, abusive, spam, off_topic, other),
                # or the automatic decision's own code (rules, model, reported...).
                "reason_code": detail.get("reason_code") or audit.reason,
                "reasons": detail.get("reasons", []),
                "note": detail.get("note"),
                "at": audit.created_at.isoformat(),
            },
        },
    }


# --- Sending delivery tasks after commit -----------------------------------------------------

_TO_SEND = "webhook_deliveries_to_send"
_DISPATCH = "webhook_dispatch"
_default_dispatch: Dispatch | None = None


def set_default_dispatch(dispatch: Dispatch | None) -> None:
    """How this process sends delivery tasks when its sessions carry no dispatcher (workers)."""
    global _default_dispatch
    _default_dispatch = dispatch


def attach_dispatch(sessions: sessionmaker[Session], dispatch: Dispatch) -> None:
    """Sessions from this factory send delivery tasks with ``dispatch`` after they commit."""
    info = dict(sessions.kw.get("info") or {})
    sessions.configure(info=info | {_DISPATCH: dispatch})


class TaskDispatch:
    """Sends ``moderation.deliver_webhook`` by name; a dead broker is skipped for a while."""

    BACKOFF_SECONDS = 2.0

    def __init__(self, celery_factory: Callable[[], Any], queue: str):
        self._celery_factory = celery_factory
        self._queue = queue
        self._broker = Backoff(self.BACKOFF_SECONDS)

    def __call__(self, delivery_ids: list[int]) -> None:
        if self._broker.waiting:
            return
        try:
            celery = self._celery_factory()
            for delivery_id in delivery_ids:
                celery.send_task(
                    DELIVER_WEBHOOK,
                    args=[delivery_id],
                    queue=self._queue,
                    retry=False,
                    ignore_result=True,
                )
        except Exception:
            # The outbox rows are committed; the sweep sends them once the broker is back.
            self._broker.failed()
            log.warning("broker unavailable; %d webhook(s) left for the sweep", len(delivery_ids))


def send_after_commit(session: Session, delivery_ids: list[int]) -> None:
    """Send these deliveries' tasks once the session commits their rows, in one go."""
    after_commit(session, _TO_SEND, _send_committed, *delivery_ids)


def _send_committed(session: Session, delivery_ids: list[int]) -> None:
    dispatch = session.info.get(_DISPATCH) or _default_dispatch
    if delivery_ids and dispatch is not None:
        dispatch(delivery_ids)


# --- Signing ---------------------------------------------------------------------------------


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 over "<t>.<body>">``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _digest(secret, timestamp, body))


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# --- Delivering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What one HTTP attempt got: a status code, or an error without one."""

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    """Posts a signed body to a URL."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """One attempt; never raises."""
        ...


class HttpSender:
    """The real sender, over HTTP with requests; no redirects are followed."""

    def __init__(self, timeout: float):
        import requests

        self._requests = requests
        self._session = requests.Session()
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """One attempt; never raises."""
        started = time.perf_counter()
        try:
            with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                status = response.status_code
            return SendResult(status, None if status < 300 else f"HTTP {status}", _ms(started))
        except self._requests.RequestException as exc:
            return SendResult(None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    url: str | None
    secret: str | None
    event_id: str
    event_type: str
    public_id: str
    payload: dict[str, Any]


def deliver(
    sessions: sessionmaker[Session], delivery_id: int, sender: Sender, settings: Settings
) -> float | None:
    """Make one attempt if the delivery is due; returns seconds until the next one, or None.

    The attempt is claimed first (a conditional UPDATE), so a duplicate task or the sweep
    cannot post the same delivery twice at once; no transaction stays open during the POST.
    """
    with unit_of_work(sessions) as session:
        claimed = _claim(session, delivery_id)
    if claimed is None:
        return None
    if claimed.url is None or claimed.secret is None:
        result = SendResult(None, "the site has no webhook URL", 0.0)
    else:
        body = encode_body(claimed.payload)
        result = sender.post(claimed.url, body, _headers(claimed, body))
    with unit_of_work(sessions) as session:
        delay = _record(session, claimed, result, settings)
    outcome = "delivered" if result.ok else ("retrying" if delay is not None else "failed")
    record_webhook_delivery(outcome)
    return delay


def _claim(session: Session, delivery_id: int) -> _Claimed | None:
    now = utcnow()
    claimed = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    delivery, site = session.execute(
        select(WebhookDelivery, Site)
        .join(Site, Site.id == WebhookDelivery.site_id)
        .where(WebhookDelivery.id == delivery_id)
    ).one()
    return _Claimed(
        delivery.id,
        site.webhook_url,
        site.webhook_secret,
        delivery.event_id,
        delivery.event_type,
        delivery.public_id,
        delivery.payload,
    )


def _headers(claimed: _Claimed, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "comment-moderation-webhooks/1",
        "Moderation-Event": claimed.event_type,
        "Moderation-Event-Id": claimed.event_id,
        "Moderation-Delivery": claimed.public_id,
        SIGNATURE_HEADER: signature_header(claimed.secret or "", body),
    }


def _record(
    session: Session, claimed: _Claimed, result: SendResult, settings: Settings
) -> float | None:
    now = utcnow()
    delivery = session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if delivery is None:
        return None
    session.execute(
        insert(WebhookAttempt),
        [
            {
                "delivery_id": delivery.id,
                "url": (claimed.url or "")[:2000],
                "status_code": result.status_code,
                "error": result.error,
                "duration_ms": result.duration_ms,
                "created_at": now,
            }
        ],
    )
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.ok:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
        return None
    if delivery.attempts >= settings.webhook_max_attempts or claimed.url is None:
        delivery.status = DeliveryStatus.FAILED
        log.warning("webhook %s failed for good: %s", delivery.public_id, result.error)
        return None
    delay = retry_delay(delivery.attempts, settings)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delay


def retry_delay(failed_attempts: int, settings: Settings) -> float:
    """Exponential back-off: base, 2 x base, 4 x base, ... capped."""
    return min(
        settings.webhook_max_delay, settings.webhook_retry_delay * 2 ** (failed_attempts - 1)
    )


def due_delivery_ids(session: Session, overdue_by: timedelta, limit: int = 1000) -> list[int]:
    """Pending deliveries whose next attempt is overdue: never sent, or their task was lost."""
    cutoff: datetime = utcnow() - overdue_by
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= cutoff,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(query))


# --- The delivery log ------------------------------------------------------------------------


def site_deliveries(
    session: Session,
    site: Site,
    *,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """The site's deliveries, newest first."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.site_id == site.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    return list(session.scalars(query))


def site_delivery(session: Session, site: Site, public_id: str) -> WebhookDelivery | None:
    """One of the site's deliveries, or None (also for another site's)."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.public_id == public_id, WebhookDelivery.site_id == site.id
    )
    return session.scalars(query).one_or_none()


def resend(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue a delivery again from its first attempt; its earlier attempts stay in the log."""
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.delivered_at = None
    session.flush()
    send_after_commit(session, [delivery.id])
    return delivery
