"""OpenAI-compatible ``POST /v1/moderations``: the openai SDK with ``base_url`` set to us.

OpenAI's categories are mapped from our labels where they mean the same thing (see
``CATEGORY_LABELS`` and docs/compat.md). Categories no label of ours covers (self-harm,
sexual content about minors, illicit activity, graphic violence) are reported with score 0
and never flag: a site that needs them must not rely on this endpoint for them.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.blueprints import BlueprintSetupState

from moderation.api.auth import site_for_key
from moderation.api.errors import register_error_shape
from moderation.app_state import app_state, db_session
from moderation.bearer import bearer_key
from moderation.models import Site, Status
from moderation.policy import SitePolicy, decide, hold_thresholds
from moderation.schemas import LONE_SURROGATE, MAX_TEXT_LENGTH
from moderation.services.sites import site_for_api_key
from moderation.services.text_scoring import MAX_TEXTS
from moderation.tasks_client import ScoringUnavailable

log = logging.getLogger(__name__)

blueprint = Blueprint("compat_openai", __name__)

PATH = "/v1/moderations"
MAX_INPUTS = MAX_TEXTS

# OpenAI category -> the labels of ours whose scores it takes (all must be present; the
# category's score is the smallest of them, so "hate/threatening" needs both hate and threat).
CATEGORY_LABELS: dict[str, tuple[str, ...]] = {
    "harassment": ("insult",),
    "harassment/threatening": ("insult", "threat"),
    "hate": ("identity_attack",),
    "hate/threatening": ("identity_attack", "threat"),
    "illicit": (),
    "illicit/violent": (),
    "self-harm": (),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": ("sexual_explicit",),
    "sexual/minors": (),
    "violence": ("threat",),
    "violence/graphic": (),
}


class OpenAIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.error_type = status, message, error_type
        self.param, self.code, self.headers = param, code, headers or {}


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


@blueprint.errorhandler(OpenAIError)
def _error_response(exc: OpenAIError) -> Response:
    response = jsonify(error_body(exc.message, exc.error_type, exc.param, exc.code))
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def _framework_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """Errors Flask raises outside the view (404, 405, 413, 429, 503) in OpenAI's shape."""
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    code = "rate_limit_exceeded" if status == 429 else None
    return _error_response(
        OpenAIError(status, message, error_type=error_type, code=code, headers=headers)
    )


@blueprint.record_once
def _openai_error_shape(state: BlueprintSetupState) -> None:
    register_error_shape(state.app, PATH, _framework_error)


@blueprint.post(PATH)
def create_moderation():
    """Classify one text or a list of texts; ``flagged`` follows the site's own policy."""
    site = _authenticated_site()
    texts = _inputs(_body())
    policy = SitePolicy.from_stored(site.policy)
    # No transaction stays open while the worker scores.
    db_session().close()
    try:
        scored = app_state().tasks.score_now(texts)
    except ScoringUnavailable as exc:
        log.warning("moderations answered 503: %s", exc)
        raise OpenAIError(
            503,
            "The moderation service could not score the input in time; retry shortly.",
            error_type="server_error",
            headers={"Retry-After": "1"},
        ) from None
    return {
        "id": "modr-" + secrets.token_hex(12),
        "model": f"{scored.model_name}:{scored.model_version}",
        "results": [
            _result(scores, policy.in_force(scored.thresholds)) for scores in scored.scores
        ],
    }


def _authenticated_site() -> Site:
    key = bearer_key()
    if key is None:
        raise OpenAIError(
            401,
            "You didn't provide an API key. Send your site key as 'Authorization: Bearer KEY'.",
        )
    site = site_for_key(lambda: site_for_api_key(db_session(), key))
    if site is None:
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return site


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise OpenAIError(400, "The body must be a JSON object with an 'input' field.")
    return body


def _inputs(body: dict[str, Any]) -> list[str]:
    """``input`` as the texts to score: a string, a list of strings (one result each), or a
    list of content parts (one input, one result)."""
    raw = body.get("input")
    if raw is None:
        raise OpenAIError(400, "Missing required parameter: 'input'.", param="input")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise OpenAIError(400, "'input' must not be an empty list.", param="input")
    if all(isinstance(item, dict) for item in items):
        # Content parts (the SDK's ModerationMultiModalInputParam list) are ONE input with
        # one result, as OpenAI answers them; their texts are read together.
        texts = ["\n".join(_text(item) for item in items)]
    elif any(isinstance(item, dict) for item in items):
        raise OpenAIError(
            400, "'input' mixes strings and content parts; send one or the other.", param="input"
        )
    elif len(items) > MAX_INPUTS:
        raise OpenAIError(400, f"'input' holds at most {MAX_INPUTS} items.", param="input")
    else:
        texts = [_text(item) for item in items]
    for text in texts:
        if len(text) > MAX_TEXT_LENGTH:
            message = f"Each input is at most {MAX_TEXT_LENGTH} characters."
            raise OpenAIError(400, message, param="input")
        if LONE_SURROGATE.search(text):
            message = "Each input must be valid Unicode text (it holds a lone surrogate)."
            raise OpenAIError(400, message, param="input")
    return texts


def _text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
        return item["text"]
    if isinstance(item, dict) and item.get("type") == "image_url":
        raise OpenAIError(400, "Images are not supported; send text only.", param="input")
    raise OpenAIError(
        400, "'input' must be a string, a list of strings or text parts.", param="input"
    )


def _result(scores: dict[str, float], policy: SitePolicy) -> dict[str, Any]:
    category_scores = {
        category: _category_score(scores, labels) for category, labels in CATEGORY_LABELS.items()
    }
    categories = {
        category: _crosses(scores, labels, policy) for category, labels in CATEGORY_LABELS.items()
    }
    return {
        "flagged": decide(scores, policy).outcome != Status.APPROVED,
        "categories": categories,
        "category_scores": category_scores,
        "category_applied_input_types": {
            category: ["text"] if _category_known(scores, labels) else []
            for category, labels in CATEGORY_LABELS.items()
        },
    }


def _category_known(scores: dict[str, float], labels: tuple[str, ...]) -> bool:
    return bool(labels) and all(label in scores for label in labels)


def _category_score(scores: dict[str, float], labels: tuple[str, ...]) -> float:
    if not _category_known(scores, labels):
        return 0.0
    return round(min(scores[label] for label in labels), 6)


def _crosses(scores: dict[str, float], labels: tuple[str, ...], policy: SitePolicy) -> bool:
    """Every label of the category reaches the score from which the site stops publishing."""
    if not _category_known(scores, labels):
        return False
    thresholds = hold_thresholds(policy)
    return all(label in thresholds and scores[label] >= thresholds[label] for label in labels)
