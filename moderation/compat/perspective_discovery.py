"""The discovery document of the Perspective-compatible API (``commentanalyzer`` v1alpha1).

Google's client libraries build their ``comments().analyze()`` from it, so pointing
``discoveryServiceUrl`` at this service is all a Python client changes. The schemas are
written once here; the OpenAPI document derives its own from them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from moderation.compat.perspective_analysis import ATTRIBUTES
from moderation.schemas import MAX_TEXT_LENGTH

SERVICE = "commentanalyzer"
VERSION = "v1alpha1"
ANALYZE_PATH = f"{VERSION}/comments:analyze"
SUGGEST_PATH = f"{VERSION}/comments:suggestscore"
SUGGEST_DESCRIPTION = (
    "Suggest comment scores as training data: each suggestion is kept as a labelled example "
    "of the site, attributed to its clientToken, for what-if and tuning."
)
DISCOVERY_PATH = "$discovery/rest"
STORAGE_NOTE = (
    "Nothing about the comment is stored, whatever doNotStore says: a worker scores the "
    "text and forgets it, and the request log records only the method, path, status and "
    "duration (never the body or the key)."
)
ANALYZE_DESCRIPTION = (
    "Analyzes the provided text and returns scores for requested attributes: "
    + ", ".join(ATTRIBUTES)
    + ". English only. "
    + STORAGE_NOTE
)

_SCORE_TYPE = {
    "type": "string",
    "enum": ["SCORE_TYPE_UNSPECIFIED", "PROBABILITY"],
    "description": "Only PROBABILITY scores, in [0, 1], are available.",
}


def _text_entry() -> dict[str, Any]:
    return {
        "id": "TextEntry",
        "type": "object",
        "description": "Represents a body of text.",
        "properties": {
            "text": {
                "type": "string",
                "description": f"UTF-8 text, at most {MAX_TEXT_LENGTH} characters.",
            },
            "type": {
                "type": "string",
                "enum": ["TEXT_TYPE_UNSPECIFIED", "PLAIN_TEXT"],
                "description": "Type of the text field; only PLAIN_TEXT is supported.",
            },
        },
    }


def _request_schemas() -> dict[str, Any]:
    attribute_names = ", ".join(ATTRIBUTES)
    return {
        "AnalyzeCommentRequest": {
            "id": "AnalyzeCommentRequest",
            "type": "object",
            "description": "The comment analysis request message.",
            "properties": {
                "comment": {"$ref": "TextEntry", "description": "The comment to analyze."},
                "requestedAttributes": {
                    "type": "object",
                    "additionalProperties": {"$ref": "AttributeParameters"},
                    "description": f"The attributes to score, by name: {attribute_names}.",
                },
                "languages": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The comment's languages; detected in the text when absent. "
                    'English ("en") is scored, and the languages of a multilingual model where '
                    "one is configured.",
                },
                "doNotStore": {"type": "boolean", "description": STORAGE_NOTE},
                "spanAnnotations": {
                    "type": "boolean",
                    "description": "Also return a score for each sentence.",
                },
                "dropUnsupportedAttributes": {
                    "type": "boolean",
                    "description": "Leave out attributes that cannot be scored, not an error.",
                },
                "clientToken": {
                    "type": "string",
                    "description": "Opaque token echoed in the response.",
                },
                "context": {"$ref": "Context", "description": "Accepted and ignored."},
                "sessionId": {"type": "string", "description": "Accepted and ignored."},
                "communityId": {"type": "string", "description": "Accepted and ignored."},
            },
        },
        "AttributeParameters": {
            "id": "AttributeParameters",
            "type": "object",
            "description": "Configurable parameters for attribute scoring.",
            "properties": {
                "scoreType": _SCORE_TYPE,
                "scoreThreshold": {
                    "type": "number",
                    "format": "float",
                    "description": "Scores below this threshold are not returned.",
                },
            },
        },
        "TextEntry": _text_entry(),
        "Context": {
            "id": "Context",
            "type": "object",
            "description": "What the comment refers to; accepted and ignored.",
            "properties": {
                "entries": {"type": "array", "items": {"$ref": "TextEntry"}},
                "articleAndParentComment": {"$ref": "ArticleAndParentComment"},
            },
        },
        "ArticleAndParentComment": {
            "id": "ArticleAndParentComment",
            "type": "object",
            "properties": {
                "article": {"$ref": "TextEntry"},
                "parentComment": {"$ref": "TextEntry"},
            },
        },
    }


def _suggest_schemas() -> dict[str, Any]:
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "SuggestCommentScoreRequest": {
            "id": "SuggestCommentScoreRequest",
            "type": "object",
            "description": "A label for a comment, kept as a labelled example of the site.",
            "properties": {
                "comment": {"$ref": "TextEntry"},
                "attributeScores": {
                    "type": "object",
                    "additionalProperties": {"$ref": "AttributeScores"},
                    "description": "The suggested summaryScore per attribute (0 to 1).",
                },
                "languages": strings,
                "context": {"$ref": "Context"},
                "clientToken": {"type": "string"},
                "sessionId": {"type": "string"},
                "communityId": {"type": "string"},
            },
        },
        "SuggestCommentScoreResponse": {
            "id": "SuggestCommentScoreResponse",
            "type": "object",
            "properties": {
                "detectedLanguages": strings,
                "requestedLanguages": strings,
                "clientToken": {"type": "string"},
            },
        },
    }


def _response_schemas() -> dict[str, Any]:
    strings = {"type": "array", "items": {"type": "string"}}
    return _suggest_schemas() | {
        "AnalyzeCommentResponse": {
            "id": "AnalyzeCommentResponse",
            "type": "object",
            "description": "The comment analysis response message.",
            "properties": {
                "attributeScores": {
                    "type": "object",
                    "additionalProperties": {"$ref": "AttributeScores"},
                    "description": "Scores by requested attribute name.",
                },
                "languages": strings | {"description": "The request's languages."},
                "detectedLanguages": strings | {"description": "Always English."},
                "clientToken": {
                    "type": "string",
                    "description": "The request's clientToken.",
                },
            },
        },
        "AttributeScores": {
            "id": "AttributeScores",
            "type": "object",
            "properties": {
                "summaryScore": {"$ref": "Score", "description": "The whole comment's score."},
                "spanScores": {
                    "type": "array",
                    "items": {"$ref": "SpanScore"},
                    "description": "A score per sentence, with spanAnnotations.",
                },
            },
        },
        "SpanScore": {
            "id": "SpanScore",
            "type": "object",
            "properties": {
                "begin": {
                    "type": "integer",
                    "format": "int32",
                    "description": "Start of the sentence, in UTF-16 code units.",
                },
                "end": {
                    "type": "integer",
                    "format": "int32",
                    "description": "End of the sentence (exclusive), in UTF-16 code units.",
                },
                "score": {"$ref": "Score"},
            },
        },
        "Score": {
            "id": "Score",
            "type": "object",
            "properties": {
                "value": {"type": "number", "format": "float"},
                "type": {"type": "string", "enum": ["PROBABILITY"]},
            },
        },
    }


@cache
def schemas() -> dict[str, Any]:
    """Every schema of the API, in discovery format (``$ref`` by schema id)."""
    return _request_schemas() | _response_schemas()


def _query(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "location": "query", "description": description, **extra}


def _parameters() -> dict[str, Any]:
    """Google's standard query parameters, so that its clients accept every one of them."""
    return {
        "$.xgafv": _query("V1 error format; accepted, errors always have the v2 shape."),
        "access_token": _query("Accepted and ignored: this API takes the site's key."),
        "alt": _query("Data format for the response; always JSON.", default="json"),
        "callback": _query("Accepted and ignored (no JSONP)."),
        "fields": _query("Selector specifying which fields to include in a partial response."),
        "key": _query("The site's API key (msk_...)."),
        "oauth_token": _query("Accepted and ignored: this API takes the site's key."),
        "prettyPrint": {
            "type": "boolean",
            "location": "query",
            "default": "true",
            "description": "Accepted and ignored.",
        },
        "quotaUser": _query("Accepted and ignored; the site key's rate limit applies."),
        "uploadType": _query("Accepted and ignored (no uploads)."),
        "upload_protocol": _query("Accepted and ignored (no uploads)."),
    }


def _method(name: str, path: str, request: str, response: str, description: str):
    return {
        "id": f"{SERVICE}.comments.{name}",
        "path": path,
        "flatPath": path,
        "httpMethod": "POST",
        "description": description,
        "parameters": {},
        "parameterOrder": [],
        "request": {"$ref": request},
        "response": {"$ref": response},
    }


def _resources() -> dict[str, Any]:
    analyze = _method(
        "analyze",
        ANALYZE_PATH,
        "AnalyzeCommentRequest",
        "AnalyzeCommentResponse",
        ANALYZE_DESCRIPTION,
    )
    suggest = _method(
        "suggestscore",
        SUGGEST_PATH,
        "SuggestCommentScoreRequest",
        "SuggestCommentScoreResponse",
        SUGGEST_DESCRIPTION,
    )
    return {"comments": {"methods": {"analyze": analyze, "suggestscore": suggest}}}


def discovery_document(root_url: str) -> dict[str, Any]:
    """The ``discovery#restDescription`` of this API served at ``root_url`` (ends in /)."""
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"{SERVICE}:{VERSION}",
        "name": SERVICE,
        "version": VERSION,
        "title": "Comment moderation: Perspective-compatible API",
        "description": "Scores comments as Perspective's Comment Analyzer API does. "
        + STORAGE_NOTE,
        "protocol": "rest",
        "rootUrl": root_url,
        "servicePath": "",
        "basePath": "",
        "baseUrl": root_url,
        "batchPath": "batch",
        "parameters": _parameters(),
        "resources": _resources(),
        "schemas": schemas(),
    }
