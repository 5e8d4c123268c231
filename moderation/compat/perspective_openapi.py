"""The Perspective-compatible paths in the service's OpenAPI document.

The schemas are the discovery document's, translated: ``$ref`` by id becomes a component
reference, and discovery-only keywords are dropped.
"""

from __future__ import annotations

from typing import Any

from moderation.compat.perspective_discovery import (
    ANALYZE_DESCRIPTION,
    ANALYZE_PATH,
    DISCOVERY_PATH,
    schemas,
)

TAG = "Perspective-compatible"
PREFIX = "Perspective"
SECURITY_SCHEME = "perspectiveKey"
_DISCOVERY_ONLY = frozenset({"id", "enumDescriptions"})


def _component(name: str) -> str:
    return f"#/components/schemas/{PREFIX}{name}"


def _translated(schema: dict[str, Any]) -> dict[str, Any]:
    translated: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DISCOVERY_ONLY:
            continue
        if key == "$ref":
            translated[key] = _component(value)
        elif key == "properties":
            translated[key] = {name: _translated(prop) for name, prop in value.items()}
        elif isinstance(value, dict):
            translated[key] = _translated(value)
        else:
            translated[key] = value
    return translated


def _discovery_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["kind", "id", "rootUrl", "resources", "schemas"],
        "properties": {
            "kind": {"const": "discovery#restDescription"},
            "id": {"type": "string"},
            "rootUrl": {"type": "string"},
            "resources": {"type": "object"},
            "schemas": {"type": "object"},
        },
    }


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["@type"],
                            "properties": {"@type": {"type": "string"}},
                        },
                    },
                },
            }
        },
    }


def perspective_schemas() -> dict[str, Any]:
    """Component schemas, named ``Perspective<Name>``."""
    translated = {PREFIX + name: _translated(schema) for name, schema in schemas().items()}
    translated[PREFIX + "AnalyzeCommentRequest"]["required"] = ["comment", "requestedAttributes"]
    translated[PREFIX + "TextEntry"]["required"] = ["text"]
    translated[PREFIX + "Error"] = _error_schema()
    translated[PREFIX + "Discovery"] = _discovery_schema()
    return translated


def perspective_security_schemes() -> dict[str, Any]:
    """The site key, sent as Perspective's ``?key=``."""
    return {SECURITY_SCHEME: {"type": "apiKey", "in": "query", "name": "key"}}


def _responses(ok: str, description: str, *errors: int) -> dict[str, Any]:
    def body(name: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": _component(name)}}}

    error = {"description": "error, in Google's shape", "content": body("Error")}
    return {"200": {"description": description, "content": body(ok)}} | {
        str(status): error for status in errors
    }


def perspective_paths() -> dict[str, Any]:
    """The analyze method and the discovery document."""
    ignored = [
        {"name": name, "in": "query", "schema": {"type": "string"}, "description": "ignored"}
        for name in ("alt", "prettyPrint")
    ]
    request_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _component("AnalyzeCommentRequest")}}},
    }
    return {
        f"/{ANALYZE_PATH}": {
            "post": {
                "tags": [TAG],
                "operationId": "perspectiveAnalyzeComment",
                "summary": "Score a comment as Perspective's AnalyzeComment does.",
                "description": ANALYZE_DESCRIPTION,
                "security": [{SECURITY_SCHEME: []}],
                "parameters": ignored,
                "requestBody": request_body,
                "responses": _responses(
                    "AnalyzeCommentResponse", "the scores", 400, 403, 413, 429, 503
                ),
            }
        },
        f"/{DISCOVERY_PATH}": {
            "get": {
                "tags": [TAG],
                "operationId": "perspectiveDiscovery",
                "summary": "The discovery document for Google's client libraries.",
                "security": [],
                "parameters": [
                    {
                        "name": "version",
                        "in": "query",
                        "schema": {"type": "string", "default": "v1alpha1"},
                    }
                ],
                "responses": _responses("Discovery", "a discovery#restDescription", 404, 429),
            }
        },
    }
