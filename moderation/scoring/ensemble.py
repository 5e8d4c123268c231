"""The default scorer: three trained signals that install offline, combined per label.

- ``minilm``: the MiniLM encoder fine-tuned on the seed comments, loaded through Detoxify's
  own code path (six labels);
- ``bilstm``: ``toxic-comment-classifier``'s BiLSTM, trained on Jigsaw's Wikipedia comments
  and ported to torch (six labels);
- ``profanity``: ``alt-profanity-check``, a linear model over words trained on about 200k
  labelled comments (``toxicity`` only).

A model directory of this kind holds ``minilm/``, ``bilstm/`` and a ``meta.json`` with
``"kind": "ensemble"``, the signals' versions, the per-label combination and the hold
thresholds chosen on rows the combination was not fitted on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from moderation.scoring.bilstm import BiLSTMSignal, SignalError
from moderation.scoring.combination import Combination, combine
from moderation.scoring.model_build import CHECKPOINT_FILE, META_FILE
from moderation.scoring.training_data import LABELS

KIND = "ensemble"
MINILM_DIR = "minilm"
BILSTM_DIR = "bilstm"
PROFANITY_PACKAGE = "alt-profanity-check"


class ProfanitySignal:
    """``alt-profanity-check``'s probability that a text is offensive (about 20 µs a text)."""

    name = "profanity"
    labels = ("toxicity",)

    def __init__(self, version: str | None = None):
        self.version = version

    def check(self) -> None:
        """The package must be installed, at the version the combination was fitted with."""
        try:
            installed = metadata.version(PROFANITY_PACKAGE)
        except metadata.PackageNotFoundError:
            raise SignalError(f"profanity signal: {PROFANITY_PACKAGE} is not installed") from None
        if self.version and installed != self.version:
            raise SignalError(
                f"profanity signal: {PROFANITY_PACKAGE} {installed} is installed, "
                f"the model was combined with {self.version}"
            )
        import profanity_check  # noqa: F401  (loads its pickled model: fails here if broken)

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{"toxicity": p}`` per text."""
        from profanity_check import predict_prob

        return [{"toxicity": float(p)} for p in predict_prob(list(texts))]


class SentenceMaxSignal:
    """The highest ``toxicity`` another signal gives any one sentence of a text.

    A long comment with one abusive sentence reads as mostly clean to a whole-text model;
    the most toxic sentence does not. Only cheap signals are worth scoring per sentence.
    """

    labels = ("toxicity",)

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = f"{inner.name}_sentences"

    def check(self) -> None:
        self.inner.check()

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{"toxicity": max over sentences}`` per text."""
        from moderation.scoring.sentences import split_sentences

        pieces: list[str] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            sentences = [text[s.begin : s.end] for s in split_sentences(text)] or [text]
            pieces.extend(sentences)
            owners.extend([index] * len(sentences))
        best = [0.0] * len(texts)
        for owner, scores in zip(owners, self.inner.score(pieces), strict=True):
            best[owner] = max(best[owner], scores["toxicity"])
        return [{"toxicity": value} for value in best]


class MiniLMSignal:
    """The seed-trained MiniLM model, through Detoxify's loader."""

    name = "minilm"
    labels = LABELS

    def __init__(
        self,
        directory: Path,
        *,
        quantize: str | None,
        num_threads: int | None,
        device: str = "cpu",
    ):
        from moderation.scoring.detoxify_scorer import DetoxifyScorer

        self.directory = Path(directory)
        self.scorer = DetoxifyScorer(
            str(directory), quantize=quantize, num_threads=num_threads, record=False, device=device
        )

    def check(self) -> None:
        """The checkpoint and its Hugging Face files must be there (they load on first use)."""
        for needed in (CHECKPOINT_FILE, "hf/config.json"):
            if not (self.directory / needed).is_file():
                raise SignalError(f"minilm signal: {self.directory / needed} is missing")

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text."""
        return self.scorer.score_batch(list(texts))


class EnsembleScorer:
    """Scores with every signal, then combines them per label as ``meta.json`` says."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        quantize: str | None = None,
        num_threads: int | None = None,
        device: str = "cpu",
    ):
        self.directory = Path(model_dir).expanduser().resolve()
        self.meta = read_meta(self.directory)
        if self.meta.get("kind") != KIND:
            raise SignalError(f"{self.directory}: not a combined model (meta.json kind)")
        self.combination: Combination = self.meta["combination"]
        signals_meta = self.meta.get("signals", {})
        # alt-profanity-check is a linear model in scikit-learn: it stays on the CPU.
        bilstm = BiLSTMSignal(self.directory / BILSTM_DIR, device=device)
        profanity = ProfanitySignal(signals_meta.get("profanity", {}).get("version"))
        self.signals = (
            MiniLMSignal(
                self.directory / MINILM_DIR,
                quantize=quantize,
                num_threads=num_threads,
                device=device,
            ),
            bilstm,
            profanity,
            SentenceMaxSignal(bilstm),
            SentenceMaxSignal(profanity),
        )
        self._num_threads = num_threads
        self._checked = False
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return str(self.meta.get("name") or self.directory.name)

    @property
    def model_version(self) -> str:
        return str(self.meta.get("version") or "unknown")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label in LABELS if label in self.combination)

    @property
    def thresholds(self) -> dict[str, float]:
        """The hold threshold per label this model recorded, with nothing else."""
        return dict(self.meta.get("thresholds", {}).get("hold_at", {}))

    def check(self) -> None:
        """Raise ``SignalError`` naming the signal whose files are missing or wrong."""
        with self._lock:
            if self._checked:
                return
            missing = _signal_outputs(self.signals)
            for label, entry in self.combination.items():
                for name in entry["weights"]:
                    if name not in missing:
                        raise SignalError(f"combination of {label} needs {name}, no signal has it")
            for signal in self.signals:
                signal.check()
            self._checked = True

    def warm_up(self) -> None:
        """Load every signal and score one text, so the first real batch is not slow."""
        self.check()
        for signal in self.signals:  # not through score_signals: no comment was scored
            signal.score(["warm-up"])

    def score_signals(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Every signal's outputs per text, named ``<signal>.<label>``."""
        if not texts:
            return []
        self.check()
        rows: list[dict[str, float]] = [{} for _ in texts]
        passes = []
        started = time.perf_counter()
        for signal in self.signals:
            for row, scores in zip(rows, signal.score(texts), strict=True):
                row.update({f"{signal.name}.{label}": value for label, value in scores.items()})
        passes.append((time.perf_counter() - started, len(texts)))
        _observe(self.model_name, self.model_version, passes)
        return rows

    def combine(
        self, signals: Mapping[str, float], combination: Combination | None = None
    ) -> dict[str, float]:
        """Label scores from signal outputs, with the model's combination unless given one."""
        merged = {**self.combination, **(combination or {})}
        return {label: round(value, 6) for label, value in combine(signals, merged).items()}

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text, in input order."""
        return [self.combine(row) for row in self.score_signals(texts)]


def _signal_outputs(signals: Sequence[Any]) -> set[str]:
    return {f"{signal.name}.{label}" for signal in signals for label in signal.labels}


def _observe(name: str, version: str, passes: list[tuple[float, int]]) -> None:
    from moderation.ops.metrics import observe_scoring

    observe_scoring(name, version, passes)


def read_meta(directory: Path) -> dict[str, Any]:
    """A model directory's ``meta.json``; a missing or corrupt one is a ``SignalError``."""
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignalError(f"{path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise SignalError(f"{path}: not a JSON object")
    return meta


def is_ensemble_dir(model: str) -> bool:
    """True when ``model`` is a directory holding a combined model."""
    path = Path(model).expanduser() / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False
