"""The ``moderation`` command: database, sites, model, and the all-in-one dev runner."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from moderation.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    """A session factory on MODERATION_DATABASE_URL; its connections closed afterwards."""
    from moderation.db import make_engine, make_session_factory

    engine = make_engine(_settings().database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@click.group()
def main() -> None:
    """Self-hosted comment moderation."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations to MODERATION_DATABASE_URL."""
    from moderation.migrate import upgrade_database

    settings = _settings()
    upgrade_database(settings.database_url, revision)
    click.echo(f"database at {revision}")


@main.command("create-site")
@click.argument("name")
def create_site_command(name: str) -> None:
    """Add a site and print its API key (shown once, as the last line)."""
    from moderation.db import unit_of_work
    from moderation.services.sites import create_site, site_by_name

    with _database() as sessions, unit_of_work(sessions) as session:
        if site_by_name(session, name) is not None:
            raise click.ClickException(f"a site named {name!r} exists already")
        _site, key = create_site(session, name)
    click.echo(f"created site {name!r}; its API key, shown only now:")
    click.echo(key)


@main.group()
def model() -> None:
    """The offline toxicity model."""


@model.command("build")
@click.option(
    "--train",
    "train_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled CSV (the layout of shared/data/*.csv); default: the bundled seed set.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory; default: MODERATION_MODEL.",
)
@click.option("--max-rows", type=int, help="Train on at most this many rows.")
@click.option("--epochs", type=int, help="Training epochs.")
@click.option("--force", is_flag=True, help="Rebuild even if the model exists.")
def model_build(
    train_csv: Path | None,
    output: Path | None,
    max_rows: int | None,
    epochs: int | None,
    force: bool,
) -> None:
    """Build an offline Detoxify-format model from the MiniLM encoder."""
    from moderation.scoring.model_build import build_model

    settings = _settings()
    if output is None and settings.model_is_hub_name:
        raise click.ClickException("MODERATION_MODEL names a hub model; pass --output DIR")
    target = output or Path(settings.model)
    if (target / "model.ckpt").exists() and not force:
        click.echo(f"model exists at {target} (use --force to rebuild)")
        return
    build_model(target, train_csv, max_rows=max_rows, epochs=epochs, log=click.echo)
    click.echo(f"model written to {target}")


@main.command("run")
@click.option("--port", type=int, envvar="PORT", default=8000, show_default=True)
@click.option(
    "--workers",
    "worker_processes",
    type=int,
    default=2,
    show_default=True,
    help="Celery worker processes.",
)
def run_command(port: int, worker_processes: int) -> None:
    """Run web, worker, beat and (if needed) Redis in the foreground; Ctrl-C stops all."""
    from moderation.devserver import run_all

    sys.exit(run_all(_settings(), port=port, worker_processes=worker_processes))


@main.command("evaluate")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_name", help="Model directory or Detoxify name [MODERATION_MODEL].")
@click.option("--site", help="Judge this site's thresholds (default: the default policy).")
@click.option("--target-recall", type=click.FloatRange(0.01, 1.0), default=0.9, show_default=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("var/precision-recall.png"),
    show_default=True,
)
@click.option("--max-rows", type=click.IntRange(1), help="Evaluate only the first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate_command(
    csv_file: Path,
    model_name: str | None,
    site: str | None,
    target_recall: float,
    plot: Path,
    max_rows: int | None,
    as_json: bool,
) -> None:
    """Score a labelled CSV and report ROC-AUC, PR-AUC, recall and moderator workload."""
    import json

    from moderation.evaluation import evaluate, format_report, plot_precision_recall
    from moderation.scoring.detoxify_scorer import DetoxifyScorer
    from moderation.scoring.training_data import read_labelled_csv

    settings = _settings()
    comments = read_labelled_csv(csv_file)[:max_rows]
    scorer = DetoxifyScorer(model_name or settings.model, num_threads=os.cpu_count())
    scores = scorer.score_batch([comment.text for comment in comments])
    figures = evaluate(comments, scores, _policy_of(settings, site), target_recall=target_recall)
    figures["model"] = {"name": scorer.model_name, "version": scorer.model_version}
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_precision_recall(comments, scores, figures, str(plot))
    figures["plot"] = str(plot)
    click.echo(json.dumps(figures, indent=2) if as_json else format_report(figures))


def _policy_of(settings: Settings, site_name: str | None):
    from moderation.policy import SitePolicy

    if site_name is None:
        return SitePolicy()
    from moderation.services.sites import site_by_name

    with _database() as sessions, sessions() as session:
        site = site_by_name(session, site_name)
        if site is None:
            raise click.ClickException(f"no site named {site_name!r}")
        return SitePolicy.from_stored(site.policy)


@main.command("rotate-key")
@click.argument("name")
def rotate_key_command(name: str) -> None:
    """Give a site a new API key (printed once, as the last line); the old one stops working."""
    from moderation.db import unit_of_work
    from moderation.services.sites import rotate_api_key, site_by_name

    with _database() as sessions, unit_of_work(sessions) as session:
        site = site_by_name(session, name)
        if site is None:
            raise click.ClickException(f"no site named {name!r}")
        key = rotate_api_key(session, site)
    click.echo(f"new API key of site {name!r}, shown only now:")
    click.echo(key)
