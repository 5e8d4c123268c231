"""Tune a built model, or one site, on labelled comments the model was not trained on.

``moderation model tune --data FILE`` refits what a model records in ``meta.json``: for the
default combined scorer, the per-label combination of its signals and the hold thresholds;
for a trained build, its blend with ``alt-profanity-check`` and its thresholds.
``--site NAME`` instead fits the combination and thresholds on a site's own moderators'
decisions (the export of ``/api/v1/moderation/export.csv``) and keeps them in the site's
policy, so one site's moderators never change another's decisions.

Figures "after" are out-of-fold: each row is scored by a combination fitted without it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moderation.scoring.model_build import META_FILE, Log, choose_blend, file_sha256
from moderation.scoring.training_data import LabelledComment, read_labelled_csv

# Fewer toxic (or clean) rows than this cannot place a threshold with any confidence.
MIN_CLASS_ROWS_TO_TUNE = 10


def labelled_rows(data_csv: Path) -> list[LabelledComment]:
    """The rows of a labelled CSV whose main label is known."""
    comments = [c for c in read_labelled_csv(data_csv) if c.is_toxic is not None]
    toxic = sum(bool(c.is_toxic) for c in comments)
    if min(toxic, len(comments) - toxic) < MIN_CLASS_ROWS_TO_TUNE:
        raise ValueError(
            f"{Path(data_csv).name}: {toxic} toxic and {len(comments) - toxic} clean labelled "
            f"rows; tuning needs at least {MIN_CLASS_ROWS_TO_TUNE} of each"
        )
    return comments


def tune_site_policy(
    scorer: Any, policy: Any, data_csv: Path, *, log: Log = print
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A site's tuned policy (as stored) and a before/after report, from its moderators' labels.

    ``scorer`` is the default combined scorer; ``policy`` the site's ``SitePolicy``. Labels
    with too few moderator decisions to fit keep the model's combination.
    """
    from moderation.evaluation import evaluate
    from moderation.scoring.combination import choose_thresholds, fit_combination
    from moderation.scoring.combination import out_of_fold_scores as oof_scores

    comments = labelled_rows(data_csv)
    log(f"scoring {len(comments)} labelled comments with every signal")
    signals = scorer.score_signals([c.text for c in comments])
    before_scores = [scorer.combine(row, policy.combination) for row in signals]
    before = evaluate(comments, before_scores, policy.in_force(scorer.thresholds))
    fallback = scorer.combination
    after_scores = oof_scores(signals, comments, fallback=fallback)
    hold_at = choose_thresholds(after_scores, comments)
    tuned_policy = policy.model_copy(update={"labels": {}, "combination": None})
    after = evaluate(comments, after_scores, tuned_policy.in_force(hold_at))
    combination = fit_combination(signals, comments, fallback=fallback)
    report = {"rows": len(comments), "before": _figures(before), "after": _figures(after)}
    stored = policy.model_dump(mode="json") | {
        "labels": {
            label: {"hold_at": value, "reject_at": None} for label, value in hold_at.items()
        },
        "combination": combination,
        "tuned": {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "file": Path(data_csv).name,
            "sha256": file_sha256(Path(data_csv)),
            "model": f"{scorer.model_name} {scorer.model_version}",
            **report,
        },
    }
    _keep_reject_bands(stored, policy)
    return stored, report


def _keep_reject_bands(stored: dict[str, Any], policy: Any) -> None:
    """A site's own reject bands are its choice: tuning moves only where holding starts."""
    for label, bands in policy.labels.items():
        if bands.reject_at is not None and label in stored["labels"]:
            hold = stored["labels"][label]["hold_at"]
            stored["labels"][label]["reject_at"] = max(bands.reject_at, hold)


def _figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "roc_auc": (figures.get("roc_auc") or {}).get("toxicity"),
        "recall": figures.get("recall"),
        "clean_held_share": figures.get("clean_held_share"),
        "precision": figures.get("precision"),
    }


def tune_model(model_dir: Path, data_csv: Path, *, log: Log = print) -> dict[str, Any]:
    """Refit what ``model_dir``'s ``meta.json`` records on ``data_csv``; returns the report."""
    from moderation.scoring.ensemble import is_ensemble_dir

    model_dir = Path(model_dir).expanduser().resolve()
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no {META_FILE} in {model_dir}: is it a built model?")
    if is_ensemble_dir(str(model_dir)):
        return _tune_ensemble(model_dir, data_csv, log)
    return _tune_trained(model_dir, data_csv, log)


def _tune_ensemble(model_dir: Path, data_csv: Path, log: Log) -> dict[str, Any]:
    from moderation.scoring.default_model import fit_defaults

    fitted = fit_defaults(model_dir, data_csv, log=log)
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    report = {
        "before": _figures(meta.get("evaluation") or {}),
        "after": _figures(fitted["evaluation"]),
    }
    meta.update(fitted)
    _write_atomically(model_dir / META_FILE, json.dumps(meta, indent=2) + "\n")
    return {"thresholds": fitted["thresholds"]["hold_at"], **report}


def _tune_trained(model_dir: Path, data_csv: Path, log: Log) -> dict[str, Any]:
    from moderation.scoring.detoxify_scorer import DetoxifyScorer
    from moderation.scoring.model_build import heldout_thresholds

    comments = labelled_rows(data_csv)
    scorer = DetoxifyScorer(str(model_dir), num_threads=os.cpu_count())
    scores = [list(row.values()) for row in scorer.score_batch([c.text for c in comments])]
    entry = choose_blend(comments, [row[0] for row in scores], log)
    if entry is not None:
        entry["chosen_on"] = {"file": Path(data_csv).name, "sha256": file_sha256(Path(data_csv))}
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["blend"] = entry
    meta["thresholds"] = heldout_thresholds(comments, scores, entry)
    meta["thresholds"]["source"] += f" of {Path(data_csv).name}"
    _write_atomically(meta_path, json.dumps(meta, indent=2) + "\n")
    return {"blend": entry, "thresholds": meta["thresholds"]["hold_at"]}


def _write_atomically(path: Path, text: str) -> None:
    """Readers (a worker starting up) see the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    Path(temporary).chmod(0o644)
    os.replace(temporary, path)


def format_report(report: dict[str, Any], names: Sequence[str] = ("before", "after")) -> str:
    """Before and after, one line each."""
    lines = []
    for name in names:
        figures = report.get(name) or {}
        lines.append(
            f"{name:7} ROC-AUC {figures.get('roc_auc')}  recall {figures.get('recall')}  "
            f"clean held {figures.get('clean_held_share')}  precision {figures.get('precision')}"
        )
    return "\n".join(lines)
