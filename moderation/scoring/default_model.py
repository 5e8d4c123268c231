"""Build the default scorer's directory, and fit its combination and thresholds.

``build_default_model`` needs only what installs from the package index: it fine-tunes
MiniLM on the seed comments shipped with the package, converts the BiLSTM from
``toxic-comment-classifier``, and writes ``meta.json`` with the combination and hold
thresholds shipped in ``default_scorer.json``. Those numbers were fitted on labelled news
and Wikipedia comments with ``fit_scorer`` (``python -m moderation.scoring.default_model
dev.csv`` regenerates the file); no labelled row is shipped.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from moderation.scoring.bilstm import convert_package
from moderation.scoring.combination import (
    TARGET_RECALL,
    Combination,
    choose_thresholds,
    combine,
    fit_combination,
    out_of_fold_scores,
)
from moderation.scoring.ensemble import (
    BILSTM_DIR,
    KIND,
    MINILM_DIR,
    PROFANITY_PACKAGE,
    EnsembleScorer,
)
from moderation.scoring.model_build import META_FILE, Log, build_model, file_sha256, staging_dir
from moderation.scoring.training_data import LABELS, LabelledComment, read_labelled_csv

DEFAULTS_FILE = Path(__file__).with_name("default_scorer.json")
NAME = "combined-seed"


def build_default_model(output_dir: Path, *, log: Log = print) -> Path:
    """Write the default scorer's directory; replaces ``output_dir`` only when complete."""
    output_dir = Path(output_dir).expanduser().resolve()
    defaults = json.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))
    with staging_dir(output_dir) as staging:
        log("building the minilm signal (MiniLM fine-tuned on the seed comments)")
        build_model(staging / MINILM_DIR, log=log)
        log("converting the bilstm signal (toxic-comment-classifier)")
        bilstm = convert_package(staging / BILSTM_DIR)
        meta = _meta(staging, defaults, bilstm)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    EnsembleScorer(output_dir).check()
    log(f"model {meta['name']} {meta['version']} written to {output_dir}")
    return output_dir


def _meta(directory: Path, defaults: dict[str, Any], bilstm: dict[str, Any]) -> dict[str, Any]:
    minilm = json.loads((directory / MINILM_DIR / META_FILE).read_text(encoding="utf-8"))
    signals = {
        "minilm": {
            "what": "MiniLM-L6 fine-tuned on the seed comments, loaded through Detoxify",
            "path": MINILM_DIR,
            "version": minilm.get("version"),
            "evaluation": minilm.get("evaluation"),
        },
        "bilstm": {
            "what": "BiLSTM trained on Jigsaw's Wikipedia comments, ported to torch",
            "path": BILSTM_DIR,
            **bilstm,
        },
        "profanity": {
            "what": "linear SVM over words, about 200k labelled comments",
            "package": PROFANITY_PACKAGE,
            "version": metadata.version(PROFANITY_PACKAGE),
            "license": "MIT",
        },
    }
    basis = {"signals": signals, "combination": defaults["combination"]}
    return {
        "kind": KIND,
        "name": NAME,
        "version": hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:12],
        "labels": [label for label in LABELS if label in defaults["combination"]],
        "signals": signals,
        "combination": defaults["combination"],
        "thresholds": defaults["thresholds"],
        "evaluation": defaults.get("evaluation"),
        "fitted_on": defaults.get("fitted_on"),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def fit_scorer(
    signals: Sequence[dict[str, float]],
    comments: Sequence[LabelledComment],
    *,
    target_recall: float = TARGET_RECALL,
) -> dict[str, Any]:
    """Combination and hold thresholds fitted on labelled comments, with out-of-fold figures.

    Thresholds and figures come from out-of-fold scores (each row scored by a combination
    that did not see it); the combination returned is then fitted on every row.
    """
    from moderation.evaluation import evaluate
    from moderation.policy import SitePolicy

    oof = out_of_fold_scores(signals, comments)
    hold_at = choose_thresholds(oof, comments, target_recall=target_recall)
    policy = SitePolicy.with_thresholds(hold_at)
    figures = evaluate(comments, oof, policy, target_recall=0.9)
    return {
        "combination": fit_combination(signals, comments),
        "hold_at": hold_at,
        "evaluation": _summary(figures),
    }


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "roc_auc", "precision", "recall", "clean_held_share", "recommended", "by_domain")
    return {key: figures[key] for key in keep if key in figures}


def fit_defaults(model_dir: Path, data_csv: Path, *, log: Log = print) -> dict[str, Any]:
    """Fit the shipped combination and thresholds on ``data_csv`` with the signals of a build."""
    comments = [c for c in read_labelled_csv(data_csv) if c.is_toxic is not None]
    scorer = EnsembleScorer(model_dir)
    log(f"scoring {len(comments)} comments with every signal")
    signals = scorer.score_signals([c.text for c in comments])
    fitted = fit_scorer(signals, comments)
    return {
        "combination": fitted["combination"],
        "thresholds": {
            "hold_at": fitted["hold_at"],
            "source": (
                f"recall {TARGET_RECALL:g} of toxic comments on out-of-fold scores of "
                f"{Path(data_csv).name} ({len(comments)} labelled news and Wikipedia comments)"
            ),
            "target": {"label": "toxicity", "recall": TARGET_RECALL},
        },
        "evaluation": fitted["evaluation"],
        "fitted_on": {
            "file": Path(data_csv).name,
            "sha256": file_sha256(Path(data_csv)),
            "rows": len(comments),
        },
    }


def combined_scores(
    signals: Sequence[dict[str, float]], combination: Combination
) -> list[dict[str, float]]:
    """Label scores of many rows under one combination."""
    return [combine(row, combination) for row in signals]


if __name__ == "__main__":  # python -m moderation.scoring.default_model DATA.csv MODEL_DIR
    fitted = fit_defaults(Path(sys.argv[2]), Path(sys.argv[1]), log=print)
    DEFAULTS_FILE.write_text(json.dumps(fitted, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(fitted["evaluation"], indent=1))
