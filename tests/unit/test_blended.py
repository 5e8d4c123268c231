"""Blending a model's toxicity with the word-level model: the arithmetic and the weight choice."""

from __future__ import annotations

import pytest

from moderation.scoring import blended
from moderation.scoring.blended import BlendedScorer, blend, blend_weight
from moderation.scoring.model_build import choose_blend
from moderation.scoring.training_data import LabelledComment


class FixedScorer:
    model_name = "fixed"
    model_version = "1"

    def __init__(self, toxicity: float):
        self.toxicity = toxicity

    def score_batch(self, texts):
        return [{"toxicity": self.toxicity, "insult": 0.3} for _ in texts]


def test_only_toxicity_is_blended_and_the_version_says_so(monkeypatch):
    monkeypatch.setattr(blended, "lexical_toxicity", lambda texts: [1.0 for _ in texts])
    scorer = BlendedScorer(FixedScorer(0.2), 0.25)

    (scores,) = scorer.score_batch(["anything"])

    assert scores == {"toxicity": pytest.approx(0.4), "insult": 0.3}
    assert scorer.model_name == "fixed"
    assert scorer.model_version == "1+alt-profanity-check@0.25"
    assert scorer.score_batch([]) == []


def test_the_real_word_model_scores_abuse_higher():
    clean, abusive = blended.lexical_toxicity(["Have a lovely day", "fuck you, you idiot"])
    assert abusive > 0.9 > 0.1 > clean


@pytest.mark.parametrize(
    ("meta", "weight"),
    [
        ({}, None),
        ({"blend": {"with": "alt-profanity-check", "weight": 0.5}}, 0.5),
        ({"blend": {"with": "something-else", "weight": 0.5}}, None),
        ({"blend": {"with": "alt-profanity-check", "weight": 2}}, None),
        ({"blend": None}, None),
    ],
)
def test_blend_weight_reads_only_a_sound_meta_entry(meta, weight):
    assert blend_weight(meta) == weight


def test_weight_is_chosen_on_held_out_rows_and_skipped_when_they_are_few(monkeypatch):
    # The model ranks wrong, the word model right: the smallest share that ranks right wins.
    rows = [LabelledComment(f"text {i}", {"toxicity": float(i % 2)}, "forum") for i in range(1200)]
    model = [1.0 - (i % 2) for i in range(1200)]
    monkeypatch.setattr(blended, "lexical_toxicity", lambda texts: [i % 2 for i in range(1200)])

    chosen = choose_blend(rows, model, log=lambda _: None)
    assert chosen["weight"] == 0.6 and chosen["with"] == "alt-profanity-check"
    assert choose_blend(rows[:100], model[:100], log=lambda _: None) is None
    assert blend(0.2, 1.0, 0.75) == pytest.approx(0.8)


def test_a_model_directory_that_asks_for_a_blend_gets_one(tmp_path):
    from moderation.scoring import scorer_for_model

    (tmp_path / "meta.json").write_text(
        '{"name": "m", "version": "v", "blend": {"with": "alt-profanity-check", "weight": 0.4}}'
    )
    blended_scorer = scorer_for_model(str(tmp_path))
    plain = scorer_for_model(str(tmp_path / "elsewhere"))

    assert isinstance(blended_scorer, BlendedScorer) and blended_scorer.weight == 0.4
    assert not isinstance(plain, BlendedScorer)
