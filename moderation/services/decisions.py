"""Use cases of the workers: score pending comments, store decisions, re-send stale ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from moderation.db import unit_of_work, utcnow
from moderation.dsa.statements import record_automated
from moderation.models import Actor, AuditEvent, Comment, CommentScore, Site, Status
from moderation.ops.metrics import observe_decisions
from moderation.policy import (
    LANGUAGE_NOT_SUPPORTED,
    Decision,
    SitePolicy,
    decide,
    language_not_supported,
    scoring_failed,
)
from moderation.scoring import Scorer, model_thresholds
from moderation.scoring.language import Multilingual, detect_languages, scorer_for
from moderation.services.explanation import SentenceScores, held_by_score, score_sentences
from moderation.services.webhooks import COMMENT_DECIDED, emit_events


def pending_comments(
    session: Session, comment_ids: Sequence[int], *, lock: bool = False
) -> list[Comment]:
    """The comments among these ids that still wait for a decision.

    With ``lock``, PostgreSQL holds their rows until commit (SQLite's IMMEDIATE
    transaction already excludes other writers); rows another worker holds are waited
    for and then skipped if that worker decided them.
    """
    query = (
        select(Comment)
        .where(Comment.id.in_(comment_ids), Comment.status == Status.PENDING)
        .order_by(Comment.id)
    )
    if lock:
        query = query.with_for_update(of=Comment)
    return list(session.scalars(query))


def score_and_decide(
    sessions: sessionmaker[Session],
    comment_ids: Sequence[int],
    scorer: Scorer,
    *,
    multilingual: Multilingual | None = None,
    explain_later: Callable[[list[int]], None] | None = None,
) -> int:
    """Score the still-pending comments in one batch and store each decision; returns how many.

    Each comment's language is detected first. English or undetermined comments go to
    ``scorer``; a language ``multilingual`` covers goes to that model; any other is never
    decided on a score, but held (or published, where the site chose so) as
    ``language_not_supported``. Reading, scoring and writing are separate steps so that no
    transaction stays open through a forward pass; the write re-checks that each comment is
    still pending.

    The sentences of comments the scores hold explain the hold to a moderator. They are
    scored in one more batch before the write, or, with ``explain_later``, after it:
    ``explain_later`` gets the ids of those comments once their decisions are committed
    (``explain_held`` scores them), so no decision waits for an explanation.
    """
    with unit_of_work(sessions) as session:
        comments = pending_comments(session, comment_ids)
        languages = dict(
            zip([c.id for c in comments], detect_languages([c.text for c in comments]), strict=True)
        )
        routes = _routes(comments, languages, scorer, multilingual)
        batches = [_batch(session, group, model) for model, group in routes if model is not None]
        unsupported = [c.id for model, group in routes if model is None for c in group]
    if not comments:
        return 0
    scored = [
        (batch.scorer, *_score_batch(batch, explain=explain_later is None)) for batch in batches
    ]
    with unit_of_work(sessions) as session:
        decided = sum(
            store_decisions(session, scores, model, sentences, languages)
            for model, scores, sentences, _held in scored
        )
        decided += store_unsupported(session, {key: languages[key] for key in unsupported})
    held = [key for *_rest, held in scored for key in held]
    if explain_later is not None and held:
        explain_later(held)
    return decided


@dataclass(frozen=True)
class _Batch:
    """Comments one scorer scores together, with what their sites' policies need."""

    scorer: Scorer
    texts: dict[int, str]
    combinations: list[dict[str, Any] | None]
    deciders: dict[int, Callable[[dict[str, float]], Decision]]


def _routes(
    comments: Sequence[Comment],
    languages: Mapping[int, str | None],
    scorer: Scorer,
    multilingual: Multilingual | None,
) -> list[tuple[Scorer | None, list[Comment]]]:
    """The comments grouped by the scorer their language goes to (None: no model covers it)."""
    routes: dict[int, tuple[Scorer | None, list[Comment]]] = {}
    for comment in comments:
        model = scorer_for(languages[comment.id], scorer, multilingual)
        routes.setdefault(id(model), (model, []))[1].append(comment)
    return list(routes.values())


def _batch(session: Session, comments: Sequence[Comment], scorer: Scorer) -> _Batch:
    """The batch of these comments for this scorer: its recorded thresholds under each site."""
    policies = _policies(session, comments, model_thresholds(scorer))
    return _Batch(
        scorer,
        {comment.id: comment.text for comment in comments},
        [policies[comment.site_id].combination for comment in comments],
        _deciders(comments, policies),
    )


def _score_batch(
    batch: _Batch, *, explain: bool
) -> tuple[dict[int, dict[str, float]], dict[int, SentenceScores], list[int]]:
    """Each comment's scores, the ids of those the scores hold, and (with ``explain``) the
    sentence scores of those."""
    texts = list(batch.texts.values())
    scored = score_texts(batch.scorer, texts, batch.combinations)
    scores = dict(zip(batch.texts, scored, strict=True))
    held = [key for key, decider in batch.deciders.items() if held_by_score(decider(scores[key]))]
    if not explain:
        return scores, {}, held
    return scores, score_sentences(batch.scorer, {key: batch.texts[key] for key in held}), held


def explain_held(
    sessions: sessionmaker[Session],
    comment_ids: Sequence[int],
    scorer: Scorer,
    *,
    multilingual: Multilingual | None = None,
) -> int:
    """Score the sentences of these comments that are still held and not yet explained, with
    the model that scored each (by its language); returns how many were explained.

    A comment a moderator decided meanwhile is skipped; a failed scorer explains nothing.
    """
    with unit_of_work(sessions) as session:
        rows = session.execute(
            select(Comment.id, Comment.text, Comment.language, Comment.sentence_scores).where(
                Comment.id.in_(comment_ids), Comment.status == Status.HELD
            )
        ).all()
    groups: dict[int, tuple[Scorer, dict[int, str]]] = {}
    for comment_id, text, language, sentences in rows:
        model = scorer_for(language, scorer, multilingual)
        if sentences is None and model is not None:
            groups.setdefault(id(model), (model, {}))[1][comment_id] = text
    explained: dict[int, SentenceScores] = {}
    for model, texts in groups.values():
        explained |= score_sentences(model, texts)
    if not explained:
        return 0
    with unit_of_work(sessions) as session:
        still_held = session.scalars(
            select(Comment.id).where(Comment.id.in_(list(explained)), Comment.status == Status.HELD)
        ).all()
        if still_held:
            session.execute(
                update(Comment).execution_options(synchronize_session=False),
                [{"id": key, "sentence_scores": explained[key]} for key in still_held],
            )
    return len(still_held)


def score_texts(
    scorer: Scorer, texts: list[str], combinations: Sequence[dict[str, Any] | None]
) -> list[dict[str, float]]:
    """Label scores per text; a site's own combination of the signals where it has one."""
    if not any(combinations) or not hasattr(scorer, "score_signals"):
        return scorer.score_batch(texts)
    signals = scorer.score_signals(texts)
    return [scorer.combine(row, c) for row, c in zip(signals, combinations, strict=True)]


def _deciders(
    comments: Sequence[Comment], policies: Mapping[int, SitePolicy]
) -> dict[int, Callable[[dict[str, float]], Decision]]:
    """Each comment's policy as a function of its scores, to tell before the write which hold."""
    return {
        comment.id: partial(
            decide, policy=policies[comment.site_id], premoderate=comment.article.premoderate
        )
        for comment in comments
    }


def store_decisions(
    session: Session,
    scores_by_id: dict[int, dict[str, float]],
    scorer: Scorer,
    sentence_scores: Mapping[int, SentenceScores] | None = None,
    languages: Mapping[int, str | None] | None = None,
) -> int:
    """Apply each comment's site policy to its scores; store scores, decisions and audit rows.

    The still-pending rows are locked first, so the writes below cannot race another
    worker; they go to the database as a few multi-row statements, not one per comment.
    ``sentence_scores`` are kept for the comments whose scores hold them, and each
    comment's detected language from ``languages``.
    """
    sentence_scores = sentence_scores or {}
    languages = languages or {}
    comments = pending_comments(session, list(scores_by_id), lock=True)
    if not comments:
        return 0
    policies = _policies(session, comments, model_thresholds(scorer))
    now = utcnow()
    decided = []
    for comment in comments:
        scores = scores_by_id[comment.id]
        policy = policies[comment.site_id]
        decision = decide(scores, policy, premoderate=comment.article.premoderate)
        decided.append((comment, scores, decision))
    session.execute(
        update(Comment).execution_options(synchronize_session=False),
        [
            _decided_row(
                comment,
                scores,
                decision,
                now,
                sentence_scores.get(comment.id),
                languages.get(comment.id),
            )
            for comment, scores, decision in decided
        ],
    )
    session.execute(insert(CommentScore), _score_rows(decided, scorer, now))
    session.execute(insert(AuditEvent), [_audit_row(c, d, "scored", now) for c, _, d in decided])
    # The outbox rows join the decisions' transaction; their tasks are sent after commit.
    emit_events(session, [comment for comment, _, _ in decided], COMMENT_DECIDED)
    record_automated(session, [(comment, decision) for comment, _, decision in decided])
    observe_decisions(session, [(comment, decision) for comment, _, decision in decided])
    return len(decided)


def store_unsupported(session: Session, languages: Mapping[int, str]) -> int:
    """Decide comments in a language no loaded model covers, by their site's choice.

    No score is stored: the comment is held for a person, or published unscored where
    the site asked for that, with reason ``language_not_supported`` and an audit row.
    """
    comments = pending_comments(session, list(languages), lock=True)
    if not comments:
        return 0
    policies = _policies(session, comments)
    now = utcnow()
    decided = [
        (
            comment,
            language_not_supported(
                policies[comment.site_id],
                languages[comment.id],
                premoderate=comment.article.premoderate,
            ),
        )
        for comment in comments
    ]
    session.execute(
        update(Comment).execution_options(synchronize_session=False),
        [_decided_row(c, {}, d, now, None, languages[c.id]) for c, d in decided],
    )
    session.execute(
        insert(AuditEvent), [_audit_row(c, d, LANGUAGE_NOT_SUPPORTED, now) for c, d in decided]
    )
    emit_events(session, comments, COMMENT_DECIDED)
    observe_decisions(session, decided)
    return len(decided)


def _decided_row(
    comment: Comment,
    scores: dict[str, float],
    decision: Decision,
    now: datetime,
    sentence_scores: SentenceScores | None,
    language: str | None,
) -> dict[str, Any]:
    return {
        "id": comment.id,
        "status": decision.outcome,
        "reasons": [reason.as_dict() for reason in decision.reasons],
        "decided_at": now,
        "updated_at": now,
        "top_score": max(scores.values(), default=None),
        "sentence_scores": sentence_scores if held_by_score(decision) else None,
        "language": language,
    }


def _score_rows(
    decided: list[tuple[Comment, dict[str, float], Decision]], scorer: Scorer, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "comment_id": comment.id,
            "label": label,
            "score": float(score),
            "model_name": scorer.model_name,
            "model_version": scorer.model_version,
            "created_at": now,
        }
        for comment, scores, _ in decided
        for label, score in scores.items()
    ]


def _audit_row(
    comment: Comment, decision: Decision, reason: str, now: datetime, error: str | None = None
) -> dict[str, Any]:
    reasons = [reason_.as_dict() for reason_ in decision.reasons]
    return {
        "site_id": comment.site_id,
        "comment_id": comment.id,
        "actor_type": Actor.SYSTEM,
        "actor_id": None,
        "from_status": Status.PENDING,
        "to_status": decision.outcome,
        "reason": reason,
        "detail": {"reasons": reasons, **({"error": error[:500]} if error else {})},
        "created_at": now,
    }


def mark_scoring_failed(session: Session, comment_ids: Sequence[int], error: str) -> int:
    """Decide comments the workers gave up on: held (or published if the site fails open)."""
    comments = pending_comments(session, comment_ids)
    policies = _policies(session, comments)
    decided = []
    for comment in comments:
        decision = scoring_failed(policies[comment.site_id])
        if transition(session, comment, decision, reason="scoring_failed", error=error):
            decided.append((comment, decision))
    session.flush()
    observe_decisions(session, decided)
    return len(decided)


def transition(
    session: Session, comment: Comment, decision: Decision, *, reason: str, error: str | None = None
) -> bool:
    """Move a pending comment to its decision with an audit row; False if another got there first.

    The UPDATE only matches while the row is still pending, so two workers deciding the
    same comment (a redelivered task, a sweeper re-send) store exactly one decision.
    """
    now = utcnow()
    reasons = [reason_.as_dict() for reason_ in decision.reasons]
    matched = session.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.status == Status.PENDING)
        .values(status=decision.outcome, reasons=reasons, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not matched:
        return False
    session.execute(insert(AuditEvent), [_audit_row(comment, decision, reason, now, error)])
    emit_events(session, [comment], COMMENT_DECIDED)
    record_automated(session, [(comment, decision)])
    for key, value in {"status": decision.outcome, "reasons": reasons, "decided_at": now}.items():
        set_committed_value(comment, key, value)
    return True


def _policies(
    session: Session, comments: Sequence[Comment], model_hold_at: Mapping[str, float] | None = None
) -> dict[int, SitePolicy]:
    """Each site's policy in force: its own bands over the model's recorded thresholds."""
    site_ids = {comment.site_id for comment in comments}
    sites = session.scalars(select(Site).where(Site.id.in_(site_ids)))
    return {site.id: SitePolicy.from_stored(site.policy).in_force(model_hold_at) for site in sites}


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
