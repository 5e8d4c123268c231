"""The workspace in a real headless Chromium: keyboard decisions, bulk actions, escaped text.

The first test runs the whole path: a comment posted through the API, scored by the real
worker and held by the model, approved with one key, then published in the article's feed.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from moderation.models import AuditEvent, Comment, Status
from tests.moderation_support import (
    ABUSIVE,
    Account,
    moderator_accounts,
    seed_comment,
    status_of,
)
from tests.support import wait_until

SITE = "example-news"  # the site of the site_key fixture
CURRENT = re.compile(r"\bcurrent\b")
WAIT_MS = 30_000


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def sign_in(page: Page, base: str, account: Account) -> None:
    """Sign in through the login form and land on the held queue."""
    page.goto(f"{base}/login")
    page.fill("input[name=email]", account.email)
    page.fill("input[name=password]", account.password)
    page.click("button[type=submit]")
    expect(page.locator("#queue-tabs")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-keys", "ready")


def card(page: Page, public_id: str):
    """The card of one comment."""
    return page.locator(f"#card-{public_id}")


def held_count(page: Page):
    """The count on the Held tab."""
    return page.locator('#queue-tabs .count[data-queue="held"]')


def mark_page(page: Page) -> None:
    """Set a marker that a full page load would wipe."""
    page.evaluate("window.__sameDocument = true")


def still_same_page(page: Page) -> bool:
    """True if no full page load happened since mark_page."""
    return page.evaluate("window.__sameDocument === true")


@pytest.mark.e2e
def test_a_held_comment_is_approved_with_one_key_and_published(
    page, live_server, worker, sessions, site_key, accounts
):
    auth = {"Authorization": f"Bearer {site_key}"}
    posted = requests.post(
        f"{live_server.url}/api/v1/comments",
        json={
            "article_id": "budget-2026",
            "article_title": "The budget, explained",
            "author_id": "reader-66",
            "author_name": "Angry Reader",
            "text": ABUSIVE,
        },
        headers=auth,
        timeout=30,
    )
    assert posted.status_code == 202
    public_id = posted.json()["id"]
    assert wait_until(lambda: status_of(sessions, public_id) != Status.PENDING, timeout=180)
    assert status_of(sessions, public_id) == Status.HELD
    calm = seed_comment(sessions, SITE, "Another idiot take, held by the keyword scorer.")

    sign_in(page, live_server.url, accounts.moderator(SITE))
    held = card(page, public_id)
    expect(held).to_have_class(CURRENT, timeout=WAIT_MS)
    expect(held.locator(".text")).to_have_text(ABUSIVE)
    expect(held.locator(".reason").first).to_contain_text(">= hold at")
    expect(held.locator(".scores meter")).to_have_count(6)
    expect(held.locator(".article")).to_have_text("The budget, explained")
    expect(held_count(page)).to_have_text("2")
    mark_page(page)

    page.keyboard.press("a")  # one keystroke decides the comment

    expect(held).to_have_count(0, timeout=WAIT_MS)
    expect(held_count(page)).to_have_text("1", timeout=WAIT_MS)
    expect(page.locator("#flash")).to_contain_text("Approved")
    expect(card(page, calm)).to_have_class(CURRENT)
    assert still_same_page(page)
    assert status_of(sessions, public_id) == Status.APPROVED
    feed = requests.get(
        f"{live_server.url}/api/v1/articles/budget-2026/comments", headers=auth, timeout=30
    ).json()
    assert public_id in [comment["id"] for comment in feed["comments"]]


def test_reject_with_a_reason_and_a_note_from_the_keyboard(page, live_server, sessions, accounts):
    first = seed_comment(sessions, SITE, ABUSIVE)
    second = seed_comment(sessions, SITE, f"{ABUSIVE} Twice.")
    account = accounts.moderator(SITE)
    sign_in(page, live_server.url, account)
    expect(card(page, first)).to_have_class(CURRENT, timeout=WAIT_MS)

    page.keyboard.press("r")
    expect(card(page, first).locator(".reject-form")).to_be_visible()
    page.keyboard.press("n")
    page.keyboard.type("name-calling")
    page.keyboard.press("Enter")  # back to the reason keys; Enter alone submits nothing
    assert status_of(sessions, first) == Status.HELD
    page.keyboard.press("2")  # abusive

    expect(card(page, first)).to_have_count(0, timeout=WAIT_MS)
    expect(card(page, second)).to_have_class(CURRENT)
    assert wait_until(lambda: status_of(sessions, first) == Status.REJECTED, timeout=30)
    with sessions() as session:
        event = session.scalars(
            select(AuditEvent)
            .join(Comment, AuditEvent.comment_id == Comment.id)
            .where(Comment.public_id == first)
            .order_by(AuditEvent.id.desc())
        ).first()
    assert (event.actor_id, event.reason, event.detail["note"]) == (
        account.email,
        "abusive",
        "name-calling",
    )

    page.keyboard.press("r")
    page.keyboard.press("3")  # spam: two keystrokes for a rejection
    expect(card(page, second)).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator(".empty")).to_be_visible()
    assert wait_until(lambda: status_of(sessions, second) == Status.REJECTED, timeout=30)

    page.goto(f"{live_server.url}/moderate?queue=rejected")
    rejected = card(page, first)
    rejected.locator("summary").click()
    expect(rejected.locator(".history")).to_contain_text("reject: Abusive")
    expect(rejected.locator(".history")).to_contain_text("name-calling")


def test_bulk_approve_three_selected_comments(page, live_server, sessions, accounts):
    chosen = [seed_comment(sessions, SITE, f"{ABUSIVE} Number {n}.") for n in range(3)]
    left = seed_comment(sessions, SITE, f"{ABUSIVE} Left alone.")
    sign_in(page, live_server.url, accounts.moderator(SITE))
    expect(card(page, chosen[0])).to_have_class(CURRENT, timeout=WAIT_MS)
    mark_page(page)

    for _ in chosen:
        page.keyboard.press("x")  # selects and moves on
    expect(page.locator("#bulk-form")).to_be_visible()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.keyboard.press("a")  # with a selection, a approves the selection

    for public_id in chosen:
        expect(card(page, public_id)).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#flash")).to_contain_text("Approved 3 comments")
    expect(held_count(page)).to_have_text("1")
    expect(card(page, left)).to_be_visible()
    expect(page.locator("#bulk-form")).to_be_hidden()
    assert still_same_page(page)
    assert [status_of(sessions, public_id) for public_id in chosen] == [Status.APPROVED] * 3
    assert status_of(sessions, left) == Status.HELD


def test_markup_in_a_comment_is_shown_as_text_and_never_runs(page, live_server, sessions, accounts):
    hostile = "<img src=x onerror=alert(1)> idiot"
    public_id = seed_comment(sessions, SITE, hostile)
    dialogs: list[str] = []
    console_errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server.url, accounts.moderator(SITE))

    shown = card(page, public_id)
    expect(shown.locator(".text")).to_have_text(hostile, timeout=WAIT_MS)
    assert page.locator("#cards img").count() == 0
    page.goto(f"{live_server.url}/moderate/comments/{public_id}")
    expect(page.locator("body")).to_have_attribute("data-keys", "ready")
    expect(card(page, public_id).locator(".text")).to_have_text(hostile)
    page.keyboard.press("a")
    expect(card(page, public_id).locator(".badge")).to_have_text("approved", timeout=WAIT_MS)
    expect(card(page, public_id).locator(".text")).to_have_text(hostile)
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.locator("img").count() == 0
    assert console_errors == []  # nothing refused by the Content-Security-Policy either


def test_the_help_lists_the_keys(page, live_server, sessions, accounts):
    seed_comment(sessions, SITE, ABUSIVE)
    sign_in(page, live_server.url, accounts.moderator(SITE))
    page.keyboard.press("?")
    help_dialog = page.locator("#help")
    expect(help_dialog).to_be_visible()
    for key in ("j", "k", "a", "r", "x"):
        expect(help_dialog.locator("kbd", has_text=key).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
