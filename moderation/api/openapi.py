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
            "securitySchemes": {"siteKey": {"type": "http", "scheme": "bearer"}},
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
            },
        },
        "security": [{"siteKey": []}],
        "paths": _paths(),
    }


@api_v1.get("/openapi.json")
def openapi_json():
    """The API's OpenAPI document."""
    return openapi_document()
