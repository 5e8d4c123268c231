"""The site's webhook delivery log over the site API: what was sent, how it went, re-send."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, Field

from moderation.api import api_v1
from moderation.api.auth import authenticated_site
from moderation.api.errors import ApiError
from moderation.api.openapi import Answer, documented
from moderation.api.parsing import page_limit, whole_number
from moderation.api.responses import WebhookDelivery as DeliveryBody
from moderation.api.responses import WebhookDeliveryDetail, WebhookDeliveryPage
from moderation.app_state import db_session
from moderation.models import DeliveryStatus, WebhookDelivery
from moderation.schemas import Omitted
from moderation.services.webhooks import resend, site_deliveries, site_delivery

MAX_PAGE = 100


class DeliveryQuery(BaseModel):
    """The log's filter and paging."""

    status: DeliveryStatus | Omitted = Field(None, description="`failed` finds what to re-send")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | Omitted = Field(None, description="the previous page's `next_cursor`")


@api_v1.get("/webhooks/deliveries")
@documented(
    "listWebhookDeliveries",
    Answer(200, WebhookDeliveryPage, "deliveries"),
    query=DeliveryQuery,
    errors=(401, 422),
)
def list_deliveries():
    """The site's deliveries, newest first; ``?status=failed`` shows what needs a re-send."""
    site = authenticated_site()
    limit = _limit()
    deliveries = site_deliveries(
        db_session(), site, status=_status(), before_id=_before(), limit=limit + 1
    )
    page, more = deliveries[:limit], len(deliveries) > limit
    return {
        "deliveries": [delivery_summary(delivery) for delivery in page],
        "next_cursor": str(page[-1].id) if more else None,
    }


@api_v1.get("/webhooks/deliveries/<public_id>")
@documented(
    "getWebhookDelivery", Answer(200, WebhookDeliveryDetail, "the delivery"), errors=(401, 404)
)
def get_delivery(public_id: str):
    """One delivery with every attempt's status code and the event it carries."""
    delivery = _delivery(public_id)
    return delivery_summary(delivery) | {
        "event": delivery.payload,
        "attempt_log": [
            {
                "at": attempt.created_at.isoformat(),
                "url": attempt.url,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in delivery.attempt_log
        ],
    }


@api_v1.post("/webhooks/deliveries/<public_id>/resend")
@documented("resendWebhookDelivery", Answer(202, DeliveryBody, "queued"), errors=(401, 404))
def resend_delivery(public_id: str):
    """Send a delivery again from its first attempt (after a failure, or a receiver's loss)."""
    delivery = _delivery(public_id)
    session = db_session()
    resend(session, delivery)
    session.commit()
    return delivery_summary(delivery), 202


def delivery_summary(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery as the log lists it."""
    comment = delivery.payload.get("data", {}).get("comment", {})
    return {
        "id": delivery.public_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "comment_id": comment.get("id"),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at.isoformat(),
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat()
            if delivery.status == DeliveryStatus.PENDING
            else None
        ),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }


def _delivery(public_id: str) -> WebhookDelivery:
    delivery = site_delivery(db_session(), authenticated_site(), public_id)
    if delivery is None:
        raise ApiError(404, "not_found", "no such delivery")
    return delivery


def _status() -> str | None:
    status = request.args.get("status")
    if status is not None and status not in set(DeliveryStatus):
        choices = ", ".join(DeliveryStatus)
        raise ApiError(422, "invalid", f"status must be one of: {choices}", "status")
    return status


def _limit() -> int:
    return page_limit(default=50, maximum=MAX_PAGE)


def _before() -> int | None:
    raw = request.args.get("cursor")
    if not raw:
        return None
    before = whole_number(raw)
    if before is None:
        raise ApiError(422, "invalid", "cursor is not one this API gave out", "cursor")
    return before
