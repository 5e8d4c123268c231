"""The OpenAPI 3.1 document of the site API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from functools import cache
from typing import Any

from moderation.api import api_v1
from moderation.schemas import MAX_TEXT_LENGTH, CommentSubmission


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            }
        },
    }


def _comment_schema() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["id", "status", "article_id", "author_id", "author_name", "text"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["pending", "approved", "held", "rejected"]},
            "article_id": {"type": "string"},
            "parent_id": nullable_string,
            "author_id": {"type": "string"},
            "author_name": {"type": "string"},
            "text": {"type": "string", "maxLength": MAX_TEXT_LENGTH},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }


def _comment_detail_schema() -> dict[str, Any]:
    reason = {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "label": {"type": ["string", "null"]},
            "score": {"type": ["number", "null"]},
            "threshold": {"type": ["number", "null"]},
            "message": {"type": "string"},
        },
    }
    detail = _comment_schema()
    detail["properties"] |= {
        "decided_at": {"type": ["string", "null"], "format": "date-time"},
        "decision": {
            "type": ["object", "null"],
            "properties": {
                "outcome": {"enum": ["approved", "held", "rejected"]},
                "reasons": {"type": "array", "items": reason},
            },
        },
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "model": {
            "type": ["object", "null"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
    }
    return detail


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        str(status): {"description": "error", "content": {"application/json": {"schema": ref}}}
        for status in statuses
    }


def _ok(status: int, schema_name: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    return {
        str(status): {"description": description, "content": {"application/json": {"schema": ref}}}
    }


def _paths() -> dict[str, Any]:
    public_id = {"name": "public_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/v1/comments": {
            "post": {
                "operationId": "submitComment",
                "summary": "Submit a comment; it is stored as pending and scored by a worker.",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CommentSubmission"}
                        }
                    },
                },
                "responses": _ok(202, "Comment", "accepted, pending")
                | _errors(400, 401, 409, 413, 415, 422),
            }
        },
        "/api/v1/comments/{public_id}": {
            "get": {
                "operationId": "getComment",
                "summary": "A comment's status, decision, reasons and scores.",
                "parameters": [public_id],
                "responses": _ok(200, "CommentDetail", "the comment") | _errors(401, 404),
            }
        },
        "/api/v1/articles/{article_id}/comments": {
            "get": {
                "operationId": "listPublishedComments",
                "summary": "Approved comments of an article, newest first.",
                "parameters": [
                    {
                        "name": "article_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _ok(200, "CommentPage", "a page of comments") | _errors(401, 404, 422),
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document; built once per process."""
    submission = CommentSubmission.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Comment moderation API", "version": "1.0.0"},
        "components": {
            "securitySchemes": {
                "siteKey": {"type": "http", "scheme": "bearer"},
                "moderatorToken": {"type": "http", "scheme": "bearer"},
                **_compat_security_schemes(),
            },
            "schemas": {
                "CommentSubmission": submission,
                "Comment": _comment_schema(),
                "CommentDetail": _comment_detail_schema(),
                "CommentPage": {
                    "type": "object",
                    "properties": {
                        "comments": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Comment"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Error": _error_schema(),
                **_integration_schemas(),
                **_moderation_schemas(),
                **_compat_schemas(),
            },
        },
        "security": [{"siteKey": []}],
        "paths": _with_unroutable_404(
            _paths() | _integration_paths() | _moderation_paths() | _compat_paths()
        ),
        "webhooks": _webhook_events(),
    }


def _with_unroutable_404(paths: dict[str, Any]) -> dict[str, Any]:
    """A path parameter that cannot be routed (a newline, say) answers 404 on any operation."""
    for path, operations in paths.items():
        if "{" not in path:
            continue
        for operation in operations.values():
            operation["responses"] = _errors(404) | operation["responses"]
    return paths


@api_v1.get("/openapi.json")
def openapi_json():
    """The API's OpenAPI document."""
    return openapi_document()


# --- Site integration: the widget's public API, article settings, webhooks -------------------


def _integration_schemas() -> dict[str, Any]:
    from moderation.api.articles import ArticleSettings
    from moderation.api.public import PublicSubmission

    ref = "#/components/schemas/{model}"
    nullable_string = {"type": ["string", "null"]}
    timestamp = {"type": "string", "format": "date-time"}
    delivery = {
        "type": "object",
        "required": ["id", "event_id", "event_type", "status", "attempts"],
        "properties": {
            "id": {"type": "string"},
            "event_id": {"type": "string"},
            "event_type": {"enum": ["comment.decided", "comment.moderated"]},
            "comment_id": nullable_string,
            "status": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"},
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": nullable_string,
            "created_at": timestamp,
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    attempt = {
        "type": "object",
        "properties": {
            "at": timestamp,
            "url": {"type": "string"},
            "status_code": {"type": ["integer", "null"]},
            "error": nullable_string,
            "duration_ms": {"type": "number"},
        },
    }
    detail = {
        **delivery,
        "properties": delivery["properties"]
        | {
            "event": {"$ref": "#/components/schemas/WebhookEvent"},
            "attempt_log": {"type": "array", "items": attempt},
        },
    }
    return {
        "PublicSubmission": PublicSubmission.model_json_schema(ref_template=ref),
        "PublicComment": {
            "type": "object",
            "required": ["id", "status", "author_name", "text", "created_at"],
            "properties": {
                "id": {"type": "string"},
                "status": {"enum": ["pending", "approved", "held", "rejected"]},
                "parent_id": nullable_string,
                "author_name": {"type": "string"},
                "text": {"type": "string"},
                "created_at": timestamp,
            },
        },
        "PublicCommentPage": {
            "type": "object",
            "properties": {
                "article": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "closed": {"type": "boolean"}},
                },
                "comments": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/PublicComment"},
                },
                "next_cursor": nullable_string,
            },
        },
        "ArticleSettingsChange": ArticleSettings.model_json_schema(ref_template=ref),
        "ArticleSettings": {
            "type": "object",
            "properties": {
                "article_id": {"type": "string"},
                "title": nullable_string,
                "url": nullable_string,
                "closed": {"type": "boolean"},
                "premoderate": {"type": "boolean"},
                "hold_links": {"type": "boolean"},
            },
        },
        "WebhookDelivery": delivery,
        "WebhookDeliveryDetail": detail,
        "WebhookDeliveryPage": {
            "type": "object",
            "properties": {
                "deliveries": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/WebhookDelivery"},
                },
                "next_cursor": nullable_string,
            },
        },
        "WebhookEvent": _webhook_event_schema(),
    }


def _webhook_event_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "type", "created_at", "data"],
        "properties": {
            "id": {"type": "string", "description": "deduplicate on this"},
            "type": {"enum": ["comment.decided", "comment.moderated"]},
            "created_at": {"type": "string", "format": "date-time"},
            "data": {
                "type": "object",
                "properties": {
                    "comment": {"$ref": "#/components/schemas/Comment"},
                    "transition": {
                        "type": "object",
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "actor": {
                                "type": "object",
                                "properties": {
                                    "type": {"enum": ["system", "moderator"]},
                                    "id": {"type": ["string", "null"]},
                                },
                            },
                            "reason": {"type": "string"},
                            "reasons": {"type": "array", "items": {"type": "object"}},
                            "note": {"type": ["string", "null"]},
                            "at": {"type": "string", "format": "date-time"},
                        },
                    },
                },
            },
        },
    }


def _param(name: str, where: str = "path", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", **schema},
    }


def _json_body(schema_name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


def _integration_paths() -> dict[str, Any]:
    key = _param("key", description="the site's publishable key (mpk_...)")
    article = _param("article_id")
    paging = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        _param("cursor", "query"),
    ]
    public = {"security": [], "tags": ["widget"]}
    delivery_id = _param("public_id")
    return {
        "/api/v1/public/{key}/articles/{article_id}/comments": {
            "get": public
            | {
                "operationId": "widgetListComments",
                "summary": "Published comments for the widget (CORS: the site's origins).",
                "parameters": [key, article, *paging],
                "responses": _ok(200, "PublicCommentPage", "a page of comments")
                | _errors(400, 401, 403, 422, 429),
            },
            "post": public
            | {
                "operationId": "widgetPostComment",
                "summary": "A reader's comment from the widget; needs an allowed Origin.",
                "parameters": [key, article, _param("Idempotency-Key", "header")],
                "requestBody": _json_body("PublicSubmission"),
                "responses": _ok(202, "PublicComment", "stored; rules may have decided it")
                | _errors(400, 401, 403, 409, 413, 415, 422, 429),
            },
        },
        "/api/v1/public/{key}/comments/{public_id}": {
            "get": public
            | {
                "operationId": "widgetGetComment",
                "summary": "A reader's own comment by id: its status (awaiting moderation?).",
                "parameters": [key, _param("public_id")],
                "responses": _ok(200, "PublicComment", "the comment")
                | _errors(400, 401, 403, 404, 429),
            },
        },
        "/api/v1/articles/{article_id}/settings": {
            "get": {
                "operationId": "getArticleSettings",
                "summary": "An article's settings: closed, premoderate, hold_links.",
                "parameters": [article],
                "responses": _ok(200, "ArticleSettings", "the settings") | _errors(401, 404),
            },
            "patch": {
                "operationId": "changeArticleSettings",
                "summary": "Change an article's settings (creating it: 201).",
                "parameters": [article],
                "requestBody": _json_body("ArticleSettingsChange"),
                "responses": _ok(200, "ArticleSettings", "changed")
                | _ok(201, "ArticleSettings", "created")
                | _errors(400, 401, 415, 422),
            },
        },
        "/api/v1/webhooks/deliveries": {
            "get": {
                "operationId": "listWebhookDeliveries",
                "summary": "The delivery log, newest first; ?status=failed to find re-sends.",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["pending", "delivered", "failed"]},
                    },
                    *paging,
                ],
                "responses": _ok(200, "WebhookDeliveryPage", "deliveries") | _errors(401, 422),
            }
        },
        "/api/v1/webhooks/deliveries/{public_id}": {
            "get": {
                "operationId": "getWebhookDelivery",
                "summary": "A delivery with every attempt's status code and its event.",
                "parameters": [delivery_id],
                "responses": _ok(200, "WebhookDeliveryDetail", "the delivery") | _errors(401, 404),
            }
        },
        "/api/v1/webhooks/deliveries/{public_id}/resend": {
            "post": {
                "operationId": "resendWebhookDelivery",
                "summary": "Send a delivery again from its first attempt.",
                "parameters": [delivery_id],
                "responses": _ok(202, "WebhookDelivery", "queued") | _errors(401, 404),
            }
        },
    }


def _webhook_events() -> dict[str, Any]:
    signature = _param(
        "Moderation-Signature",
        "header",
        description='t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>',
    )
    signature["required"] = True
    events = {
        "comment.decided": "The system decided a comment (rules or model).",
        "comment.moderated": "A moderator approved or rejected a comment.",
    }
    return {
        name: {
            "post": {
                "summary": summary,
                "parameters": [signature],
                "requestBody": _json_body("WebhookEvent"),
                "responses": {"2XX": {"description": "received; anything else is retried"}},
            }
        }
        for name, summary in events.items()
    }


# --- Moderators: the moderation actions with a moderator token --------------------------------


def _moderation_schemas() -> dict[str, Any]:
    from moderation.api.calibration import calibration_schemas
    from moderation.api.moderation import moderation_schemas

    return moderation_schemas() | calibration_schemas()


def _moderation_paths() -> dict[str, Any]:
    from moderation.api.calibration import calibration_paths
    from moderation.api.moderation import moderation_paths

    return moderation_paths() | calibration_paths()


# --- Compatible APIs: the protocols of the services sites move from -------------------------


def _compat_security_schemes() -> dict[str, Any]:
    from moderation.compat.perspective_openapi import perspective_security_schemes

    return perspective_security_schemes()


def _compat_schemas() -> dict[str, Any]:
    from moderation.compat.perspective_openapi import perspective_schemas

    return perspective_schemas()


def _compat_paths() -> dict[str, Any]:
    from moderation.compat.perspective_openapi import perspective_paths

    return perspective_paths()
