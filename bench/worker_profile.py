"""Where a worker's time goes per batch: a cProfile of ``score_and_decide`` on real rows.

    python -m bench.worker_profile [--comments 320] [--threads 1] [--batch 32]

Stores pending comments in a fresh PostgreSQL database, then scores them in batches as a
worker process does (same service function, same scorer, one torch thread by default, as in
a worker with one process per core), under cProfile. Prints the share of the time spent in
the model's forward passes (each signal), language detection, reading and writing the
database, and the rest; the message handling of Celery is measured by ``make bench``
(end to end against the ceiling), not here.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from bench.drain import store_pending
from bench.stack import bench_settings, fresh_postgres, new_site_key
from bench.workload import comment_texts
from moderation.config import default_model_dir
from moderation.db import make_engine, make_session_factory


def parts() -> dict[str, object]:
    """The functions whose cumulative time is reported, by label (nested ones overlap)."""
    from moderation.scoring.bilstm import BiLSTMSignal
    from moderation.scoring.detoxify_scorer import DetoxifyScorer
    from moderation.scoring.ensemble import EnsembleScorer, ProfanitySignal, SentenceMaxSignal
    from moderation.scoring.language import detect_languages
    from moderation.services import decisions
    from moderation.services.explanation import score_sentences

    return {
        "model: MiniLM (Detoxify predict)": DetoxifyScorer.score_batch,
        "model: BiLSTM": BiLSTMSignal.score,
        "model: profanity": ProfanitySignal.score,
        "  of which per-sentence signals": SentenceMaxSignal.score,
        "combination of the signals": EnsembleScorer.combine,
        "sentences of held comments": score_sentences,
        "language detection": detect_languages,
        "database: read pending": decisions.pending_comments,
        "database: write decisions": decisions.store_decisions,
    }


def profile(comments: int, threads: int, batch: int, model: str) -> tuple[float, dict[str, float]]:
    """Seconds for all batches, and seconds per part."""
    from moderation.scoring import scorer_for_model
    from moderation.services.decisions import score_and_decide

    texts, _ = comment_texts(comments + batch)
    scorer = scorer_for_model(model, num_threads=threads)
    with fresh_postgres() as url:
        settings = bench_settings(url, model=model)
        key = new_site_key(settings)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        warm = store_pending(settings, key, texts[:batch])
        score_and_decide(sessions, warm, scorer)
        ids = store_pending(settings, key, texts[batch:])
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for start in range(0, len(ids), batch):
            score_and_decide(sessions, ids[start : start + batch], scorer)
        profiler.disable()
        elapsed = time.perf_counter() - started
        engine.dispose()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    where = {
        (f.__code__.co_filename, f.__code__.co_firstlineno, f.__code__.co_name): label
        for label, f in parts().items()
    }
    seconds = dict.fromkeys(parts(), 0.0)
    for function, (_cc, _nc, _tt, cumulative, _callers) in stats.items():
        if function in where:
            seconds[where[function]] += cumulative
    return elapsed, seconds


def main() -> None:
    """Profile and print the split."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--comments", type=int, default=320)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    elapsed, split = profile(args.comments, args.threads, args.batch, args.model)
    print(f"{args.comments} comments in batches of {args.batch}: {elapsed:.1f} s under cProfile")
    for label, seconds in split.items():
        print(f"  {label:42} {seconds:7.2f} s  {100 * seconds / elapsed:5.1f} %")
    print("  (parts can nest: the sentence pass runs the signals again)")


if __name__ == "__main__":
    main()
