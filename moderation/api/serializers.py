"""The JSON shapes the API answers with."""

from __future__ import annotations

from typing import Any

from moderation.models import Comment


def comment_summary(comment: Comment) -> dict[str, Any]:
    """What a site may show: no scores, no reasons."""
    return {
        "id": comment.public_id,
        "status": comment.status,
        "article_id": comment.article.external_id,
        "parent_id": comment.parent.public_id if comment.parent else None,
        "author_id": comment.author_id,
        "author_name": comment.author_name,
        "text": comment.text,
        "created_at": comment.created_at.isoformat(),
    }


def comment_detail(comment: Comment) -> dict[str, Any]:
    """Everything a site may know about its own comment, including why it was decided."""
    scores = {score.label: score.score for score in comment.scores}
    model = (
        {"name": comment.scores[0].model_name, "version": comment.scores[0].model_version}
        if comment.scores
        else None
    )
    decision = (
        {"outcome": comment.status, "reasons": comment.reasons or []}
        if comment.decided_at is not None
        else None
    )
    return {
        **comment_summary(comment),
        "decided_at": comment.decided_at.isoformat() if comment.decided_at else None,
        "decision": decision,
        "scores": scores,
        "model": model,
    }
