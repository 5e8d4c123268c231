"""The widget's community features in headless Chromium, on the demo article: a reader
reports a comment, a warned reader acknowledges before posting, a suspended or banned
reader is told so and cannot post, and an author sees why their comment was not published."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from moderation.api.public import reader_author_id
from moderation.config import load_settings
from moderation.db import unit_of_work
from moderation.demo import ARTICLE_ID, DEMO_SITE, prepare_demo_site
from moderation.models import AuthorSanction, Comment, Report, Status
from moderation.services.authors import sanction_author
from moderation.services.integration import update_rules
from moderation.services.moderation import moderate
from moderation.services.moderators import create_moderator
from moderation.services.sites import site_by_name
from tests.moderation_support import seed_comment
from tests.support import LiveServer, serving

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000
GENEROUS = {
    "ratelimit_public_ip": "1000/minute",
    "ratelimit_public_author": "1000/minute",
    "ratelimit_public_read": "1000/minute",
    "ratelimit_report_reader": "1000/minute",
    "ratelimit_report_ip": "1000/minute",
}


@pytest.fixture
def widget_server(settings, sessions) -> Iterator[LiveServer]:
    """The app over HTTP, the demo site set up for its origin and banning one word."""
    with serving(load_settings(**(settings.model_dump() | GENEROUS))) as server:
        with unit_of_work(sessions) as session:
            prepare_demo_site(session, [server.url])
            update_rules(session, site_by_name(session, DEMO_SITE), banned_words=["idiot"])
        yield server


@pytest.fixture
def csp_violations(page) -> Iterator[list[str]]:
    """Console reports of Content-Security-Policy violations on the page (none expected)."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield found
    assert not found, found


@pytest.fixture
def reader(page, sessions, widget_server) -> str:
    """This browser's reader token, set before the widget reads it; returns the author id."""
    token = uuid.uuid4().hex
    page.add_init_script(
        f"window.localStorage.setItem('mc:reader', {json.dumps(json.dumps(token))})"
    )
    with sessions() as session:
        return reader_author_id(site_by_name(session, DEMO_SITE), token)


def open_article(page, server: LiveServer) -> None:
    page.goto(f"{server.url}/demo")
    expect(page.locator(".mc-list")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)


def comments_by(sessions, author_id: str) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Comment).where(Comment.author_id == author_id)
        )


def sanction(sessions, author_id: str, kind: str, reason: str = "be civil", ends_at=None):
    with unit_of_work(sessions) as session:
        moderator = create_moderator(
            session, f"mod-{uuid.uuid4().hex[:8]}@example.test", "a long test password"
        )
        site = site_by_name(session, DEMO_SITE)
        sanction_author(session, site, author_id, moderator, kind, reason, ends_at=ends_at)


def decide(sessions, text: str, status: Status, reason: str | None = None) -> None:
    """A moderator approves or rejects the comment with this text."""
    with unit_of_work(sessions) as session:
        moderator = create_moderator(
            session, f"mod-{uuid.uuid4().hex[:8]}@example.test", "a long test password"
        )
        comment = session.scalars(select(Comment).where(Comment.text == text)).one()
        moderate(session, comment, moderator, status, reason)


def post(page, text: str, name: str = "Ann") -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Your comment").fill(text)
    page.get_by_label("Your comment").press("Control+Enter")


# --- Reports ---------------------------------------------------------------------------------


def test_a_reader_reports_a_comment_and_sees_the_receipt(
    page, widget_server, sessions, reader, csp_violations
):
    comment_id = seed_comment(
        sessions, DEMO_SITE, "Forests beat car parks.", article=ARTICLE_ID, author="someone"
    )
    open_article(page, widget_server)
    item = page.locator(f'.mc-comment[data-comment-id="{comment_id}"]')
    button = item.get_by_role("button", name="Report the comment by Ann Reader")
    expect(button).to_have_attribute("aria-expanded", "false")

    button.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    form = item.get_by_role("form", name="Report this comment")
    expect(form.get_by_role("radio", name="Offensive")).to_be_focused()
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(button).to_be_focused()

    button.click()
    for label in ("Abusive or harassment", "Hate speech", "Misinformation", "Illegal content"):
        expect(form.get_by_role("radio", name=label)).to_be_visible()
    send = form.get_by_role("button", name="Send report")
    send.click()
    expect(form.get_by_role("alert")).to_have_text("Please choose a reason.")
    form.get_by_role("radio", name="Other").check()
    send.click()
    text = form.get_by_label("Tell the moderators more")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()
    expect(form.get_by_text("Please tell the moderators what is wrong.")).to_be_visible()
    expect(text).to_have_attribute("maxlength", "500")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0

    text.fill("It gives <b>a private address</b>.")
    send.click()
    receipt = item.get_by_role("status")
    expect(receipt).to_have_text("Thanks, your report was received.", timeout=WAIT_MS)
    expect(receipt).to_be_focused()
    expect(item.get_by_role("button", name="Report")).to_have_count(0)
    with sessions() as session:
        stored = session.scalars(select(Report)).one()
        assert (stored.reason, stored.text) == ("other", "It gives <b>a private address</b>.")
        assert stored.reporter_id == reader

    page.reload()
    item.get_by_role("button", name="Report").click()
    form.get_by_role("radio", name="Spam").check()
    form.get_by_role("button", name="Send report").click()
    expect(item.get_by_role("status")).to_have_text(
        "You already reported this comment.", timeout=WAIT_MS
    )
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 1


def test_a_report_of_illegal_content_takes_the_comment_off_the_page(
    page, widget_server, sessions, reader
):
    comment_id = seed_comment(
        sessions, DEMO_SITE, "Buy stolen goods here.", article=ARTICLE_ID, author="someone"
    )
    open_article(page, widget_server)
    item = page.locator(f'.mc-comment[data-comment-id="{comment_id}"]')
    item.get_by_role("button", name="Report").click()
    item.get_by_role("radio", name="Illegal content").check()
    item.get_by_role("button", name="Send report").click()
    expect(item.get_by_role("status")).to_have_text(
        "Thanks, your report was received.", timeout=WAIT_MS
    )
    page.reload()
    expect(page.locator(".mc-list")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)
    expect(page.locator(f'.mc-comment[data-comment-id="{comment_id}"]')).to_have_count(0)


# --- The reader's standing -------------------------------------------------------------------


def test_a_warned_reader_acknowledges_the_message_before_posting(
    page, widget_server, sessions, reader, csp_violations
):
    seed_comment(sessions, DEMO_SITE, "My first thought.", article=ARTICLE_ID, author=reader)
    open_article(page, widget_server)
    expect(page.get_by_label("Your comment")).to_be_enabled()

    sanction(sessions, reader, "warn", reason="Please keep to the <i>topic</i> of the article.")
    post(page, "Another thought on forests.")
    standing = page.locator(".mc-standing")
    expect(standing).to_have_attribute("role", "alert")
    expect(standing).to_contain_text(
        "Please keep to the <i>topic</i> of the article.", timeout=WAIT_MS
    )
    understand = page.get_by_role("button", name="I understand")
    expect(understand).to_be_focused()
    expect(page.get_by_label("Your comment")).to_be_disabled()
    assert comments_by(sessions, reader) == 1

    page.reload()
    expect(standing).to_contain_text("A message from the moderators", timeout=WAIT_MS)
    expect(standing.locator("i")).to_have_count(0)
    expect(page.get_by_label("Your comment")).to_be_disabled()
    expect(page.get_by_role("button", name="Post comment")).to_be_disabled()

    understand.click()
    expect(page.locator(".mc-form").get_by_role("status")).to_have_text(
        "Thank you. You can comment again.", timeout=WAIT_MS
    )
    expect(understand).to_have_count(0)
    expect(page.get_by_label("Your comment")).to_be_focused()
    with sessions() as session:
        assert session.scalars(select(AuthorSanction.acknowledged_at)).one() is not None

    post(page, "Another thought on forests.")
    mine = page.locator(".mc-comment", has_text="Another thought on forests.")
    expect(mine).to_contain_text("Awaiting moderation", timeout=WAIT_MS)
    assert comments_by(sessions, reader) == 2


def test_a_suspended_reader_is_told_until_when_and_cannot_post(
    page, widget_server, sessions, reader, csp_violations
):
    seed_comment(sessions, DEMO_SITE, "My first thought.", article=ARTICLE_ID, author=reader)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    sanction(sessions, reader, "suspend", reason="spam", ends_at=until)
    open_article(page, widget_server)
    notice = page.locator(".mc-standing")
    expect(notice).to_contain_text("You can comment again on ", timeout=WAIT_MS)
    shown = notice.locator("time")
    assert datetime.fromisoformat(shown.get_attribute("datetime")) == until
    expected = page.evaluate(
        "iso => new Date(iso).toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'short'})",
        until.isoformat(),
    )
    expect(shown).to_have_text(expected)
    expect(page.get_by_label("Your name")).to_be_disabled()
    expect(page.get_by_label("Your comment")).to_be_disabled()
    expect(page.get_by_role("button", name="Post comment")).to_be_disabled()
    assert comments_by(sessions, reader) == 1


def test_a_reader_banned_while_reading_is_refused_with_a_clear_message(
    page, widget_server, sessions, reader, csp_violations
):
    seed_comment(sessions, DEMO_SITE, "My first thought.", article=ARTICLE_ID, author=reader)
    open_article(page, widget_server)
    sanction(sessions, reader, "ban", reason="threats")
    post(page, "One more thing.")
    notice = page.locator(".mc-standing")
    expect(notice).to_have_text("You can no longer comment on this site.", timeout=WAIT_MS)
    expect(notice.locator(".mc-notice")).to_be_focused()
    expect(page.get_by_label("Your comment")).to_be_disabled()
    assert comments_by(sessions, reader) == 1

    page.reload()
    expect(notice).to_have_text("You can no longer comment on this site.", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Post comment")).to_be_disabled()


# --- A reader's own comments -----------------------------------------------------------------


def test_the_author_sees_why_their_comments_were_not_published(
    page, widget_server, sessions, reader, csp_violations
):
    open_article(page, widget_server)
    post(page, "You idiot.")
    expect(page.locator(".mc-form").get_by_role("status")).to_have_text(
        "Sorry, your comment cannot be published. Not published: it contains a word this site "
        "does not allow.",
        timeout=WAIT_MS,
    )
    ruled = page.locator(".mc-comment", has_text="You idiot.")
    expect(ruled.locator(".mc-outcome")).to_have_text(
        "Not published: it contains a word this site does not allow"
    )

    post(page, "Parking is a human right.")
    mine = page.locator(".mc-comment", has_text="Parking is a human right.")
    expect(mine).to_contain_text("Awaiting moderation", timeout=WAIT_MS)
    expect(mine.get_by_role("button", name="Report")).to_have_count(0)
    decide(sessions, "Parking is a human right.", Status.REJECTED, "off_topic")

    page.reload()
    expect(mine.locator(".mc-outcome")).to_have_text(
        "Not published: a moderator found it off-topic", timeout=WAIT_MS
    )
    expect(mine).not_to_contain_text("Awaiting moderation")
    # The statement of reasons (DSA Art. 17) is one click away, on its signed page.
    link = mine.get_by_role("link", name="Why, and how to appeal (statement of reasons)")
    expect(link).to_have_attribute("href", re.compile(r"/dsa/statements/[^?]+\?sig="))
    statement = page.request.get(link.get_attribute("href"))
    assert statement.status == 200
    assert "Send the appeal" in statement.text()


def test_the_author_sees_that_their_comment_was_published(
    page, widget_server, sessions, reader, csp_violations
):
    open_article(page, widget_server)
    post(page, "Trees make the street cooler.")
    mine = page.locator(".mc-comment", has_text="Trees make the street cooler.")
    expect(mine).to_contain_text("Awaiting moderation", timeout=WAIT_MS)
    decide(sessions, "Trees make the street cooler.", Status.APPROVED)

    page.reload()
    expect(mine.locator(".mc-badge-published")).to_have_text("Published", timeout=WAIT_MS)
    expect(mine).not_to_contain_text("Awaiting moderation")
    expect(mine.get_by_role("button", name="Report")).to_have_count(0)
    with sessions() as session:
        assert session.scalar(select(Comment.status).where(Comment.author_id == reader)) == (
            Status.APPROVED
        )
