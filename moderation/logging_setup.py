"""Structured logs: JSON in production, with the request, task and comment each line is about.

A comment is followed from HTTP to decision by its public id: the API logs "comment
accepted" with the request id, and the worker logs "comment decided" with the task id and
the id of the request that sent it (carried as a task message header).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TextIO

from celery.signals import before_task_publish
from flask import Flask, g, request
from flask.wrappers import Response
from pythonjsonlogger.json import JsonFormatter

from moderation.config import Settings

# Fields every line carries when known; bound per request or task, or passed in ``extra``.
CONTEXT_FIELDS = ("request_id", "task_id", "comment_id")
REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only if it is short and harmless in a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# Probes and scrapes would drown the access log.
_QUIET_PATHS = frozenset({"/healthz", "/healthz/workers", "/readyz", "/metrics"})

_context: ContextVar[dict[str, Any] | None] = ContextVar("moderation_log_context", default=None)
log = logging.getLogger("moderation.http")


def log_context() -> dict[str, Any]:
    """What is bound for the current request or task."""
    return _context.get() or {}


def bind(**fields: Any) -> Token[dict[str, Any] | None]:
    """Add fields to every line logged from here on in this context; returns a reset token."""
    return _context.set(log_context() | fields)


def unbind(token: Token[dict[str, Any] | None]) -> None:
    """Restore what was bound before ``bind`` returned this token."""
    _context.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record, unless the call passed its own value."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = log_context()
        for field in CONTEXT_FIELDS:
            if getattr(record, field, None) is None:
                setattr(record, field, context.get(field))
        return True


class JsonLogFormatter(JsonFormatter):
    """One JSON object per line; fields that are not known are left out."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log_data.items() if value is not None}


class TextLogFormatter(logging.Formatter):
    """Readable lines for development, with the known context appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{field}={getattr(record, field)}"
            for field in CONTEXT_FIELDS
            if getattr(record, field, None) is not None
        ]
        return f"{line} [{' '.join(context)}]" if context else line


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces it."""


def configure_logging(
    settings: Settings,
    *,
    level: int | str | None = None,
    force: bool = False,
    stream: TextIO | None = None,
) -> bool:
    """Send every log line through one handler with our format; False if left alone.

    Without ``force``, a root logger that someone else (pytest, an embedding app) already
    gave handlers is not touched.
    """
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, _OurHandler)]
    if not force and len(ours) < len(root.handlers):
        return False
    for handler in ours:
        root.removeHandler(handler)
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter() if _wants_json(settings) else TextLogFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    return True


def _wants_json(settings: Settings) -> bool:
    if settings.log_format is not None:
        return settings.log_format == "json"
    return settings.env == "production"


def init_app(app: Flask, settings: Settings) -> None:
    """Give each request an id (the caller's ``X-Request-ID`` if sane) bound to its log lines."""
    configure_logging(settings)
    # First, so that even a request another hook refuses (429, 401) gets an id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    before_task_publish.connect(_carry_request_id, weak=False, dispatch_uid=__name__)


def _start_request() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    g.log_token = bind(request_id=request_id)
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = log_context().get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    if request.path not in _QUIET_PATHS and "request_started" in g:
        elapsed_ms = (time.perf_counter() - g.request_started) * 1000
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"status": response.status_code, "duration_ms": round(elapsed_ms, 1)},
        )
    return response


def _end_request(_exc: BaseException | None = None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        unbind(token)


def _carry_request_id(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    # Runs in whichever process publishes; a task sent while serving a request carries its id.
    request_id = log_context().get("request_id")
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id
