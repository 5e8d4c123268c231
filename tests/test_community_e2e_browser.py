"""The whole community loop in real Chromium, on one running service: a reader reports a
comment from the widget, it appears in the Reported tab of a workspace already open, the
moderator bans its author from the card, and the author's next post from the widget is
refused with a clear message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy import func, select

from moderation.api.public import reader_author_id
from moderation.config import load_settings
from moderation.db import unit_of_work
from moderation.demo import ARTICLE_ID, DEMO_SITE, prepare_demo_site
from moderation.models import AuthorSanction, Comment, Report, Status
from moderation.services.sites import site_by_name
from tests.moderation_support import moderator_accounts, seed_comment, status_of
from tests.support import LiveServer, serving
from tests.test_moderation_browser import WAIT_MS, card, mark_page, sign_in, still_same_page

pytestmark = pytest.mark.e2e

# The workspace polls every 5 s; a change shows within one or two polls.
LIVE_MS = 30_000
GENEROUS = {
    "ratelimit_public_ip": "1000/minute",
    "ratelimit_public_author": "1000/minute",
    "ratelimit_public_read": "1000/minute",
    "ratelimit_report_reader": "1000/minute",
    "ratelimit_report_ip": "1000/minute",
}


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


@pytest.fixture
def server(settings, sessions) -> Iterator[LiveServer]:
    """The service over HTTP: the demo article with the widget, and the workspace."""
    with serving(load_settings(**(settings.model_dump() | GENEROUS))) as live:
        with unit_of_work(sessions) as session:
            prepare_demo_site(session, [live.url])
        yield live


class Reader:
    """A reader in a browser of their own, with a known reader token."""

    def __init__(self, browser: Browser, sessions):
        self.token = uuid.uuid4().hex
        self.context: BrowserContext = browser.new_context()
        literal = json.dumps(json.dumps(self.token))
        self.context.add_init_script(f"window.localStorage.setItem('mc:reader', {literal})")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        with sessions() as session:
            self.author_id = reader_author_id(site_by_name(session, DEMO_SITE), self.token)

    def open_article(self, server: LiveServer) -> None:
        self.page.goto(f"{server.url}/demo")
        list_ = self.page.locator(".mc-list")
        expect(list_).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"script errors on the reader's page: {self.errors}"


@pytest.fixture
def readers(browser, sessions) -> Iterator[list[Reader]]:
    """Two readers: the one who reports, and the author of the reported comment."""
    made = [Reader(browser, sessions), Reader(browser, sessions)]
    yield made
    for reader in made:
        reader.close()


def comments_by(sessions, author_id: str) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(Comment).where(Comment.author_id == author_id)
        return session.scalar(query)


def test_a_report_reaches_the_open_workspace_and_the_banned_author_cannot_post_again(
    page, server, sessions, accounts, readers
):
    reporter, author = readers
    comment_id = seed_comment(
        sessions,
        DEMO_SITE,
        "Here is where the mayor's daughter lives: 12 Elm Street.",
        article=ARTICLE_ID,
        author=author.author_id,
    )
    assert status_of(sessions, comment_id) == Status.APPROVED

    # The moderator's workspace is open on the Reported tab, empty.
    moderator = accounts.moderator(DEMO_SITE)
    sign_in(page, server.url, moderator)
    page.goto(f"{server.url}/moderate?queue=reported")
    expect(page.locator("body")).to_have_attribute("data-keys", "ready")
    reported_count = page.locator('#queue-tabs .count[data-queue="reported"]')
    expect(reported_count).to_have_text("0")
    mark_page(page)

    # The author has the article open and may still comment.
    author.open_article(server)
    expect(author.page.get_by_label("Your comment")).to_be_enabled()

    # Another reader reports the comment as illegal content from the widget.
    reporter.open_article(server)
    item = reporter.page.locator(f'.mc-comment[data-comment-id="{comment_id}"]')
    item.get_by_role("button", name="Report").click()
    item.get_by_role("radio", name="Illegal content").check()
    item.get_by_role("button", name="Send report").click()
    expect(item.get_by_role("status")).to_have_text(
        "Thanks, your report was received.", timeout=WAIT_MS
    )
    with sessions() as session:
        stored = session.scalars(select(Report)).one()
        assert (stored.reporter_id, stored.reason) == (reporter.author_id, "illegal")

    # It appears in the open workspace without a reload.
    arrived = card(page, comment_id)
    expect(arrived).to_be_visible(timeout=LIVE_MS)
    expect(arrived.locator(".reports-summary")).to_have_text("1 reader report: illegal content 1")
    expect(reported_count).to_have_text("1")
    assert still_same_page(page)

    # The moderator bans the author from the card, rejecting their comments with it.
    arrived.locator(".author-link").click()
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible(timeout=WAIT_MS)
    ban = drawer.locator(".sanction-form.ban")
    ban.locator("input[name=reason]").fill("Publishing a private address")
    ban.locator("input[name=reject_published]").check()
    ban.locator("button").click()
    expect(drawer.locator(".flash.ok")).to_have_text(
        "Ban set; 1 of their comments rejected.", timeout=WAIT_MS
    )
    with sessions() as session:
        kinds = session.scalars(
            select(AuthorSanction.kind).where(AuthorSanction.author_id == author.author_id)
        ).all()
        assert kinds == ["ban"]
    assert status_of(sessions, comment_id) == Status.REJECTED

    # The author's next post, from the page they had open, is refused in plain words.
    author.page.get_by_label("Your name").fill("Ann")
    author.page.get_by_label("Your comment").fill("You cannot silence me.")
    author.page.get_by_role("button", name="Post comment").click()
    notice = author.page.locator(".mc-standing")
    expect(notice).to_have_text("You can no longer comment on this site.", timeout=WAIT_MS)
    expect(author.page.get_by_label("Your comment")).to_be_disabled()
    assert comments_by(sessions, author.author_id) == 1
