"""Toxicity scoring behind one small interface; the real scorer wraps Detoxify.

Importing this package never imports torch: the web process must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from moderation.config import Settings


class Scorer(Protocol):
    """Scores many texts at once, one ``{label: probability}`` dict per text."""

    model_name: str
    model_version: str

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """Score every text; the result is in input order."""
        ...


def scorer_from_settings(settings: Settings, threads: int | None = None) -> Scorer:
    """The scorer the settings describe; the model loads on first use."""
    quantize = None if settings.model_quantize == "none" else settings.model_quantize
    return scorer_for_model(
        settings.model, quantize=quantize, num_threads=threads or settings.model_threads
    )


def scorer_for_model(
    model: str, *, quantize: str | None = None, num_threads: int | None = None
) -> Scorer:
    """Detoxify on a hub name or a built directory, blended as its ``meta.json`` asks."""
    from moderation.scoring.blended import BlendedScorer, blend_weight
    from moderation.scoring.detoxify_scorer import DetoxifyScorer, model_meta

    scorer = DetoxifyScorer(model, quantize=quantize, num_threads=num_threads)
    weight = blend_weight(model_meta(model))
    return scorer if weight is None else BlendedScorer(scorer, weight)
