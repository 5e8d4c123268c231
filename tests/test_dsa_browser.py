"""The DSA flow in a real headless Chromium: a reader files a notice of illegal content from the
widget, a moderator decides ILLEGAL in the Notices queue, the author reads the statement of
reasons and appeals, a second moderator reverses, and the reporter's reference shows it."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from moderation.api.public import reader_author_id
from moderation.db import unit_of_work
from moderation.models import Site, Status
from moderation.services.integration import set_allowed_origins
from tests.moderation_support import Account, moderator_accounts, seed_comment, status_of
from tests.support import make_site
from tests.test_widget_browser import EmbeddingPage

pytestmark = pytest.mark.e2e

SITE = "example-news"
ARTICLE = "budget-2026"
TOKEN = "author-token-0123456789abcdef"
TEXT = "The mayor took bribes from the builder, I have seen it."
WAIT_MS = 15_000


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def new_page(browser: Browser, errors: list[str]) -> Page:
    """A page in its own context; script errors of it and its popups go to ``errors``."""
    context = browser.new_context()
    context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(str(e))))
    return context.new_page()


def sign_in(page: Page, base: str, account: Account) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", account.email)
    page.fill("input[name=password]", account.password)
    page.click("button[type=submit]")
    expect(page.get_by_role("link", name="Notices")).to_be_visible(timeout=WAIT_MS)


def test_notice_decision_statement_appeal_and_reversal(browser, live_server, sessions, accounts):
    site = make_site(sessions, SITE)
    with EmbeddingPage(live_server.url, site.publishable, ARTICLE) as article:
        with unit_of_work(sessions) as session:
            stored = session.scalars(select(Site).where(Site.name == SITE)).one()
            set_allowed_origins(session, stored, [article.url])
        _flow(browser, live_server.url, article.url, site, sessions, accounts)


def _flow(browser, base, article_url, site, sessions, accounts):
    with sessions() as session:
        author = reader_author_id(
            session.scalars(select(Site).where(Site.name == SITE)).one(), TOKEN
        )
    comment = seed_comment(sessions, SITE, TEXT, article=ARTICLE, author=author)
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    errors: list[str] = []

    # A reader follows the widget's link and files the notice.
    reader = new_page(browser, errors)
    reader.goto(article_url)
    item = reader.locator(f"[data-comment-id='{comment}']")
    expect(item).to_contain_text(TEXT, timeout=WAIT_MS)
    with reader.context.expect_page() as opened:
        item.get_by_role("link", name="Report illegal content").click()
    form = opened.value
    expect(form.get_by_label("Comment(s) you report")).to_have_value(comment)
    form.get_by_label("What kind of illegal content is it?").select_option("defamation")
    form.get_by_label("Law or legal provision (optional)").fill("§ 111 StGB")
    form.get_by_label("Why is the content illegal?").fill("A false accusation of a crime.")
    form.get_by_label("Name", exact=True).fill("Eva Reader")
    form.get_by_label("Email", exact=True).fill("eva@example.test")
    form.get_by_role("button", name="Send the notice").click()
    expect(form.get_by_role("alert")).to_contain_text("confirm", timeout=WAIT_MS)
    form.get_by_label(re.compile("I confirm in good faith")).check()
    form.get_by_role("button", name="Send the notice").click()
    expect(form.get_by_role("status")).to_contain_text("Your notice was received")
    reference = form.locator("strong").inner_text()
    status_url = form.url

    # A moderator decides ILLEGAL in the Notices queue.
    moderator = new_page(browser, errors)
    sign_in(moderator, base, first)
    moderator.get_by_role("link", name="Notices").click()
    moderator.get_by_role("link", name=reference).click()
    moderator.get_by_role("button", name="Start review").click()
    expect(moderator.locator("#notice-state")).to_have_text("UNDER_REVIEW")
    moderator.get_by_label("Illegal: remove the comments").check()
    moderator.get_by_label("Legal ground (required for illegal)").fill("§ 111 StGB (Austria)")
    moderator.get_by_label("Explanation (the author and the reporter read it)").fill(
        "An unproven accusation of bribery against a named official."
    )
    moderator.get_by_role("button", name="Decide").click()
    expect(moderator.locator("#notice-state")).to_have_text("COMPLETED: ILLEGAL")
    assert status_of(sessions, comment) == Status.REJECTED

    # The author's browser (the widget's reader token) reads the statement and appeals.
    author_page = new_page(browser, errors)
    author_page.add_init_script(
        f"localStorage.setItem('mc:reader', {json.dumps(json.dumps(TOKEN))})"
    )
    author_page.goto(article_url)
    statements = author_page.evaluate(
        """async ([api, key]) => {
            const token = JSON.parse(localStorage.getItem('mc:reader'));
            const answer = await fetch(`${api}/api/v1/public/${key}/dsa/statements`,
                                       {headers: {'Reader-Token': token}});
            return (await answer.json()).statements;
        }""",
        [base, site.publishable],
    )
    assert len(statements) == 1 and statements[0]["comment_id"] == comment
    author_page.goto(statements[0]["url"])
    expect(author_page.locator("#statement-summary")).to_contain_text("Your comment was removed")
    expect(author_page.locator("#legal-ground")).to_have_text("§ 111 StGB (Austria)")
    author_page.get_by_label("Why is the decision wrong?").fill("It is documented in court files.")
    author_page.get_by_role("button", name="Send the appeal").click()
    expect(author_page.locator("#appeal-outcome")).to_contain_text("did not take the decision")

    # The moderator who decided may not decide the appeal; a second one reverses.
    moderator.get_by_role("link", name="Appeals").click()
    moderator.get_by_label(re.compile("Reverse the decision")).check()
    moderator.get_by_label("Reasons (the author reads them)").fill("The court files confirm it.")
    moderator.get_by_role("button", name="Decide the appeal").click()
    expect(moderator.locator(".flash.error")).to_contain_text("another moderator")
    assert status_of(sessions, comment) == Status.REJECTED
    other = new_page(browser, errors)
    sign_in(other, base, second)
    other.get_by_role("link", name="Appeals").click()
    expect(other.locator(".appeal-text")).to_have_text("It is documented in court files.")
    other.get_by_label(re.compile("Reverse the decision")).check()
    other.get_by_label("Reasons (the author reads them)").fill("The court files confirm it.")
    other.get_by_role("button", name="Decide the appeal").click()
    expect(other.locator(".flash.ok")).to_contain_text("reversed")
    assert status_of(sessions, comment) == Status.APPROVED

    # The author reads the outcome; the reporter's reference shows the comment restored.
    author_page.reload()
    expect(author_page.locator("#appeal-outcome")).to_contain_text(
        "The decision was reversed: The court files confirm it."
    )
    form.goto(status_url)
    expect(form.locator("#notice-decision")).to_have_text("The content is illegal")
    expect(form.locator("#notice-comments")).to_contain_text(f"{comment}: restored on appeal")
    for page in (reader, moderator, author_page, other):
        page.context.close()
    assert not errors, f"script errors on the pages: {errors}"
