"""Tune a built model on labelled comments it was not trained on: its blend weight.

``moderation model tune --data dev.csv`` scores the file with the model alone, picks the
share of ``alt-profanity-check`` in ``toxicity`` that ranks the file's rows best (mean of the
per-domain ROC-AUCs) and records it, with the file's hash, in the model's ``meta.json``.
Report figures on other data than the tuning file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from moderation.scoring.model_build import META_FILE, Log, choose_blend, file_sha256
from moderation.scoring.training_data import read_labelled_csv


def tune_blend(model_dir: Path, data_csv: Path, *, log: Log = print) -> dict[str, Any] | None:
    """Choose and record the model's blend weight on ``data_csv``; returns the entry."""
    from moderation.scoring.detoxify_scorer import DetoxifyScorer

    model_dir = Path(model_dir).expanduser().resolve()
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no {META_FILE} in {model_dir}: is it a built model?")
    comments = [c for c in read_labelled_csv(data_csv) if c.is_toxic is not None]
    scorer = DetoxifyScorer(str(model_dir), num_threads=os.cpu_count())
    toxicity = [row["toxicity"] for row in scorer.score_batch([c.text for c in comments])]
    entry = choose_blend(comments, toxicity, log)
    if entry is not None:
        entry["chosen_on"] = {"file": Path(data_csv).name, "sha256": file_sha256(Path(data_csv))}
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["blend"] = entry
    _write_atomically(meta_path, json.dumps(meta, indent=2) + "\n")
    return entry


def _write_atomically(path: Path, text: str) -> None:
    """Readers (a worker starting up) see the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    Path(temporary).chmod(0o644)
    os.replace(temporary, path)
