"""`moderation evaluate`: figures checked against a tiny file whose answers are known by hand."""

import csv
import json

import pytest
from click.testing import CliRunner

from moderation.cli import main
from moderation.evaluation import evaluate
from moderation.policy import LabelBands, SitePolicy
from moderation.scoring.training_data import read_labelled_csv

# text, toxic, toxicity score the fake model gives it
ROWS = [("a", 1, 0.9), ("b", 1, 0.6), ("c", 1, 0.3), ("d", 0, 0.7), ("e", 0, 0.2), ("f", 0, 0.1)]
COLUMNS = [
    "id",
    "text",
    "label_toxic",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "source",
    "domain",
]


@pytest.fixture
def tiny_csv(tmp_path):
    path = tmp_path / "tiny.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i, (text, toxic, _) in enumerate(ROWS):
            domain = "news_comment" if i % 2 == 0 else "wikipedia_talk"
            writer.writerow([i, text, toxic, "", "", "", "", "", "hand", domain])
    return path


def test_figures_match_the_hand_computed_answers(tiny_csv):
    comments = read_labelled_csv(tiny_csv)
    scores = [{"toxicity": score} for _, _, score in ROWS]
    policy = SitePolicy(labels={"toxicity": LabelBands(hold_at=0.5)})
    figures = evaluate(comments, scores, policy, target_recall=0.9)
    assert figures["n"] == 6
    # 7 of the 9 toxic/clean pairs are ranked the right way round.
    assert figures["roc_auc"]["toxicity"] == pytest.approx(7 / 9, abs=1e-4)
    # held: a, b (toxic) and d (clean); c (toxic) is published.
    assert figures["confusion"] == {
        "toxic_held": 2,
        "clean_held": 1,
        "toxic_published": 1,
        "clean_published": 2,
    }
    assert figures["precision"] == figures["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["clean_held_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["held_share"] == 0.5
    # 90 % of 3 toxic comments needs all 3: hold from c's score, which also holds d.
    suggested = figures["recommended"]
    assert suggested["hold_at"] == 0.3
    assert (suggested["recall"], suggested["precision"]) == (1.0, 0.75)
    assert suggested["held_share"] == pytest.approx(4 / 6, abs=1e-4)
    assert figures["by_domain"]["news_comment"]["n"] == 3


PLAIN = [
    ("Shut up, you pathetic moron, nobody wants your garbage here.", 1),
    ("You are a worthless idiot and a liar.", 1),
    ("Fuck off, you stupid piece of shit.", 1),
    ("Thank you for explaining the budget so clearly.", 0),
    ("The council meets again on Thursday to vote on the bridge.", 0),
    ("I disagree with the conclusion, but the facts are well laid out.", 0),
]


def test_the_command_runs_the_real_model_at_its_own_thresholds(model_dir, tmp_path):
    path, plot = tmp_path / "plain.csv", tmp_path / "pr.png"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label_toxic", "domain"])
        writer.writerows([i, text, toxic, "news_comment"] for i, (text, toxic) in enumerate(PLAIN))
    result = CliRunner().invoke(
        main, ["evaluate", str(path), "--model", str(model_dir), "--json", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    meta = json.loads((model_dir / "meta.json").read_text())
    # Plain abuse against plain civility: the real model separates them all.
    assert figures["n"] == 6 and figures["roc_auc"]["toxicity"] == 1.0
    assert (figures["recall"], figures["clean_held_share"]) == (1.0, 0.0)
    toxicity = figures["thresholds"]["labels"]["toxicity"]
    assert toxicity["hold_at"] == meta["thresholds"]["hold_at"]["toxicity"]
    assert toxicity["from"] == "model" and "out-of-fold" in toxicity["detail"]
    assert figures["model"]["name"] == meta["name"]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_the_report_says_which_thresholds_are_in_force_and_why(model_dir, tmp_path):
    path = tmp_path / "plain.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label_toxic", "domain"])
        writer.writerows([i, text, toxic, "news_comment"] for i, (text, toxic) in enumerate(PLAIN))
    result = CliRunner().invoke(
        main, ["evaluate", str(path), "--model", str(model_dir), "--plot", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    assert "thresholds in force (model combined-seed" in result.output
    assert "recall 0.85 of toxic comments on out-of-fold scores" in result.output


def test_evaluating_a_site_s_policy_needs_no_web_secret_in_production(
    model_dir, tmp_path, database_url, site_key
):
    path = tmp_path / "plain.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label_toxic", "domain"])
        writer.writerows([i, text, toxic, "news_comment"] for i, (text, toxic) in enumerate(PLAIN))
    env = {
        "MODERATION_ENV": None,
        "MODERATION_SECRET_KEY": None,
        "MODERATION_DATABASE_URL": database_url,
    }
    args = ["evaluate", str(path), "--model", str(model_dir), "--site", "example-news", "--json"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["n"] == 6
