"""Use cases of the workers: score pending comments, store decisions, re-send stale ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from moderation.db import unit_of_work, utcnow
from moderation.models import Actor, AuditEvent, Comment, CommentScore, Site, Status
from moderation.policy import Decision, SitePolicy, decide, scoring_failed
from moderation.scoring import Scorer


def pending_comments(session: Session, comment_ids: Sequence[int]) -> list[Comment]:
    """The comments among these ids that still wait for a decision."""
    query = (
        select(Comment)
        .where(Comment.id.in_(comment_ids), Comment.status == Status.PENDING)
        .order_by(Comment.id)
    )
    return list(session.scalars(query))


def score_and_decide(
    sessions: sessionmaker[Session], comment_ids: Sequence[int], scorer: Scorer
) -> int:
    """Score the still-pending comments in one batch and store each decision; returns how many.

    Reading, scoring and writing are separate steps so that no transaction stays open
    through the forward pass; the write re-checks that each comment is still pending.
    """
    with unit_of_work(sessions) as session:
        pending = {comment.id: comment.text for comment in pending_comments(session, comment_ids)}
    if not pending:
        return 0
    scores = scorer.score_batch(list(pending.values()))
    with unit_of_work(sessions) as session:
        return store_decisions(session, dict(zip(pending, scores, strict=True)), scorer)


def store_decisions(
    session: Session, scores_by_id: dict[int, dict[str, float]], scorer: Scorer
) -> int:
    """Apply each comment's site policy to its scores and store scores, decision and audit."""
    comments = pending_comments(session, list(scores_by_id))
    policies = _policies(session, comments)
    decided = 0
    for comment in comments:
        scores = scores_by_id[comment.id]
        decision = decide(
            scores, policies[comment.site_id], premoderate=comment.article.premoderate
        )
        top_score = max(scores.values(), default=None)
        if transition(session, comment, decision, reason="scored", top_score=top_score):
            _store_scores(session, comment, scores, scorer)
            decided += 1
    session.flush()
    return decided


def mark_scoring_failed(session: Session, comment_ids: Sequence[int], error: str) -> int:
    """Decide comments the workers gave up on: held (or published if the site fails open)."""
    comments = pending_comments(session, comment_ids)
    policies = _policies(session, comments)
    decided = 0
    for comment in comments:
        decision = scoring_failed(policies[comment.site_id])
        decided += transition(session, comment, decision, reason="scoring_failed", error=error)
    session.flush()
    return decided


def transition(
    session: Session,
    comment: Comment,
    decision: Decision,
    *,
    reason: str,
    error: str | None = None,
    top_score: float | None = None,
) -> bool:
    """Move a pending comment to its decision with an audit row; False if another got there first.

    The UPDATE only matches while the row is still pending, so two workers scoring the
    same comment (a redelivered task, a sweeper re-send) store exactly one decision.
    """
    now = utcnow()
    reasons = [reason_.as_dict() for reason_ in decision.reasons]
    matched = session.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.status == Status.PENDING)
        .values(
            status=decision.outcome,
            reasons=reasons,
            decided_at=now,
            updated_at=now,
            top_score=top_score,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not matched:
        return False
    session.add(
        AuditEvent(
            site_id=comment.site_id,
            comment_id=comment.id,
            actor_type=Actor.SYSTEM,
            actor_id=None,
            from_status=Status.PENDING,
            to_status=decision.outcome,
            reason=reason,
            detail={"reasons": reasons, **({"error": error[:500]} if error else {})},
            created_at=now,
        )
    )
    stored = {"status": decision.outcome, "reasons": reasons, "decided_at": now}
    for key, value in {**stored, "updated_at": now, "top_score": top_score}.items():
        set_committed_value(comment, key, value)
    return True


def _store_scores(
    session: Session, comment: Comment, scores: dict[str, float], scorer: Scorer
) -> None:
    for label, score in scores.items():
        session.add(
            CommentScore(
                comment_id=comment.id,
                label=label,
                score=float(score),
                model_name=scorer.model_name,
                model_version=scorer.model_version,
            )
        )


def _policies(session: Session, comments: Sequence[Comment]) -> dict[int, SitePolicy]:
    site_ids = {comment.site_id for comment in comments}
    sites = session.scalars(select(Site).where(Site.id.in_(site_ids)))
    return {site.id: SitePolicy.from_stored(site.policy) for site in sites}


def stale_pending_ids(session: Session, older_than: timedelta, limit: int = 5000) -> list[int]:
    """Pending comments nobody has decided for a while, marked as re-sent now.

    Covers a broker that was down when the API committed, and tasks lost with Redis.
    """
    cutoff: datetime = utcnow() - older_than
    query = (
        select(Comment.id)
        .where(
            Comment.status == Status.PENDING,
            Comment.created_at < cutoff,
            (Comment.resent_at.is_(None)) | (Comment.resent_at < cutoff),
        )
        .order_by(Comment.id)
        .limit(limit)
    )
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(Comment)
            .where(Comment.id.in_(ids))
            .values(resent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return ids
