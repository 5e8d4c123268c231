"""Perspective's AnalyzeComment: reading its request and writing its response, as pure functions.

The attributes map onto the model's labels. The main model scores English; a multilingual
model, where one is configured, the languages it covers. A request without ``languages``
is scored in the language detected in its text, as Perspective does, and any other language
is Perspective's LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE. Span offsets are answered in UTF-16 code
units, as Perspective documents them, so that JavaScript clients can slice the text they
sent with them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from moderation.compat.perspective_errors import (
    analyzer_error,
    attribute_not_supported,
    invalid_field,
)
from moderation.schemas import LONE_SURROGATE
from moderation.tasks_client import TextScores

# Perspective's attribute names and the model labels that score them. SEXUALLY_EXPLICIT is
# scored only by models that have the label (Detoxify's ``unbiased``).
ATTRIBUTES = {
    "TOXICITY": "toxicity",
    "SEVERE_TOXICITY": "severe_toxicity",
    "IDENTITY_ATTACK": "identity_attack",
    "INSULT": "insult",
    "PROFANITY": "obscene",
    "THREAT": "threat",
    "SEXUALLY_EXPLICIT": "sexual_explicit",
}
SCORE_TYPES = ("PROBABILITY", "SCORE_TYPE_UNSPECIFIED")
TEXT_TYPES = ("PLAIN_TEXT", "TEXT_TYPE_UNSPECIFIED")
LANGUAGE = "en"


@dataclass(frozen=True)
class Attribute:
    """One requested attribute: its name, the model label scoring it, its threshold."""

    name: str
    label: str | None
    threshold: float | None = None


@dataclass(frozen=True)
class AnalyzeRequest:
    """What an AnalyzeComment request asks for; the fields we accept and ignore are left out."""

    text: str
    attributes: tuple[Attribute, ...]
    languages: tuple[str, ...] = ()
    span_annotations: bool = False
    drop_unsupported: bool = False
    client_token: str | None = None
    # Detected in the text (``scoring.language``); None when too short or unsure to tell.
    detected_language: str | None = None


# Perspective measures comments in bytes of UTF-8: up to 20 KB.
MAX_TEXT_BYTES = 20_480
_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")


def camel_case_keys(value: Any) -> Any:
    """The body with proto field names (``requested_attributes``) as JSON names
    (``requestedAttributes``), as Google accepts both; attribute names are left alone."""
    if isinstance(value, list):
        return [camel_case_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {_camel(key): camel_case_keys(item) for key, item in value.items()}


def _camel(key: Any) -> Any:
    if not isinstance(key, str) or not _SNAKE.fullmatch(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_analyze_request(body: Any) -> AnalyzeRequest:
    """The request, or the PerspectiveError (400) that says what is wrong with it."""
    if not isinstance(body, dict):
        raise invalid_field(None, "Invalid JSON payload received. Expected a JSON object.")
    body = camel_case_keys(body)
    _check_ignored_fields(body)
    return AnalyzeRequest(
        text=_comment_text(body.get("comment")),
        attributes=_attributes(body.get("requestedAttributes")),
        languages=tuple(_string_list(body, "languages")),
        span_annotations=_flag(body, "spanAnnotations"),
        drop_unsupported=_flag(body, "dropUnsupportedAttributes"),
        client_token=_optional_string(body, "clientToken"),
    )


def _check_ignored_fields(body: dict[str, Any]) -> None:
    """Fields accepted for compatibility and ignored: nothing is ever stored, so
    ``doNotStore`` always holds, and the model reads neither context nor community."""
    _flag(body, "doNotStore")
    for name in ("sessionId", "communityId"):
        _optional_string(body, name)
    if body.get("context") is not None and not isinstance(body["context"], dict):
        raise invalid_field("context", "Expected an object.")


def _comment_text(comment: Any) -> str:
    if comment is None:
        comment = {}
    if not isinstance(comment, dict):
        raise invalid_field("comment", "Expected an object with a text.")
    text = comment.get("text", "")
    if not isinstance(text, str):
        raise invalid_field("comment.text", "Expected a string.")
    text_type = comment.get("type", "PLAIN_TEXT")
    if text_type not in TEXT_TYPES:
        raise invalid_field("comment.type", "Only PLAIN_TEXT comments are supported.")
    if not text.strip():
        raise analyzer_error("Comment must be non-empty.", "COMMENT_EMPTY")
    if LONE_SURROGATE.search(text):
        raise invalid_field("comment.text", "Contains unpaired surrogate characters.")
    if len(text.encode()) > MAX_TEXT_BYTES:
        message = f"Comment text too long: at most {MAX_TEXT_BYTES} bytes are accepted."
        raise analyzer_error(message, "COMMENT_TOO_LONG")
    return text


def _attributes(requested: Any) -> tuple[Attribute, ...]:
    if requested is None or requested == {}:
        raise analyzer_error("No requested attributes.", "NO_REQUESTED_ATTRIBUTES")
    if not isinstance(requested, dict):
        raise invalid_field("requestedAttributes", "Expected an object of attribute names.")
    return tuple(_attribute(name, parameters) for name, parameters in requested.items())


def _attribute(name: str, parameters: Any) -> Attribute:
    field = f"requestedAttributes[{name}]"
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise invalid_field(field, "Expected an object of attribute parameters.")
    score_type = parameters.get("scoreType", "PROBABILITY")
    if score_type not in SCORE_TYPES:
        raise invalid_field(f"{field}.scoreType", "Only PROBABILITY scores are available.")
    threshold = parameters.get("scoreThreshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise invalid_field(f"{field}.scoreThreshold", "Expected a number.")
    return Attribute(name, ATTRIBUTES.get(name), None if threshold is None else float(threshold))


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_field(name, "Expected a list of strings.")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_field(name, "Expected true or false.")
    return bool(value)


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_field(name, "Expected a string.")
    return value


# --- What gets scored ------------------------------------------------------------------------


def answered_languages(request: AnalyzeRequest) -> list[str]:
    """The request's languages as Perspective echoes them: as sent, or the one detected."""
    return list(request.languages) or detected_languages(request)


def detected_languages(request: AnalyzeRequest) -> list[str]:
    """The language detected in the text; a text too short or unsure to tell is scored as
    English, and reported so."""
    return [request.detected_language or LANGUAGE]


def scoring_language(request: AnalyzeRequest, multilingual: Collection[str] = ()) -> str | None:
    """The language a model scores the text in: ``en`` (the main model) or one the
    multilingual model covers; None when no model covers the request's languages, or
    without any, the detected one."""
    candidates = [_base(language) for language in request.languages]
    if not candidates:
        candidates = detected_languages(request)
    if LANGUAGE in candidates:
        return LANGUAGE
    return next((language for language in candidates if language in multilingual), None)


def _base(language: str) -> str:
    """``en`` for ``en``, ``en-GB`` or ``EN_us``."""
    return re.split("[-_]", language.strip().lower(), maxsplit=1)[0]


def scorable_attributes(request: AnalyzeRequest, language: str | None) -> list[Attribute]:
    """The attributes to score in ``language`` (see ``scoring_language``); unknown ones, or
    any when no model covers the language, are an error, or dropped with
    ``dropUnsupportedAttributes``."""
    wanted = []
    for attribute in request.attributes:
        if language is not None and attribute.label is not None:
            wanted.append(attribute)
        elif not request.drop_unsupported:
            raise attribute_not_supported(attribute.name, answered_languages(request))
    return wanted


def analyze_response(
    request: AnalyzeRequest, attributes: list[Attribute], scored: TextScores | None
) -> dict[str, Any]:
    """The AnalyzeCommentResponse for the scores of the request's text.

    An attribute the model has no label for is an error (or dropped); one whose summary
    score is under its threshold is left out, as are span scores under it.
    """
    scores: dict[str, dict[str, Any]] = {}
    for attribute in attributes:
        summary = scored.scores[0].get(attribute.label or "") if scored else None
        if summary is None:
            if request.drop_unsupported:
                continue
            raise attribute_not_supported(attribute.name, answered_languages(request))
        if not _kept(summary, attribute):
            continue
        scores[attribute.name] = {"summaryScore": _score(summary)}
        if request.span_annotations and scored is not None:
            scores[attribute.name]["spanScores"] = _span_scores(request.text, scored, attribute)
    response: dict[str, Any] = {
        "attributeScores": scores,
        "languages": answered_languages(request),
        "detectedLanguages": detected_languages(request),
    }
    if request.client_token is not None:
        response["clientToken"] = request.client_token
    return response


def _kept(value: float, attribute: Attribute) -> bool:
    return attribute.threshold is None or value >= attribute.threshold


def _score(value: float) -> dict[str, Any]:
    return {"value": value, "type": "PROBABILITY"}


def _span_scores(text: str, scored: TextScores, attribute: Attribute) -> list[dict[str, Any]]:
    offsets = utf16_offsets(text)
    spans = []
    for span in (scored.spans or [[]])[0]:
        value = span["scores"].get(attribute.label)
        if value is None or not _kept(value, attribute):
            continue
        begin, end = (offsets[min(max(span[key], 0), len(text))] for key in ("begin", "end"))
        spans.append({"begin": begin, "end": end, "score": _score(value)})
    return spans


def utf16_offsets(text: str) -> list[int]:
    """Where each code point of ``text`` starts in UTF-16 code units, and where it ends."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


# --- SuggestCommentScore ---------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A SuggestCommentScore request: the text and the suggested score per model label."""

    text: str
    labels: dict[str, float]
    languages: tuple[str, ...] = ()
    client_token: str | None = None
    community_id: str | None = None


def parse_suggest_request(body: Any) -> Suggestion:
    """The suggestion, or the PerspectiveError (400) that says what is wrong with it."""
    if not isinstance(body, dict):
        raise invalid_field(None, "Invalid JSON payload received. Expected a JSON object.")
    body = camel_case_keys(body)
    _check_ignored_fields(body)
    scores = body.get("attributeScores")
    if not scores or not isinstance(scores, dict):
        raise invalid_field("attributeScores", "attribute_scores must not be empty.")
    labels = {}
    for name, entry in scores.items():
        field = f"attributeScores[{name}].summaryScore.value"
        value = (
            ((entry or {}).get("summaryScore") or {}).get("value")
            if isinstance(entry, dict)
            else None
        )
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise invalid_field(field, "Expected a score from 0 to 1.")
        if ATTRIBUTES.get(name) is None:
            raise attribute_not_supported(name, _string_list(body, "languages") or [LANGUAGE])
        labels[ATTRIBUTES[name]] = float(value)
    return Suggestion(
        text=_comment_text(body.get("comment")),
        labels=labels,
        languages=tuple(_string_list(body, "languages")),
        client_token=_optional_string(body, "clientToken"),
        community_id=_optional_string(body, "communityId"),
    )


def partial_response(body: dict[str, Any], fields: str) -> dict[str, Any]:
    """Google's partial response: only the fields the ``fields`` selector names
    (``a,b/c,d(e,f)``; a map's keys select like fields)."""
    return _select(body, _selector(fields))


def _selector(fields: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    depth, start = 0, 0
    for index, char in enumerate(fields + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            _add(tree, fields[start:index].strip())
            start = index + 1
    if depth:
        raise invalid_field("fields", "Unbalanced parentheses in the field selector.")
    return tree


def _add(tree: dict[str, Any], path: str) -> None:
    if not path:
        return
    paren, slash = path.find("("), path.find("/")
    if paren != -1 and (slash == -1 or paren < slash):
        node = tree.setdefault(path[:paren].strip(), {})
        if node is not None:
            node.update(_selector(path[paren + 1 : path.rindex(")")]))
        return
    head, _, rest = path.partition("/")
    if not rest:
        tree[head] = None  # the whole field
        return
    node = tree.setdefault(head, {})
    if node is not None:
        _add(node, rest)


def _select(value: Any, tree: dict[str, Any] | None) -> Any:
    if tree is None or not isinstance(value, dict):
        return value
    return {key: _select(value[key], sub) for key, sub in tree.items() if key in value}
