"""The default combined scorer: the ported BiLSTM, the combination, its thresholds, bad signals."""

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from moderation.policy import LABELS, SitePolicy, decide
from moderation.scoring import model_thresholds
from moderation.scoring.bilstm import (
    WEIGHTS_FILE,
    BiLSTMSignal,
    SignalError,
    WordIndex,
    read_keras_tokenizer,
)
from moderation.scoring.combination import (
    choose_thresholds,
    combine,
    fit_combination,
    logit,
    out_of_fold_scores,
)
from moderation.scoring.ensemble import EnsembleScorer
from moderation.scoring.training_data import LabelledComment
from tests.support import ROOT

REFERENCE = ROOT / "tests" / "data" / "bilstm_reference.json"
KERAS_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


@pytest.fixture(scope="module")
def scorer(model_dir):
    return EnsembleScorer(model_dir, num_threads=1)


@pytest.fixture
def model_copy(model_dir, tmp_path):
    """A copy of the default model to break; the big MiniLM checkpoint is linked, not copied."""
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("minilm"))
    (copy / "minilm").symlink_to(model_dir / "minilm")
    return copy


# --- the ported network -------------------------------------------------------------------


def test_the_port_reproduces_the_keras_package_outputs(model_dir):
    """Reference outputs were produced by the package's own Keras code on these sentences."""
    reference = json.loads(REFERENCE.read_text())["outputs"]
    ours = BiLSTMSignal(model_dir / "bilstm").score([row["text"] for row in reference])
    for row, scores in zip(reference, ours, strict=True):
        for keras_label, label in zip(KERAS_LABELS, LABELS, strict=True):
            assert scores[label] == pytest.approx(row["scores"][keras_label], abs=1e-5)


def test_the_word_index_tokenizes_and_pads_as_keras_does():
    words = WordIndex(
        {
            "filters": '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n',
            "lower": True,
            "split": " ",
            "num_words": 5,
            "word_index": {"you": 1, "are": 2, "an": 3, "idiot": 4, "rare": 7},
        }
    )
    assert words.sequence("You are, AN idiot!\nrare unknown") == [1, 2, 3, 4]
    padded = words.padded(["idiot " * 120, "you", ""])
    assert padded.shape == (3, 100)
    assert list(padded[1][-2:]) == [0, 1] and not padded[2].any()
    assert (padded[0] == 4).all()  # truncated at the front: the last 100 words stay


def test_the_tokenizer_reader_refuses_anything_but_the_keras_tokenizer():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_keras_tokenizer(pickle.dumps(Evil()))


# --- the combination ----------------------------------------------------------------------


def test_scores_are_the_combination_in_meta_json_of_the_signals(scorer):
    texts = ["Thanks, a fair article.", "Shut up, you worthless moron."]
    signals = scorer.score_signals(texts)
    assert set(signals[0]) >= {"minilm.toxicity", "bilstm.insult", "profanity.toxicity"}
    entry = scorer.meta["combination"]["toxicity"]
    for row, scores in zip(signals, scorer.score_batch(texts), strict=True):
        total = entry["bias"] + sum(w * logit(row[name]) for name, w in entry["weights"].items())
        assert scores["toxicity"] == pytest.approx(1 / (1 + np.exp(-total)), abs=1e-6)
        assert set(scores) == set(LABELS)
    assert scorer.score_batch(texts) == scorer.score_batch(texts)  # deterministic


def test_the_weights_are_read_from_meta_json(model_copy):
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["combination"]["toxicity"] = {"bias": 0.0, "weights": {"profanity.toxicity": 1.0}}
    (model_copy / "meta.json").write_text(json.dumps(meta))
    scorer = EnsembleScorer(model_copy, num_threads=1)
    text = "What a load of crap."
    alone = scorer.score_signals([text])[0]["profanity.toxicity"]
    assert scorer.score_batch([text])[0]["toxicity"] == pytest.approx(alone, abs=1e-3)


def test_a_long_comment_with_one_abusive_sentence_outscores_its_clean_part(scorer):
    clean = (
        "The council approved the new bridge after a long debate about its cost. "
        "Construction starts in spring and should end before the summer of next year. "
    )
    scores = scorer.score_batch([clean, clean + "Anyone who voted for it is a fucking idiot."])
    assert scores[1]["toxicity"] > scores[0]["toxicity"] + 0.3


def test_fitting_learns_weights_that_favour_the_informative_signal():
    rows, comments = [], []
    for i in range(400):
        toxic = i % 2 == 0
        good = 0.9 if toxic else 0.1
        noise = ((i * 37) % 100) / 100
        rows.append({"good.toxicity": good, "noisy.toxicity": min(0.99, max(0.01, noise))})
        comments.append(LabelledComment(f"t{i}", {"toxicity": float(toxic)}, "news"))
    combination = fit_combination(rows, comments, labels=["toxicity"])
    weights = combination["toxicity"]["weights"]
    assert weights["good.toxicity"] > 5 * abs(weights["noisy.toxicity"])
    oof = out_of_fold_scores(rows, comments, labels=["toxicity"])
    assert all((s["toxicity"] > 0.5) == (i % 2 == 0) for i, s in enumerate(oof))


def test_too_few_rows_keep_the_fallback_entry():
    fallback = {"threat": {"bias": 1.5, "weights": {"a.threat": 0.3}, "fitted": True}}
    rows = [{"a.threat": 0.2}] * 40
    comments = [LabelledComment("x", {"threat": float(i < 3)}) for i in range(40)]
    assert fit_combination(rows, comments, ["threat"], fallback) == fallback
    assert combine({"a.threat": 0.5}, fallback)["threat"] == pytest.approx(1 / (1 + np.exp(-1.5)))


def test_thresholds_reach_the_target_recall_and_finer_labels_stay_quiet():
    comments, scores = [], []
    for i in range(100):
        toxic = i < 40
        value = (0.3 + i / 100) if toxic else i / 200
        comments.append(LabelledComment(str(i), {"toxicity": float(toxic)}))
        scores.append({"toxicity": value, "insult": value / 2})
    thresholds = choose_thresholds(scores, comments, target_recall=0.85)
    pairs = list(zip(scores, comments, strict=True))
    caught = sum(s["toxicity"] >= thresholds["toxicity"] for s, c in pairs if c.is_toxic)
    assert caught == 34  # ceil(0.85 * 40): the highest threshold that catches that many
    assert thresholds["insult"] >= thresholds["toxicity"]
    clean_insults = [s["insult"] for s, c in pairs if not c.is_toxic]
    assert sum(v >= thresholds["insult"] for v in clean_insults) <= 0.005 * 60


# --- defaults come from the model ---------------------------------------------------------


def test_a_site_without_bands_holds_at_the_models_recorded_thresholds(scorer):
    recorded = scorer.meta["thresholds"]["hold_at"]
    assert model_thresholds(scorer) == recorded
    assert recorded["toxicity"] < 0.5  # calibrated: not the old fixed 0.5
    just_above = {"toxicity": recorded["toxicity"] + 0.001}
    just_below = {"toxicity": recorded["toxicity"] - 0.001}
    policy = SitePolicy()
    held = decide(just_above, policy, model_hold_at=recorded)
    assert held.outcome == "held" and held.reasons[0].threshold == recorded["toxicity"]
    assert decide(just_below, policy, model_hold_at=recorded).outcome == "approved"
    own = SitePolicy.with_thresholds({"toxicity": 0.9})
    assert decide(just_above, own, model_hold_at=recorded).outcome == "approved"


def test_a_policy_never_runs_without_thresholds():
    assert decide({"toxicity": 0.99}, SitePolicy()).outcome == "held"


def test_the_workers_store_decisions_at_the_models_thresholds(sessions, scorer):
    from sqlalchemy import select

    from moderation.models import Comment
    from moderation.services.decisions import score_and_decide
    from tests.test_decisions import add_comments

    ids = add_comments(sessions, "Shut up, you worthless moron, nobody asked you.")
    score_and_decide(sessions, ids, scorer)
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
    assert comment.status == "held"
    assert comment.reasons[0]["threshold"] == scorer.thresholds[comment.reasons[0]["label"]]


# --- bad signals --------------------------------------------------------------------------


def test_a_missing_signal_file_is_named(model_copy):
    (model_copy / "bilstm" / WEIGHTS_FILE).unlink()
    with pytest.raises(SignalError, match="bilstm"):
        EnsembleScorer(model_copy).check()


def test_weights_of_the_wrong_shape_are_named(model_copy):
    path = model_copy / "bilstm" / WEIGHTS_FILE
    arrays = dict(np.load(path))
    arrays["embedding"] = arrays["embedding"][:100]
    np.savez(path, **arrays)
    with pytest.raises(SignalError, match="'embedding' has shape"):
        EnsembleScorer(model_copy).check()


def test_a_profanity_model_other_than_the_one_combined_is_refused(model_copy):
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["signals"]["profanity"]["version"] = "0.0.1"
    (model_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SignalError, match="profanity signal"):
        EnsembleScorer(model_copy).check()


def test_a_worker_with_a_broken_signal_stops_at_start_naming_it(model_copy, settings, tmp_path):
    from tests.support import worker_environment

    (model_copy / "bilstm" / WEIGHTS_FILE).write_bytes(b"not an npz file")
    env = worker_environment(settings) | {"MODERATION_MODEL": str(model_copy)}
    command = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool", "solo"]
    finished = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    output = (finished.stdout + finished.stderr).decode()
    assert finished.returncode != 0
    assert "the model cannot be used" in output and "bilstm" in output


# --- per-site tuning ----------------------------------------------------------------------


def _export(path, rows):
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text", "label_toxic", "source", "domain"])
        for i, (text, toxic) in enumerate(rows):
            writer.writerow([f"c{i}", text, toxic, "moderators", "news_comment"])


MILD = [
    "This is a really dumb take, frankly.",
    "What a silly, lazy article. Do better.",
    "You clearly have no clue what you are talking about.",
    "Typical clueless nonsense from this paper.",
    "Only a fool would believe this drivel.",
    "This writer is an embarrassment to journalism.",
    "Pathetic reporting, as usual.",
    "Get lost with your stupid opinions.",
    "Your argument is garbage and so are you.",
    "Such an ignorant comment, wow.",
    "The mayor is a clown and a liar.",
    "Shut up already, nobody cares.",
]
# What a strict site's moderators reject: dismissive, not abusive; the model publishes most.
STRICT = [
    "This writer is an embarrassment to journalism.",
    "This paper keeps printing propaganda.",
    "Go back to school.",
    "Nobody asked for your sermon.",
    "Go back to school, kid.",
    "This writer should find another job.",
    "Nobody asked for your opinion.",
    "Propaganda, as usual.",
    "Stick to what you know.",
    "Another embarrassment from this paper.",
    "People like you are the problem.",
    "Your kind should stay out of this debate.",
    "Typical of this rag.",
    "Keep your opinions to yourself.",
    "Spare us the lecture.",
    "Do you even read before you write?",
]
CLEAN = [
    "Thank you for explaining the budget so clearly.",
    "I think the council should fund the library as well.",
    "Interesting point about the bridge, I had not considered it.",
    "The second chart seems to use last year's figures.",
    "My neighbourhood would benefit from the new bus line.",
    "Good to see local reporting on the school board.",
    "I disagree with the conclusion, but the facts are well laid out.",
    "When does the consultation close?",
    "Great photos of the harbour festival.",
    "The article could mention the cost of maintenance too.",
    "Could you publish the full report?",
    "I attended the meeting and this matches what was said.",
]


def test_a_few_moderator_decisions_move_only_the_threshold(scorer, tmp_path):
    """Too few rows to refit the signals' weights: the model's combination stays, and the
    hold threshold drops to catch what this strict site's moderators reject."""
    from moderation.scoring.model_tune import tune_site_policy

    export = tmp_path / "export.csv"
    _export(export, [(t, 1) for t in STRICT] + [(t, 0) for t in CLEAN])
    model_hold = scorer.thresholds["toxicity"]
    strict_scores = [s["toxicity"] for s in scorer.score_batch(STRICT)]
    assert sum(s >= model_hold for s in strict_scores) < len(STRICT) / 2  # the model misses most

    stored, report = tune_site_policy(scorer, SitePolicy(), export, log=lambda _: None)

    tuned = SitePolicy.from_stored(stored)
    assert tuned.combination["toxicity"] == scorer.combination["toxicity"]
    assert tuned.labels["toxicity"].hold_at < model_hold
    hold_at = tuned.labels["toxicity"].hold_at
    assert sum(s >= hold_at for s in strict_scores) >= 0.85 * len(STRICT)
    assert tuned.tuned["file"] == "export.csv" and tuned.tuned["rows"] == len(STRICT + CLEAN)
    assert report["before"]["recall"] < report["after"]["recall"]


def test_enough_decisions_refit_the_combination_for_the_site(scorer, tmp_path):
    """Fitted on three phrasings of each comment, judged on a fourth it never saw."""
    from moderation.scoring.model_tune import tune_site_policy

    export = tmp_path / "export.csv"
    rows = [(f"{text} ({i})", 1) for i in range(3) for text in MILD]
    rows += [(f"{text} ({i})", 0) for i in range(3) for text in CLEAN]
    _export(export, rows)

    stored, report = tune_site_policy(scorer, SitePolicy(), export, log=lambda _: None)

    tuned = SitePolicy.from_stored(stored)
    assert tuned.combination["toxicity"]["fitted"] is True
    assert tuned.combination["toxicity"] != scorer.combination["toxicity"]
    signals = scorer.score_signals([f"{t} (again)" for t in MILD + CLEAN])
    held = [
        decide(scorer.combine(row, tuned.combination), tuned).outcome == "held" for row in signals
    ]
    assert sum(held[: len(MILD)]) >= 0.85 * len(MILD)
    assert sum(held[len(MILD) :]) <= 2
    assert report["after"]["recall"] >= 0.85


def test_tuning_refuses_a_file_with_too_few_decisions(scorer, tmp_path):
    from moderation.scoring.model_tune import tune_site_policy

    export = tmp_path / "export.csv"
    _export(export, [(MILD[0], 1), (CLEAN[0], 0)])
    with pytest.raises(ValueError, match="at least 10 of each"):
        tune_site_policy(scorer, SitePolicy(), export, log=lambda _: None)


def test_model_tune_site_command_records_the_policy(model_dir, settings, sessions, tmp_path):
    from click.testing import CliRunner
    from sqlalchemy import select

    from moderation.cli import main
    from moderation.db import unit_of_work
    from moderation.models import Site
    from moderation.services.sites import create_site

    with unit_of_work(sessions) as session:
        create_site(session, "tuned-news")
    export = tmp_path / "export.csv"
    _export(export, [(t, 1) for t in MILD] + [(t, 0) for t in CLEAN])
    env = {"MODERATION_DATABASE_URL": settings.database_url, "MODERATION_MODEL": str(model_dir)}
    result = CliRunner().invoke(
        main, ["model", "tune", "--data", str(export), "--site", "tuned-news"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "after" in result.output
    with sessions() as session:
        policy = session.scalars(select(Site.policy).where(Site.name == "tuned-news")).one()
    assert policy["tuned"]["file"] == "export.csv"
    assert "toxicity" in policy["labels"] and policy["combination"]
