"""Detoxify behind the ``Scorer`` interface.

torch and detoxify are imported only when the model loads, on the first ``score_batch``:
the web process imports this module but must never pay for (or fork with) torch.
"""

from __future__ import annotations

import io
import json
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moderation.config import DETOXIFY_HUB_MODELS
from moderation.ops.metrics import observe_scoring
from moderation.scoring.model_build import CHECKPOINT_FILE, HF_DIR, META_FILE

if TYPE_CHECKING:
    from detoxify import Detoxify

QUANTIZATIONS = frozenset({"int8"})
# Texts per forward pass, and padded tokens per pass, on CUDA.
GPU_CHUNK_SIZE = 512
GPU_CHUNK_TOKENS = 512 * 128


class DetoxifyScorer:
    """Scores comments with a Detoxify hub model or a directory written by ``build_model``.

    Hub names (``original``, ``unbiased``, ...) download on first use and need internet; a
    local directory loads offline from wherever it has been moved to.
    """

    # Detoxify pads a batch to its longest comment, so texts are scored in groups of
    # similar length, each at most chunk_size texts and about chunk_tokens padded tokens.
    chunk_size = 32
    chunk_tokens = 2048

    def __init__(
        self,
        model: str,
        *,
        quantize: str | None = None,
        num_threads: int | None = None,
        record: bool = True,
        device: str = "cpu",
    ) -> None:
        """Remember what to load; nothing heavy happens until the first ``score_batch``.

        ``record`` counts forward passes in the metrics; a scorer inside another reports
        through that one instead.
        """
        if quantize is not None and quantize not in QUANTIZATIONS:
            raise ValueError(f"unknown quantization {quantize!r}; expected {sorted(QUANTIZATIONS)}")
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        self._model = model
        self._quantize = quantize
        self._num_threads = num_threads
        self._detoxify: Detoxify | None = None
        self._meta: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._record = record
        self.device = device
        if device == "cuda":
            # A GPU scores a long batch in about the time of a short one: pad less often.
            self.chunk_size, self.chunk_tokens = GPU_CHUNK_SIZE, GPU_CHUNK_TOKENS

    @property
    def is_hub_model(self) -> bool:
        """True when the model is one of Detoxify's published names rather than a directory."""
        return self._model in DETOXIFY_HUB_MODELS

    @property
    def model_name(self) -> str:
        """The hub name, or the name recorded in a local model's ``meta.json``."""
        if self.is_hub_model:
            return self._model
        return str(self._local_meta().get("name") or Path(self._model).name)

    @property
    def model_version(self) -> str:
        """Identifies the weights that produced a score; quantized scores differ slightly."""
        if self.is_hub_model:
            version = f"detoxify-{metadata.version('detoxify')}"
        else:
            version = str(self._local_meta().get("version") or "unknown")
        return f"{version}+{self._quantize}" if self._quantize else version

    @property
    def meta(self) -> dict[str, Any]:
        """The local model's ``meta.json``; empty for a hub model."""
        return {} if self.is_hub_model else self._local_meta()

    @property
    def thresholds(self) -> dict[str, float]:
        """Hold thresholds the build recorded on rows it did not train on; none for hub models."""
        if self.is_hub_model:
            return {}
        recorded = self._local_meta().get("thresholds") or {}
        return {k: float(v) for k, v in (recorded.get("hold_at") or {}).items()}

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label the model scores; a hub model is loaded to find out."""
        if self._detoxify is None and not self.is_hub_model:
            labels = self._local_meta().get("labels")
            if labels:
                return tuple(labels)
        return tuple(self._loaded().class_names)

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """One ``{label: probability}`` dict per text, in input order."""
        if not texts:
            return []
        detoxify = self._loaded()
        self._use_thread_budget()
        lengths = [
            len(ids) for ids in detoxify.tokenizer(list(texts), truncation=True)["input_ids"]
        ]
        results: list[dict[str, float]] = [{} for _ in texts]
        passes: list[tuple[float, int]] = []
        for chunk in length_groups(lengths, self.chunk_size, self.chunk_tokens):
            started = time.perf_counter()
            predicted = detoxify.predict([texts[i] for i in chunk])
            passes.append((time.perf_counter() - started, len(chunk)))
            for row, i in enumerate(chunk):
                results[i] = {
                    label: _probability(values, row) for label, values in predicted.items()
                }
        if self._record:
            observe_scoring(self.model_name, self.model_version, passes)
        return results

    def _use_thread_budget(self) -> None:
        """Make sure the thread that scores uses ``num_threads``.

        The model may have loaded in another thread (the worker's warm-up), and with some
        OpenMP runtimes the setting belongs to the thread that made it; a scoring thread
        on all cores would oversubscribe a machine that several worker processes share.
        """
        if self._num_threads is None:
            return
        import torch

        if torch.get_num_threads() != self._num_threads:
            torch.set_num_threads(self._num_threads)

    def check(self) -> None:
        """Raise when a local model's files are missing (a hub model downloads on first use)."""
        if not self.is_hub_model:
            self._model_dir()

    def warm_up(self) -> None:
        """Load the model now rather than on the first batch; errors wait for that batch."""
        try:
            self._loaded()
        except Exception:  # the first score_batch raises it again, where it is handled
            return

    def _loaded(self) -> Detoxify:
        if self._detoxify is None:
            with self._lock:
                if self._detoxify is None:
                    self._detoxify = self._load()
        return self._detoxify

    def _load(self) -> Detoxify:
        import torch
        from detoxify import Detoxify

        if self._num_threads:
            torch.set_num_threads(self._num_threads)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("MODERATION_MODEL_DEVICE=cuda, but torch sees no CUDA device")
        if self.is_hub_model:
            detoxify = Detoxify(self._model, device=self.device)
        else:
            model_dir = self._model_dir()
            # Read together with the weights so that name and version match what is loaded
            # even if the directory was rebuilt after the properties were first read.
            self._meta = _read_meta(model_dir)
            detoxify = Detoxify(
                checkpoint=_relocated_checkpoint(model_dir),
                huggingface_config_path=str(model_dir / HF_DIR),
                device=self.device,
            )
        if self._quantize == "int8":
            detoxify.model = _quantize_int8(detoxify.model)
        if self.device == "cuda":
            detoxify.model = detoxify.model.half()
        detoxify.model.eval()
        return detoxify

    def _model_dir(self) -> Path:
        model_dir = Path(self._model).expanduser().resolve()
        if not (model_dir / CHECKPOINT_FILE).is_file():
            raise FileNotFoundError(
                f"no model at {model_dir} (expected {CHECKPOINT_FILE}); build one with "
                f"`moderation model build` or name a Detoxify model "
                f"({', '.join(sorted(DETOXIFY_HUB_MODELS))})"
            )
        return model_dir

    def _local_meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = _read_meta(Path(self._model).expanduser())
        return self._meta


def length_groups(lengths: list[int], max_size: int, max_tokens: int) -> list[list[int]]:
    """Indices grouped by similar token length so that padding wastes little of a forward pass.

    Sorted by length, a group closes when one more text would exceed ``max_size`` texts,
    about ``max_tokens`` padded tokens, or a length half again as long as its shortest.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[index]
        if current and (
            len(current) >= max_size
            or (len(current) + 1) * length > max_tokens
            or length > lengths[current[0]] * 1.5 + 8
        ):
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    return groups


def model_meta(model: str) -> dict[str, Any]:
    """A built model's ``meta.json``; empty for a hub name or a directory without one."""
    if model in DETOXIFY_HUB_MODELS:
        return {}
    return _read_meta(Path(model).expanduser())


def _read_meta(model_dir: Path) -> dict[str, Any]:
    """The model's ``meta.json``, or an empty dict when it is missing or unreadable."""
    try:
        meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _relocated_checkpoint(model_dir: Path) -> io.BytesIO:
    """The checkpoint with ``model_type`` pointing at this directory's ``hf/``.

    Detoxify resolves ``model_type`` with ``from_pretrained``; the path written at build time
    is stale once the directory moves. Loading with ``weights_only`` also refuses a
    checkpoint that carries arbitrary pickled code before Detoxify unpickles it unrestricted.
    """
    import torch

    checkpoint = torch.load(model_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    checkpoint["config"]["arch"]["args"]["model_type"] = str(model_dir / HF_DIR)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return buffer


def _quantize_int8(model: Any) -> Any:
    """Dynamic int8 weights for every Linear layer: 2-4x faster on CPU, scores within ~0.005."""
    import torch

    # torch announces that this API moves to the separate torchao package; it still works in
    # every torch this project admits, and the warnings would only alarm operators.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated")
        warnings.filterwarnings("ignore", ".*quantized tensor creation functions")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _probability(values: float | list[float], row: int) -> float:
    # Detoxify returns a bare float instead of a list when it scored a single text.
    value = values if isinstance(values, float) else values[row]
    return min(1.0, max(0.0, float(value)))
