"""Realistic comment texts for benchmarks: dev.csv's when present, else the bundled seed set."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from moderation.scoring.training_data import SEED_CSV

ROOT = Path(__file__).resolve().parent.parent
DEV_CSV = ROOT.parent / "shared" / "data" / "dev.csv"


def comment_texts(count: int, seed: int = 7) -> tuple[list[str], str]:
    """``count`` texts drawn with the length mix of real comments, and where they came from."""
    source = DEV_CSV if DEV_CSV.exists() else SEED_CSV
    with source.open(newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(count)], source.name


def labelled_texts(limit: int = 1000, seed: int = 7) -> list[str]:
    """Texts of labelled comments, for measuring score drift."""
    texts, _ = comment_texts(limit, seed)
    return texts
