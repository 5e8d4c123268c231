"""Reading a request the same way on every endpoint: JSON bodies, validation, paging."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, Field, ValidationError

from moderation.api.errors import ApiError
from moderation.api.openapi import Header
from moderation.schemas import Omitted

MAX_PAGE = 100
# Row ids are 32-bit integers in the database, and PostgreSQL refuses to compare with more.
MAX_ROW_ID = 2**31 - 1
Model = TypeVar("Model", bound=BaseModel)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "a repeat with the same key answers the first comment (`Idempotent-Replayed: true`)",
    {"type": "string", "minLength": 1, "maxLength": 200},
)


class PageQuery(BaseModel):
    """The paging parameters, as ``page_limit`` and ``cursor`` read them."""

    limit: int = Field(20, ge=1, le=MAX_PAGE)
    cursor: str | Omitted = Field(None, description="the previous page's `next_cursor`")


def refuse_nul_characters() -> None:
    """PostgreSQL can neither store nor compare a NUL: a path with one names nothing (404), a
    query parameter with one is invalid (422)."""
    path_values = (request.view_args or {}).values()
    if any(isinstance(value, str) and "\x00" in value for value in path_values):
        raise ApiError(404, "not_found", "nothing here has a NUL character in its name")
    for name, value in request.args.items(multi=True):
        if "\x00" in value:
            raise ApiError(422, "invalid", f"{name} must not contain NUL characters", name)


def json_object(*, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object, or the 415/400/422 that says why it is not one."""
    if optional and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    return body


# pydantic's error types that have a code of their own in this API; the rest are "invalid".
_ERROR_CODES = {"missing": "missing_field", "text_too_long": "text_too_long"}


def validated(model: type[Model], body: dict[str, Any]) -> Model:
    """The body as ``model``, or a 422 naming the first field that is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        message = error["msg"].removeprefix("Value error, ")
        code = _ERROR_CODES.get(error["type"], "invalid")
        raise ApiError(422, code, f"{field}: {message}", field) from None


def idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header, if sent and well formed."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        message = "Idempotency-Key must be 1-200 printable characters"
        raise ApiError(422, "invalid", message, "Idempotency-Key")
    return key


def whole_number(raw: str, maximum: int = MAX_ROW_ID) -> int | None:
    """``raw`` as a number from 0 to ``maximum``, or None; ASCII digits only (``int`` takes
    other scripts' digits too, and ``isdigit`` superscripts that ``int`` refuses)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def page_limit(default: int = 20, maximum: int = MAX_PAGE) -> int:
    """The ``limit`` query parameter, 1 to ``maximum``."""
    value = whole_number(request.args.get("limit", str(default)), maximum)
    if value is None or value < 1:
        raise ApiError(422, "invalid", f"limit must be an integer from 1 to {maximum}", "limit")
    return value


def cursor() -> int | None:
    """The id a ``cursor`` query parameter points below, if one was given."""
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw.encode() + b"==").decode().removeprefix("c")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        decoded = ""
    comment_id = whole_number(decoded)
    if comment_id is None:
        raise ApiError(422, "invalid", "cursor is not one this API gave out", "cursor")
    return comment_id


def encode_cursor(comment_id: int) -> str:
    """An opaque cursor for the page after ``comment_id``."""
    return base64.urlsafe_b64encode(f"c{comment_id}".encode()).decode().rstrip("=")
