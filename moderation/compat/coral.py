"""Coral Talk's External Moderation Phase: Coral asks us about each new or edited comment.

Configure the phase in Coral (``/admin/configure/moderation/phases``) with the URL
``https://OUR-HOST/coral/sites/SITE/moderation`` and give us its signing secret with
``moderation site coral SITE``. Answers, as Coral's pipeline reads them:

- 200 ``{"status": "REJECTED", "actions": [FLAG COMMENT_DETECTED_TOXIC], "moderationAction":
  {"rejectionReason": {...}}}`` when the site's policy rejects the comment,
  ``SYSTEM_WITHHELD`` with the same flag when it would hold it;
- 204 without a body when we have no objection, and also when the verdict is not ready
  just before Coral's timeout (200 ms unless the URL says ``?timeout_ms=``), so that Coral
  goes on with its own pipeline rather than skipping the phase after a failed request.

A worker scores and decides (``moderation.coral_moderate``) and keeps the comment in our
queue unless the site opted out; it finishes after a 204 too, and keeps what Coral was told.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import Blueprint, Response, g, request

from moderation.api.errors import ApiError
from moderation.api.parsing import validated
from moderation.app_state import app_state, db_session
from moderation.models import Site
from moderation.ops.heartbeat import any_ready
from moderation.ops.web import ops_store
from moderation.services.coral import (
    CORAL_MODERATE,
    CoralRequest,
    CoralVerdicts,
    active_secrets,
    plain_text,
    signature_valid,
)
from moderation.services.sites import site_by_name
from moderation.tasks_client import sync_queue

log = logging.getLogger(__name__)

blueprint = Blueprint("compat_coral", __name__)

SIGNATURE_HEADER = "X-Coral-Signature"
# Coral's own default phase timeout, and the range its admin form allows.
TIMEOUT_PARAMETER = "timeout_ms"
DEFAULT_TIMEOUT_MS = 200
TIMEOUT_RANGE_MS = (100, 10_000)
# The answer leaves this long before Coral's timeout, for the way back to Coral and a busy
# host's scheduling.
ANSWER_MARGIN_S = 0.03


@blueprint.post("/coral/sites/<site_name>/moderation")
def external_moderation(site_name: str):
    """Tell Coral what our policy says of a comment, or 204 when it cannot in time."""
    # Counted from the request's arrival in the app (the first hook), not from this view.
    spent = time.perf_counter() - g.get("request_started", time.perf_counter())
    deadline = time.monotonic() + _timeout() - ANSWER_MARGIN_S - spent
    site = _signed_site(site_name)
    coral_request = _coral_request()
    text = plain_text(coral_request.comment.body)
    site_id = site.id
    # No transaction stays open while the worker scores.
    db_session().close()
    verdicts = CoralVerdicts(ops_store().client, ops_store().prefix)
    request_id = uuid.uuid4().hex
    with verdicts.listening(request_id) as wait:
        if not _send(site_id, coral_request, text, request_id):
            verdicts.settle(request_id)
            return Response(status=204)
        if not any_ready(ops_store(), app_state().settings.worker_heartbeat_max_age):
            # No worker has its model loaded: no verdict can come in time. One will keep
            # the comment, as published, once it takes the task.
            deadline = time.monotonic()
        arrived, answer = wait(deadline)
    if not arrived:
        log.info("coral moderation answered 204 at the deadline; the worker keeps the comment")
    if answer is None:
        return Response(status=204)
    return answer


def _send(site_id: int, coral_request: CoralRequest, text: str, request_id: str) -> bool:
    """Hand the comment to a worker; False when the broker or every worker is unavailable."""
    tasks = app_state().tasks
    try:
        tasks.celery.send_task(
            CORAL_MODERATE,
            args=[site_id, coral_request.model_dump(mode="json"), text, request_id],
            argsrepr=f"[{site_id}, <request>, <text>, {request_id!r}]",
            queue=sync_queue(app_state().settings),
            retry=False,
            ignore_result=True,
        )
    except Exception as exc:
        log.warning("coral moderation answered 204: the broker is unavailable (%r)", exc)
        return False
    return True


def _signed_site(site_name: str) -> Site:
    """The site, once the body's signature matches one of its Coral secrets (401 otherwise)."""
    session = db_session()
    site = site_by_name(session, site_name)
    body = request.get_data(cache=True)
    secrets = active_secrets(session, site) if site is not None else []
    if not signature_valid(secrets, body, request.headers.get(SIGNATURE_HEADER)):
        # The same answer for an unknown site, a site without Coral and a wrong signature.
        raise ApiError(
            401,
            "invalid_signature",
            f"{SIGNATURE_HEADER} does not match the body under this site's Coral signing secrets",
        )
    return site  # type: ignore[return-value]


def _coral_request() -> CoralRequest:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body is not a JSON object")
    return validated(CoralRequest, body)


def _timeout() -> float:
    """Seconds Coral waits: its default, or the phase's own (``?timeout_ms=``, Coral's unit)."""
    raw = request.args.get(TIMEOUT_PARAMETER)
    if raw is None:
        return DEFAULT_TIMEOUT_MS / 1000
    low, high = TIMEOUT_RANGE_MS
    if not (raw.isascii() and raw.isdecimal()) or not low <= int(raw) <= high:
        message = f"{TIMEOUT_PARAMETER} must be a whole number of milliseconds, {low} to {high}"
        raise ApiError(400, "invalid", message, TIMEOUT_PARAMETER)
    return int(raw) / 1000
