"""Self-hosted comment moderation: the Flask app and the domain it serves."""

from moderation.app import create_app

__all__ = ["create_app"]
