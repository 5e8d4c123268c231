"""The real worker app, with its scoring announced and the first batch held up.

``celery -A tests.faults.slow_worker worker`` runs ``workers.app`` unchanged except that its
scorer appends one JSON line to ``FAULTS_SCORING_LOG`` when a pool process's model has loaded
(``{"pid", "warm": true}``) and when a process starts scoring comments (``{"pid", "texts"}``;
not the warm-up batch), and the first ``score_batch`` of comments of all, in whichever
process, then sleeps ``FAULTS_SCORING_DELAY`` seconds: one batch a test can catch in flight,
and no other slowed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import workers.runtime
from workers.app import app

__all__ = ["app"]


class AnnouncedSlowScorer:
    """Wraps the real scorer: announces, holds up the first batch, passes the rest through."""

    def __init__(self, inner: Any, delay: float, log: Path):
        self.inner, self.delay, self.log = inner, delay, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def warm_up(self) -> None:
        """Load the model, then say so."""
        self.inner.warm_up()
        self._announce(warm=True)

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """Say which process scores which texts, wait if it is the first call, then score.

        The warm-up batch a pool process scores before it counts as ready is no comment
        batch: it passes through unannounced and unslowed."""
        if list(texts) == list(workers.runtime.WARM_UP_BATCH):
            return self.inner.score_batch(texts)
        first = not any("texts" in json.loads(line) for line in self._lines())
        self._announce(texts=texts)
        if first:
            time.sleep(self.delay)
        return self.inner.score_batch(texts)

    def _lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def _announce(self, **fields: Any) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"pid": os.getpid(), **fields}) + "\n")


def _slowed(real):
    def make(*args: Any, **kwargs: Any) -> AnnouncedSlowScorer:
        delay = float(os.environ["FAULTS_SCORING_DELAY"])
        log = Path(os.environ["FAULTS_SCORING_LOG"])
        return AnnouncedSlowScorer(real(*args, **kwargs), delay, log)

    return make


workers.runtime.scorer_from_settings = _slowed(workers.runtime.scorer_from_settings)
