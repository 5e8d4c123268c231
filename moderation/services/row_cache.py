"""Short-lived, process-local copies of rows that every comment reads: sites and articles.

A hit costs no query: a copy of the cached columns is merged into the caller's session
without loading (``merge(load=False)``), so relationships and later changes behave as for a
row the session read itself. Any flush in this process that changes a row of a cached model
clears that model's cache (again at commit, so that a read between flush and commit cannot
put the old row back); other processes see the change when their copy expires
(``ttl`` seconds).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from cachetools import TTLCache
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

Row = TypeVar("Row")

_CHANGED = "moderation.row_cache.changed"
_caches: list[RowCache[Any]] = []


class RowCache(Generic[Row]):
    """Copies of one model's rows by a key of the caller's choosing, for ``ttl`` seconds."""

    def __init__(self, model: type[Row], ttl: float, maxsize: int = 4096):
        self.model = model
        self._columns = [attr.key for attr in inspect(model).column_attrs]
        self._rows: TTLCache[Hashable, dict[str, Any]] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, session: Session, key: Hashable) -> Row | None:
        """The copy under ``key``, in ``session``; None when there is none (no query)."""
        with self._lock:
            values = self._rows.get(key)
        return None if values is None else self._attach(session, values)

    def put(self, key: Hashable, row: Row) -> None:
        """Keep a copy of a row that is committed (a row only this transaction wrote is not)."""
        values = {name: getattr(row, name) for name in self._columns}
        with self._lock:
            self._rows[key] = values

    def clear(self) -> None:
        """Forget every row (a row of this model changed)."""
        with self._lock:
            self._rows.clear()

    def _attach(self, session: Session, values: dict[str, Any]) -> Row:
        # A JSON column's dict or list is copied, so a caller's change stays its own.
        row = self.model(**{name: _own(value) for name, value in values.items()})
        make_transient_to_detached(row)
        return session.merge(row, load=False)


def _own(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


@event.listens_for(Session, "after_flush")
def _changed_rows(session: Session, _context: object) -> None:
    touched = [*session.new, *session.deleted]
    touched += [row for row in session.dirty if session.is_modified(row)]
    for cache in _caches:
        if any(isinstance(row, cache.model) for row in touched):
            cache.clear()
            session.info.setdefault(_CHANGED, set()).add(id(cache))


@event.listens_for(Session, "do_orm_execute")
def _bulk_change(state: Any) -> None:
    # ``session.execute(update(Article)...)`` changes rows without a flush.
    if not (state.is_update or state.is_delete):
        return
    mappers = state.all_mappers
    for cache in _caches:
        if any(mapper.class_ is cache.model for mapper in mappers):
            cache.clear()
            state.session.info.setdefault(_CHANGED, set()).add(id(cache))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    _clear_changed(session)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous: object) -> None:
    # A copy taken after the flush may hold a row the rollback undid.
    _clear_changed(session)


def _clear_changed(session: Session) -> None:
    changed = session.info.pop(_CHANGED, set())
    for cache in _caches:
        if id(cache) in changed:
            cache.clear()
