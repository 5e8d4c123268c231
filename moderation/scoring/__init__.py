"""Toxicity scoring behind one small interface; the real scorer wraps Detoxify.

Importing this package never imports torch: the web process must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from moderation.config import Settings


class Scorer(Protocol):
    """Scores many texts at once, one ``{label: probability}`` dict per text."""

    model_name: str
    model_version: str

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """Score every text; the result is in input order."""
        ...


def model_thresholds(scorer: object) -> dict[str, float]:
    """The hold thresholds a scorer's model recorded; empty when it recorded none."""
    return dict(getattr(scorer, "thresholds", None) or {})


def model_thresholds_source(scorer: object) -> str | None:
    """How the model chose its recorded thresholds, in words (``meta.json``)."""
    meta = getattr(scorer, "meta", None) or {}
    return (meta.get("thresholds") or {}).get("source")


def scorer_from_settings(settings: Settings, threads: int | None = None) -> Scorer:
    """The scorer the settings describe; the model loads on first use."""
    quantize = None if settings.model_quantize == "none" else settings.model_quantize
    return scorer_for_model(
        settings.model,
        quantize=quantize,
        num_threads=threads or settings.model_threads,
        device=settings.model_device,
    )


def check_device(device: str, quantize: str | None) -> None:
    """Refuse what cannot run: int8 (CPU only) on CUDA, CUDA on a machine without it."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"MODERATION_MODEL_DEVICE: unknown device {device!r}; cpu or cuda")
    if device == "cuda" and quantize is not None:
        raise ValueError("MODERATION_MODEL_QUANTIZE=int8 runs on the CPU only, not with cuda")


def scorer_for_model(
    model: str,
    *,
    quantize: str | None = None,
    num_threads: int | None = None,
    device: str = "cpu",
) -> Scorer:
    """The default combined scorer, or Detoxify on a hub name or a trained build's directory.

    ``device``: where the torch signals run (``cpu`` or ``cuda``: fp16, larger batches).
    """
    check_device(device, quantize)
    from moderation.scoring.blended import BlendedScorer, blend_weight
    from moderation.scoring.detoxify_scorer import DetoxifyScorer, model_meta
    from moderation.scoring.ensemble import EnsembleScorer, is_ensemble_dir

    if is_ensemble_dir(model):
        return EnsembleScorer(model, quantize=quantize, num_threads=num_threads, device=device)
    scorer = DetoxifyScorer(model, quantize=quantize, num_threads=num_threads, device=device)
    weight = blend_weight(model_meta(model))
    return scorer if weight is None else BlendedScorer(scorer, weight)


def describe_model(scorer: object) -> dict[str, object]:
    """What ops and moderators need to know about a loaded model: name, thresholds, quality."""
    meta = getattr(scorer, "meta", None) or {}
    evaluation = meta.get("evaluation") or {}
    roc_auc = evaluation.get("roc_auc")
    quality = {
        "toxicity_roc_auc": roc_auc.get("toxicity") if isinstance(roc_auc, dict) else None,
        "recall": evaluation.get("recall"),
        "clean_held_share": evaluation.get("clean_held_share"),
        "measured_on": (meta.get("fitted_on") or {}).get("file"),
    }
    return {
        "name": getattr(scorer, "model_name", None),
        "version": getattr(scorer, "model_version", None),
        "thresholds": model_thresholds(scorer),
        "thresholds_source": model_thresholds_source(scorer),
        "quality": {k: v for k, v in quality.items() if v is not None},
    }
