"""Coral Talk's External Moderation Phase: Coral asks us about each new or edited comment.

Configure the phase in Coral (``/admin/configure/moderation/phases``) with the URL
``https://OUR-HOST/coral/sites/SITE/moderation`` and give us its signing secret with
``moderation site coral SITE --secret ...``. Answers, as Coral's documentation asks:

- 200 ``{"status": "REJECTED", "actions": [FLAG COMMENT_DETECTED_TOXIC]}`` when the site's
  policy rejects the comment, ``SYSTEM_WITHHELD`` with the same flag when it would hold it;
- 204 without a body when we have no objection, and also when no worker answered in time,
  so that Coral goes on with its own pipeline rather than waiting.

The comment and our decision are kept in our queue for our moderators unless the site
opts out (``--no-store``); after a timeout it is kept pending and scored as usual.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from moderation.api.errors import ApiError
from moderation.api.parsing import validated
from moderation.app_state import app_state, db_session
from moderation.models import Site, Status
from moderation.ops.metrics import comment_received
from moderation.policy import SitePolicy, decide
from moderation.services.coral import (
    CoralRequest,
    ScoredText,
    ScoreSource,
    plain_text,
    signature_valid,
    store_coral_comment,
)
from moderation.services.sites import site_by_name
from moderation.tasks_client import ScoringUnavailable

log = logging.getLogger(__name__)

blueprint = Blueprint("compat_coral", __name__)

SIGNATURE_HEADER = "X-Coral-Signature"
FLAG_TOXIC = {"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}
CORAL_STATUS = {Status.REJECTED: "REJECTED", Status.HELD: "SYSTEM_WITHHELD"}
# Coral gives up on a phase after its own timeout; a caller may ask us to answer sooner.
TIMEOUT_PARAMETER = "timeout_ms"


@blueprint.post("/coral/sites/<site_name>/moderation")
def external_moderation(site_name: str):
    """Score a comment Coral is about to publish and tell Coral what our policy says."""
    site = _signed_site(site_name)
    coral_request = _coral_request()
    text = plain_text(coral_request.comment.body)
    # No transaction stays open while the worker scores; the site reloads afterwards.
    db_session().rollback()
    scored = _score(text)
    outcome = _store_and_decide(site, coral_request, text, scored)
    if outcome not in CORAL_STATUS:
        return Response(status=204)
    return {"status": CORAL_STATUS[outcome], "actions": [FLAG_TOXIC]}


def _signed_site(site_name: str) -> Site:
    """The site, once the body's signature matches its Coral secret (401 otherwise)."""
    site = site_by_name(db_session(), site_name)
    body = request.get_data(cache=True)
    secret = site.coral_signing_secret if site is not None else None
    if not signature_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
        # The same answer for an unknown site, a site without Coral and a wrong signature.
        raise ApiError(
            401,
            "invalid_signature",
            f"{SIGNATURE_HEADER} does not match the body under this site's Coral signing secret",
        )
    return site  # type: ignore[return-value]


def _coral_request() -> CoralRequest:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body is not a JSON object")
    return validated(CoralRequest, body)


def _score(text: str) -> ScoredText | None:
    """The text's scores and its sentences' (for the moderator's card), or None in time."""
    try:
        scored = app_state().tasks.score_now([text], spans=True, timeout=_timeout())
    except ScoringUnavailable as exc:
        log.warning("coral moderation answered 204 without scores: %s", exc)
        return None
    spans = scored.spans[0] if scored.spans else []
    return ScoredText(
        scores=scored.scores[0],
        source=ScoreSource(scored.model_name, scored.model_version, scored.thresholds),
        sentences=spans if len(spans) > 1 else None,
    )


def _timeout() -> float:
    """Our sync timeout, or less when the phase URL asks (``?timeout_ms=``, Coral's unit)."""
    configured = app_state().settings.sync_timeout
    raw = request.args.get(TIMEOUT_PARAMETER)
    if raw is None:
        return configured
    if not (raw.isascii() and raw.isdecimal()) or int(raw) < 1:
        message = f"{TIMEOUT_PARAMETER} must be a positive integer"
        raise ApiError(400, "invalid", message, TIMEOUT_PARAMETER)
    return min(configured, int(raw) / 1000)


def _store_and_decide(
    site: Site, coral_request: CoralRequest, text: str, scored: ScoredText | None
) -> Status | None:
    """Our decision: the stored comment's, or the policy's when the site keeps nothing."""
    policy = SitePolicy.from_stored(site.policy)
    by_policy = (
        decide(scored.scores, policy.in_force(scored.source.thresholds)).outcome if scored else None
    )
    if not site.coral_store_comments:
        return by_policy
    session = db_session()
    comment = store_coral_comment(session, site, coral_request, text, scored)
    session.commit()
    if comment is None:
        return by_policy
    comment_received(site.name, comment.public_id)
    if comment.status == Status.PENDING:
        app_state().tasks.send_for_scoring([comment.id])
        return None
    return Status(comment.status)
