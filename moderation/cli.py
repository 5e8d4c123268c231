"""The ``moderation`` command: database, sites, model, and the all-in-one dev runner."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moderation.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def _settings(*, signs: bool = True) -> Settings:
    """The service's settings. A command that signs nothing (one that reads or writes the
    model's files) runs in production without a real MODERATION_SECRET_KEY: it gets a
    throwaway one, used by nothing."""
    overrides = {} if signs else {"secret_key": secrets.token_urlsafe(48)}
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _database(*, signs: bool = True) -> Iterator[sessionmaker[Session]]:
    """A session factory on MODERATION_DATABASE_URL; its connections closed afterwards."""
    from moderation.db import make_engine, make_session_factory

    engine = make_engine(_settings(signs=signs).database_url)
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
    help="Labelled CSV (the layout of shared/data/*.csv): build a MiniLM model trained on it "
    "instead of the default combined scorer.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory; default: MODERATION_MODEL.",
)
@click.option(
    "--one-sided-share",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="With --train: largest share of the sample drawn from a domain with (almost) only "
    "toxic rows; 0 leaves such a domain out.",
)
@click.option("--max-rows", type=int, help="With --train: train on at most this many rows.")
@click.option("--epochs", type=int, help="With --train: training epochs.")
@click.option("--force", is_flag=True, help="Rebuild even if the model exists.")
def model_build(
    train_csv: Path | None,
    output: Path | None,
    one_sided_share: float,
    max_rows: int | None,
    epochs: int | None,
    force: bool,
) -> None:
    """Build the default combined scorer offline (or, with --train, a trained MiniLM model)."""
    from moderation.scoring.default_model import build_default_model
    from moderation.scoring.model_build import META_FILE, build_model

    settings = _settings(signs=False)
    if output is None and settings.model_is_hub_name:
        raise click.ClickException("MODERATION_MODEL names a hub model; pass --output DIR")
    target = output or Path(settings.model)
    if (target / META_FILE).exists() and not force:
        click.echo(f"model exists at {target} (use --force to rebuild)")
        return
    try:
        if train_csv is None:
            build_default_model(target, log=click.echo)
        else:
            build_model(
                target,
                train_csv,
                max_rows=max_rows,
                epochs=epochs,
                one_sided_share=one_sided_share,
                log=click.echo,
            )
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"model written to {target}")


@model.command("tune")
@click.option(
    "--data",
    "data_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled CSV the model was not trained on: the layout of shared/data/*.csv, or a "
    "site's export of its moderators' decisions.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory; default: MODERATION_MODEL.",
)
@click.option("--site", help="Tune this site's combination and thresholds, not the model's.")
def model_tune(data_csv: Path, model_dir: Path | None, site: str | None) -> None:
    """Refit the combination and hold thresholds on labelled comments; report before/after."""
    from moderation.scoring.model_tune import format_report, tune_model

    settings = _settings(signs=False)
    if model_dir is None and settings.model_is_hub_name:
        raise click.ClickException("MODERATION_MODEL names a hub model; pass --model DIR")
    target = model_dir or Path(settings.model)
    try:
        if site is not None:
            report = _tune_site(site, target, data_csv)
        else:
            report = tune_model(target, data_csv, log=click.echo)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_report(report))
    click.echo("hold thresholds now: " + _thresholds_line(report["thresholds"]))
    click.echo(f"recorded for site {site!r}" if site else f"recorded in {target}/meta.json")


def _tune_site(name: str, model_dir: Path, data_csv: Path) -> dict:
    from moderation.db import unit_of_work
    from moderation.policy import SitePolicy
    from moderation.scoring import scorer_for_model
    from moderation.scoring.ensemble import EnsembleScorer
    from moderation.scoring.model_tune import tune_site_policy
    from moderation.services.sites import site_by_name

    scorer = scorer_for_model(str(model_dir), num_threads=os.cpu_count())
    if not isinstance(scorer, EnsembleScorer):
        raise click.ClickException(f"{model_dir} is not the default combined scorer")
    with _database(signs=False) as sessions, unit_of_work(sessions) as session:
        site = site_by_name(session, name)
        if site is None:
            raise click.ClickException(f"no site named {name!r}")
        stored, report = tune_site_policy(
            scorer, SitePolicy.from_stored(site.policy), data_csv, log=click.echo
        )
        site.policy = stored
    return {**report, "thresholds": {k: v["hold_at"] for k, v in stored["labels"].items()}}


def _thresholds_line(thresholds: dict) -> str:
    return ", ".join(f"{label} {value:.3f}" for label, value in thresholds.items())


@model.command("fetch")
@click.argument("name")
def model_fetch(name: str) -> None:
    """Download Detoxify's published model NAME into the caches Detoxify loads it from.

    NAME is original, unbiased, multilingual, original-small or unbiased-small. Run it on a
    host with internet: the checkpoint goes to $TORCH_HOME/hub/checkpoints, the config and
    tokenizer of its model_type to the Hugging Face cache (HF_HOME). Copy both to a host
    without internet, set TORCH_HOME, HF_HOME and HF_HUB_OFFLINE=1 there, and
    MODERATION_MODEL=NAME loads offline.
    """
    from moderation.scoring.fetch import FetchError, describe, fetch_model

    try:
        fetched = fetch_model(name, log=click.echo)
    except FetchError as exc:
        raise click.ClickException(str(exc)) from None
    for line in describe(fetched):
        click.echo(line)


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


@main.command("create-moderator")
@click.argument("email")
@click.option("--site", "site_names", multiple=True, help="A site they moderate (repeatable).")
@click.option("--admin", is_flag=True, help="Sees and acts on every site.")
@click.option("--password", help="Asked for when not given (at least 10 characters).")
def create_moderator_command(
    email: str, site_names: tuple[str, ...], admin: bool, password: str | None
) -> None:
    """Add a moderator who signs in at /login with this email and password."""
    from moderation.db import make_engine, make_session_factory, unit_of_work
    from moderation.services.moderators import AccountError, create_moderator
    from moderation.services.sites import site_by_name

    if not site_names and not admin:
        raise click.UsageError("give --site NAME (or --admin for every site)")
    engine = make_engine(_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            sites = []
            for name in site_names:
                site = site_by_name(session, name)
                if site is None:
                    raise click.ClickException(f"no site named {name!r}")
                sites.append(site)
            # Asked only once the sites are known to exist.
            if password is None:
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            try:
                create_moderator(session, email, password, sites=sites, is_admin=admin)
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    scope = "every site" if admin else ", ".join(site_names)
    click.echo(f"created moderator {email.strip().lower()!r} for {scope}")


@main.command("create-moderator-token")
@click.argument("email")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
def create_moderator_token_command(email: str, name: str) -> None:
    """Issue an API token for a moderator (printed once, as the last line)."""
    from moderation.db import make_engine, make_session_factory, unit_of_work
    from moderation.services.moderators import issue_token, moderator_by_email

    engine = make_engine(_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            moderator = moderator_by_email(session, email)
            if moderator is None:
                raise click.ClickException(f"no moderator with the email {email!r}")
            _row, token = issue_token(session, moderator, name)
    finally:
        engine.dispose()
    click.echo(f"token {name!r} for {moderator.email}; use 'Authorization: Bearer <token>':")
    click.echo(token)


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--timeout",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds to wait for workers to answer.",
)
def status_command(as_json: bool, timeout: float) -> None:
    """Workers, queue, backlog, recent decisions and model; exits 1 when unhealthy."""
    import json

    from moderation.db import make_engine, make_session_factory
    from moderation.ops.status import database_facts, gather_status, render_table
    from moderation.ops.store import OpsStore
    from moderation.tasks_client import TaskQueue

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            database = database_facts(session)
    finally:
        engine.dispose()
    store, celery = OpsStore.from_settings(settings), TaskQueue(settings).celery
    status = gather_status(settings, database, store, celery, inspect_timeout=timeout)
    click.echo(json.dumps(status.as_dict(), indent=2) if as_json else render_table(status))
    sys.exit(0 if status.healthy else 1)


# --- Site integration: widget key, origins, rules, webhooks ----------------------------------


@contextmanager
def _site_unit_of_work(name: str) -> Iterator[tuple[Any, Any]]:
    """A transaction and the named site in it."""
    from moderation.db import make_engine, make_session_factory, unit_of_work
    from moderation.services.sites import site_by_name

    engine = make_engine(_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            site = site_by_name(session, name)
            if site is None:
                raise click.ClickException(f"no site named {name!r}")
            yield session, site
    finally:
        engine.dispose()


@main.group("site")
def site_group() -> None:
    """A site's widget key, allowed origins, rules and webhook."""


@site_group.command("show")
@click.argument("name")
def site_show(name: str) -> None:
    """Everything a site has configured (the webhook secret is not shown)."""
    from moderation.services.integration import site_rules

    with _site_unit_of_work(name) as (_session, site):
        rules = site_rules(site)
        click.echo(f"site:            {site.name}")
        click.echo(f"publishable key: {site.publishable_key or '(none: run site publishable-key)'}")
        click.echo(f"allowed origins: {', '.join(site.allowed_origins or []) or '(none)'}")
        click.echo(f"webhook:         {site.webhook_url or '(none)'}")
        coral = "(none)"
        if site.coral_signing_secret:
            kept = "kept" if site.coral_store_comments else "not kept"
            coral = f"/coral/sites/{site.name}/moderation (comments {kept})"
        click.echo(f"coral phase:     {coral}")
        click.echo(f"banned words:    {', '.join(rules.banned_words) or '(none)'}")
        click.echo(f"suspect words:   {', '.join(rules.suspect_words) or '(none)'}")
        click.echo(f"length:          {rules.min_length}-{rules.max_length} characters")
        click.echo(f"repeat window:   {rules.repeat_window_seconds} s")
        click.echo(f"new commenters:  {_off(rules.new_commenter_holds, 'first {} held')}")
        history = (
            f"hold from {rules.history_reject_percent} % rejected of at least "
            f"{rules.history_min_decisions} in {rules.history_days} days"
        )
        click.echo(f"recent history:  {history if rules.history_reject_percent else 'off'}")
        coordinated = _off(rules.coordinated_authors, "same text from {} authors in an hour")
        click.echo(f"coordinated:     {coordinated}")
        click.echo(
            f"reports:         held at {rules.report_threshold} "
            f"({rules.illegal_report_threshold} for illegal content)"
        )
        per_author = rules.author_rate_limit or "MODERATION_RATELIMIT_AUTHOR's"
        click.echo(f"per author:      {per_author}")


@site_group.command("publishable-key")
@click.argument("name")
@click.option(
    "--rotate", is_flag=True, help="Replace the key; pages with the old one stop working."
)
def site_publishable_key(name: str, rotate: bool) -> None:
    """Print the key for the widget's data-key (created on first use)."""
    from moderation.services.integration import ensure_publishable_key

    with _site_unit_of_work(name) as (session, site):
        key = ensure_publishable_key(session, site, rotate=rotate)
    click.echo(key)


@site_group.command("origins")
@click.argument("name")
@click.option("--add", "added", multiple=True, help="An origin such as https://news.example.")
@click.option("--remove", "removed", multiple=True, help="An origin to remove.")
def site_origins(name: str, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Change and print the origins whose pages may use the widget."""
    from moderation.services.integration import (
        InvalidSetting,
        normalise_origin,
        set_allowed_origins,
    )

    with _site_unit_of_work(name) as (session, site):
        try:
            gone = {normalise_origin(origin) for origin in removed}
            kept = [origin for origin in site.allowed_origins if origin not in gone]
            origins = set_allowed_origins(session, site, [*kept, *added])
        except InvalidSetting as exc:
            raise click.ClickException(str(exc)) from None
    click.echo("\n".join(origins) or "(no origins: the widget is refused everywhere)")


def _off(value: int, template: str) -> str:
    return template.format(value) if value else "off"


@site_group.command("rules")
@click.argument("name")
@click.option("--ban", "banned", multiple=True, help="A word or phrase to reject.")
@click.option("--suspect", "suspect", multiple=True, help="A word or phrase to hold.")
@click.option("--unlist", "unlisted", multiple=True, help="Remove a word from both lists.")
@click.option("--min-length", type=int, help="Shortest text accepted.")
@click.option("--max-length", type=int, help="Longest text accepted (at most 5000).")
@click.option("--repeat-window", type=int, help="Seconds in which a repeat post is rejected.")
@click.option(
    "--new-commenter-holds",
    type=int,
    help="Hold an author's first N comments until one is approved (0: off).",
)
@click.option(
    "--history-reject-percent",
    type=int,
    help="Hold when this share of the author's recent decided comments was rejected (0: off).",
)
@click.option("--history-min-decisions", type=int, help="Decided comments the history rule needs.")
@click.option("--history-days", type=int, help="Days of history the history rule reads.")
@click.option(
    "--coordinated-authors",
    type=int,
    help="Hold a text this many different authors posted within an hour (0: off).",
)
@click.option("--report-threshold", type=int, help="Open reports that hold a published comment.")
@click.option("--illegal-report-threshold", type=int, help="The same, for illegal-content reports.")
@click.option("--author-rate-limit", help='Comments per author, e.g. "10/minute;100/hour".')
def site_rules_command(
    name: str,
    banned: tuple[str, ...],
    suspect: tuple[str, ...],
    unlisted: tuple[str, ...],
    min_length: int | None,
    max_length: int | None,
    repeat_window: int | None,
    **community: Any,
) -> None:
    """Change the rules that run before the model: word lists, length, repeat posts, the
    author rules, report thresholds and the per-author rate limit."""
    from moderation.services.integration import InvalidSetting, site_rules, update_rules

    with _site_unit_of_work(name) as (session, site):
        current = site_rules(site)
        drop = {word.casefold() for word in unlisted}
        changes: dict[str, Any] = {
            "banned_words": [
                w for w in (*current.banned_words, *banned) if w.casefold() not in drop
            ],
            "suspect_words": [
                w for w in (*current.suspect_words, *suspect) if w.casefold() not in drop
            ],
        }
        for key, value in (
            ("min_length", min_length),
            ("max_length", max_length),
            ("repeat_window_seconds", repeat_window),
            *community.items(),
        ):
            if value is not None:
                changes[key] = value
        try:
            update_rules(session, site, **changes)
        except InvalidSetting as exc:
            raise click.ClickException(str(exc)) from None
    site_show.callback(name)  # type: ignore[misc]


@site_group.command("webhook")
@click.argument("name")
@click.option("--url", help="Where events are POSTed.")
@click.option("--rotate-secret", is_flag=True, help="Issue a new signing secret.")
@click.option("--disable", is_flag=True, help="Stop sending events.")
def site_webhook(name: str, url: str | None, rotate_secret: bool, disable: bool) -> None:
    """Set the webhook URL; prints the signing secret (keep it on the receiving server)."""
    from moderation.services.webhooks import InvalidWebhookUrl, configure_webhook, disable_webhook

    with _site_unit_of_work(name) as (session, site):
        if disable:
            disable_webhook(session, site)
            secret = None
        else:
            target = url or site.webhook_url
            if target is None:
                raise click.UsageError("give --url URL (or --disable)")
            try:
                secret = configure_webhook(session, site, target, rotate_secret=rotate_secret)
            except InvalidWebhookUrl as exc:
                raise click.ClickException(str(exc)) from None
    if secret is None:
        click.echo(f"webhook of {name!r} disabled")
        return
    click.echo(f"events for {name!r} go to {target}; the signing secret, as the last line:")
    click.echo(secret)


@site_group.command("coral")
@click.argument("name")
@click.option(
    "--secret",
    help="The phase's signing secret from Coral's admin (asked for, hidden, when omitted).",
)
@click.option(
    "--store/--no-store",
    default=None,
    help="Keep Coral's comments in our queue for our moderators (default: keep).",
)
@click.option(
    "--previous-expires-in",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours the previous secret is still honoured after a rotation (as set in Coral).",
)
@click.option("--disable", is_flag=True, help="Forget the secrets: Coral's requests are refused.")
def site_coral(
    name: str, secret: str | None, store: bool | None, previous_expires_in: float, disable: bool
) -> None:
    """Accept Coral's external moderation phase at /coral/sites/NAME/moderation."""
    from datetime import timedelta

    from moderation.services.coral import configure_coral

    if not disable and secret is None:
        secret = click.prompt("Coral signing secret", hide_input=True)
    with _site_unit_of_work(name) as (session, site):
        try:
            configure_coral(
                session,
                site,
                None if disable else secret,
                store=store,
                previous_expires_in=timedelta(hours=previous_expires_in),
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        kept = site.coral_store_comments
    if disable:
        click.echo(f"Coral moderation for {name!r} disabled")
        return
    click.echo(f"Coral moderation for {name!r}: POST /coral/sites/{name}/moderation")
    click.echo(f"comments kept in our queue: {'yes' if kept else 'no'}")


@main.group("webhooks")
def webhooks_group() -> None:
    """A site's webhook delivery log."""


@webhooks_group.command("log")
@click.argument("name")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), help="Only these.")
@click.option("--limit", type=int, default=20, show_default=True)
def webhooks_log(name: str, status: str | None, limit: int) -> None:
    """The latest deliveries: event, status, attempts, last status code."""
    from moderation.services.webhooks import site_deliveries

    with _site_unit_of_work(name) as (session, site):
        for delivery in site_deliveries(session, site, status=status, limit=limit):
            code = delivery.last_status_code or "-"
            click.echo(
                f"{delivery.public_id}  {delivery.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{delivery.event_type:<17}  {delivery.status:<9}  attempts={delivery.attempts}  "
                f"last={code}  {delivery.last_error or ''}".rstrip()
            )


@webhooks_group.command("resend")
@click.argument("name")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed delivery of the site.")
def webhooks_resend(name: str, delivery_ids: tuple[str, ...], all_failed: bool) -> None:
    """Queue deliveries again; the worker (or its sweep) sends them."""
    from moderation.models import DeliveryStatus
    from moderation.services.webhooks import resend, site_deliveries, site_delivery

    with _site_unit_of_work(name) as (session, site):
        chosen = [site_delivery(session, site, public_id) for public_id in delivery_ids]
        if None in chosen:
            raise click.ClickException("some of those deliveries are not this site's")
        if all_failed:
            chosen += site_deliveries(session, site, status=DeliveryStatus.FAILED, limit=10_000)
        for delivery in chosen:
            resend(session, delivery)  # type: ignore[arg-type]
    click.echo(f"{len(chosen)} deliver(ies) queued again")


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
    from moderation.policy import thresholds_in_force
    from moderation.scoring import model_thresholds, model_thresholds_source, scorer_for_model
    from moderation.scoring.training_data import read_labelled_csv

    settings = _settings(signs=False)
    comments = read_labelled_csv(csv_file)[:max_rows]
    scorer = scorer_for_model(model_name or settings.model, num_threads=os.cpu_count())
    site_policy = _policy_of(site)
    texts = [comment.text for comment in comments]
    if site_policy.combination and hasattr(scorer, "score_signals"):
        scores = [
            scorer.combine(row, site_policy.combination) for row in scorer.score_signals(texts)
        ]
    else:
        scores = scorer.score_batch(texts)
    policy = site_policy.in_force(model_thresholds(scorer))
    figures = evaluate(comments, scores, policy, target_recall=target_recall)
    figures["model"] = {"name": scorer.model_name, "version": scorer.model_version}
    figures["thresholds"] = thresholds_in_force(
        site_policy,
        model_thresholds(scorer),
        model=f"{scorer.model_name} {scorer.model_version}",
        model_source=model_thresholds_source(scorer),
    )
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_precision_recall(comments, scores, figures, str(plot))
    figures["plot"] = str(plot)
    click.echo(json.dumps(figures, indent=2) if as_json else format_report(figures))


def _policy_of(site_name: str | None):
    from moderation.policy import SitePolicy

    if site_name is None:
        return SitePolicy()
    from moderation.services.sites import site_by_name

    with _database(signs=False) as sessions, sessions() as session:
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


# --- DSA ------------------------------------------------------------------------------------


@main.group("dsa")
def dsa_group() -> None:
    """EU Digital Services Act: statements of reasons for the Transparency Database."""


@dsa_group.command("export")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first day")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]), help="day after")
@click.option("--site", "site_name", help="one site (default: every site)")
@click.option("--submit", "submit_url", help="the Transparency Database's base URL")
@click.option("--token", envvar="MODERATION_DSA_TOKEN", help="its API token (or the variable)")
def dsa_export(
    since: Any, until: Any, site_name: str | None, submit_url: str | None, token: str | None
) -> None:
    """Print the statements of a period as JSON lines, or --submit them (batches of 100;
    each PUID is looked up first, so none is sent twice)."""
    import json
    from datetime import UTC

    from moderation.db import unit_of_work
    from moderation.dsa.transparency import (
        ExportError,
        SubmitError,
        TransparencyClient,
        export,
        statements_in_period,
        submit,
    )
    from moderation.services.sites import site_by_name

    if submit_url and not token:
        raise click.UsageError("--submit needs --token (or MODERATION_DSA_TOKEN)")
    with _database() as sessions, unit_of_work(sessions) as session:
        site_ids = None
        if site_name:
            site = site_by_name(session, site_name)
            if site is None:
                raise click.ClickException(f"no site named {site_name!r}")
            site_ids = [site.id]
        try:
            found = statements_in_period(
                session,
                site_ids,
                since.replace(tzinfo=UTC),
                until.replace(tzinfo=UTC),
                unsubmitted_only=bool(submit_url),
            )
        except ExportError as exc:
            raise click.BadParameter(str(exc), param_hint="--until") from None
        if not submit_url:
            for payload in export(found):
                click.echo(json.dumps(payload, ensure_ascii=False))
            return
        try:
            client = TransparencyClient(submit_url, token or "")
            done = submit(session, found, client, checkpoint=session.commit)
        except SubmitError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"{done.sent} statement(s) sent, {done.already_there} already in the database, "
        f"{done.batches} batch(es), {done.attempts} attempt(s)"
    )
