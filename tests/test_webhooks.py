"""Signed webhooks: a loopback receiver gets every event exactly as the audit says, also after
it failed; failed deliveries show in the log and can be re-sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from moderation.db import unit_of_work
from moderation.models import AuditEvent, Comment, DeliveryStatus, Status, WebhookDelivery
from moderation.policy import Decision
from moderation.rules import Finding
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.decisions import transition
from moderation.services.integration import update_rules
from moderation.services.sites import create_site, site_for_api_key
from moderation.services.webhooks import (
    COMMENT_DECIDED,
    HttpSender,
    configure_webhook,
    deliver,
    due_delivery_ids,
    emit_event,
    signature_header,
    verify_signature,
)
from tests.support import settings_for_tests, wait_until
from tests.test_pipeline import ABUSIVE, CLEAN

SIGNATURE_TOLERANCE = 300


class Receiver:
    """A site's webhook endpoint on 127.0.0.1: checks signatures, answers as scripted."""

    def __init__(self, fail_first: int = 0):
        self.secret = ""
        self.fail_first = fail_first
        self.always_fail = False
        self.requests: list[dict] = []
        self.accepted: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/moderation"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.receive(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        return Handler

    def receive(self, headers: dict, body: bytes) -> int:
        """What a careful receiver does: verify, refuse replays, deduplicate on the event id."""
        verified = signature_ok(self.secret, headers.get("Moderation-Signature", ""), body)
        event = json.loads(body)
        with self.lock:
            failing = self.always_fail or len(self.requests) < self.fail_first
            status = 401 if not verified else 500 if failing else 200
            self.requests.append({"event": event, "headers": headers, "status": status})
            if status == 200:
                assert event["id"] not in self.accepted, "accepted the same event twice"
                self.accepted[event["id"]] = event
        return status

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def signature_ok(secret: str, header: str, body: bytes) -> bool:
    """The check the README tells receivers to make, written independently of the service."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or abs(time.time() - int(fields["t"])) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields.get("v1", ""))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail_first=2) as receiver:
        yield receiver


def hooked_site(sessions, receiver: Receiver, name: str = "example-news") -> str:
    """A site whose webhook points at the receiver; returns its API key."""
    with unit_of_work(sessions) as session:
        site, key = create_site(session, name)
        receiver.secret = configure_webhook(session, site, receiver.url)
        update_rules(session, site, banned_words=["idiot"])
    return key


def audit_trail(sessions) -> list[tuple]:
    with sessions() as session:
        rows = session.execute(
            select(Comment.public_id, AuditEvent)
            .join(Comment, Comment.id == AuditEvent.comment_id)
            .where(AuditEvent.from_status != AuditEvent.to_status)
            .order_by(AuditEvent.id)
        )
        return sorted(
            (public_id, a.from_status, a.to_status, a.actor_type, a.actor_id, a.reason)
            for public_id, a in rows
        )


def is_comment_event(event: dict) -> bool:
    """The comment events these tests follow (restrictions also send DSA events)."""
    return event["type"].startswith("comment.")


def comment_requests(receiver: Receiver) -> list[dict]:
    return [request for request in receiver.requests if is_comment_event(request["event"])]


# The deliveries of comment events, not of the DSA statements restrictions also issue.
COMMENT_DELIVERIES = select(WebhookDelivery).where(WebhookDelivery.event_type.like("comment.%"))


def received_trail(receiver: Receiver) -> list[tuple]:
    trail = []
    for event in filter(is_comment_event, receiver.accepted.values()):
        comment, step = event["data"]["comment"], event["data"]["transition"]
        actor = step["actor"]
        trail.append(
            (comment["id"], step["from"], step["to"], actor["type"], actor["id"], step["reason"])
        )
    return sorted(trail)


# --- Signatures ------------------------------------------------------------------------------


def test_the_signature_covers_timestamp_and_body_and_old_ones_are_replays():
    body = b'{"id":"evt_1"}'
    header = signature_header("whsec_test", body, timestamp=1_700_000_000)
    assert verify_signature("whsec_test", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_other", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_test", header, body + b" ", now=1_700_000_100)
    assert not verify_signature("whsec_test", header, body, now=1_700_000_000 + 301)
    forged = header.replace("t=1700000000", "t=1700000200")
    assert not verify_signature("whsec_test", forged, body, now=1_700_000_200)
    assert not verify_signature("whsec_test", "garbage", body)


# --- Recording events with the transition ----------------------------------------------------


def held_by_rule() -> Decision:
    finding = Finding("suspect_word", "suspect_words", outcome=Status.HELD, note="x")
    return Decision(Status.HELD, (finding,))


def stored_comment(sessions, key: str, text: str = "A fair point.") -> str:
    """A comment submitted in the test's own sessions: no task is sent for it, so no worker
    that another test started can deliver its events behind this test's back."""
    body = {"article_id": "a/1", "author_id": "u1", "author_name": "U", "text": text}
    with unit_of_work(sessions) as session:
        site = site_for_api_key(session, key)
        return submit_comment(session, site, CommentSubmission(**body)).comment.public_id


def test_an_event_is_stored_in_the_same_transaction_as_its_transition(sessions):
    with Receiver() as receiver:
        key = hooked_site(sessions, receiver)
        public_id = stored_comment(sessions, key)
        with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
            comment = session.scalars(select(Comment)).one()
            assert transition(session, comment, held_by_rule(), reason="rules")
            raise RuntimeError("the decision's transaction fails")
        with sessions() as session:
            assert session.scalars(select(WebhookDelivery)).all() == []
            assert session.scalars(select(AuditEvent)).all() == []
        with unit_of_work(sessions) as session:
            comment = session.scalars(select(Comment)).one()
            transition(session, comment, held_by_rule(), reason="rules")
        with sessions() as session:
            delivery = session.scalars(COMMENT_DELIVERIES).one()
            audit = session.scalars(select(AuditEvent)).one()
    assert delivery.audit_event_id == audit.id
    assert delivery.event_type == COMMENT_DECIDED
    assert delivery.payload["data"]["comment"]["id"] == public_id
    assert delivery.payload["data"]["transition"]["reasons"][0]["code"] == "suspect_word"


def test_sites_without_a_webhook_record_no_events(sessions, site_key):
    stored_comment(sessions, site_key)
    with unit_of_work(sessions) as session:
        comment = session.scalars(select(Comment)).one()
        transition(session, comment, held_by_rule(), reason="rules")
        assert emit_event(session, comment, COMMENT_DECIDED) is None
    with sessions() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_failed_deliveries_back_off_then_show_as_failed(client, sessions, database_url, tmp_path):
    settings = settings_for_tests(
        database_url, tmp_path, webhook_max_attempts=3, webhook_retry_delay=0.05
    )
    with Receiver() as receiver:
        receiver.always_fail = True
        key = hooked_site(sessions, receiver)
        stored_comment(sessions, key, "you idiot")  # rejected by a rule: one event
        with sessions() as session:
            due = set(due_delivery_ids(session, overdue_by=timedelta()))
            comment_ids = {delivery.id for delivery in session.scalars(COMMENT_DELIVERIES)}
            (delivery_id,) = due & comment_ids
        sender, delays = HttpSender(timeout=5), []
        while len(delays) < 3:
            delay = deliver(sessions, delivery_id, sender, settings)
            delays.append(delay)
            time.sleep((delay or 0) + 0.01)
    assert delays == [0.05, 0.1, None]
    assert [r["status"] for r in receiver.requests] == [500, 500, 500]
    assert len({r["event"]["id"] for r in receiver.requests}) == 1
    auth = {"Authorization": f"Bearer {key}"}
    log = client.get("/api/v1/webhooks/deliveries?status=failed", headers=auth).get_json()
    (failed,) = [d for d in log["deliveries"] if d["event_type"].startswith("comment.")]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 3, 500)
    detail = client.get(f"/api/v1/webhooks/deliveries/{failed['id']}", headers=auth).get_json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 500]
    assert detail["event"]["type"] == "comment.decided"
    assert deliver(sessions, delivery_id, HttpSender(timeout=5), settings) is None  # given up


def test_another_site_cannot_see_or_resend_a_delivery(client, sessions):
    with Receiver() as receiver:
        key = hooked_site(sessions, receiver)
        stored_comment(sessions, key, "idiot")
    with unit_of_work(sessions) as session:
        other_key = create_site(session, "other-news")[1]
    mine = client.get("/api/v1/webhooks/deliveries", headers={"Authorization": f"Bearer {key}"})
    (delivery,) = [
        d for d in mine.get_json()["deliveries"] if d["event_type"].startswith("comment.")
    ]
    other = {"Authorization": f"Bearer {other_key}"}
    assert client.get("/api/v1/webhooks/deliveries", headers=other).get_json()["deliveries"] == []
    url = f"/api/v1/webhooks/deliveries/{delivery['id']}"
    assert client.get(url, headers=other).status_code == 404
    assert client.post(f"{url}/resend", headers=other).status_code == 404


# --- End to end: the real worker delivers ----------------------------------------------------


@pytest.mark.e2e
def test_the_receiver_gets_every_event_as_the_audit_says_after_failing_twice(
    worker, live_server, sessions, receiver, app
):
    key = hooked_site(sessions, receiver)
    texts = [*CLEAN[:3], *ABUSIVE[:2], "What an 1d10t."]
    for text in texts:
        response = requests.post(
            f"{live_server.url}/api/v1/comments",
            json={
                "article_id": "e2e/hooks",
                "author_id": "reader",
                "author_name": "R",
                "text": text,
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert response.status_code == 202

    def everything_delivered() -> bool:
        trail = audit_trail(sessions)
        return len(trail) == len(texts) and received_trail(receiver) == trail

    assert wait_until(everything_delivered, timeout=120), (
        audit_trail(sessions),
        received_trail(receiver),
    )
    statuses = [request["status"] for request in receiver.requests]
    assert statuses[:2] == [500, 500] and set(statuses[2:]) == {200}
    refused = {request["event"]["id"] for request in receiver.requests[:2]}
    assert wait_until(lambda: refused <= set(receiver.accepted), timeout=60)
    # Every event once, plus the two refused attempts sent again.
    assert len(receiver.requests) == len(receiver.accepted) + 2

    _moderate_one_held_comment(app, sessions)
    assert wait_until(lambda: received_trail(receiver) == audit_trail(sessions), timeout=60)
    moderated = [e for e in receiver.accepted.values() if e["type"] == "comment.moderated"]
    assert len(moderated) == 1
    assert moderated[0]["data"]["transition"]["actor"]["type"] == "moderator"

    log = requests.get(
        f"{live_server.url}/api/v1/webhooks/deliveries",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["deliveries"]
    assert {d["status"] for d in log} == {"delivered"}
    assert sorted(d["attempts"] for d in log)[-2:] in ([1, 3], [2, 2])


def _moderate_one_held_comment(app, sessions) -> None:
    """Approve a held comment the way the moderator workspace does, in the app's sessions."""
    from moderation.services.moderation import moderate
    from moderation.services.moderators import create_moderator

    app_sessions = app.extensions["moderation"].sessions
    with unit_of_work(app_sessions) as session:
        moderator = create_moderator(
            session, f"mod-{uuid.uuid4().hex[:8]}@example.org", "a long password", is_admin=True
        )
        held = session.scalars(select(Comment).where(Comment.status == Status.HELD)).first()
        assert held is not None
        assert moderate(session, held, moderator, Status.APPROVED).changed


@pytest.mark.e2e
def test_a_failed_delivery_is_resent_and_delivered(worker, live_server, sessions, database_url):
    with Receiver() as receiver:
        receiver.always_fail = True
        key = hooked_site(sessions, receiver)
        auth = {"Authorization": f"Bearer {key}"}
        body = {"article_id": "a", "author_id": "u", "author_name": "U", "text": "idiot!"}
        requests.post(f"{live_server.url}/api/v1/comments", json=body, headers=auth, timeout=10)
        assert wait_until(lambda: len(comment_requests(receiver)) >= 2, timeout=60)
        with unit_of_work(sessions) as session:
            # Give up now rather than after every back-off of the worker's settings.
            session.scalars(COMMENT_DELIVERIES).one().status = DeliveryStatus.FAILED
        deliveries_url = f"{live_server.url}/api/v1/webhooks/deliveries"
        failed = requests.get(f"{deliveries_url}?status=failed", headers=auth, timeout=10).json()
        (entry,) = failed["deliveries"]
        assert entry["last_status_code"] == 500

        receiver.always_fail = False
        resent = requests.post(f"{deliveries_url}/{entry['id']}/resend", headers=auth, timeout=10)
        assert resent.status_code == 202
        accepted = lambda: [e for e in receiver.accepted.values() if is_comment_event(e)]  # noqa: E731
        assert wait_until(lambda: len(accepted()) == 1, timeout=60)

        def delivery() -> dict:
            url = f"{deliveries_url}/{entry['id']}"
            return requests.get(url, headers=auth, timeout=10).json()

        # The worker records the delivery once the receiver's 200 is back: a moment later.
        assert wait_until(lambda: delivery()["status"] == "delivered", timeout=30)
        detail = delivery()
    assert detail["attempt_log"][-1]["status_code"] == 200
    assert {r["event"]["id"] for r in comment_requests(receiver)} == {entry["event_id"]}
