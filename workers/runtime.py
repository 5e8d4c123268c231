"""Per-process state of a worker: the database engine and the lazily loaded model."""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from moderation.config import Settings, load_settings
from moderation.db import make_engine, make_session_factory
from moderation.scoring import Scorer, scorer_from_settings


class WorkerRuntime:
    """Holds what a worker process builds once and reuses across tasks."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._scorer: Scorer | None = None
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

    def torch_threads(self) -> int:
        """Threads per process so that processes x threads never exceeds the cores."""
        if self.settings.model_threads is not None:
            return self.settings.model_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.pool_size))

    def after_fork(self) -> None:
        """Drop connections inherited from the parent without closing them under it."""
        if self._engine is not None:
            self._engine.dispose(close=False)


runtime = WorkerRuntime(load_settings())
