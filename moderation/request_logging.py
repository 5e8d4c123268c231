"""The web's part of structured logs: a request id per request, and one access-log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from celery.signals import before_task_publish
from flask import Flask, g, request
from flask.wrappers import Response

from moderation.config import Settings
from moderation.logging_setup import bind, carry_request_id, configure_logging, log_context, unbind

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only if it is short and harmless in a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# Probes and scrapes would drown the access log.
_QUIET_PATHS = frozenset({"/healthz", "/healthz/workers", "/readyz", "/metrics"})

log = logging.getLogger("moderation.http")


def init_app(app: Flask, settings: Settings) -> None:
    """Give each request an id (the caller's ``X-Request-ID`` if sane) bound to its log lines."""
    configure_logging(settings)
    # First, so that even a request another hook refuses (429, 401) gets an id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    before_task_publish.connect(carry_request_id, weak=False, dispatch_uid=__name__)


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
