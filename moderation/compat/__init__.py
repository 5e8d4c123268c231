"""APIs that answer the requests sites already send elsewhere: Perspective, Coral, OpenAI.

Each protocol is a blueprint of its own, at the paths its clients expect. They answer
synchronously, but scoring still happens in the workers (``TaskQueue.score_now``).
"""

from __future__ import annotations

from flask import Flask

from moderation.api.public import limit_sync_per_site_key
from moderation.compat import coral, openai_moderations, perspective

PROTOCOLS = (perspective, coral, openai_moderations)

# Once per process, not per app: a blueprint keeps every limit it is given. Each request
# jumps the backlog of posted comments, so these have a limit of their own.
for _protocol in PROTOCOLS:
    limit_sync_per_site_key(_protocol.blueprint)


def init_compat(app: Flask) -> None:
    """Register every compatible API on the app."""
    # Each blueprint also registers, once per app, the error shape of its protocol.
    for protocol in PROTOCOLS:
        app.register_blueprint(protocol.blueprint)
