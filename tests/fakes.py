"""A stand-in scorer for unit tests of decision logic (the real one is tested end to end)."""

from __future__ import annotations

from moderation.policy import LABELS


class KeywordScorer:
    """Scores 0.97 on every label for texts containing 'idiot', 0.01 otherwise."""

    model_name = "keyword-fake"
    model_version = "1"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        self.batches.append(list(texts))
        return [dict.fromkeys(LABELS, 0.97 if "idiot" in text.lower() else 0.01) for text in texts]


class BrokenScorer:
    """A scorer whose model cannot be loaded."""

    model_name = "broken"
    model_version = "0"

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        raise RuntimeError("model file is missing")
