"""The DSA duties end to end through the API, the workspace and the CLI: notices, a statement
of reasons for every restriction, appeals, the Transparency Database export (validated against
its own rules) and its submission to a loopback server that fails once."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema_rs
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text, update

import moderation.dsa.notices as notices_module
from moderation.api.public import reader_author_id
from moderation.cli import main as cli
from moderation.db import unit_of_work
from moderation.dsa.appeals import AppealRefused, decide_appeal, file_appeal
from moderation.dsa.notices import (
    NoticeRefused,
    decide_notice,
    notice_by_reference,
    start_review,
    void_notice,
)
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
from moderation.services.authors import lift_sanction, sanction_author
from moderation.services.integration import update_rules
from moderation.services.moderation import ModerationError, moderate
from moderation.services.readers import rejection_reason
from moderation.services.reports import report_comment
from tests.moderation_support import csrf_token, moderator_accounts, seed_comment, sign_in
from tests.support import UNREACHED_LIMITS, WIDGET_ORIGIN, app_with, make_site, wait_until

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


def new_address() -> dict:
    """A request from an address of its own: the pages' rate limits count per address, so
    these tests leave the browser test's budget alone."""
    octets = uuid.uuid4().bytes[:3]
    return {"environ_base": {"REMOTE_ADDR": "10." + ".".join(str(b) for b in octets)}}


def days_around_today() -> str:
    """Yesterday and today (UTC): it holds what the test wrote even when the test started
    before midnight and asks after it."""
    today = datetime.now(UTC).date()
    return f"since={today - timedelta(days=1)}&until={today + timedelta(days=1)}"


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
    # The facts go to the Transparency Database, which publishes them: not the reporter's
    # receipt (anyone holding it reads the notice's status).
    assert reference not in statement["decision_facts"]
    assert "after a notice under Art. 16 DSA" in statement["decision_facts"]

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
    answer = client.get(f"/api/v1/dsa/statements?{days_around_today()}", headers=site.auth)
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
    url = f"/api/v1/dsa/report?{days_around_today()}"
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
    # Yesterday and today: statements written just before midnight UTC are still in it.
    period = ["--since", str(today - timedelta(days=1)), "--until", str(today + timedelta(days=1))]
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


# --- A statement's PUID and its page ----------------------------------------------------------


def _rejected_statement(client, sessions, site, accounts) -> tuple[str, dict]:
    """A comment of the author's rejected by a moderator; the comment and its statement as
    the author reads it."""
    moderator = accounts.moderator(SITE)
    comment = seed_comment(sessions, SITE, "Buy cheap watches.", author=author_id(sessions))
    with unit_of_work(sessions) as session:
        target = session.scalars(select(Comment).where(Comment.public_id == comment)).one()
        moderate(session, target, session.get(Moderator, moderator.id), Status.REJECTED, "spam")
    headers = ORIGIN | {"Reader-Token": TOKEN}
    url = f"/api/v1/public/{site.publishable}/dsa/statements"
    (statement,) = client.get(url, headers=headers).json["statements"]
    return comment, statement


def test_the_puid_is_not_the_statements_id_and_its_page_needs_the_signed_link(
    client, sessions, site, accounts
):
    _, statement = _rejected_statement(client, sessions, site, accounts)
    with sessions() as session:
        stored = session.scalars(select(StatementOfReasons)).one()
        assert stored.puid != stored.public_id and stored.public_id not in stored.puid
    exported = client.get(f"/api/v1/dsa/statements?{days_around_today()}", headers=site.auth)
    assert statement["id"] not in json.dumps(exported.json)

    signed = statement["url"]
    assert "sig=" in signed
    bare = f"/dsa/statements/{statement['id']}"
    assert client.get(bare).status_code == 404
    assert client.get(f"{bare}?sig=forged").status_code == 404
    page = client.get(signed)
    assert page.status_code == 200 and "Appeal this decision" in page.text
    unsigned = client.post(f"{bare}/appeal", data={"text": "Anyone?"}, **new_address())
    forged = client.post(f"{bare}/appeal?sig=forged", data={"text": "Anyone?"}, **new_address())
    assert unsigned.status_code == forged.status_code == 404 and count(sessions, Appeal) == 0
    action = signed.replace(bare, f"{bare}/appeal")
    filed = client.post(action, data={"text": "It was not spam."}, **new_address())
    assert filed.status_code == 303 and count(sessions, Appeal) == 1
    assert "Your appeal" in client.get(filed.headers["Location"]).text


def test_the_migration_gives_existing_statements_a_puid_of_their_own(tmp_path):
    import sqlite3

    from moderation.migrate import upgrade_database

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade_database(url, "0009")
    columns = (
        "public_id, puid, site_id, author_id, decision_ground, category, decision_facts, "
        "automated_detection, automated_decision, source_type, content_date, "
        "application_date, redress, created_at, submitted_at"
    )
    rows = [
        ("sor_pending", "sor_pending", None),
        ("sor_submitted", "sor_submitted", "2026-11-02 00:00:00"),
    ]
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        for public_id, puid, submitted in rows:
            db.execute(
                f"INSERT INTO dsa_statements ({columns}) VALUES "
                "(?, ?, 1, 'a', 'g', 'c', 'f', 0, 'x', 's', '2026-11-01 00:00:00', "
                "'2026-11-01 00:00:00', 'r', '2026-11-01 00:00:00', ?)",
                (public_id, puid, submitted),
            )
    upgrade_database(url, "0010")
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        after = dict(db.execute("SELECT public_id, puid FROM dsa_statements ORDER BY id"))
    (pending, submitted) = after.items()
    # Not yet sent: a new random PUID. Sent: the PUID the database holds stays, the page
    # moves to a new id.
    assert pending[0] == "sor_pending" and len(pending[1]) == 32 and pending[1] != pending[0]
    assert submitted[1] == "sor_submitted" and submitted[0] != "sor_submitted"


# --- Races: two moderators, two appeals ---------------------------------------------------------


class Contender:
    """Work in its own session on its own thread, which the test starts once the other
    transaction holds what this work needs (PostgreSQL: it then waits on a lock)."""

    def __init__(self, sessions, work):
        self.sessions, self.work = sessions, work
        self.session = sessions()
        self.pid = self.session.scalar(text("SELECT pg_backend_pid()"))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.work(self.session)
            self.session.commit()
        except BaseException as exc:
            self.error = exc
            self.session.rollback()

    def start_and_wait_for_lock(self) -> None:
        self.thread.start()
        with self.sessions() as probe:

            def waiting() -> bool:
                query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
                state = probe.scalar(query, {"pid": self.pid})
                probe.commit()  # pg_stat_activity is read once per transaction
                return state == "Lock"

            assert wait_until(waiting, timeout=20, interval=0.01), "it never waited on a lock"

    def finish(self) -> BaseException | None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.session.close()
        return self.error


@pytest.fixture
def postgresql_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time: the race cannot happen there")


def _filed_notice(client, sessions, site) -> tuple[str, str]:
    comment = seed_comment(sessions, SITE, "The mayor takes bribes.", author=author_id(sessions))
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    return comment, client.post(url, json=notice_body(comment), headers=ORIGIN).json["reference"]


def _load_notice(session, reference: str) -> Notice:
    return notice_by_reference(session, None, reference)


def test_a_notice_decided_meanwhile_is_a_409_for_the_second_moderator(
    client, sessions, site, accounts
):
    comment, reference = _filed_notice(client, sessions, site)
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    with sessions() as late:
        stale = _load_notice(late, reference)  # read before the first moderator decides
        late.commit()
        with unit_of_work(sessions) as session:
            decide_notice(
                session,
                _load_notice(session, reference),
                session.get(Moderator, first.id),
                "LEGAL",
                None,
                "An opinion on a public figure.",
            )
        with pytest.raises(NoticeRefused) as refused:
            decide_notice(
                late, stale, late.get(Moderator, second.id), "ILLEGAL", "§ 111 StGB", "False."
            )
        assert refused.value.status == 409
        late.rollback()
        for act in (
            lambda: void_notice(late, stale, late.get(Moderator, second.id), "Duplicate."),
            lambda: start_review(late, stale, late.get(Moderator, second.id)),
        ):
            with pytest.raises(NoticeRefused):
                act()
            late.rollback()
    assert _status(sessions, comment) == Status.APPROVED
    with sessions() as session:
        notice = _load_notice(session, reference)
        assert notice.decision == "LEGAL" and notice.decided_by == first.email


def test_two_moderators_deciding_a_notice_at_once_decide_it_once(
    client, sessions, site, accounts, postgresql_only
):
    comment, reference = _filed_notice(client, sessions, site)
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    with sessions() as holder:
        decide_notice(
            holder,
            _load_notice(holder, reference),
            holder.get(Moderator, first.id),
            "LEGAL",
            None,
            "An opinion on a public figure.",
        )
        contender = Contender(
            sessions,
            lambda session, notice=None: decide_notice(
                session,
                _load_notice(session, reference),
                session.get(Moderator, second.id),
                "LEGAL",
                None,
                "Also fine.",
            ),
        )
        contender.start_and_wait_for_lock()
        holder.commit()
    error = contender.finish()
    assert isinstance(error, NoticeRefused) and error.status == 409, error
    with sessions() as session:
        notice = _load_notice(session, reference)
        assert notice.decided_by == first.email
        assert [entry["action"] for entry in notice.history] == ["received", "legal"]
    assert _status(sessions, comment) == Status.APPROVED


def test_a_comment_changed_meanwhile_leaves_the_notice_open(
    client, sessions, site, accounts, monkeypatch
):
    comment, reference = _filed_notice(client, sessions, site)
    moderator = accounts.moderator(SITE)
    real_moderate = notices_module.moderate

    def changed_first(session, target, *args, **kwargs):
        # Someone else writes the comment between its read and this moderator's update.
        session.execute(
            update(Comment)
            .where(Comment.id == target.id)
            .values(updated_at=datetime.now(UTC) + timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        return real_moderate(session, target, *args, **kwargs)

    monkeypatch.setattr(notices_module, "moderate", changed_first)
    with sessions() as session:
        with pytest.raises(NoticeRefused) as refused:
            decide_notice(
                session,
                _load_notice(session, reference),
                session.get(Moderator, moderator.id),
                "ILLEGAL",
                "§ 111 StGB",
                "False.",
            )
        assert refused.value.status == 409
        session.rollback()
    with sessions() as session:
        assert _load_notice(session, reference).state == "AWAITING_REVIEW"
    assert _status(sessions, comment) == Status.APPROVED


def _appealed(client, sessions, site, accounts) -> tuple[str, str]:
    """A rejected comment and the author's open appeal against it."""
    comment, statement = _rejected_statement(client, sessions, site, accounts)
    url = f"/api/v1/public/{site.publishable}/dsa/statements/{statement['id']}/appeal"
    headers = ORIGIN | {"Reader-Token": TOKEN}
    filed = client.post(url, json={"text": "It was not spam."}, headers=headers)
    assert filed.status_code == 201
    return comment, filed.json["id"]


def _load_appeal(session, public_id: str) -> Appeal:
    return session.scalars(select(Appeal).where(Appeal.public_id == public_id)).one()


def test_two_moderators_deciding_an_appeal_at_once_decide_it_once(
    client, sessions, site, accounts, postgresql_only
):
    comment, appeal_id = _appealed(client, sessions, site, accounts)
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    with sessions() as holder:
        who = holder.get(Moderator, first.id)
        decide_appeal(holder, _load_appeal(holder, appeal_id), who, "UPHELD", "It is spam.")
        contender = Contender(
            sessions,
            lambda session: decide_appeal(
                session,
                _load_appeal(session, appeal_id),
                session.get(Moderator, second.id),
                "REVERSED",
                "It is not spam.",
            ),
        )
        contender.start_and_wait_for_lock()
        holder.commit()
    error = contender.finish()
    assert isinstance(error, AppealRefused) and error.status == 409, error
    with sessions() as session:
        appeal = _load_appeal(session, appeal_id)
        assert appeal.outcome == "UPHELD" and appeal.decided_by == first.email
    assert _status(sessions, comment) == Status.REJECTED


def test_a_reversal_that_loses_the_race_for_the_comment_leaves_the_appeal_open(
    client, sessions, site, accounts
):
    comment, appeal_id = _appealed(client, sessions, site, accounts)
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    with sessions() as late:
        stale = _load_appeal(late, appeal_id)
        assert stale.statement.comment.status == Status.REJECTED
        late.commit()
        with unit_of_work(sessions) as session:
            target = session.scalars(select(Comment).where(Comment.public_id == comment)).one()
            who = session.get(Moderator, first.id)
            moderate(session, target, who, Status.APPROVED)
            moderate(session, target, who, Status.REJECTED, "spam")
        with pytest.raises(AppealRefused) as refused:
            decide_appeal(late, stale, late.get(Moderator, second.id), "REVERSED", "Not spam.")
        assert refused.value.status == 409
        late.rollback()
    with sessions() as session:
        assert _load_appeal(session, appeal_id).state == "OPEN"


def test_two_appeals_at_once_are_one_appeal_and_a_409(
    client, sessions, site, accounts, postgresql_only
):
    _, statement = _rejected_statement(client, sessions, site, accounts)

    def load(session):
        query = select(StatementOfReasons).where(StatementOfReasons.public_id == statement["id"])
        return session.scalars(query).one()

    with sessions() as holder:
        file_appeal(holder, load(holder), "First.")
        contender = Contender(sessions, lambda session: file_appeal(session, load(session), "2."))
        contender.start_and_wait_for_lock()
        holder.commit()
    error = contender.finish()
    assert isinstance(error, AppealRefused), error
    assert error.status == 409 and error.code == "already_appealed"
    assert count(sessions, Appeal) == 1


def test_an_appeal_that_loses_the_race_is_a_409_on_the_api_and_the_page(
    client, sessions, site, accounts, monkeypatch
):
    _, statement = _rejected_statement(client, sessions, site, accounts)
    url = f"/api/v1/public/{site.publishable}/dsa/statements/{statement['id']}/appeal"
    headers = ORIGIN | {"Reader-Token": TOKEN}
    assert client.post(url, json={"text": "First."}, headers=headers).status_code == 201
    # The second request's check ran before the first committed: it finds no appeal.
    monkeypatch.setattr("moderation.dsa.appeals.appeal_of", lambda _session, _statement: None)
    again = client.post(url, json={"text": "Second."}, headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_appealed"
    bare = f"/dsa/statements/{statement['id']}"
    action = statement["url"].replace(bare, f"{bare}/appeal")
    page = client.post(action, data={"text": "Third."}, **new_address())
    assert page.status_code == 409 and "Your appeal" in page.text
    assert count(sessions, Appeal) == 1


# --- What the database cannot store, sanctions lifted, plain words -------------------------------


def test_the_pages_refuse_nul_characters_naming_the_field(client, sessions, site, accounts):
    comment, statement = _rejected_statement(client, sessions, site, accounts)
    form = {
        "key": site.publishable,
        "comment": comment,
        "category": "defamation",
        "explanation": "False \x00 accusation.",
        "reporter_name": "Eva",
        "reporter_email": "eva@example.test",
        "good_faith": "yes",
    }
    refused = client.post("/dsa/notice", data=form, **new_address())
    assert refused.status_code == 422 and "explanation must not contain NUL" in refused.text
    nul_id = form | {"explanation": "ok", "comment": "c\x00"}
    named = client.post("/dsa/notice", data=nul_id, **new_address())
    assert named.status_code == 422 and 'id="comment"' in named.text
    assert 'aria-invalid="true"' in named.text
    assert count(sessions, Notice) == 0
    bare = f"/dsa/statements/{statement['id']}"
    action = statement["url"].replace(bare, f"{bare}/appeal")
    appeal = client.post(action, data={"text": "a\x00"}, **new_address())
    assert appeal.status_code == 422 and "text must not contain NUL" in appeal.text
    assert count(sessions, Appeal) == 0


def test_a_wrong_reporter_email_is_a_422_naming_reporter_email(client, sessions, site):
    comment = seed_comment(sessions, SITE, "The mayor takes bribes.")
    url = f"/api/v1/public/{site.publishable}/dsa/notices"
    body = notice_body(comment, reporter_email="not an address")
    answer = client.post(url, json=body, headers=ORIGIN)
    assert answer.status_code == 422 and answer.json["error"]["field"] == "reporter_email"


def test_lifting_a_sanction_ends_its_statement(sessions, site, accounts):
    moderator = accounts.moderator(SITE)
    seed_comment(sessions, SITE, "Buy cheap watches.", author="reader-c")
    seed_comment(sessions, SITE, "Fine words.", author="reader-a")
    with unit_of_work(sessions) as session:
        stored = session.scalars(select(Site).where(Site.name == SITE)).one()
        who = session.get(Moderator, moderator.id)
        until = datetime.now(UTC) + timedelta(days=7)
        suspension = sanction_author(
            session, stored, "reader-c", who, SanctionKind.SUSPEND, "spam", ends_at=until
        ).sanction
        ban = sanction_author(session, stored, "reader-a", who, SanctionKind.BAN, "insults")
        lift_sanction(session, suspension, who, "A mistake.")
        lift_sanction(session, ban.sanction, who, "Apologised.")
        lifted = {suspension.id: suspension.lifted_at, ban.sanction.id: ban.sanction.lifted_at}
    with sessions() as session:
        ends = {s.sanction_id: s.end_date for s in session.scalars(select(StatementOfReasons))}
    assert ends == lifted


def test_an_illegal_content_rejection_has_plain_words_for_the_author(sessions, site, accounts):
    moderator = accounts.moderator(SITE)
    comment = seed_comment(sessions, SITE, "A comment.")
    with unit_of_work(sessions) as session:
        target = session.scalars(select(Comment).where(Comment.public_id == comment)).one()
        who = session.get(Moderator, moderator.id)
        moderate(
            session, target, who, Status.REJECTED, "illegal_content", "Why.", legal_ground="§ 1"
        )
        words = rejection_reason(session, target)
    assert words == ("illegal_content", "it was found to be illegal content")


def test_notices_and_statements_share_their_categories_without_importing_each_other():
    import moderation.dsa.categories as categories
    import moderation.dsa.notices as notices
    import moderation.dsa.statements as statements

    assert notices.CATEGORIES is categories.CATEGORIES
    assert statements.notice_category is categories.notice_category
    assert statements.notice_category("terrorism") == (
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    )
