"""Headers every response carries, so no page can be sniffed, framed or fed outside scripts."""

from __future__ import annotations

from flask import Blueprint, Flask, Response

# Pages that set their own policy (the workspace, the ops page) keep it; this is the floor.
DEFAULT_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_security_headers(app: Flask) -> None:
    """Add nosniff, frame protection and a strict Content-Security-Policy to responses."""

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", DEFAULT_PAGE_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response


def private_pages(blueprint: Blueprint) -> None:
    """Pages behind a sign-in (the workspace, the ops page): never cached, no referrer abroad."""

    @blueprint.after_request
    def _private(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
