"""Markup in every field a site or a rule controls stays inert in the moderator's browser."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import update

from moderation.db import unit_of_work
from moderation.models import Comment
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.decisions import store_decisions
from moderation.services.sites import site_by_name
from tests.fakes import KeywordScorer
from tests.moderation_support import moderator_accounts
from tests.test_moderation_browser import SITE, WAIT_MS, card, sign_in

AUTHOR = '<img src=x onerror="window.hacked=1">Eve'
TITLE = "<script>window.hacked=2</script>Budget"
REASON = '<svg onload="window.hacked=3">suspect word'


def hostile_comment(sessions) -> str:
    with unit_of_work(sessions) as session:
        site = site_by_name(session, SITE)
        data = CommentSubmission(
            article_id="xss",
            article_title=TITLE,
            article_url="https://news.example/xss",
            author_id="eve",
            author_name=AUTHOR,
            text="you idiot",
        )
        comment = submit_comment(session, site, data).comment
        scorer = KeywordScorer()
        store_decisions(session, {comment.id: scorer.score_batch([comment.text])[0]}, scorer)
        reasons = [
            {
                "code": "suspect_word",
                "label": None,
                "score": None,
                "threshold": None,
                "message": REASON,
            }
        ]
        session.execute(update(Comment).where(Comment.id == comment.id).values(reasons=reasons))
        return comment.public_id


def test_author_title_and_reasons_are_shown_as_text(page, live_server, sessions, site_key):
    public_id = hostile_comment(sessions)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for accounts in moderator_accounts(sessions):
        sign_in(page, live_server.url, accounts.moderator(SITE))
        shown = card(page, public_id)
        expect(shown).to_contain_text("Eve", timeout=WAIT_MS)
        for url in (
            f"{live_server.url}/moderate",
            f"{live_server.url}/moderate/comments/{public_id}",
            f"{live_server.url}/audit",
        ):
            page.goto(url)
            page.wait_for_load_state("networkidle")
            body = page.locator("body").inner_text()
            if "audit" not in url:
                assert AUTHOR in body and TITLE in body and REASON in body
            assert page.evaluate("window.hacked") is None
            assert page.locator("main img, main svg[onload], main script").count() == 0
    assert dialogs == []
