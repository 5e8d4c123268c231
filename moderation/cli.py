"""The ``moderation`` command: database, sites, model, and the all-in-one dev runner."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from moderation.config import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


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
    from moderation.db import make_engine, make_session_factory, unit_of_work
    from moderation.services.sites import create_site, site_by_name

    sessions = make_session_factory(make_engine(_settings().database_url))
    with unit_of_work(sessions) as session:
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
