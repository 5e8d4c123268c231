"""How well a model and a site's thresholds separate toxic from clean comments.

Everything here is a pure function of labelled comments and their scores, so the same
figures come out for the offline model, a Detoxify hub model or a moderator-labelled export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from moderation.models import Status
from moderation.policy import SitePolicy, decide
from moderation.scoring.training_data import LabelledComment

MAIN_LABEL = "toxicity"


def evaluate(
    comments: Sequence[LabelledComment],
    scores: Sequence[dict[str, float]],
    policy: SitePolicy,
    *,
    target_recall: float = 0.9,
) -> dict[str, Any]:
    """Ranking quality per label, the outcome at the policy's thresholds, and a suggestion."""
    held = [decide(s, policy).outcome != Status.APPROVED for s in scores]
    toxic = [c.is_toxic for c in comments]
    figures: dict[str, Any] = {
        "n": len(comments),
        "roc_auc": _per_label(comments, scores, roc_auc_score),
        "pr_auc": _per_label(comments, scores, average_precision_score),
        **operating_point(toxic, held),
        "recommended": recommend_hold_at(
            toxic, [s.get(MAIN_LABEL, 0.0) for s in scores], target_recall
        ),
    }
    figures["by_domain"] = _by_domain(comments, scores, held)
    return figures


def _per_label(comments, scores, metric) -> dict[str, float | None]:
    result: dict[str, float | None] = {}
    for label in sorted({label for s in scores for label in s}):
        pairs = [
            (c.labels.get(label), s[label])
            for c, s in zip(comments, scores, strict=True)
            if c.labels.get(label) is not None and label in s
        ]
        truth = [truth >= 0.5 for truth, _ in pairs]
        if len(set(truth)) < 2:
            result[label] = None
            continue
        result[label] = round(float(metric(truth, [score for _, score in pairs])), 4)
    return result


def operating_point(toxic: Sequence[bool | None], held: Sequence[bool]) -> dict[str, Any]:
    """Precision, recall, moderator workload and the confusion matrix of a hold decision."""
    pairs = [(t, h) for t, h in zip(toxic, held, strict=True) if t is not None]
    tp = sum(t and h for t, h in pairs)
    fp = sum((not t) and h for t, h in pairs)
    fn = sum(t and not h for t, h in pairs)
    tn = sum((not t) and not h for t, h in pairs)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "clean_held_share": _ratio(fp, fp + tn),
        "held_share": _ratio(tp + fp, len(pairs)),
        "confusion": {
            "toxic_held": tp,
            "clean_held": fp,
            "toxic_published": fn,
            "clean_published": tn,
        },
    }


def recommend_hold_at(
    toxic: Sequence[bool | None], main_scores: Sequence[float], target_recall: float
) -> dict[str, Any] | None:
    """The highest toxicity ``hold_at`` that still catches ``target_recall`` of toxic comments."""
    pairs = [(t, s) for t, s in zip(toxic, main_scores, strict=True) if t is not None]
    toxic_scores = sorted((s for t, s in pairs if t), reverse=True)
    if not toxic_scores or all(t for t, _ in pairs):
        return None
    needed = max(1, int(np.ceil(target_recall * len(toxic_scores))))
    hold_at = toxic_scores[needed - 1]
    held = [s >= hold_at for _, s in pairs]
    point = operating_point([t for t, _ in pairs], held)
    return {"target_recall": target_recall, "hold_at": round(float(hold_at), 4), **point}


def _by_domain(comments, scores, held) -> dict[str, Any]:
    domains: dict[str, list[int]] = {}
    for i, comment in enumerate(comments):
        domains.setdefault(comment.domain or "unknown", []).append(i)
    result = {}
    for domain, rows in sorted(domains.items()):
        sub_comments = [comments[i] for i in rows]
        sub_scores = [scores[i] for i in rows]
        auc = _per_label(sub_comments, sub_scores, roc_auc_score).get(MAIN_LABEL)
        point = operating_point([c.is_toxic for c in sub_comments], [held[i] for i in rows])
        result[domain] = {
            "n": len(rows),
            "roc_auc": auc,
            "recall": point["recall"],
            "clean_held_share": point["clean_held_share"],
        }
    return result


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def plot_precision_recall(
    comments: Sequence[LabelledComment],
    scores: Sequence[dict[str, float]],
    figures: dict[str, Any],
    path: str,
) -> None:
    """Write the toxicity precision-recall curve with the current and suggested points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [
        (c.is_toxic, s.get(MAIN_LABEL, 0.0))
        for c, s in zip(comments, scores, strict=True)
        if c.is_toxic is not None
    ]
    precision, recall, _ = precision_recall_curve([t for t, _ in pairs], [s for _, s in pairs])
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.plot(recall, precision, label=f"{MAIN_LABEL} (PR-AUC {figures['pr_auc'].get(MAIN_LABEL)})")
    if figures["recall"] is not None and figures["precision"] is not None:
        ax.scatter(
            [figures["recall"]],
            [figures["precision"]],
            color="crimson",
            zorder=3,
            label="current thresholds",
        )
    suggested = figures.get("recommended")
    if suggested and suggested["precision"] is not None:
        ax.scatter(
            [suggested["recall"]],
            [suggested["precision"]],
            color="green",
            zorder=3,
            label=f"hold_at {suggested['hold_at']:.2f}",
        )
    ax.set(
        xlabel="recall (toxic comments caught)",
        ylabel="precision (held that were toxic)",
        xlim=(0, 1.01),
        ylim=(0, 1.01),
        title=f"{figures['n']} labelled comments",
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_report(figures: dict[str, Any]) -> str:
    """The figures as a terminal report."""
    lines = [f"{figures['n']} labelled comments", "", "label            ROC-AUC  PR-AUC"]
    for label, auc in figures["roc_auc"].items():
        lines.append(f"{label:<16} {_fmt(auc):>7}  {_fmt(figures['pr_auc'].get(label)):>6}")
    c = figures["confusion"]
    lines += ["", *format_thresholds(figures.get("thresholds"))]
    lines += [
        "",
        "at the current thresholds:",
        f"  precision {_fmt(figures['precision'])}  recall {_fmt(figures['recall'])}  "
        f"clean comments held {_pct(figures['clean_held_share'])}  "
        f"all held {_pct(figures['held_share'])}",
        f"  toxic held {c['toxic_held']}  toxic published {c['toxic_published']}  "
        f"clean held {c['clean_held']}  clean published {c['clean_published']}",
    ]
    suggested = figures.get("recommended")
    if suggested:
        lines += [
            "",
            f"to catch {suggested['target_recall']:.0%} of toxic comments: "
            f"toxicity hold_at {suggested['hold_at']:.2f} -> recall {_fmt(suggested['recall'])}, "
            f"clean comments held {_pct(suggested['clean_held_share'])}, "
            f"moderator workload {_pct(suggested['held_share'])} of all comments",
        ]
    lines += ["", "domain              n  ROC-AUC  recall  clean held"]
    for domain, d in figures["by_domain"].items():
        lines.append(
            f"{domain:<16} {d['n']:>4}  {_fmt(d['roc_auc']):>7}  {_fmt(d['recall']):>6}"
            f"  {_pct(d['clean_held_share']):>10}"
        )
    return "\n".join(lines)


def format_thresholds(thresholds: dict[str, Any] | None) -> list[str]:
    """The thresholds in force and where each comes from, as report lines."""
    if not thresholds:
        return []
    lines = [f"thresholds in force (model {thresholds['model']}):"]
    for label, entry in thresholds["labels"].items():
        reject = entry.get("reject_at")
        lines.append(
            f"  {label:<16} hold at {entry['hold_at']:.3f}"
            + (f", reject at {reject:.3f}" if reject is not None else "")
            + f"  ({entry['detail']})"
        )
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
