"""Errors in the shape Google's APIs answer, which Perspective's clients parse.

``{"error": {"code", "message", "status", "details"?}}``: ``status`` is the google.rpc code
name, and ``details`` carries typed objects (``@type``) that clients look into, such as the
Comment Analyzer ``errorType`` or how long to wait before retrying.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

ANALYZER_ERROR = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

# Seconds a client should wait after the workers did not answer in time.
RETRY_AFTER_SECONDS = 1

# The google.rpc code name Google's HTTP frontends give each status.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int) -> str:
    """The google.rpc code name for an HTTP status."""
    default = "INTERNAL" if code >= 500 else "INVALID_ARGUMENT"
    return _STATUS_NAMES.get(code, default)


class PerspectiveError(Exception):
    """An error answered to a Perspective client in Google's shape."""

    def __init__(
        self,
        code: int,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code, self.message = code, message
        self.details = details or []
        self.headers = headers or {}

    def response(self) -> Response:
        """This error as a JSON response."""
        return google_error(self.code, self.message, self.details, self.headers)


def google_error(
    code: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON response in Google's error shape."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status_name(code)}
    if details:
        error["details"] = details
    response = jsonify(error=error)
    response.status_code = code
    response.headers.update(headers or {})
    return response


def render_error(code: int, message: str, headers: dict[str, str]) -> Response:
    """Any error of the service (404, 405, 413, 429, 503...) in Google's shape.

    Registered with ``register_error_shape``; a ``Retry-After`` header also becomes the
    RetryInfo detail that Google's clients read.
    """
    details = []
    delay = headers.get("Retry-After", "")
    if delay.isdigit():
        details.append({"@type": RETRY_INFO, "retryDelay": f"{delay}s"})
    return google_error(code, message, details, headers)


# --- The errors this API answers ---------------------------------------------------------------


def missing_key() -> PerspectiveError:
    """403, as Google answers a request without ``?key=``."""
    return PerspectiveError(403, "The request is missing a valid API key.")


def invalid_key() -> PerspectiveError:
    """400 API_KEY_INVALID, as Google answers a key it does not know."""
    detail = {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
    return PerspectiveError(400, "API key not valid. Please pass a valid API key.", [detail])


def invalid_field(field: str | None, description: str) -> PerspectiveError:
    """400 for a request field that is missing or of the wrong type (google.rpc.BadRequest)."""
    violation = {"description": description} | ({"field": field} if field else {})
    message = f"Invalid value at '{field}': {description}" if field else description
    return PerspectiveError(400, message, [{"@type": BAD_REQUEST, "fieldViolations": [violation]}])


def analyzer_error(message: str, error_type: str, **extra: Any) -> PerspectiveError:
    """400 with the Comment Analyzer ``errorType`` its clients switch on."""
    detail = {"@type": ANALYZER_ERROR, "errorType": error_type, **extra}
    return PerspectiveError(400, message, [detail])


def attribute_not_supported(attribute: str, languages: list[str]) -> PerspectiveError:
    """LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE: what Perspective answers for an attribute it
    cannot score; clients commonly drop the named attribute and ask again."""
    return analyzer_error(
        f"Attribute {attribute} does not support request languages: {','.join(languages)}",
        "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
        languageNotSupportedByAttributeError={
            "detectedLanguages": languages,
            "attribute": attribute,
        },
    )


def unavailable() -> PerspectiveError:
    """503 with the retry advice (header and RetryInfo) Google's clients honour."""
    return PerspectiveError(
        503,
        "The service is currently unavailable.",
        [{"@type": RETRY_INFO, "retryDelay": f"{RETRY_AFTER_SECONDS}s"}],
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def not_found() -> PerspectiveError:
    """404, as Google answers an unknown API or version."""
    return PerspectiveError(404, "Requested entity was not found.")
