"""A Perspective-compatible API: ``POST /v1alpha1/comments:analyze?key=SITE_KEY``.

Sites that call Google's Perspective (Comment Analyzer) API switch by changing its host, or
for Google's client libraries the discovery URL, served at ``/$discovery/rest``. The site's
secret key goes where Perspective's key went. Requests, responses and errors have
Perspective's shapes; the scores come from our model, computed by a worker while the request
waits (``TaskQueue.score_now``). Nothing about the comment is stored or logged.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from moderation.api.auth import site_for_key
from moderation.api.errors import register_error_shape
from moderation.api.openapi import Answer
from moderation.app_state import app_state, db_session
from moderation.compat.perspective_analysis import (
    LANGUAGE,
    analyze_response,
    parse_analyze_request,
    parse_suggest_request,
    partial_response,
    scorable_attributes,
    scoring_language,
)
from moderation.compat.perspective_batch import BATCH_PATH, MAX_PARTS, run_batch
from moderation.compat.perspective_discovery import (
    ANALYZE_DESCRIPTION,
    ANALYZE_PATH,
    DISCOVERY_PATH,
    SUGGEST_DESCRIPTION,
    SUGGEST_PATH,
    VERSION,
    discovery_document,
)
from moderation.compat.perspective_errors import (
    PerspectiveError,
    invalid_field,
    invalid_key,
    missing_key,
    not_found,
    render_error,
    unavailable,
)
from moderation.compat.perspective_openapi import (
    PERSPECTIVE_KEY,
    AnalyzeQuery,
    DiscoveryQuery,
    PerspectiveDiscovery,
    perspective_operation,
)
from moderation.models import Site
from moderation.scoring.language import detect_languages, multilingual_coverage
from moderation.services.labelled_examples import keep_suggestion
from moderation.services.sites import site_for_api_key
from moderation.tasks_client import ScoringUnavailable

blueprint = Blueprint("compat_perspective", __name__)
API_PREFIX = f"/{VERSION}/"
DISCOVERY_PREFIX = "/$discovery/"

log = logging.getLogger(__name__)


@blueprint.record_once
def _google_error_shape(state: BlueprintSetupState) -> None:
    # 404, 405, 413, 429 and 5xx answered outside the views still reach clients in the
    # shape they parse.
    for prefix in (API_PREFIX, DISCOVERY_PREFIX, f"/{BATCH_PATH}"):
        register_error_shape(state.app, prefix, render_error)


@blueprint.errorhandler(PerspectiveError)
def _perspective_error(exc: PerspectiveError) -> Response:
    return exc.response()


@blueprint.post(f"/{ANALYZE_PATH}")
@perspective_operation(
    "perspectiveAnalyzeComment",
    Answer(200, "PerspectiveAnalyzeCommentResponse", "the scores"),
    security=PERSPECTIVE_KEY,
    body="PerspectiveAnalyzeCommentRequest",
    query=AnalyzeQuery,
    description=ANALYZE_DESCRIPTION,
    errors=(400, 403, 413, 503),
)
def analyze():
    """Score a comment for the requested attributes, as Perspective's AnalyzeComment does."""
    _require_site_key()
    # No transaction stays open while the worker scores.
    db_session().close()
    analysis = parse_analyze_request(_json_body())
    # Light: fastText's small model, no torch (about 40 ms once per process, then ~0.1 ms).
    analysis = replace(analysis, detected_language=detect_languages([analysis.text])[0])
    language = scoring_language(analysis, multilingual_coverage(app_state().settings))
    attributes = scorable_attributes(analysis, language)
    scored = None
    if attributes:
        try:
            scored = app_state().tasks.score_now(
                [analysis.text],
                spans=analysis.span_annotations,
                language=None if language == LANGUAGE else language,
            )
        except ScoringUnavailable as exc:
            # A worker's error message may quote the text; only its type is logged.
            reason = str(exc) if exc.__cause__ is None else type(exc.__cause__).__name__
            log.warning("perspective-compatible scoring unavailable: %s", reason)
            raise unavailable() from None
    return _partial(analyze_response(analysis, attributes, scored))


@blueprint.post(f"/{SUGGEST_PATH}")
@perspective_operation(
    "perspectiveSuggestCommentScore",
    Answer(200, "PerspectiveSuggestCommentScoreResponse", "the suggestion was kept"),
    security=PERSPECTIVE_KEY,
    body="PerspectiveSuggestCommentScoreRequest",
    query=AnalyzeQuery,
    description=SUGGEST_DESCRIPTION,
    errors=(400, 403, 413),
)
def suggestscore():
    """Keep a client's suggested scores as a labelled example of the site, as Perspective's
    SuggestCommentScore takes them (Coral sends one after each moderator decision)."""
    site = _require_site_key()
    suggestion = parse_suggest_request(_json_body())
    detected = detect_languages([suggestion.text])[0]
    session = db_session()
    keep_suggestion(
        session,
        site,
        suggestion.text,
        suggestion.labels,
        language=(suggestion.languages or (detected,))[0],
        client_token=suggestion.client_token,
        community_id=suggestion.community_id,
    )
    session.commit()
    answer: dict[str, object] = {"detectedLanguages": [detected or LANGUAGE]}
    if suggestion.languages:
        answer["requestedLanguages"] = list(suggestion.languages)
    if suggestion.client_token is not None:
        answer["clientToken"] = suggestion.client_token
    return _partial(answer)


@blueprint.post(f"/{BATCH_PATH}")
@perspective_operation(
    "perspectiveBatch",
    Answer(
        200,
        None,
        "one application/http part per call, in order, Content-ID response-<the call's>",
        media_type="multipart/mixed",
    ),
    security=None,
    description="Google's batch protocol (the discovery document's batchPath): a "
    f"multipart/mixed body of up to {MAX_PARTS} application/http parts, each a call to this "
    "API with its own ?key=. Each call is answered as if it came alone.",
    errors=(400, 413),
)
def batch():
    """Several calls in one request, as Google's clients batch them."""
    return run_batch(API_PREFIX)


def _json_body() -> object:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise invalid_field(None, "Invalid JSON payload received.")
    return body


def _partial(body: dict) -> dict:
    """The response, cut to Google's ``fields`` selector when the request has one."""
    fields = request.args.get("fields")
    return partial_response(body, fields) if fields else body


@blueprint.get(f"/{DISCOVERY_PATH}")
@perspective_operation(
    "perspectiveDiscovery",
    Answer(200, PerspectiveDiscovery, "a discovery#restDescription"),
    security=None,
    query=DiscoveryQuery,
    errors=(404,),
)
def discovery():
    """The discovery document Google's client libraries build the API from."""
    if request.args.get("version", VERSION) != VERSION:
        raise not_found()
    # url_root follows the proxy's scheme (MODERATION_TRUSTED_PROXIES) and any mount point.
    return discovery_document(request.url_root)


def _require_site_key() -> Site:
    """A 403 without ``?key=``, a 400 for a key that is not a site's secret key."""
    key = request.args.get("key", "").strip()
    if not key:
        raise missing_key()
    site = site_for_key(lambda: site_for_api_key(db_session(), key))
    if site is None:
        raise invalid_key()
    return site
