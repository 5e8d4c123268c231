"""Self-hosted comment moderation: the Flask app and the domain it serves.

The domain (services, scoring, policy, ops records) imports no Flask, so the workers and the
command line never load it; ``create_app`` imports the web side when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from moderation.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app: the API, the widget, the workspace, ops and the compatible endpoints."""
    from moderation.app import create_app as build

    return build(settings)
