"""The workspace's community tools in a real headless Chromium: the Reported tab by keyboard,
the live queue, the author drawer with its sanctions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from moderation.db import unit_of_work
from moderation.models import AuthorSanction, Report, Site, Status
from moderation.services.reports import report_comment
from tests.moderation_support import ABUSIVE, moderator_accounts, seed_comment, status_of
from tests.support import wait_until
from tests.test_moderation_browser import (
    CURRENT,
    WAIT_MS,
    card,
    held_count,
    mark_page,
    sign_in,
    still_same_page,
)

SITE = "example-news"
CLEAN = "A fair and careful piece, thank you."
# Polls run every 5 s; a change shows within one or two of them.
LIVE_MS = 30_000


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def report(sessions, public_id: str, reason: str = "offensive", by: str = "r1") -> None:
    """A reader's report of a published comment (what the widget's Report button stores)."""
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        report_comment(session, site, public_id, by, reason, None)


def reported_count(page: Page):
    """The count on the Reported tab."""
    return page.locator('#queue-tabs .count[data-queue="reported"]')


def open_reports(sessions, public_id: str) -> int:
    with sessions() as session:
        from moderation.models import Comment

        return session.scalar(
            select(func.count())
            .select_from(Report)
            .join(Comment, Comment.id == Report.comment_id)
            .where(Comment.public_id == public_id, Report.closed_at.is_(None))
        )


def sanctions_of(sessions, author: str) -> list[tuple[str, bool]]:
    with sessions() as session:
        rows = session.scalars(
            select(AuthorSanction).where(AuthorSanction.author_id == author)
        ).all()
        return [(row.kind, row.lifted_at is None) for row in rows]


def test_the_reported_tab_dismisses_and_rejects_by_keyboard(page, live_server, sessions, accounts):
    kept = seed_comment(sessions, SITE, CLEAN, author="reader-1")
    spam = seed_comment(sessions, SITE, "Buy cheap watches at my shop today.", author="reader-2")
    report(sessions, kept, "offensive", "r1")
    report(sessions, kept, "offensive", "r2")
    report(sessions, spam, "illegal", "r1")  # one illegal-content report holds it
    assert status_of(sessions, spam) == Status.HELD

    sign_in(page, live_server.url, accounts.moderator(SITE))
    page.click('#queue-tabs a:has-text("Reported")')
    first = card(page, kept)
    expect(first).to_have_class(CURRENT, timeout=WAIT_MS)
    expect(reported_count(page)).to_have_text("2")
    expect(first.locator(".reports-summary")).to_have_text("2 reader reports: offensive 2")
    expect(first.locator(".reports li")).to_have_count(2)
    expect(first.locator(".scores meter")).to_have_count(6)
    expect(card(page, spam).locator(".reports-summary")).to_contain_text("illegal content 1")
    mark_page(page)

    page.keyboard.press("d")  # dismiss: stays published, the reports close
    expect(first).to_have_count(0, timeout=WAIT_MS)
    expect(reported_count(page)).to_have_text("1")
    expect(card(page, spam)).to_have_class(CURRENT)
    assert wait_until(lambda: open_reports(sessions, kept) == 0, timeout=30)
    assert status_of(sessions, kept) == Status.APPROVED

    page.keyboard.press("r")
    page.keyboard.press("3")  # spam
    expect(card(page, spam)).to_have_count(0, timeout=WAIT_MS)
    expect(reported_count(page)).to_have_text("0")
    expect(page.locator(".empty")).to_contain_text("no open reports")
    assert still_same_page(page)
    assert wait_until(lambda: status_of(sessions, spam) == Status.REJECTED, timeout=30)
    assert open_reports(sessions, spam) == 0

    page.keyboard.press("?")
    expect(page.locator("#help kbd", has_text="d").first).to_be_visible()
    expect(page.locator("#help")).to_contain_text("dismiss the reports")


def test_a_comment_reported_while_the_workspace_is_open_appears_without_reload(
    page, live_server, sessions, accounts
):
    published = seed_comment(sessions, SITE, CLEAN, author="reader-3")
    sign_in(page, live_server.url, accounts.moderator(SITE))
    page.goto(f"{live_server.url}/moderate?queue=reported")
    expect(page.locator("body")).to_have_attribute("data-keys", "ready")
    expect(reported_count(page)).to_have_text("0")
    expect(held_count(page)).to_have_text("0")
    mark_page(page)

    report(sessions, published, "illegal", "r9")

    arrived = card(page, published)
    expect(arrived).to_be_visible(timeout=LIVE_MS)
    expect(arrived.locator(".reports-summary")).to_have_text("1 reader report: illegal content 1")
    expect(reported_count(page)).to_have_text("1")
    expect(held_count(page)).to_have_text("1")
    expect(arrived).to_have_class(CURRENT)
    assert still_same_page(page)
    page.keyboard.press("d")  # the new card is live: dismissing it publishes it again
    expect(arrived).to_have_count(0, timeout=WAIT_MS)
    assert wait_until(lambda: status_of(sessions, published) == Status.APPROVED, timeout=30)


def test_a_card_another_moderator_decided_is_marked_and_a_late_action_is_told_in_place(
    page, browser, live_server, sessions, accounts
):
    first = seed_comment(sessions, SITE, ABUSIVE)
    second = seed_comment(sessions, SITE, f"{ABUSIVE} Twice.")
    sign_in(page, live_server.url, accounts.moderator(SITE))
    expect(card(page, first)).to_have_class(CURRENT, timeout=WAIT_MS)
    # Hold this page's polls, so the late action below meets the server's 409.
    page.route("**/moderate/updates**", lambda route: route.fulfill(status=204, body=""))

    other_context = browser.new_context()
    try:
        other = other_context.new_page()
        colleague = accounts.moderator(SITE)
        sign_in(other, live_server.url, colleague)
        expect(card(other, first)).to_have_class(CURRENT, timeout=WAIT_MS)
        other.keyboard.press("a")
        expect(card(other, first)).to_have_count(0, timeout=WAIT_MS)
        other.keyboard.press("a")
        expect(card(other, second)).to_have_count(0, timeout=WAIT_MS)
    finally:
        other_context.close()

    page.keyboard.press("a")  # too late: the 409 is shown on the card
    late = card(page, first)
    expect(late.locator(".notice")).to_contain_text(
        f"{colleague.email} changed this comment to approved first", timeout=WAIT_MS
    )
    expect(late.locator(".badge")).to_have_text("approved")

    page.unroute("**/moderate/updates**")
    marked = card(page, second)
    expect(marked).to_have_class(re.compile(r"\bstale\b"), timeout=LIVE_MS)
    expect(marked.locator(".live-note")).to_contain_text(f"Changed by {colleague.email}")
    expect(marked.locator(".approve-form")).to_have_count(0)
    expect(held_count(page)).to_have_text("0")
    marked.click()
    page.keyboard.press("a")  # nothing to act with on a marked card
    expect(marked.locator(".notice")).to_have_count(1)
    assert status_of(sessions, second) == Status.APPROVED


def test_the_author_drawer_shows_the_record_and_a_ban_from_the_card_is_listed(
    page, live_server, sessions, accounts
):
    account = accounts.moderator(SITE)
    published = seed_comment(sessions, SITE, CLEAN, author="reader-5")
    held = seed_comment(sessions, SITE, ABUSIVE, author="reader-5")
    seed_comment(sessions, SITE, f"{ABUSIVE} From someone else.", author="reader-6")
    report(sessions, published)
    sign_in(page, live_server.url, account)
    expect(card(page, held)).to_have_class(CURRENT, timeout=WAIT_MS)
    expect(card(page, held).locator(".author-link")).to_have_text("author: Ann Reader")
    mark_page(page)

    page.keyboard.press("u")
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible(timeout=WAIT_MS)
    expect(drawer.locator("h2")).to_contain_text("reader-5 on example-news")
    for name, value in (("published", "1"), ("held", "1"), ("rejected", "0"), ("reported", "1")):
        expect(drawer.locator(f'dd[data-count="{name}"]')).to_have_text(value)
    expect(drawer.locator(".recent li")).to_have_count(2)
    expect(drawer.locator(".sanctions")).to_contain_text("No sanctions.")

    ban = drawer.locator(".sanction-form.ban")
    ban.locator("input[name=reason]").fill("Abuse of other readers")
    ban.locator("input[name=reject_published]").check()
    ban.locator("button").click()

    expect(drawer.locator(".flash.ok")).to_have_text(
        "Ban set; 2 of their comments rejected.", timeout=WAIT_MS
    )
    row = drawer.locator("tr.sanction.ban.in-force")
    expect(row).to_contain_text("Abuse of other readers")
    expect(row).to_contain_text(account.email)
    expect(drawer.locator(".in-force .sanction-badge")).to_have_text("ban")
    expect(drawer.locator('dd[data-count="rejected"]')).to_have_text("2")
    assert sanctions_of(sessions, "reader-5") == [("ban", True)]
    assert [status_of(sessions, p) for p in (published, held)] == [Status.REJECTED] * 2

    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    # The queue heard at once (live-refresh): the card it showed has left the held queue.
    expect(card(page, held)).to_have_class(re.compile(r"\bstale\b"), timeout=LIVE_MS)
    expect(held_count(page)).to_have_text("1")
    assert still_same_page(page)


def test_a_suspension_ending_in_the_past_is_refused_in_place(page, live_server, sessions, accounts):
    held = seed_comment(sessions, SITE, ABUSIVE, author="reader-7")
    sign_in(page, live_server.url, accounts.moderator(SITE))
    card(page, held).locator(".author-link").click()
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible(timeout=WAIT_MS)

    suspend = drawer.locator(".sanction-form.suspend")
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    suspend.locator("input[name=ends_at]").fill(past)
    suspend.locator("input[name=reason]").fill("Cool off")
    suspend.locator("button").click()

    expect(drawer.locator(".flash.error")).to_have_text("ends_at is in the past", timeout=WAIT_MS)
    expect(drawer.locator(".sanctions")).to_contain_text("No sanctions.")
    expect(drawer.locator(".sanction-form.suspend input[name=reason]")).to_be_visible()
    assert sanctions_of(sessions, "reader-7") == []
