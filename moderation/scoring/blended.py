"""A model's toxicity blended with a word-level linear model (``alt-profanity-check``).

The two err differently: the fine-tuned encoder reads context but has seen few news-site
comments; the linear model was trained on some 200k labelled comments of many sources and
catches abusive vocabulary in any register. A build records the weight it chose on its own
held-out rows in ``meta.json`` (``blend``); the scorer applies it to ``toxicity`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moderation.scoring import Scorer

LEXICAL_MODEL = "alt-profanity-check"
BLENDED_LABEL = "toxicity"


def lexical_toxicity(texts: Sequence[str]) -> list[float]:
    """The linear model's probability that each text is offensive (about 20 µs a text)."""
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob(list(texts))]


def blend(model_score: float, lexical_score: float, weight: float) -> float:
    """The weighted mean the scorer reports: ``weight`` is the lexical model's share."""
    return (1.0 - weight) * model_score + weight * lexical_score


class BlendedScorer:
    """Wraps a scorer; its ``toxicity`` becomes the blend, every other label is unchanged."""

    def __init__(self, inner: Scorer, weight: float):
        if not 0.0 <= weight <= 1.0:
            raise ValueError("the blend weight must be between 0 and 1")
        self.inner = inner
        self.weight = weight

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def model_version(self) -> str:
        return f"{self.inner.model_version}+{LEXICAL_MODEL}@{self.weight:g}"

    def __getattr__(self, name: str) -> Any:
        # labels, warm_up and the like belong to the wrapped scorer.
        return getattr(self.inner, name)

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        scores = self.inner.score_batch(texts)
        if not texts:
            return scores
        for row, lexical in zip(scores, lexical_toxicity(texts), strict=True):
            if BLENDED_LABEL in row:
                row[BLENDED_LABEL] = blend(row[BLENDED_LABEL], lexical, self.weight)
        return scores


def blend_weight(meta: dict[str, Any]) -> float | None:
    """The weight a model's ``meta.json`` asks for, or None for no blend."""
    entry = meta.get("blend")
    if not isinstance(entry, dict) or entry.get("with") != LEXICAL_MODEL:
        return None
    weight = entry.get("weight")
    if not isinstance(weight, int | float) or not 0 < weight <= 1:
        return None
    return float(weight)
