"""Which sentences of a held comment drove the hold: scored at decision time, shown on its card.

The whole comment is what the policy decides on; each sentence of a comment the model held
is scored once more on its own, so a moderator sees at a glance which part crossed a
threshold. The extra scoring is kept cheap (held comments only, at most ``MAX_SENTENCES``
each, one batch) and optional: if it fails, the decision is stored without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moderation.models import Status
from moderation.policy import Decision, SitePolicy, hold_thresholds
from moderation.scoring import Scorer
from moderation.scoring.sentences import MAX_SENTENCES, Span, split_sentences

log = logging.getLogger(__name__)

SentenceScores = list[dict[str, Any]]


def held_by_score(decision: Decision) -> bool:
    """Whether the model's scores (not only pre-moderation or a failure) held the comment."""
    return decision.outcome == Status.HELD and any(
        reason.code == "hold_threshold" for reason in decision.reasons
    )


def score_sentences(scorer: Scorer, texts: Mapping[int, str]) -> dict[int, SentenceScores]:
    """Each text's sentences with their scores, from one batch; texts of one sentence are skipped.

    Answers ``{}`` when the scorer fails: an explanation never costs a comment its decision.
    """
    spans = {key: split_sentences(text)[:MAX_SENTENCES] for key, text in texts.items()}
    spans = {key: found for key, found in spans.items() if len(found) > 1}
    if not spans:
        return {}
    sentences = [span.of(texts[key]) for key, found in spans.items() for span in found]
    try:
        scores = iter(scorer.score_batch(sentences))
        return {
            key: [_scored(span, next(scores)) for span in found] for key, found in spans.items()
        }
    except Exception:
        log.warning("sentence scoring failed; decisions are stored without it", exc_info=True)
        return {}


def _scored(span: Span, scores: Mapping[str, float]) -> dict[str, Any]:
    rounded = {label: round(float(score), 4) for label, score in scores.items()}
    return {"begin": span.begin, "end": span.end, "scores": rounded}


@dataclass(frozen=True)
class Segment:
    """A run of a comment's text; ``driver`` (e.g. ``insult 0.91``) when it drove the hold."""

    text: str
    driver: str | None = None


def segments(
    text: str, sentence_scores: SentenceScores | None, policy: SitePolicy
) -> list[Segment]:
    """The whole text as segments, the sentences reaching a hold threshold marked as drivers.

    Stored spans that do not fit the text (overlapping, out of range) are ignored.
    """
    parts: list[Segment] = []
    at = 0
    fitting = [sentence for sentence in sentence_scores or [] if _fits(sentence, len(text))]
    for sentence in sorted(fitting, key=lambda sentence: sentence["begin"]):
        begin, end = sentence["begin"], sentence["end"]
        driver = _driver(sentence.get("scores") or {}, policy)
        if driver is None or begin < at:
            continue
        parts += [Segment(text[at:begin])] if begin > at else []
        parts.append(Segment(text[begin:end], driver))
        at = end
    return [*parts, Segment(text[at:])] if at < len(text) else parts


def _fits(sentence: Any, length: int) -> bool:
    begin, end = (
        (sentence.get("begin"), sentence.get("end")) if isinstance(sentence, dict) else (0, 0)
    )
    return isinstance(begin, int) and isinstance(end, int) and 0 <= begin < end <= length


def _driver(scores: Mapping[str, float], policy: SitePolicy) -> str | None:
    """The labels whose hold threshold these scores reach, highest first; None when none does."""
    crossed = []
    for label, threshold in hold_thresholds(policy).items():
        score = scores.get(label)
        if isinstance(score, int | float) and score >= threshold:
            crossed.append((score, label))
    crossed.sort(key=lambda pair: -pair[0])
    return ", ".join(f"{label} {score:.2f}" for score, label in crossed) or None
