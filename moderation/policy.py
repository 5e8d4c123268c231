"""A site's moderation policy and the pure function that turns scores into a decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from moderation.models import Status

LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
DEFAULT_HOLD_AT = {
    "toxicity": 0.5,
    "severe_toxicity": 0.4,
    "obscene": 0.6,
    "threat": 0.4,
    "insult": 0.5,
    "identity_attack": 0.4,
}


class LabelBands(BaseModel):
    """Publish below ``hold_at``, hold from it, reject from ``reject_at`` (off when None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_at: float | None = Field(None, ge=0, le=1)
    reject_at: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _reject_above_hold(self) -> LabelBands:
        if None not in (self.hold_at, self.reject_at) and self.reject_at < self.hold_at:
            raise ValueError("reject_at must not be below hold_at")
        return self


def _default_bands() -> dict[str, LabelBands]:
    return {label: LabelBands(hold_at=value) for label, value in DEFAULT_HOLD_AT.items()}


class SitePolicy(BaseModel):
    """Per-label bands of one site; labels the model does not score are ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, LabelBands] = Field(default_factory=_default_bands)
    # Publish unscored comments when scoring fails for good (a site's explicit choice).
    fail_open: bool = False

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> SitePolicy:
        """The policy a site row holds, defaults filled in."""
        return cls.model_validate(stored or {})


@dataclass(frozen=True)
class Reason:
    """Why a comment got its decision, in terms a moderator can check."""

    code: str
    label: str | None = None
    score: float | None = None
    threshold: float | None = None

    @property
    def message(self) -> str:
        """The reason in plain words, e.g. ``insult 0.83 >= hold at 0.60``."""
        if self.label is None:
            return self.code.replace("_", " ")
        action = "reject" if self.code == "reject_threshold" else "hold"
        return f"{self.label} {self.score:.2f} >= {action} at {self.threshold:.2f}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the plain-words message."""
        return {**asdict(self), "message": self.message}


@dataclass(frozen=True)
class Decision:
    """The outcome for one comment and every reason behind it."""

    outcome: Status
    reasons: tuple[Reason, ...] = field(default=())


def decide(
    scores: Mapping[str, float], policy: SitePolicy, *, premoderate: bool = False
) -> Decision:
    """Turn per-label scores into approve, hold or reject under the site's policy."""
    rejects = _crossed(scores, policy, "reject_at", "reject_threshold")
    holds = _crossed(scores, policy, "hold_at", "hold_threshold")
    if rejects:
        return Decision(Status.REJECTED, rejects + holds)
    if premoderate:
        return Decision(Status.HELD, (Reason("premoderation"), *holds))
    if holds:
        return Decision(Status.HELD, holds)
    return Decision(Status.APPROVED)


def _crossed(
    scores: Mapping[str, float], policy: SitePolicy, band: str, code: str
) -> tuple[Reason, ...]:
    reasons = []
    for label, bands in policy.labels.items():
        threshold = getattr(bands, band)
        score = scores.get(label)
        if threshold is not None and score is not None and score >= threshold:
            reasons.append(Reason(code, label, round(score, 4), threshold))
    return tuple(sorted(reasons, key=lambda r: -(r.score or 0)))


def hold_thresholds(policy: SitePolicy) -> dict[str, float]:
    """The score per label from which a site stops publishing: its hold (else reject) band."""
    thresholds = {}
    for label, bands in policy.labels.items():
        threshold = bands.hold_at if bands.hold_at is not None else bands.reject_at
        if threshold is not None:
            thresholds[label] = threshold
    return thresholds


def scoring_failed(policy: SitePolicy) -> Decision:
    """What happens to a comment the workers could not score."""
    if policy.fail_open:
        return Decision(Status.APPROVED, (Reason("scoring_failed_fail_open"),))
    return Decision(Status.HELD, (Reason("scoring_failed"),))
