"""`make quality`: how well each signal alone and the default scorer decide, in one table.

On ``../shared/data/dev.csv`` when it exists, else on the seed comments shipped with the
package (which the MiniLM signal was trained on: figures there are only a smoke test).
For every scorer, overall and per domain: ROC-AUC of ``toxicity``, recall and clean
comments held at its defaults, clean comments held at 90 % recall, and comments/s
(one process, one torch thread, batched).

A signal alone is judged at 0.5, what it would decide on its own. The default scorer is
judged at the thresholds its model records. Its combination and thresholds were fitted on
dev.csv, so the row "default scorer" is optimistic there; the row "default, refitted
out-of-fold" scores each comment with a combination fitted without it (5 folds) and is
the honest one. Prints the table; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from sklearn.metrics import roc_auc_score

from moderation.config import default_model_dir
from moderation.scoring.combination import choose_thresholds, out_of_fold_scores
from moderation.scoring.ensemble import EnsembleScorer
from moderation.scoring.training_data import SEED_CSV, LabelledComment, read_labelled_csv

DEV_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev.csv"
SIGNALS = ("minilm", "bilstm", "profanity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="labelled CSV (default: dev.csv, else seed)")
    parser.add_argument("--model", default=os.environ.get("MODERATION_MODEL", default_model_dir()))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data = args.data or (DEV_CSV if DEV_CSV.is_file() else SEED_CSV)
    if data == SEED_CSV:
        print(f"{DEV_CSV} not found: measuring on the seed set, which MiniLM was trained on")
    comments = [c for c in read_labelled_csv(data) if c.is_toxic is not None]
    rows = measure(EnsembleScorer(args.model, num_threads=1), comments)
    print(f"{len(comments)} labelled comments from {data.name}\n")
    print(render(rows))
    rates = {r["scorer"]: r["comments_per_second"] for r in rows if r["domain"] == "all"}
    ratio = rates["minilm"] / rates["default scorer"]
    print(f"\ncost of the default scorer per comment: {ratio:.2f}x the MiniLM signal alone")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def measure(scorer: EnsembleScorer, comments: Sequence[LabelledComment]) -> list[dict]:
    """One row per scorer and domain."""
    import torch

    torch.set_num_threads(1)
    texts = [c.text for c in comments]
    scorer.warm_up()
    signals, seconds = _signals_timed(scorer, texts)
    thresholds = scorer.thresholds
    combined = [scorer.combine(row) for row in signals]
    oof = out_of_fold_scores(signals, comments)
    oof_hold = choose_thresholds(oof, comments)["toxicity"]
    scorers = [
        (name, [row[f"{name}.toxicity"] for row in signals], 0.5, len(texts) / seconds[name])
        for name in SIGNALS
    ]
    total = sum(seconds.values())
    scorers.append(("default scorer", [s["toxicity"] for s in combined], None, len(texts) / total))
    scorers.append(("default, refitted out-of-fold", [s["toxicity"] for s in oof], oof_hold, None))
    rows = []
    for name, scores, hold_at, rate in scorers:
        if hold_at is None:
            held = [_held(s, thresholds) for s in combined]
        else:
            held = [score >= hold_at for score in scores]
        for domain in [None, *sorted({c.domain or "unknown" for c in comments})]:
            members = [i for i, c in enumerate(comments) if domain in (None, c.domain)]
            rows.append(_row(name, domain, comments, scores, held, members, rate))
    return rows


def _signals_timed(scorer: EnsembleScorer, texts: list[str]) -> tuple[list[dict], dict]:
    """Every signal's outputs, and the seconds each signal (with its sentence form) took."""
    signals: list[dict[str, float]] = [{} for _ in texts]
    seconds = dict.fromkeys(SIGNALS, 0.0)
    for signal in scorer.signals:
        started = time.perf_counter()
        for row, scores in zip(signals, signal.score(texts), strict=True):
            row.update({f"{signal.name}.{label}": v for label, v in scores.items()})
        seconds[signal.name.removesuffix("_sentences")] += time.perf_counter() - started
    return signals, seconds


def _held(scores: dict[str, float], thresholds: dict[str, float]) -> bool:
    return any(scores.get(label, 0.0) >= value for label, value in thresholds.items())


def _row(name, domain, comments, scores, held, members, rate) -> dict:
    truth = [bool(comments[i].is_toxic) for i in members]
    values = [scores[i] for i in members]
    toxic = [i for i in members if comments[i].is_toxic]
    clean = [i for i in members if not comments[i].is_toxic]
    ranked = sorted((scores[i] for i in toxic), reverse=True)
    at_90 = ranked[max(0, -(-9 * len(ranked) // 10) - 1)] if ranked else None
    return {
        "scorer": name,
        "domain": domain or "all",
        "n": len(members),
        "roc_auc": round(roc_auc_score(truth, values), 4) if len(set(truth)) == 2 else None,
        "recall": _share([held[i] for i in toxic]),
        "clean_held": _share([held[i] for i in clean]),
        "clean_held_at_recall_0.9": _share([scores[i] >= at_90 for i in clean])
        if at_90 is not None
        else None,
        "comments_per_second": round(rate, 1) if rate and domain is None else None,
    }


def _share(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def render(rows: Sequence[dict]) -> str:
    """The figures as one plain-text table."""
    headers = ("scorer", "domain", "n", "ROC-AUC", "recall", "clean held", "clean@R.9", "per s")
    keys = (
        "scorer",
        "domain",
        "n",
        "roc_auc",
        "recall",
        "clean_held",
        "clean_held_at_recall_0.9",
        "comments_per_second",
    )
    cells = [headers] + [tuple("-" if r[k] is None else str(r[k]) for k in keys) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )


if __name__ == "__main__":
    main()
