"""Helpers for the moderator workspace tests: accounts, seeded comments, signing in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from moderation.db import unit_of_work
from moderation.models import Comment, Moderator, Site
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.decisions import store_decisions
from moderation.services.moderators import create_moderator, issue_token
from moderation.services.sites import create_site
from tests.fakes import KeywordScorer

PASSWORD = "a long test password"  # test accounts only
ABUSIVE = "You are a pathetic idiot and everyone hates you."


@dataclass(frozen=True)
class Account:
    """A moderator the test can sign in as."""

    id: int
    email: str
    password: str = PASSWORD


class Accounts:
    """Creates moderators with unique emails; removes them after the test."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def moderator(self, *site_names: str, admin: bool = False) -> Account:
        """A moderator of these sites (or an admin of all)."""
        email = f"mod-{uuid.uuid4().hex[:8]}@example.test"
        with unit_of_work(self.sessions) as session:
            sites = [_site(session, name) for name in site_names]
            moderator = create_moderator(session, email, PASSWORD, sites=sites, is_admin=admin)
            return Account(moderator.id, email)

    def token(self, account: Account) -> str:
        """A fresh API token of this moderator."""
        with unit_of_work(self.sessions) as session:
            return issue_token(session, session.get(Moderator, account.id), "test")[1]

    def remove_all(self) -> None:
        """Delete every moderator (their sites and tokens go with them)."""
        with unit_of_work(self.sessions) as session:
            session.execute(delete(Moderator))


def moderator_accounts(sessions: sessionmaker[Session]) -> Iterator[Accounts]:
    """Body of each test module's ``accounts`` fixture: accounts removed after the test."""
    accounts = Accounts(sessions)
    yield accounts
    accounts.remove_all()


def _site(session: Session, name: str) -> Site:
    site = session.scalars(select(Site).where(Site.name == name)).one_or_none()
    return site or create_site(session, name)[0]


def make_site(sessions: sessionmaker[Session], name: str) -> str:
    """Create a site and return its API key."""
    with unit_of_work(sessions) as session:
        return create_site(session, name)[1]


def seed_comment(
    sessions: sessionmaker[Session],
    site_name: str,
    text: str,
    *,
    article: str = "budget-2026",
    author: str = "reader-1",
) -> str:
    """A comment posted and decided by the keyword scorer ('idiot' is held); its public id."""
    with unit_of_work(sessions) as session:
        site = _site(session, site_name)
        data = CommentSubmission(
            article_id=article,
            article_title="The budget, explained",
            article_url="https://news.example/budget",
            author_id=author,
            author_name="Ann Reader",
            text=text,
        )
        comment = submit_comment(session, site, data).comment
        scorer = KeywordScorer()
        store_decisions(session, {comment.id: scorer.score_batch([text])[0]}, scorer)
        return comment.public_id


def status_of(sessions: sessionmaker[Session], public_id: str) -> str:
    """A comment's stored status."""
    with sessions() as session:
        return session.scalars(select(Comment.status).where(Comment.public_id == public_id)).one()


def csrf_token(html: str) -> str:
    """The CSRF token a page carries in its forms."""
    found = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def version_of(html: str, public_id: str) -> str:
    """The version a card shows for a comment."""
    found = re.search(rf'value="{re.escape(public_id)}:(\d+)"', html)
    assert found, f"no card for {public_id}"
    return found.group(1)


def sign_in(client, account: Account) -> str:
    """Sign a Flask test client in; returns the CSRF token of its session.

    Each sign-in comes from an address of its own: the suite signs in far more often than
    the per-address limit on sign-in attempts allows one person.
    """
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": csrf_token(page.text),
        },
        environ_base={"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1"},
    )
    assert answer.status_code == 302, answer.text
    return csrf_token(client.get("/moderate").text)
