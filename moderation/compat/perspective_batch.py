"""Google's batch protocol for the Perspective-compatible API: ``POST /batch``.

The discovery document names ``batchPath: "batch"``, so Google's clients
(``new_batch_http_request()`` in Python, ``gapi.client.newBatch()`` in JavaScript) post
several calls in one ``multipart/mixed`` body: each part is ``application/http``, an HTTP
request (request line, headers, body) with a ``Content-ID``. Each part is answered as if it
had come alone (its own ``?key=``, rate limits, errors), in order, and the answer is
``multipart/mixed`` with one ``application/http`` part per call, whose ``Content-ID`` is the
request's prefixed with ``response-``, as Google answers.

Only this API's own methods may be batched; a part for another path gets Google's 404. A
part's own ``Host``, ``Forwarded``/``X-Forwarded-*`` and ``Cookie`` headers are dropped: the
call comes from the batch's client, at the address the batch came from. The whole batch is
one request body (at most 64 KiB) and one request's time: the calls wait for the workers one
after another, and those left when ``BATCH_DEADLINE_S`` has passed are answered 503 (retry).
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
import time
from dataclasses import dataclass
from email.message import Message
from functools import partial
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from moderation.compat.perspective_errors import (
    PerspectiveError,
    google_error,
    not_found,
    unavailable,
)

BATCH_PATH = "batch"
# Google takes up to 1,000 calls per batch; each call here waits for a worker in turn.
MAX_PARTS = 100
# Seconds after which the calls not yet run are answered 503: within gunicorn's 30 s timeout.
BATCH_DEADLINE_S = 20.0
# Headers a call may not set for itself: where it came from is the batch's business.
_DROPPED_HEADERS = frozenset(
    {"host", "forwarded", "cookie", "content-length", "transfer-encoding", "connection"}
)


@dataclass(frozen=True)
class BatchedCall:
    """One part of a batch: an HTTP request and the ``Content-ID`` that names its answer."""

    content_id: str | None
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class BatchedAnswer:
    """The answer to one part, to be written back as ``application/http``."""

    content_id: str | None
    status: str  # "200 OK"
    headers: list[tuple[str, str]]
    body: bytes


def invalid_batch(description: str) -> PerspectiveError:
    return PerspectiveError(400, f"Failed to parse batch request: {description}")


def parse_batch(content_type: str, body: bytes) -> list[BatchedCall]:
    """The calls of a ``multipart/mixed`` batch body, in order (400 if it is not one)."""
    envelope = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if envelope.get_content_type() != "multipart/mixed" or not envelope.get_boundary():
        raise invalid_batch("the body must be multipart/mixed with a boundary")
    parts = envelope.get_payload()
    if not isinstance(parts, list) or not parts:
        raise invalid_batch("the batch has no parts")
    if len(parts) > MAX_PARTS:
        raise invalid_batch(f"a batch holds at most {MAX_PARTS} calls, not {len(parts)}")
    return [_call(part) for part in parts]


def _call(part: Message) -> BatchedCall:
    if part.get_content_type() != "application/http":
        raise invalid_batch("each part must be application/http")
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise invalid_batch("a part has no HTTP request")
    line, _, rest = raw.lstrip(b"\r\n").partition(b"\n")
    words = line.decode("latin-1").split()
    if len(words) not in (2, 3) or not words[1].startswith("/"):
        raise invalid_batch(f"not an HTTP request line: {line[:80]!r}")
    inner = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(rest)
    payload = inner.get_payload(decode=True)
    return BatchedCall(
        content_id=part.get("Content-ID"),
        method=words[0].upper(),
        target=words[1],
        headers=[(name, str(value)) for name, value in inner.items()],
        body=payload if isinstance(payload, bytes) else b"",
    )


def answer_call(call: BatchedCall, api_prefix: str) -> BatchedAnswer:
    """Run one call through the app as if it had come alone, from the batch's client."""
    target = urlsplit(call.target)
    if not target.path.startswith(api_prefix):
        return _answer(call, not_found().response())
    builder = EnvironBuilder(
        path=target.path,
        query_string=target.query,
        method=call.method,
        headers=[(k, v) for k, v in call.headers if not _dropped(k)],
        data=call.body,
        base_url=request.host_url,
        # Already resolved from the trusted proxies' headers for the batch itself.
        environ_overrides={"REMOTE_ADDR": request.remote_addr or ""},
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # The app itself, not its middleware (ProxyFix would read the call's own headers); a
    # fresh app context, so the call gets its own ``g`` (session, timings), torn down after.
    with app.app_context():
        body, status, headers = run_wsgi_app(
            partial(Flask.wsgi_app, app), builder.get_environ(), buffered=True
        )
        response = Response(b"".join(body), status=status, headers=headers)
    return _answer(call, response)


def _dropped(header: str) -> bool:
    name = header.lower()
    return name in _DROPPED_HEADERS or name.startswith("x-forwarded-")


def _answer(call: BatchedCall, response: Response) -> BatchedAnswer:
    kept = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "set-cookie")
    ]
    return BatchedAnswer(_response_id(call.content_id), response.status, kept, response.data)


def _response_id(content_id: str | None) -> str | None:
    """``<response-X>`` for a request's ``<X>``, as Google names each answer."""
    if content_id is None:
        return None
    inner = content_id.strip()
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    return f"<response-{inner}>"


def batch_response(answers: list[BatchedAnswer]) -> Response:
    """The ``multipart/mixed`` answer: one ``application/http`` part per call, in order."""
    boundary = f"batch_{secrets.token_urlsafe(18)}"
    chunks: list[bytes] = []
    for answer in answers:
        head = ["Content-Type: application/http"]
        if answer.content_id is not None:
            head.append(f"Content-ID: {answer.content_id}")
        inner = [f"HTTP/1.1 {answer.status}"]
        inner += [f"{name}: {value}" for name, value in answer.headers]
        inner.append(f"Content-Length: {len(answer.body)}")
        chunks.append(
            f"--{boundary}\r\n".encode()
            + "\r\n".join(head).encode()
            + b"\r\n\r\n"
            + "\r\n".join(inner).encode("latin-1")
            + b"\r\n\r\n"
            + answer.body
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(b"".join(chunks), content_type=f"multipart/mixed; boundary={boundary}")


def run_batch(api_prefix: str) -> Response:
    """Answer this request's batch, each call in turn."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type:
        return google_error(400, "Failed to parse batch request: no Content-Type")
    calls = parse_batch(content_type, request.get_data(cache=False))
    deadline = time.monotonic() + BATCH_DEADLINE_S
    answers = [
        answer_call(call, api_prefix)
        if time.monotonic() < deadline
        else _answer(call, unavailable().response())
        for call in calls
    ]
    return batch_response(answers)
