"""Structured logs: JSON in production, with the request, task and comment each line is about.

A comment is followed from HTTP to decision by its public id: the API logs "comment
accepted" with the request id, and the worker logs "comment decided" with the task id and
the id of the request that sent it (carried as a task message header).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from moderation.config import Settings

# Fields every line carries when known; bound per request or task, or passed in ``extra``.
CONTEXT_FIELDS = ("request_id", "task_id", "comment_id")

_context: ContextVar[dict[str, Any] | None] = ContextVar("moderation_log_context", default=None)


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


def carry_request_id(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    # Runs in whichever process publishes; a task sent while serving a request carries its id.
    request_id = log_context().get("request_id")
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id
