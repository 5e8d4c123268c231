"""Every API error has one shape: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5


class ApiError(Exception):
    """An error answered to the client as JSON with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        # More about the error for the client: a suspension's ``until``, a first report's time.
        self.extra = extra or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers=None,
    extra: dict[str, Any] | None = None,
):
    """A JSON error response in the API's one shape."""
    body: dict[str, Any] = {**(extra or {}), "code": code, "message": message}
    if field is not None:
        body["field"] = field
    response = jsonify(error=body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


# Renders (status, message, headers) as a response in another protocol's error shape.
ErrorRenderer = Callable[[int, str, dict[str, str]], Response]
_ERROR_SHAPES = "moderation.error_shapes"


def register_error_shape(app: Flask, path_prefix: str, render: ErrorRenderer) -> None:
    """Answer errors under ``path_prefix`` (404, 405, 413, 503, 500) as ``render`` builds them.

    The compatible APIs use it so that their clients always get the error shape they parse.
    """
    app.extensions.setdefault(_ERROR_SHAPES, {})[path_prefix] = render


def _other_shape(status: int, message: str, headers: dict[str, str] | None = None):
    """The response in a registered protocol's shape, or None for this API's own shape."""
    from flask import current_app

    for prefix, render in current_app.extensions.get(_ERROR_SHAPES, {}).items():
        if request.path.startswith(prefix):
            return render(status, message, headers or {})
    return None


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    """JSON errors for API paths, including Flask's own 404/405/413."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        # Shared code (key checks) raises ApiError on the compatible APIs' paths too.
        other = _other_shape(exc.status, exc.message, exc.headers)
        return other or error_response(
            exc.status, exc.code, exc.message, exc.field, exc.headers, exc.extra
        )

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"] // 1024
        message = f"the body is larger than {limit} KiB"
        return _other_shape(413, message) or error_response(413, "body_too_large", message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # Keep the exception's own headers (a 405's Allow), not its HTML content type.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        other = _other_shape(exc.code or 500, exc.description or exc.name or "error", headers)
        if other is not None:
            return other
        if not _is_api_request():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        # Nothing was committed: the request's transaction died with the connection.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER)}
        other = _other_shape(503, "the database is not answering; retry shortly", retry)
        if other is not None:
            return other
        return error_response(
            503,
            "database_unavailable",
            "the database is not answering; nothing was stored, retry shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = "an unexpected error occurred"
        return _other_shape(500, message) or error_response(500, "internal_error", message)
