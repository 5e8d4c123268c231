"""The naive peer: one Celery task per comment calling stock ``Detoxify.predict(text)``.

Default concurrency and default torch threads, the model loaded once per process. Each
finished task increments a Redis counter so the benchmark can time the backlog.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis
from celery import Celery

BROKER_URL = os.environ["BENCH_NAIVE_BROKER_URL"]
MODEL_DIR = Path(os.environ["BENCH_NAIVE_MODEL"])
COUNTER = os.environ["BENCH_NAIVE_COUNTER"]

app = Celery("naive", broker=BROKER_URL)
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
_model = None


def _detoxify():
    global _model
    if _model is None:
        from detoxify import Detoxify

        from moderation.scoring.detoxify_scorer import _relocated_checkpoint

        _model = Detoxify(
            checkpoint=_relocated_checkpoint(MODEL_DIR),
            huggingface_config_path=str(MODEL_DIR / "hf"),
            device="cpu",
        )
    return _model


@app.task(name="bench.naive_score")
def naive_score(text: str) -> None:
    """Score one comment the obvious way."""
    _detoxify().predict(text)
    redis.Redis.from_url(BROKER_URL).incr(COUNTER)
