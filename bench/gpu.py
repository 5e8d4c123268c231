"""Comments/s of the torch scorers on a GPU: the MiniLM signal and a bert-base-sized model.

    python -m bench.gpu [--device cuda] [--batches 32,128,512] [--comments 2048]

Scores ``dev.csv`` texts (else the bundled seed comments) with the workers' own
``DetoxifyScorer`` (fp16 on CUDA) at each batch size, after a warm-up pass, and prints one
row per model and batch size; the JSON goes to ``bench/results/gpu.json``. The bert-base-sized
model has bert-base-uncased's shape (12 layers, 768 wide, 110M parameters: Detoxify's
``original``) with random weights, written in the Detoxify checkpoint layout next to the
MiniLM signal's tokenizer: its speed is that of the real one, its scores mean nothing.
Needs no network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.workload import comment_texts
from moderation.config import default_model_dir
from moderation.scoring.ensemble import MINILM_DIR, is_ensemble_dir
from moderation.scoring.model_build import CHECKPOINT_FILE, HF_DIR

RESULTS = Path(__file__).parent / "results" / "gpu.json"


def minilm_dir(model: str) -> Path:
    """The Detoxify-format MiniLM signal of the default model (or the model itself)."""
    return Path(model) / MINILM_DIR if is_ensemble_dir(model) else Path(model)


def bert_base_dir(template: Path, into: Path) -> Path:
    """A Detoxify-format checkpoint of bert-base size: random weights, the template tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    checkpoint = torch.load(template / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    hf = into / HF_DIR
    shutil.copytree(template / HF_DIR, hf)
    vocab = json.loads((hf / "config.json").read_text())["vocab_size"]
    labels = checkpoint["config"]["dataset"]["args"]["classes"]
    config = BertConfig(vocab_size=vocab, num_labels=len(labels))
    config.save_pretrained(hf)
    network = BertForSequenceClassification(config)
    checkpoint["state_dict"] = network.state_dict()
    checkpoint["config"]["arch"]["args"]["model_type"] = str(hf)
    torch.save(checkpoint, into / CHECKPOINT_FILE)
    for extra in ("meta.json",):
        if (template / extra).exists():
            shutil.copy(template / extra, into / extra)
    return into


def rate(model_dir: Path, texts: list[str], batch: int, device: str) -> float:
    """Comments/s scoring ``texts`` in passes of ``batch`` (best of two runs)."""
    from moderation.scoring.detoxify_scorer import DetoxifyScorer

    scorer = DetoxifyScorer(str(model_dir), device=device, record=False)
    scorer.chunk_size, scorer.chunk_tokens = batch, batch * 512
    scorer.score_batch(texts[:batch])
    best = 0.0
    for _ in range(2):
        _synchronise(device)
        started = time.perf_counter()
        scorer.score_batch(texts)
        _synchronise(device)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def _synchronise(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    """Measure each model at each batch size and print the table."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--batches", default="32,128,512")
    parser.add_argument("--comments", type=int, default=2048)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine (or pass --device cpu)")
    texts, source = comment_texts(args.comments)
    batches = [int(b) for b in args.batches.split(",")]
    minilm = minilm_dir(args.model)
    results: dict = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "texts": source,
        "comments": len(texts),
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="bert-base-") as scratch:
        models = {"minilm (22M)": minilm, "bert-base (110M)": bert_base_dir(minilm, Path(scratch))}
        for name, directory in models.items():
            for batch in batches:
                per_s = rate(directory, texts, batch, args.device)
                results["rows"].append({"model": name, "batch": batch, "per_s": per_s})
                print(f"{name:18} batch {batch:4}  {per_s:9.1f} comments/s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['device']}, torch {results['torch']}, fp16 on cuda; JSON: {RESULTS}")


if __name__ == "__main__":
    main()
