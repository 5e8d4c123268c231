"""The README's pictures of the Reported tab and the author view, from a seeded scratch instance.

Seeds a scratch SQLite database (a news site, reported comments, an author with a history of
sanctions), serves it under gunicorn on the loopback, and photographs the pages in headless
Chromium (Debian's /usr/bin/chromium):

    python -m docs.screenshots            # writes docs/reported-tab.png and docs/author-view.png
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bench.moderation_queue import scratch_database
from bench.stack import (
    bench_settings,
    environment,
    free_port,
    gunicorn_command,
    running,
    wait_for_http,
)
from moderation.db import make_engine, make_session_factory, unit_of_work, utcnow
from moderation.models import AuthorSanction, Comment, Moderator, Site
from moderation.policy import LABELS
from moderation.schemas import CommentSubmission
from moderation.services.authors import acknowledge_warnings, lift_sanction, sanction_author
from moderation.services.comments import submit_comment
from moderation.services.decisions import store_decisions
from moderation.services.moderators import create_moderator
from moderation.services.reports import report_comment
from moderation.services.sites import create_site

DOCS = Path(__file__).resolve().parent
PASSWORD = "screenshot-password-1"  # noqa: S105 (a scratch database's account)
SITE = "daily-courier"
ARTICLES = {
    "budget-2026": "The budget, explained",
    "tram-line": "The new tram line opens in May",
    "school-meals": "Free school meals for every primary pupil",
}
# (article, author id, author name, text, the highest score, reports as (reason, text))
COMMENTS = [
    ("tram-line", "reader-204", "Marek", "Another tram line nobody asked for. Typical.", 0.21, []),
    (
        "budget-2026",
        "reader-881",
        "Jo Baines",
        "Anyone who votes for this budget is a complete moron and should be ashamed.",
        0.48,
        [("abusive", None), ("offensive", None), ("abusive", "Name-calling again")],
    ),
    (
        "school-meals",
        "reader-312",
        "Deals4U",
        "Great article! Cheap watches and bags at shop-deals.example, free delivery today.",
        0.09,
        [("spam", None), ("spam", "Same link under every article")],
    ),
    (
        "tram-line",
        "reader-881",
        "Jo Baines",
        "The councillor who signed this off lives at 14 Elm Road, go and tell him.",
        0.31,
        [("illegal", "Posts a private address")],
    ),
    ("budget-2026", "reader-881", "Jo Baines", "Finally some sense on the deficit.", 0.03, []),
    ("school-meals", "reader-881", "Jo Baines", "Idiots, all of them. Idiots.", 0.91, []),
    ("budget-2026", "reader-517", "Priya", "A clear explainer, thank you.", 0.01, []),
]


class _FixedScorer:
    model_name = "default"
    model_version = "2026.11"


def seed(database_url: str) -> None:
    """A site, a moderator, comments with scores, reports and one author's sanctions."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        site = create_site(session, SITE)[0]
        create_moderator(session, "ann@daily-courier.example", PASSWORD, sites=[site])
        create_moderator(session, "lead@daily-courier.example", PASSWORD, is_admin=True)
    for article, author, name, text, top, reports in COMMENTS:
        with unit_of_work(sessions) as session:
            site = session.scalars(select(Site).where(Site.name == SITE)).one()
            data = CommentSubmission(
                article_id=article,
                article_title=ARTICLES[article],
                article_url=f"https://daily-courier.example/{article}",
                author_id=author,
                author_name=name,
                text=text,
            )
            comment = submit_comment(session, site, data).comment
            store_decisions(session, {comment.id: _scores(top)}, _FixedScorer())
            for number, (reason, note) in enumerate(reports):
                report_comment(session, site, comment.public_id, f"r-{number}", reason, note)
    _sanctions(sessions)
    engine.dispose()


def _scores(top: float) -> dict[str, float]:
    shares = dict(zip(LABELS, (1.0, 0.15, 0.35, 0.05, 0.8, 0.1), strict=True))
    return {label: round(top * share, 3) for label, share in shares.items()}


def _sanctions(sessions) -> None:
    """Jo Baines: a warning read, a suspension lifted early, pre-moderation in force."""
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        lead = session.scalars(select(Moderator).where(Moderator.is_admin)).one()
        ann = session.scalars(select(Moderator).where(Moderator.is_admin.is_(False))).one()
        author = "reader-881"
        warn = "Please keep to the topic and leave out the insults."
        sanction_author(session, site, author, ann, "warn", warn)
        acknowledge_warnings(session, site, author)
        ends = utcnow() + timedelta(days=7)
        suspended = sanction_author(
            session, site, author, lead, "suspend", "Insults after a warning", ends_at=ends
        ).sanction
        lift_sanction(session, suspended, ann, "Apologised by email")
        sanction_author(session, site, author, ann, "premoderate", "Until the tone improves")
        _backdate(session, author)


def _backdate(session, author: str) -> None:
    """Spread the history over the last weeks, as it would be."""
    now = utcnow()
    query = select(AuthorSanction).where(AuthorSanction.author_id == author)
    rows = session.scalars(query.order_by(AuthorSanction.id))
    for days, sanction in zip((21, 9, 2), rows, strict=False):
        sanction.created_at = now - timedelta(days=days)
        if sanction.acknowledged_at:
            sanction.acknowledged_at = sanction.created_at + timedelta(hours=3)
        if sanction.lifted_at:
            sanction.lifted_at = sanction.created_at + timedelta(days=2)
    ages = {text: index for index, (_, _, _, text, _, _) in enumerate(COMMENTS)}
    for comment in session.scalars(select(Comment)):
        comment.created_at = now - timedelta(hours=3 * (len(COMMENTS) - ages[comment.text]))


def photograph(base: str) -> None:
    """Sign in and take both pictures."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1060})
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "ann@daily-courier.example")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("body")).to_have_attribute("data-keys", "ready")
        page.goto(f"{base}/moderate?queue=reported")
        expect(page.locator("body")).to_have_attribute("data-keys", "ready")
        page.screenshot(path=str(DOCS / "reported-tab.png"))
        page.keyboard.press("u")
        expect(page.locator("#drawer .author-view")).to_be_visible()
        page.screenshot(path=str(DOCS / "author-view.png"))
        browser.close()


def main() -> None:
    with scratch_database("sqlite") as url:
        seed(url)
        settings = bench_settings(url, env="production", secret_key="shots-" + "x" * 40)
        env = environment(settings, MODERATION_SESSION_COOKIE_SECURE="false")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tempfile.gettempdir()) / "moderation-screenshots.log"
        with running(gunicorn_command(port, workers=1), env, log):
            wait_for_http(f"{base}/healthz")
            photograph(base)
    print(f"wrote {DOCS / 'reported-tab.png'} and {DOCS / 'author-view.png'}")


if __name__ == "__main__":
    main()
