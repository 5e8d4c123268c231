"""What the service's OpenAPI document says of the Perspective-compatible API.

The request and response schemas are the discovery document's, translated: ``$ref`` by id
becomes a component reference, and discovery-only keywords are dropped. The error and the
discovery document itself are pydantic models; the views say the rest with ``@documented``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation.api.openapi import ErrorShape, Security, Tag, documented
from moderation.compat.perspective_discovery import VERSION, schemas
from moderation.schemas import Omitted

TAG = Tag(
    "Perspective-compatible",
    "Perspective's Comment Analyzer API, for sites that move from it: its paths, requests, "
    "responses and errors.",
)
PREFIX = "Perspective"
PERSPECTIVE_KEY = Security(
    "perspectiveKey",
    {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "The site's secret API key (`msk_...`), where Perspective's key went.",
    },
)
_DISCOVERY_ONLY = frozenset({"id", "enumDescriptions"})


class PerspectiveErrorDetail(BaseModel):
    """A typed detail clients look into, such as the ``errorType`` or a retry delay."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(alias="@type")


class PerspectiveErrorBody(BaseModel):
    """Google's error: the HTTP status, a message and the google.rpc code name."""

    code: int
    message: str
    status: str = Field(description="the google.rpc code name, e.g. `INVALID_ARGUMENT`")
    details: list[PerspectiveErrorDetail] | Omitted = None


class PerspectiveError(BaseModel):
    """Errors in the shape Google's APIs answer, which Perspective's clients parse."""

    error: PerspectiveErrorBody


class PerspectiveDiscovery(BaseModel):
    """A ``discovery#restDescription``, from which Google's client libraries build the API."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["discovery#restDescription"]
    id: str
    rootUrl: str
    resources: dict[str, Any]
    schemas: dict[str, Any]


class AnalyzeQuery(BaseModel):
    """Query parameters Google's clients add; the key is the security scheme."""

    alt: str | Omitted = Field(None, description="ignored")
    prettyPrint: str | Omitted = Field(None, description="ignored")


class DiscoveryQuery(BaseModel):
    """Which version's discovery document."""

    version: str = VERSION


GOOGLE_ERRORS = ErrorShape(
    PerspectiveError,
    {
        400: "an invalid request, or a key that is not a site's secret key",
        403: "no `key`",
        404: "no such API or version",
        503: "the workers did not score in time; retry after `Retry-After`",
    },
)


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


def perspective_schemas() -> dict[str, Any]:
    """The discovery document's schemas as components, named ``Perspective<Name>``."""
    translated = {PREFIX + name: _translated(schema) for name, schema in schemas().items()}
    translated[PREFIX + "AnalyzeCommentRequest"]["required"] = ["comment", "requestedAttributes"]
    translated[PREFIX + "TextEntry"]["required"] = ["text"]
    return translated


# An operation of this API: its tag, Google's errors and the translated schemas.
perspective_operation = partial(
    documented, tag=TAG, error_shape=GOOGLE_ERRORS, components=perspective_schemas
)
