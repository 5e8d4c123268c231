"""Resetting a process-wide object's state in the child after a fork."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def reset_after_fork(reset: Callable[[], object]) -> None:
    """Call the bound method ``reset`` in every child forked from now on, while its object lives.

    What a parent gathered before a fork is the parent's to handle, and a lock one of its
    threads held must not stay taken in the child. Only a weak reference is registered:
    ``os.register_at_fork`` cannot unregister, and a strong one would keep the object alive
    for as long as the process.
    """
    method = weakref.WeakMethod(reset)

    def in_child() -> None:
        if (bound := method()) is not None:
            bound()

    os.register_at_fork(after_in_child=in_child)
