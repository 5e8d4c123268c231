"""Skip an outside service for a while after it failed, instead of making every caller wait."""

from __future__ import annotations

import time


class Backoff:
    """After ``failed()``, ``waiting`` is True for ``seconds``: callers skip the service.

    Used where a caller can do without the service for now (the comment is committed and
    the sweeper re-sends it; a counter is best effort): one failure costs one timeout, not
    one per request.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._until = 0.0

    @property
    def waiting(self) -> bool:
        """True while the last failure is recent."""
        return time.monotonic() < self._until

    def failed(self) -> None:
        """The service just failed: skip it for ``seconds``."""
        self._until = time.monotonic() + self.seconds
