"""How the default scorer combines its signals per label, and how that is fitted.

Each label's score is a logistic regression over the logits of the signals that know the
label: ``sigmoid(bias + sum(weight * logit(p)))``. It is fitted on labelled comments
(the numbers shipped in ``default_scorer.json`` come from labelled news and Wikipedia
comments; ``moderation model tune --site`` refits them on a site's own moderators'
decisions). Hold thresholds are chosen on out-of-fold scores, so they are measured on
rows the combination was not fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from moderation.scoring.training_data import LABELS, LabelledComment

# Signal outputs are named "<signal>.<label>", for example "bilstm.insult".
Signals = Mapping[str, float]
Combination = dict[str, dict[str, Any]]

MAIN_LABEL = "toxicity"
TARGET_RECALL = 0.85
# A finer label holds on its own only when it is confident: at most this share of clean
# comments may reach its threshold, so that it adds little to the main label's workload.
FINER_LABEL_CLEAN_SHARE = 0.005
# Below this many positives (or negatives) a label keeps equal weights: too few to fit.
MIN_CLASS_ROWS_TO_FIT = 25
FOLDS = 5
_EPSILON = 1e-4


def logit(probability: float) -> float:
    """log-odds, with the probability kept away from 0 and 1."""
    p = min(1.0 - _EPSILON, max(_EPSILON, probability))
    return math.log(p / (1.0 - p))


def sigmoid(value: float) -> float:
    """The logistic function, safe for large magnitudes."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


def combine(signals: Signals, combination: Combination) -> dict[str, float]:
    """Every label of ``combination`` scored from the signal outputs it names."""
    scores = {}
    for label, entry in combination.items():
        total = float(entry["bias"])
        for name, weight in entry["weights"].items():
            total += float(weight) * logit(signals[name])
        scores[label] = sigmoid(total)
    return scores


def equal_weights(names: Sequence[str]) -> dict[str, Any]:
    """The mean of the signals' logits: what a label gets without enough rows to fit."""
    return {"bias": 0.0, "weights": {name: 1.0 / len(names) for name in names}, "fitted": False}


def features_for(label: str, available: Sequence[str]) -> list[str]:
    """The signal outputs that score ``label``, in a stable order."""
    return sorted(name for name in available if name.rsplit(".", 1)[1] == label)


def fit_label(
    features: Sequence[str], rows: Sequence[Signals], targets: Sequence[int]
) -> dict[str, Any]:
    """Logistic regression of ``targets`` on the signals' logits (equal weights if too few)."""
    positives = sum(targets)
    if min(positives, len(targets) - positives) < MIN_CLASS_ROWS_TO_FIT:
        return equal_weights(features)
    from sklearn.linear_model import LogisticRegression

    matrix = [[logit(row[name]) for name in features] for row in rows]
    model = LogisticRegression(C=1.0, max_iter=1000).fit(matrix, list(targets))
    return {
        "bias": round(float(model.intercept_[0]), 6),
        "weights": {
            name: round(float(w), 6) for name, w in zip(features, model.coef_[0], strict=True)
        },
        "fitted": True,
    }


def _known(comments: Sequence[LabelledComment], label: str) -> list[int]:
    return [i for i, c in enumerate(comments) if c.labels.get(label) is not None]


def fit_combination(
    rows: Sequence[Signals],
    comments: Sequence[LabelledComment],
    labels: Sequence[str] = LABELS,
    fallback: Combination | None = None,
) -> Combination:
    """One entry per label, fitted on the comments that have that label.

    A label with too few rows to fit takes ``fallback``'s entry when it has one (a site's
    few decisions keep the model's fitted numbers), else equal weights.
    """
    available = list(rows[0]) if rows else []
    combination: Combination = {}
    for label in labels:
        features = features_for(label, available)
        if not features:
            continue
        known = _known(comments, label)
        targets = [int((comments[i].labels[label] or 0) >= 0.5) for i in known]
        entry = fit_label(features, [rows[i] for i in known], targets)
        if not entry["fitted"] and fallback and label in fallback:
            entry = fallback[label]
        combination[label] = entry
    return combination


def out_of_fold_scores(
    rows: Sequence[Signals],
    comments: Sequence[LabelledComment],
    labels: Sequence[str] = LABELS,
    folds: int = FOLDS,
    seed: int = 0,
    fallback: Combination | None = None,
) -> list[dict[str, float]]:
    """Each row scored by a combination fitted on the other folds: honest figures and thresholds."""
    order = list(range(len(rows)))
    # Interleave by label and domain so that every fold sees each kind of row.
    order.sort(key=lambda i: (comments[i].domain or "", bool(comments[i].is_toxic), _mix(i, seed)))
    fold_of = {index: position % folds for position, index in enumerate(order)}
    scores: list[dict[str, float]] = [{} for _ in rows]
    for fold in range(folds):
        train = [i for i in order if fold_of[i] != fold]
        combination = fit_combination(
            [rows[i] for i in train], [comments[i] for i in train], labels, fallback
        )
        for i in order:
            if fold_of[i] == fold:
                scores[i] = combine(rows[i], combination)
    return scores


def _mix(index: int, seed: int) -> int:
    return (index * 2654435761 + seed) % 4294967296


def choose_thresholds(
    scores: Sequence[Mapping[str, float]],
    comments: Sequence[LabelledComment],
    *,
    target_recall: float = TARGET_RECALL,
    finer_clean_share: float = FINER_LABEL_CLEAN_SHARE,
) -> dict[str, float]:
    """Hold thresholds: the main label at ``target_recall``; finer labels when confident.

    The main label's threshold is the highest that still catches ``target_recall`` of the
    toxic comments. A finer label's is the lowest that at most ``finer_clean_share`` of
    the clean comments reach (and never below the main label's).
    """
    labelled = [(s, c) for s, c in zip(scores, comments, strict=True) if c.is_toxic is not None]
    toxic = sorted((s[MAIN_LABEL] for s, c in labelled if c.is_toxic), reverse=True)
    if not toxic:
        raise ValueError("no toxic comments to choose a threshold from")
    needed = max(1, math.ceil(target_recall * len(toxic)))
    main = _round_down(toxic[needed - 1])
    thresholds = {MAIN_LABEL: main}
    clean = [s for s, c in labelled if not c.is_toxic]
    for label in scores[0]:
        if label == MAIN_LABEL:
            continue
        values = sorted((s[label] for s in clean), reverse=True)
        allowed = int(finer_clean_share * len(values))
        above = values[allowed] if allowed < len(values) else 0.0
        thresholds[label] = max(main, _round_up(above))
    return thresholds


def _round_down(value: float) -> float:
    return math.floor(value * 1000) / 1000


def _round_up(value: float) -> float:
    return min(1.0, math.ceil(value * 1000 + 1e-9) / 1000)
