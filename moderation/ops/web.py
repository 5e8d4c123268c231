"""The ops side of the web app: its Redis store, each request's metrics recorder, /metrics."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from moderation.app_state import app_state
from moderation.bearer import bearer_key
from moderation.config import Settings
from moderation.ops.metrics import (
    GatheringRecorder,
    ScrapeCollector,
    reset_recorder,
    use_recorder,
)
from moderation.ops.store import OpsStore

STORE_KEY = "moderation.ops.store"
RECORDER_KEY = "moderation.ops.recorder"

metrics = Blueprint("metrics", __name__)


def init_app(app: Flask, settings: Settings) -> None:
    """Give this app its store and recorder (connecting to nothing yet) and /metrics."""
    store = OpsStore.from_settings(settings)
    recorder = GatheringRecorder(store)
    app.extensions[STORE_KEY] = store
    app.extensions[RECORDER_KEY] = recorder

    @app.before_request
    def _bind_recorder() -> None:
        g.metrics_token = use_recorder(recorder)

    @app.teardown_request
    def _unbind_recorder(_exc: BaseException | None = None) -> None:
        token = g.pop("metrics_token", None)
        if token is not None:
            reset_recorder(token)

    app.register_blueprint(metrics)


def ops_store() -> OpsStore:
    """The current app's store."""
    return current_app.extensions[STORE_KEY]


@metrics.get("/metrics")
def metrics_view() -> Response:
    """Prometheus text exposition behind ``MODERATION_METRICS_TOKEN``.

    The metrics name every site; production without a token serves none of them.
    """
    state = app_state()
    token = state.settings.metrics_token
    if not token and state.settings.env == "production":
        message = "set MODERATION_METRICS_TOKEN to scrape /metrics in production\n"
        return Response(message, status=403, mimetype="text/plain")
    if token and not hmac.compare_digest(bearer_key() or "", token):
        return Response("unauthorized\n", status=401, mimetype="text/plain")
    # This process's own increments are current; the other web processes' are written
    # within GatheringRecorder's interval.
    current_app.extensions[RECORDER_KEY].flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(state.settings, ops_store(), state.engine))
    # Text format or OpenMetrics, as the scraper's Accept header asks, like the library's own app.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(registry), content_type=content_type)
