"""Labelled comments for building and evaluating the offline model.

The CSV layout is ``id, text, label_toxic, severe_toxicity, obscene, threat, insult,
identity_attack, source, domain, ...``; a finer label left empty means the source did not
annotate it, which is different from 0 and must stay distinguishable.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
)

SEED_CSV = Path(__file__).with_name("seed_comments.csv")

# The CSVs spell the main label after the Jigsaw column; the rest already match our names.
CSV_COLUMN_FOR_LABEL = {label: label for label in LABELS} | {"toxicity": "label_toxic"}

# A domain with (almost) no clean rows cannot teach what separates toxic from clean text in
# that domain, only that its style predicts toxicity. Such rows still carry the only finer-label
# positives in some data sets, so they are kept, but capped to this share of a sample: enough
# toxic examples in that style, too few for the style to become the dominant toxicity cue.
ONE_SIDED_DOMAIN_SHARE = 0.1
_ONE_SIDED_CLEAN_SHARE = 0.02


@dataclass(frozen=True)
class LabelledComment:
    """One comment with its labels; a label is None where the source did not annotate it."""

    text: str
    labels: dict[str, float | None]
    domain: str | None = None

    @property
    def is_toxic(self) -> bool | None:
        """The main label as a yes/no answer, or None when it is unknown."""
        value = self.labels.get("toxicity")
        return None if value is None else value >= 0.5


def read_labelled_csv(
    path: Path | str,
    *,
    max_rows: int | None = None,
    seed: int = 0,
    one_sided_share: float = ONE_SIDED_DOMAIN_SHARE,
) -> list[LabelledComment]:
    """Read labelled comments; with ``max_rows``, a deterministic, domain-balanced sample.

    Without ``max_rows`` every row with text is returned in file order, untouched, which is
    what evaluation wants. With it, rows are drawn for training: domains made only of toxic
    rows are capped (see ``ONE_SIDED_DOMAIN_SHARE``) and the rest is stratified by domain and
    toxicity, so the same file, ``max_rows`` and ``seed`` always give the same rows.
    """
    comments = list(_parse_rows(Path(path)))
    if max_rows is None:
        return comments
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    return sample_balanced(comments, max_rows, seed=seed, one_sided_share=one_sided_share)


def sample_balanced(
    comments: Sequence[LabelledComment],
    max_rows: int,
    *,
    seed: int = 0,
    one_sided_share: float = ONE_SIDED_DOMAIN_SHARE,
) -> list[LabelledComment]:
    """Pick at most ``max_rows`` comments, capping toxic-only domains; file order is kept."""
    rng = random.Random(seed)
    one_sided = _toxic_only_domains(comments)
    capped = [i for i, c in enumerate(comments) if c.domain in one_sided]
    others = [i for i, c in enumerate(comments) if c.domain not in one_sided]
    others_take, capped_take = _one_sided_budget(
        len(others), len(capped), max_rows, one_sided_share
    )
    chosen = _stratified(comments, capped, capped_take, rng)
    chosen += _stratified(comments, others, others_take, rng)
    return [comments[i] for i in sorted(chosen)]


def split_heldout(
    comments: Sequence[LabelledComment], fraction: float, *, seed: int = 0
) -> tuple[list[LabelledComment], list[LabelledComment]]:
    """Split into (train, held-out), stratified by domain and toxicity, deterministically."""
    rng = random.Random(seed)
    heldout: set[int] = set()
    for members in _strata(comments, range(len(comments))).values():
        rng.shuffle(members)
        heldout.update(members[: round(len(members) * fraction)])
    train = [c for i, c in enumerate(comments) if i not in heldout]
    return train, [comments[i] for i in sorted(heldout)]


def _parse_rows(path: Path) -> Iterable[LabelledComment]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "label_toxic"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            text = (row.get("text") or "").strip()
            if not text:
                continue
            labels = {
                label: _parse_label(row.get(column), path, reader.line_num)
                for label, column in CSV_COLUMN_FOR_LABEL.items()
            }
            yield LabelledComment(text=text, labels=labels, domain=row.get("domain") or None)


def _parse_label(raw: str | None, path: Path, line: int) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{path}:{line}: label {raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{path}:{line}: label {raw!r} is outside [0, 1]")
    return value


def _toxic_only_domains(comments: Sequence[LabelledComment]) -> set[str | None]:
    counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for comment in comments:
        if comment.is_toxic is not None:
            counts[comment.domain][comment.is_toxic] += 1
    return {
        domain
        for domain, (clean, toxic) in counts.items()
        if toxic and clean / (clean + toxic) < _ONE_SIDED_CLEAN_SHARE
    }


def _one_sided_budget(
    others: int, one_sided: int, max_rows: int, share: float = ONE_SIDED_DOMAIN_SHARE
) -> tuple[int, int]:
    """Rows to draw from (other domains, toxic-only domains) for a sample of ``max_rows``."""
    if not others:
        return 0, min(one_sided, max_rows)
    others_take = min(others, max_rows - min(one_sided, int(max_rows * share)))
    # The cap is a share of the sample actually drawn, which is smaller than max_rows when
    # the file runs out of rows from the other domains.
    one_sided_take = min(one_sided, int(others_take * share / (1 - share)), max_rows - others_take)
    return others_take, one_sided_take


def _strata(
    comments: Sequence[LabelledComment], indices: Iterable[int]
) -> dict[tuple[str, str], list[int]]:
    # Keys are strings so that strata sort the same way on every run, which keeps the
    # seeded draws reproducible.
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in indices:
        comment = comments[i]
        groups[(comment.domain or "", str(comment.is_toxic))].append(i)
    return dict(sorted(groups.items()))


def _stratified(
    comments: Sequence[LabelledComment], indices: list[int], count: int, rng: random.Random
) -> list[int]:
    if count >= len(indices):
        return list(indices)
    if count <= 0:
        return []
    groups = _strata(comments, indices)
    quotas = _proportional_quotas([len(g) for g in groups.values()], count)
    chosen: list[int] = []
    for members, quota in zip(groups.values(), quotas, strict=True):
        chosen += rng.sample(members, quota)
    return chosen


def _proportional_quotas(sizes: list[int], count: int) -> list[int]:
    """Split ``count`` across groups in proportion to their sizes (largest remainder)."""
    total = sum(sizes)
    exact = [size * count / total for size in sizes]
    quotas = [int(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - quotas[i], reverse=True)
    for i in by_remainder[: count - sum(quotas)]:
        quotas[i] += 1
    return quotas
