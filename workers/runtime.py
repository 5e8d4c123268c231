"""Per-process state of a worker: the database engine and the lazily loaded model."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from moderation.config import Settings, load_settings
from moderation.db import make_engine, make_session_factory
from moderation.scoring import Scorer, describe_model, scorer_for_model, scorer_from_settings
from moderation.scoring.language import Multilingual, multilingual_coverage

log = logging.getLogger(__name__)

# Scored once per pool process before it counts as ready: a short and a long text, so that
# the first real batch of either kind meets no lazy loading.
WARM_UP_BATCH = (
    "Thanks for the article.",
    "I read the whole piece twice and I still think the council should publish the figures "
    "before the vote, so that everyone can judge the plan on the numbers.",
)


class WorkerRuntime:
    """Holds what a worker process builds once and reuses across tasks."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._scorer: Scorer | None = None
        self._multilingual: Multilingual | None = None
        self.pool_size = 1

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory bound to this process's engine."""
        if self._sessions is None:
            self._engine = make_engine(self.settings.database_url)
            self._sessions = make_session_factory(self._engine)
        return self._sessions

    @property
    def scorer(self) -> Scorer:
        """The scorer; the model itself loads on the first batch, in the child process."""
        if self._scorer is None:
            self._scorer = scorer_from_settings(self.settings, threads=self.torch_threads())
        return self._scorer

    @property
    def multilingual(self) -> Multilingual | None:
        """The scorer for other languages than English, if one is set; it loads like the
        main one, on its first batch. Detoxify's ``multilingual`` as the main model is its
        own multilingual scorer."""
        if self._multilingual is None and multilingual_coverage(self.settings):
            model = self.settings.model_multilingual
            scorer = self.scorer if model is None else self._scorer_for(model)
            self._multilingual = Multilingual(scorer, multilingual_coverage(self.settings))
        return self._multilingual

    def _scorer_for(self, model: str) -> Scorer:
        quantize = None if self.settings.model_quantize == "none" else self.settings.model_quantize
        return scorer_for_model(
            model,
            quantize=quantize,
            num_threads=self.torch_threads(),
            device=self.settings.model_device,
        )

    def check_model(self) -> dict[str, object]:
        """Refuse to start with a model whose files are missing or wrong; describe it.

        Runs in the worker's main process before the pool forks, and imports no torch: a
        broken signal stops the worker with its name instead of holding every comment.
        """
        scorers = [self.scorer] + ([self.multilingual.scorer] if self.multilingual else [])
        try:
            for scorer in scorers:
                check = getattr(scorer, "check", None)
                if check is not None:
                    check()
        except (OSError, RuntimeError, ValueError) as exc:
            log.critical("the model cannot be used: %s", exc)
            raise SystemExit(f"worker not started: the model cannot be used: {exc}") from None
        card = describe_model(self.scorer)
        log.info(
            "scoring with %s %s; hold thresholds %s (%s); recorded quality %s",
            card["name"],
            card["version"],
            card["thresholds"] or "built-in fallback",
            card["thresholds_source"] or "the model records none",
            card["quality"] or "not recorded",
        )
        if self.multilingual is not None:
            log.info(
                "comments in %s scored with %s; other languages follow each site's choice",
                ", ".join(sorted(self.multilingual.languages)),
                self.multilingual.scorer.model_name,
            )
        return card

    def torch_threads(self) -> int:
        """Threads per process so that processes x threads never exceeds the cores."""
        if self.settings.model_threads is not None:
            return self.settings.model_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.pool_size))

    def warm_up_in_background(self, on_ready: Callable[[Scorer], object] | None = None) -> None:
        """Load the model and score a warm-up batch in a thread, then call ``on_ready``.

        Not in the pool process's start-up itself: Celery gives a new child a few seconds
        to report, and loading takes longer on a busy machine. A task that arrives first
        waits for the same load (the scorer loads once, under a lock). Only a batch that
        scored proves the model usable and every lazy part of it loaded, so readiness
        waits for one.
        """
        threading.Thread(
            target=self._warm_up, args=(on_ready,), name="model-warm-up", daemon=True
        ).start()

    def _warm_up(self, on_ready: Callable[[Scorer], object] | None) -> None:
        scorers = [self.scorer] + ([self.multilingual.scorer] if self.multilingual else [])
        try:
            for scorer in scorers:
                warm = getattr(scorer, "warm_up", None)
                if warm is not None:
                    warm()
                scorer.score_batch(list(WARM_UP_BATCH))
        except Exception as exc:  # the first real batch fails the same way, where it is handled
            log.error("the model did not score its warm-up batch: %r", exc)
            return
        if on_ready is not None:
            on_ready(self.scorer)

    def after_fork(self) -> None:
        """Drop connections inherited from the parent without closing them under it."""
        if self._engine is not None:
            self._engine.dispose(close=False)


runtime = WorkerRuntime(load_settings())
