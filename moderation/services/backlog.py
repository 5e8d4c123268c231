"""How far behind the workers are: comments still waiting for a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.models import Comment, Status


@dataclass(frozen=True)
class Backlog:
    """Pending comments and the oldest one's submit time."""

    pending: int
    oldest_at: datetime | None

    def oldest_age(self, now: datetime | None = None) -> float:
        """Seconds the oldest pending comment has waited; 0 when nothing is pending."""
        if self.oldest_at is None:
            return 0.0
        return max(0.0, ((now or utcnow()) - self.oldest_at).total_seconds())


def pending_backlog(session: Session) -> Backlog:
    """Count pending comments; both reads use the (status, created_at) index."""
    pending = session.scalar(select(func.count()).where(Comment.status == Status.PENDING))
    oldest = session.scalar(
        select(Comment.created_at)
        .where(Comment.status == Status.PENDING)
        .order_by(Comment.created_at)
        .limit(1)
    )
    return Backlog(pending=pending or 0, oldest_at=oldest)
