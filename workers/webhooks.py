"""Webhook tasks: deliver one event, and sweep up deliveries that are due but were not sent."""

from __future__ import annotations

import logging
from datetime import timedelta

from moderation.db import unit_of_work
from moderation.services.webhooks import (
    DELIVER_WEBHOOK,
    SWEEP_WEBHOOKS,
    HttpSender,
    deliver,
    due_delivery_ids,
    set_default_dispatch,
)
from workers.app import app, settings
from workers.runtime import runtime

log = logging.getLogger(__name__)

_sender: HttpSender | None = None


def _http() -> HttpSender:
    global _sender
    if _sender is None:
        _sender = HttpSender(timeout=settings.webhook_timeout)
    return _sender


@app.task(name=DELIVER_WEBHOOK, acks_late=True)
def deliver_webhook(delivery_id: int) -> bool:
    """One attempt at one delivery; a failure schedules the next attempt with back-off."""
    delay = deliver(runtime.sessions, delivery_id, _http(), settings)
    if delay is None:
        return True
    # Short waits ride on the broker; longer ones (past the visibility timeout, where Redis
    # would hand the message to another worker early) are left to the sweep.
    if delay <= settings.visibility_timeout / 2:
        deliver_webhook.apply_async(args=[delivery_id], countdown=delay, queue=settings.task_queue)
    return False


@app.task(name=SWEEP_WEBHOOKS)
def sweep_webhooks() -> int:
    """Send deliveries that are due and overdue: never sent (broker down), or lost."""
    with unit_of_work(runtime.sessions) as session:
        ids = due_delivery_ids(session, timedelta(seconds=settings.sweep_interval))
    _send(ids)
    if ids:
        log.info("sent %d overdue webhook deliver(ies)", len(ids))
    return len(ids)


def _send(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        deliver_webhook.apply_async(args=[delivery_id], queue=settings.task_queue)


# Decisions committed in this worker send their deliveries right after commit.
set_default_dispatch(_send)
