"""A site's moderation policy and the pure function that turns scores into a decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from moderation.models import Status
from moderation.scoring.language import language_name

LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
# Used only with a model that records no thresholds of its own (Detoxify's published weights,
# an older build): every model built here records thresholds chosen on labelled comments.
FALLBACK_HOLD_AT = {
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


class SitePolicy(BaseModel):
    """A site's choices; bands it does not set come from the model's recorded thresholds.

    ``labels`` holds only the site's own bands. ``in_force`` lays them over the model's
    thresholds, which is the policy ``decide`` applies.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, LabelBands] = Field(default_factory=dict)
    # Publish unscored comments when scoring fails for good (a site's explicit choice).
    fail_open: bool = False
    # A comment in a language no loaded model covers: held for a person, or published.
    unsupported_language: Literal["hold", "publish"] = "hold"
    # The site's own combination of the default scorer's signals (``model tune --site``).
    combination: dict[str, Any] | None = None
    # How the site's thresholds and combination were tuned: file, rows, before and after.
    tuned: dict[str, Any] | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> SitePolicy:
        """The policy a site row holds."""
        return cls.model_validate(stored or {})

    @classmethod
    def with_thresholds(cls, hold_at: Mapping[str, float]) -> SitePolicy:
        """A policy that holds each label from the given score."""
        return cls(labels={label: LabelBands(hold_at=value) for label, value in hold_at.items()})

    def in_force(self, model_thresholds: Mapping[str, float] | None) -> SitePolicy:
        """The bands applied: the model's thresholds (the fallback for labels it records
        none for), the site's on top."""
        base = {**FALLBACK_HOLD_AT, **(model_thresholds or {})}
        bands = {label: LabelBands(hold_at=value) for label, value in base.items()}
        return self.model_copy(update={"labels": {**bands, **self.labels}})


def thresholds_in_force(
    policy: SitePolicy,
    model_thresholds: Mapping[str, float] | None,
    *,
    model: str | None,
    model_source: str | None,
) -> dict[str, Any]:
    """Each label's bands in force and where they come from, for people to read.

    ``from`` is ``site`` (set or tuned for the site), ``model`` (recorded by the model on
    labelled rows it was not fitted on) or ``fallback`` (a model that records none).
    """
    labels = {}
    for label, bands in policy.in_force(model_thresholds).labels.items():
        if label in policy.labels:
            origin = "site"
            detail = "tuned on the site's moderators' decisions" if policy.tuned else "site setting"
        elif model_thresholds and label in model_thresholds:
            origin, detail = "model", model_source or "recorded by the model"
        else:
            origin, detail = "fallback", "built-in; the model records no thresholds"
        labels[label] = {
            "hold_at": bands.hold_at,
            "reject_at": bands.reject_at,
            "from": origin,
            "detail": detail,
        }
    return {"model": model or "unknown", "labels": labels}


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


LANGUAGE_NOT_SUPPORTED = "language_not_supported"


@dataclass(frozen=True)
class LanguageNotSupported(Reason):
    """No loaded model covers the comment's language, so no score decided it."""

    code: str = LANGUAGE_NOT_SUPPORTED
    language: str = ""

    @property
    def message(self) -> str:
        """E.g. ``language not supported: German (de)``."""
        return f"language not supported: {language_name(self.language)}"


@dataclass(frozen=True)
class Decision:
    """The outcome for one comment and every reason behind it."""

    outcome: Status
    reasons: tuple[Reason, ...] = field(default=())


def decide(
    scores: Mapping[str, float],
    policy: SitePolicy,
    *,
    premoderate: bool = False,
    model_hold_at: Mapping[str, float] | None = None,
) -> Decision:
    """Turn per-label scores into approve, hold or reject under the site's policy.

    Labels the site sets no band for hold from ``model_hold_at`` (the model's recorded
    thresholds), else from the fallback: a policy is never without thresholds.
    """
    policy = policy.in_force(model_hold_at)
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


def hold_thresholds(
    policy: SitePolicy, model_hold_at: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The score per label from which a site stops publishing: its hold (else reject) band."""
    thresholds = {}
    for label, bands in policy.in_force(model_hold_at).labels.items():
        threshold = bands.hold_at if bands.hold_at is not None else bands.reject_at
        if threshold is not None:
            thresholds[label] = threshold
    return thresholds


def language_not_supported(
    policy: SitePolicy, language: str, *, premoderate: bool = False
) -> Decision:
    """What happens to a comment no loaded model can score: held for a person, or published
    unscored where the site chose so; never decided on a score of another language's model."""
    reason = LanguageNotSupported(language=language)
    if premoderate:
        return Decision(Status.HELD, (Reason("premoderation"), reason))
    if policy.unsupported_language == "publish":
        return Decision(Status.APPROVED, (reason,))
    return Decision(Status.HELD, (reason,))


def scoring_failed(policy: SitePolicy) -> Decision:
    """What happens to a comment the workers could not score."""
    if policy.fail_open:
        return Decision(Status.APPROVED, (Reason("scoring_failed_fail_open"),))
    return Decision(Status.HELD, (Reason("scoring_failed"),))
