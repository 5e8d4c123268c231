"""Webhook events of the DSA flows, written in the caller's transaction like comment events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import DeliveryStatus, Site, WebhookDelivery, new_event_id
from moderation.services.webhooks import EVENT_TYPES, send_after_commit

STATEMENT_ISSUED = "dsa.statement_issued"
NOTICE_DECIDED = "dsa.notice_decided"
APPEAL_DECIDED = "dsa.appeal_decided"


def emit_dsa_events(
    session: Session, event_type: str, items: Sequence[tuple[int, int | None, dict[str, Any]]]
) -> int:
    """One event per ``(site_id, comment_id, data)`` for the sites that have a webhook."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    site_ids = {site_id for site_id, _, _ in items}
    if not site_ids:
        return 0
    hooked = set(
        session.scalars(select(Site.id).where(Site.id.in_(site_ids), Site.webhook_url.is_not(None)))
    )
    now = utcnow()
    deliveries = []
    for site_id, comment_id, data in items:
        if site_id not in hooked:
            continue
        event_id = new_event_id()
        payload = {"id": event_id, "type": event_type, "created_at": now.isoformat(), "data": data}
        deliveries.append(
            WebhookDelivery(
                site_id=site_id,
                comment_id=comment_id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )
    if deliveries:
        session.add_all(deliveries)
        session.flush()
        send_after_commit(session, [delivery.id for delivery in deliveries])
    return len(deliveries)
