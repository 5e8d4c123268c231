"""The Detoxify scorer on the built MiniLM checkpoint: grouping, order, int8, and tuning."""

import pytest

from moderation.policy import LABELS
from moderation.scoring.detoxify_scorer import DetoxifyScorer, length_groups

TEXTS = [
    "Thanks for a clear and fair article.",
    "You are a pathetic idiot and everyone here hates you.",
    "The council meeting moved to Thursday at seven in the town hall, after the budget "
    "committee asked for more time to read the auditors' report on the new bridge.",
    "ok",
]


def test_length_groups_keep_similar_lengths_together_within_limits():
    lengths = [5, 200, 6, 7, 190, 5, 50]
    groups = length_groups(lengths, max_size=2, max_tokens=10_000)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    assert all(len(group) <= 2 for group in groups)
    assert [4, 1] in groups  # the two long ones together, not padded with short ones
    assert length_groups([100] * 10, max_size=32, max_tokens=250) == [
        [i, i + 1] for i in range(0, 10, 2)
    ]


@pytest.fixture(scope="module")
def minilm_dir(model_dir):
    """The default model's MiniLM signal: a Detoxify-format directory of its own."""
    return model_dir / "minilm"


@pytest.fixture(scope="module")
def fp32(minilm_dir):
    return DetoxifyScorer(str(minilm_dir), num_threads=1)


def test_every_label_in_input_order_whatever_the_batch(fp32):
    together = fp32.score_batch(TEXTS)
    alone = [fp32.score_batch([text])[0] for text in TEXTS]
    assert [set(scores) for scores in together] == [set(LABELS)] * len(TEXTS)
    for batch_scores, single_scores in zip(together, alone, strict=True):
        for label in LABELS:
            assert batch_scores[label] == pytest.approx(single_scores[label], abs=1e-4)
    assert together[1]["toxicity"] > together[0]["toxicity"]


def test_int8_scores_stay_close_to_fp32_and_say_so_in_the_version(fp32, minilm_dir):
    int8 = DetoxifyScorer(str(minilm_dir), quantize="int8", num_threads=1)
    drift = [
        abs(a[label] - b[label])
        for a, b in zip(fp32.score_batch(TEXTS), int8.score_batch(TEXTS), strict=True)
        for label in a
    ]
    assert max(drift) < 0.1
    assert sum(drift) / len(drift) < 0.03
    assert int8.model_version == f"{fp32.model_version}+int8"


def test_a_missing_model_says_how_to_build_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="moderation model build"):
        DetoxifyScorer(str(tmp_path / "none")).score_batch(["hi"])


def test_the_blend_is_chosen_where_the_word_model_ranks_better():
    from moderation.scoring.model_build import choose_blend
    from moderation.scoring.training_data import LabelledComment

    rows, toxicity = [], []
    for i in range(1200):  # a blend is chosen only on 1,000 rows or more
        toxic = i % 2 == 1
        text = f"Fuck off, you stupid idiot number {i}." if toxic else f"Thanks for part {i}."
        rows.append(LabelledComment(text, {"toxicity": float(toxic)}, "news"))
        # The model's score is noise: only the word model can tell these apart.
        toxicity.append((i * 7919 % 1000) / 1000)

    entry = choose_blend(rows, toxicity, log=lambda _: None)

    assert entry is not None and entry["with"] == "alt-profanity-check"
    assert entry["weight"] >= 0.5
    assert max(entry["heldout_mean_domain_roc_auc"].values()) > 0.95


def test_tune_records_thresholds_and_blend_and_the_scorer_applies_them(minilm_dir, tmp_path):
    import csv
    import json
    import shutil

    from moderation.scoring import model_thresholds, scorer_for_model
    from moderation.scoring.model_tune import tune_model

    model = tmp_path / "model"
    shutil.copytree(minilm_dir, model)
    data = tmp_path / "labelled.csv"
    with data.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text", "label_toxic", "domain"])
        for i in range(30):
            writer.writerow([f"c{i}", f"Thanks for the report on the {i} new parks.", 0, "news"])
            writer.writerow([f"t{i}", f"Fuck off, you {i} times stupid idiot.", 1, "news"])

    report = tune_model(model, data, log=lambda _: None)

    meta = json.loads((model / "meta.json").read_text())
    assert meta["thresholds"]["hold_at"] == report["thresholds"]
    assert "labelled.csv" in meta["thresholds"]["source"]
    scorer = scorer_for_model(str(model))
    assert model_thresholds(scorer) == report["thresholds"]
    # Every toxic row of the file reaches the recorded threshold at least 85 % of the time.
    scores = scorer.score_batch([f"Fuck off, you {i} times stupid idiot." for i in range(30)])
    caught = sum(s["toxicity"] >= report["thresholds"]["toxicity"] for s in scores)
    assert caught >= 0.85 * 30
