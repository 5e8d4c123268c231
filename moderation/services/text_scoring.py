"""Scoring texts on request, for the compatible APIs: nothing is stored, the caller waits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moderation.scoring import Scorer, model_thresholds
from moderation.scoring.sentences import MAX_SENTENCES, split_sentences

# Bounds the work one request can ask of a worker.
MAX_TEXTS = 32


def scores_for_texts(
    scorer: Scorer, texts: Sequence[str], *, spans: bool = False
) -> dict[str, Any]:
    """Scores of each text, and with ``spans`` of each of its sentences, in one forward pass.

    The answer is JSON-ready and has the fields of ``tasks_client.TextScores``. A text of a
    single sentence gets that one span with the text's own scores, so nothing is scored twice.
    """
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"at most {MAX_TEXTS} texts per request")
    batch = list(texts)
    sentences: list[list[tuple[int, int, int | None]]] = []
    for text in texts:
        found = split_sentences(text)[:MAX_SENTENCES] if spans else []
        rows = []
        for span in found:
            if len(found) == 1:
                rows.append((span.begin, span.end, None))
            else:
                rows.append((span.begin, span.end, len(batch)))
                batch.append(text[span.begin : span.end])
        sentences.append(rows)
    scored = scorer.score_batch(batch)
    answer: dict[str, Any] = {
        "model_name": scorer.model_name,
        "model_version": scorer.model_version,
        "scores": scored[: len(texts)],
        "spans": None,
        "thresholds": model_thresholds(scorer),
    }
    if spans:
        answer["spans"] = [
            [
                {"begin": begin, "end": end, "scores": scored[i if at is None else at]}
                for begin, end, at in rows
            ]
            for i, rows in enumerate(sentences)
        ]
    return answer
