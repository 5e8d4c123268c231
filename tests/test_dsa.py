"""The DSA duties end to end through the API, the workspace and the CLI: notices, a statement
of reasons for every restriction, appeals, the Transparency Database export (validated against
its own rules) and its submission to a loopback server that fails once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema_rs
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from moderation.api.public import reader_author_id
from moderation.cli import main as cli
from moderation.db import unit_of_work
from moderation.dsa.statements import REDRESS
from moderation.dsa.transparency import SCHEMA_PATH
from moderation.models import (
    Appeal,
    Comment,
    Moderator,
    Notice,
    SanctionKind,
    Site,
    StatementOfReasons,
    Status,
)
from moderation.services.authors import sanction_author
from moderation.services.integration import update_rules
from moderation.services.moderation import ModerationError, moderate
from moderation.services.reports import report_comment
from tests.moderation_support import csrf_token, moderator_accounts, seed_comment, sign_in
from tests.support import UNREACHED_LIMITS, WIDGET_ORIGIN, app_with, make_site

SITE = "example-news"
TOKEN = "author-token-0123456789abcdef"
ORIGIN = {"Origin": WIDGET_ORIGIN}
VALIDATOR = jsonschema_rs.validator_for(json.loads(SCHEMA_PATH.read_text()))


@pytest.fixture(scope="module")
def dsa_app(database_url, broker):
    """An app with its own rate-limit counters, which this module's notices stay under."""
    with app_with(database_url, broker, **UNREACHED_LIMITS) as app:
        yield app


@pytest.fixture
def client(dsa_app, sessions):
    """A test client of that app, on a clean database."""
    return dsa_app.test_client()


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


@pytest.fixture
def site(sessions):
    """A site with a publishable key for the widget's origin."""
    return make_site(sessions, SITE)


def author_id(sessions, name: str = SITE) -> str:
    with sessions() as session:
        site = session.scalars(select(Site).where(Site.name == name)).one()
        return reader_author_id(site, TOKEN)


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def notice_body(comment_id: str, **changes) -> dict:
    body = {
        "category": "defamation",
        "law": "§ 111 StGB (Austria)",
        "explanation": "It falsely accuses a named local official of taking bribes.",
        "comments": [comment_id],
        "reporter_name": "Eva Reader",
        "reporter_email": "eva@example.test",
        "good_faith": True,
    }
    return body | changes


# --- Notices -------------------------------------------------------------------------------


def test_a_notice_is_filed_and_followed_by_its_reference(client, sessions, site):
    comment = seed_comment(sessions, SITE, "The mayor takes bribes, everyone knows it.")
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    answer = client.post(url, json=notice_body(comment), headers=ORIGIN)
    assert answer.status_code == 201, answer.text
    reference = answer.json["reference"]
    assert reference.startswith("DSA-") and answer.json["state"] == "AWAITING_REVIEW"
    assert answer.headers["Location"].endswith(f"/dsa/notices/{reference}")
    status = client.get(f"{url}/{reference}", headers=ORIGIN)
    assert status.status_code == 200
    assert status.json["comments"] == [{"id": comment, "outcome": "pending"}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": None}, "category"),
        ({"category": "rude"}, "category"),
        ({"explanation": "  "}, "explanation"),
        ({"good_faith": False}, "good_faith"),
        ({"good_faith": "yes"}, "good_faith"),
        ({"reporter_email": None}, "reporter_email"),
        ({"comments": []}, "comments"),
    ],
)
def test_a_notice_missing_what_the_law_asks_is_a_422_naming_the_field(
    client, sessions, site, change, field
):
    comment = seed_comment(sessions, SITE, "The mayor takes bribes.")
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    answer = client.post(url, json=notice_body(comment, **change), headers=ORIGIN)
    assert answer.status_code == 422, answer.text
    assert answer.json["error"]["field"] == field
    assert count(sessions, Notice) == 0


def test_child_sexual_abuse_notices_may_be_anonymous(client, sessions, site):
    comment = seed_comment(sessions, SITE, "A link to abuse material.")
    body = notice_body(
        comment, category="child_sexual_abuse", reporter_name=None, reporter_email=None
    )
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    assert client.post(url, json=body, headers=ORIGIN).status_code == 201


def test_notices_and_statements_stay_within_their_site(client, sessions, site):
    other = make_site(sessions, "other-news")
    theirs = seed_comment(sessions, "other-news", "Their comment.")
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    answer = client.post(url, json=notice_body(theirs), headers=ORIGIN)
    assert answer.status_code == 404 and count(sessions, Notice) == 0
    ours = seed_comment(sessions, SITE, "Our comment.")
    reference = client.post(url, json=notice_body(ours), headers=ORIGIN).json["reference"]
    elsewhere = f"/api/v1/public/{other.publishable}/dsa/notices/{reference}"
    assert client.get(elsewhere, headers=ORIGIN).status_code == 404
    no_token = client.get(f"/api/v1/public/{site.publishable}/dsa/statements", headers=ORIGIN)
    assert no_token.status_code == 401


def test_the_notice_form_page_files_a_notice(client, sessions, site):
    comment = seed_comment(sessions, SITE, "The mayor takes bribes.")
    page = client.get(f"/dsa/notice?key={site.publishable}&comment={comment}")
    assert page.status_code == 200 and "anonymously" in page.text
    form = {
        "key": site.publishable,
        "comment": comment,
        "category": "defamation",
        "explanation": "False accusation of a crime.",
        "reporter_name": "Eva",
        "reporter_email": "eva@example.test",
    }
    refused = client.post("/dsa/notice", data=form)
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert count(sessions, Notice) == 0
    filed = client.post("/dsa/notice", data=form | {"good_faith": "yes"})
    assert filed.status_code == 303
    assert "Your notice was received" in client.get(filed.headers["Location"]).text


# --- The whole flow: ILLEGAL, statement, appeal, reversal --------------------------------------


def test_illegal_decision_statement_appeal_and_reversal(client, sessions, site, accounts):
    first = accounts.moderator(SITE)
    second = accounts.moderator(SITE)
    comment = seed_comment(sessions, SITE, "The mayor takes bribes.", author=author_id(sessions))
    assert _status(sessions, comment) == Status.APPROVED
    public = f"/api/v1/public/{site.publishable}/dsa"
    reference = client.post(f"{public}/notices", json=notice_body(comment), headers=ORIGIN).json[
        "reference"
    ]

    csrf = sign_in(client, first)
    base = f"/moderate/dsa/notices/{reference}"
    assert reference in client.get("/moderate/dsa/notices").text
    no_ground = {"csrf_token": csrf, "decision": "ILLEGAL", "explanation": "A false accusation."}
    client.post(f"{base}/decide", data=no_ground)
    assert _status(sessions, comment) == Status.APPROVED  # refused: no legal ground
    decided = client.post(f"{base}/decide", data=no_ground | {"legal_ground": "§ 111 StGB"})
    assert decided.status_code == 303
    assert _status(sessions, comment) == Status.REJECTED

    headers = ORIGIN | {"Reader-Token": TOKEN}
    statements = client.get(f"{public}/statements", headers=headers).json["statements"]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert statement["illegal_content_legal_ground"] == "§ 111 StGB"
    assert statement["source_type"] == "SOURCE_ARTICLE_16"
    assert statement["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert statement["redress"] == REDRESS
    assert client.get(f"{public}/notices/{reference}", headers=ORIGIN).json["comments"] == [
        {"id": comment, "outcome": "removed"}
    ]

    appeal_url = f"{public}/statements/{statement['id']}/appeal"
    stranger = ORIGIN | {"Reader-Token": "someone-else-0123456789"}
    assert client.post(appeal_url, json={"text": "x"}, headers=stranger).status_code == 404
    filed = client.post(appeal_url, json={"text": "It is true and documented."}, headers=headers)
    assert filed.status_code == 201, filed.text
    again = client.post(appeal_url, json={"text": "Again."}, headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_appealed"

    appeal_id = filed.json["id"]
    reverse = {"csrf_token": csrf, "outcome": "REVERSED", "reasons": "The facts are public."}
    client.post(f"/moderate/dsa/appeals/{appeal_id}/decide", data=reverse)
    assert _status(sessions, comment) == Status.REJECTED  # the decider may not decide it

    client.post("/logout", data={"csrf_token": csrf})
    csrf = sign_in(client, second)
    answer = client.post(
        f"/moderate/dsa/appeals/{appeal_id}/decide", data=reverse | {"csrf_token": csrf}
    )
    assert answer.status_code == 303
    assert _status(sessions, comment) == Status.APPROVED
    status = client.get(f"{public}/notices/{reference}", headers=ORIGIN).json
    assert status["comments"] == [{"id": comment, "outcome": "restored on appeal"}]
    mine = client.get(f"{public}/statements", headers=headers).json["statements"][0]
    assert mine["appeal"]["outcome"] == "REVERSED" and mine["reversed_at"]


def test_an_appeal_after_six_months_is_a_409(client, sessions, site, accounts):
    moderator = accounts.moderator(SITE)
    comment = seed_comment(sessions, SITE, "Spam spam spam.", author=author_id(sessions))
    with unit_of_work(sessions) as session:
        target = session.scalars(select(Comment).where(Comment.public_id == comment)).one()
        moderate(session, target, session.get(Moderator, moderator.id), Status.REJECTED, "spam")
        statement = session.scalars(select(StatementOfReasons)).one()
        statement.application_date -= timedelta(days=200)
        public_id = statement.public_id
    url = f"/api/v1/public/{site.publishable}/dsa/statements/{public_id}/appeal"
    late = client.post(url, json={"text": "Too late?"}, headers=ORIGIN | {"Reader-Token": TOKEN})
    assert late.status_code == 409 and late.json["error"]["code"] == "appeal_window_closed"
    assert count(sessions, Appeal) == 0


def test_illegal_content_rejection_needs_a_legal_ground_and_an_explanation(
    sessions, site, accounts
):
    moderator = accounts.moderator(SITE)
    comment = seed_comment(sessions, SITE, "A comment.")
    with unit_of_work(sessions) as session:
        target = session.scalars(select(Comment).where(Comment.public_id == comment)).one()
        who = session.get(Moderator, moderator.id)
        with pytest.raises(ModerationError) as missing:
            moderate(session, target, who, Status.REJECTED, "illegal_content", "why")
        assert missing.value.field == "legal_ground"
        with pytest.raises(ModerationError) as unexplained:
            moderate(session, target, who, Status.REJECTED, "illegal_content", legal_ground="x")
        assert unexplained.value.field == "note"
    assert count(sessions, StatementOfReasons) == 0


# --- Every restriction, and the export in the Transparency Database's layout -------------------


def _every_restriction(sessions, accounts) -> None:
    moderator = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, "You idiot.", author="reader-a")
    assert _status(sessions, held) == Status.HELD
    reported = seed_comment(sessions, SITE, "Fine words.", author="reader-b")
    rejected = seed_comment(sessions, SITE, "Buy cheap watches.", author="reader-c")
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        update_rules(session, site, illegal_report_threshold=1)
        report_comment(session, site, reported, "some-reader", "illegal")
        who = session.get(Moderator, moderator.id)
        target = session.scalars(select(Comment).where(Comment.public_id == rejected)).one()
        moderate(session, target, who, Status.REJECTED, "spam")
        until = datetime.now(UTC) + timedelta(days=7)
        sanction_author(session, site, "reader-c", who, SanctionKind.SUSPEND, "spam", ends_at=until)
        sanction_author(session, site, "reader-a", who, SanctionKind.BAN, "repeated insults")
        held_comment = session.scalars(select(Comment).where(Comment.public_id == held)).one()
        moderate(session, held_comment, who, Status.APPROVED)


def test_every_restriction_gets_a_statement_that_exports_valid(client, sessions, site, accounts):
    _every_restriction(sessions, accounts)
    with sessions() as session:
        kinds = sorted(
            (s.decision_visibility or s.decision_account, s.source_type, s.end_date is not None)
            for s in session.scalars(select(StatementOfReasons))
        )
    assert kinds == [
        ("DECISION_ACCOUNT_SUSPENDED", "SOURCE_VOLUNTARY", True),
        ("DECISION_ACCOUNT_TERMINATED", "SOURCE_VOLUNTARY", False),
        ("DECISION_VISIBILITY_CONTENT_DISABLED", "SOURCE_TYPE_OTHER_NOTIFICATION", False),
        # the automatic hold, ended when the moderator published the comment
        ("DECISION_VISIBILITY_CONTENT_DISABLED", "SOURCE_VOLUNTARY", True),
        ("DECISION_VISIBILITY_CONTENT_REMOVED", "SOURCE_VOLUNTARY", False),
    ]
    today = datetime.now(UTC).date()
    period = f"since={today}&until={today + timedelta(days=1)}"
    answer = client.get(f"/api/v1/dsa/statements?{period}", headers=site.auth)
    assert answer.status_code == 200
    exported = answer.json["statements"]
    assert len(exported) == 5
    for payload in exported:
        errors = [error.message for error in VALIDATOR.iter_errors(payload)]
        assert not errors, (payload, errors)
        assert not any(name in json.dumps(payload) for name in ("reader-a", "Ann Reader"))
    assert VALIDATOR.is_valid(exported[0]) and not VALIDATOR.is_valid(
        exported[0] | {"automated_decision": "Yes"}
    )


def test_the_export_refuses_an_inverted_period_and_another_sites_key(client, sessions, site):
    answer = client.get(
        "/api/v1/dsa/statements?since=2026-02-01&until=2026-01-01", headers=site.auth
    )
    assert answer.status_code == 400 and answer.json["error"]["field"] == "until"
    assert client.get("/api/v1/dsa/statements?since=2026-01-01&until=2026-02-01").status_code == 401


def test_the_transparency_report_counts_the_period(client, sessions, site, accounts):
    _every_restriction(sessions, accounts)
    today = datetime.now(UTC).date()
    url = f"/api/v1/dsa/report?since={today}&until={today + timedelta(days=1)}"
    rows = {
        (r["section"], r["item"]): r["value"]
        for r in client.get(url, headers=site.auth).json["rows"]
    }
    assert rows[("restrictions by automation", "AUTOMATED_DECISION_FULLY")] == "2"
    assert rows[("restrictions by automation", "AUTOMATED_DECISION_NOT_AUTOMATED")] == "3"
    assert rows[("sanctions", "ban")] == "1" and rows[("sanctions", "suspend")] == "1"


# --- Submission to a loopback Transparency Database ---------------------------------------------


class FakeTransparencyDatabase:
    """The statement API on a loopback port: stores the first POST and then answers 503 (its
    answer lost), stores later ones with 201; answers PUID lookups from what it stored."""

    def __init__(self):
        self.stored: dict[str, dict] = {}
        self.posts: list[list[str]] = []
        self.tokens: set[str] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.tokens.add(self.headers.get("Authorization", ""))
                puid = self.path.rsplit("/", 1)[-1]
                self.send_response(302 if puid in owner.stored else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                owner.tokens.add(self.headers.get("Authorization", ""))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                batch = body["statements"]
                owner.posts.append([s["puid"] for s in batch])
                for statement in batch:
                    owner.stored[statement["puid"]] = statement
                status = 503 if len(owner.posts) == 1 else 201
                answer = {
                    "statements": [{"puid": s["puid"], "uuid": f"uuid-{s['puid']}"} for s in batch]
                }
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def transparency_database() -> Iterator[FakeTransparencyDatabase]:
    fake = FakeTransparencyDatabase()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_submission_retries_and_never_sends_a_statement_twice(
    sessions, site, accounts, settings, transparency_database, monkeypatch
):
    _every_restriction(sessions, accounts)
    monkeypatch.setenv("MODERATION_DATABASE_URL", settings.database_url)
    monkeypatch.setattr("moderation.dsa.transparency.time.sleep", lambda _seconds: None)
    today = datetime.now(UTC).date()
    period = ["--since", str(today), "--until", str(today + timedelta(days=1))]
    submit = [*period, "--submit", transparency_database.url, "--token", "tdb-token"]

    first = CliRunner().invoke(cli, ["dsa", "export", *submit])
    assert first.exit_code == 0, first.output
    # The first POST landed but its answer was lost: the retry looked the PUIDs up and sent
    # nothing again.
    assert "0 statement(s) sent, 5 already in the database" in first.output
    assert len(transparency_database.posts) == 1 and len(transparency_database.stored) == 5
    assert transparency_database.tokens == {"Bearer tdb-token"}
    for statement in transparency_database.stored.values():
        assert VALIDATOR.is_valid(statement)
    with sessions() as session:
        assert (
            session.scalar(select(func.count()).where(StatementOfReasons.submitted_at.is_(None)))
            == 0
        )

    second = CliRunner().invoke(cli, ["dsa", "export", *submit])
    assert "0 statement(s) sent, 0 already" in second.output
    assert len(transparency_database.posts) == 1

    printed = CliRunner().invoke(cli, ["dsa", "export", *period])
    lines = [json.loads(line) for line in printed.output.splitlines()]
    assert len(lines) == 5 and all(VALIDATOR.is_valid(line) for line in lines)


def _status(sessions, public_id: str) -> str:
    with sessions() as session:
        return session.scalars(select(Comment.status).where(Comment.public_id == public_id)).one()


def test_the_workspace_pages_need_a_moderator_of_the_site(client, sessions, site, accounts):
    comment = seed_comment(sessions, SITE, "Text.")
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    reference = client.post(url, json=notice_body(comment), headers=ORIGIN).json["reference"]
    assert client.get("/moderate/dsa/notices").status_code == 302
    make_site(sessions, "other-news")
    outsider = accounts.moderator("other-news")
    csrf = sign_in(client, outsider)
    assert reference not in client.get("/moderate/dsa/notices").text
    assert client.get(f"/moderate/dsa/notices/{reference}").status_code == 404
    data = {"csrf_token": csrf, "decision": "LEGAL", "explanation": "fine"}
    assert client.post(f"/moderate/dsa/notices/{reference}/decide", data=data).status_code == 404
    assert (
        client.post(f"/moderate/dsa/notices/{reference}/review", data={}).status_code == 400
    )  # no CSRF token
    assert csrf_token(client.get("/moderate/dsa/report").text)
    report = client.get("/moderate/dsa/report?format=csv")
    assert report.mimetype == "text/csv" and report.text.startswith("section,item,value")
