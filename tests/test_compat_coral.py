"""Coral's external moderation phase: signed requests built as Coral's documentation describes."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from moderation.cli import main
from moderation.db import unit_of_work
from moderation.models import AuditEvent, Comment, Site, Status
from moderation.services.coral import configure_coral, plain_text, signature_valid
from moderation.services.sites import site_by_name
from moderation.tasks_client import ScoringUnavailable, TaskQueue, TextScores
from tests.conftest import MODEL_PATH
from tests.support import app_with, make_site, serving, settings_for_tests

SECRET = "whsec-coral-test-0123456789abcdef"
PATH = "/coral/sites/example-news/moderation"
ABUSIVE = "You are a pathetic idiot and a worthless moron."
FRIENDLY = "Thank you for this thoughtful and well researched article."
TWO_SENTENCES = "Thanks for the article, I enjoyed it. You are a pathetic idiot and a moron."


def coral_request(body: str = FRIENDLY, action: str = "NEW") -> dict:
    """An External Moderation Request as in Coral's documentation."""
    return {
        "action": action,
        "comment": {"body": body, "parentID": None},
        "author": {"id": "baf4e943-3594-4fcc-b2ba-3e8de7a76352", "role": "COMMENTER"},
        "story": {
            "id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6",
            "url": "http://localhost:1313/posts/a-story-url/",
        },
        "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
        "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
        "tenantDomain": "localhost",
    }


def signed(payload: dict, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Coral sends: HMAC-SHA256 of the raw body, hex, 'sha256=' prefix."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Coral-Signature": f"sha256={digest}"}


@pytest.fixture
def coral_site(sessions, site_key) -> str:
    """example-news with Coral's signing secret configured."""
    with unit_of_work(sessions) as session:
        configure_coral(session, site_by_name(session, "example-news"), SECRET)
    return site_key


def fake_scores(monkeypatch, **scores: float) -> None:
    answer = TextScores("test-model", "v1", [scores])
    monkeypatch.setattr(TaskQueue, "score_now", lambda self, texts, **kw: answer)


# --- Signatures --------------------------------------------------------------------------------


def test_signature_accepts_any_of_several_and_refuses_the_rest():
    body = b'{"a": 1}'
    good = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    assert signature_valid(SECRET, body, f"sha256={good}")
    # While Coral rolls a secret it sends one signature per secret still honoured.
    assert signature_valid(SECRET, body, f"sha256={'0' * 64},sha256={good}")
    assert not signature_valid(SECRET, body + b" ", f"sha256={good}")
    assert not signature_valid(SECRET, body, f"sha1={good}")
    assert not signature_valid(None, body, f"sha256={good}")
    assert not signature_valid(SECRET, body, None)


def test_html_bodies_are_scored_as_the_text_a_reader_sees():
    assert plain_text("<p>You are <b>an idiot</b> &amp; a liar</p>") == "You are an idiot & a liar"
    assert plain_text("plain words") == "plain words"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Coral-Signature": "sha256=" + "0" * 64},
        {"X-Coral-Signature": "garbage"},
    ],
)
def test_missing_or_wrong_signature_is_refused_and_stores_nothing(
    client, coral_site, sessions, headers
):
    body, _ = signed(coral_request())
    response = client.post(PATH, data=body, headers={"Content-Type": "application/json", **headers})

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    with sessions() as session:
        assert session.scalar(select(Comment.id)) is None


def test_signature_under_another_secret_is_refused(client, coral_site):
    body, headers = signed(coral_request(), secret="not-the-configured-secret-at-all")
    assert client.post(PATH, data=body, headers=headers).status_code == 401


def test_a_site_without_coral_or_an_unknown_site_is_refused_alike(client, site_key):
    body, headers = signed(coral_request())
    assert client.post(PATH, data=body, headers=headers).status_code == 401
    unknown = client.post("/coral/sites/nowhere/moderation", data=body, headers=headers)
    assert unknown.status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "NEW"},
        {**coral_request(), "action": "DELETE"},
        {**coral_request(), "comment": {"body": 5}},
        [1, 2],
    ],
)
def test_malformed_requests_get_a_400_naming_the_problem(client, coral_site, payload):
    body, headers = signed(payload)
    response = client.post(PATH, data=body, headers=headers)

    assert response.status_code in (400, 422)
    assert response.get_json()["error"]["message"]


def test_not_json_is_a_400(client, coral_site):
    body = b"not json"
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Coral-Signature": f"sha256={digest}"}
    response = client.post(PATH, data=body, headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["0", "-5", "abc", "²", "1.5"])
def test_a_bad_timeout_ms_is_a_400_never_a_500(client, coral_site, value):
    body, headers = signed(coral_request())
    response = client.post(f"{PATH}?timeout_ms={value}", data=body, headers=headers)
    assert response.status_code == 400


# --- Decisions ---------------------------------------------------------------------------------


def test_a_rejected_comment_is_rejected_and_flagged_toxic(
    client, coral_site, sessions, monkeypatch
):
    fake_scores(monkeypatch, toxicity=0.99, insult=0.97)
    # The site rejects insults from 0.95.
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site)).one()
        site.policy = {"labels": {"insult": {"hold_at": 0.5, "reject_at": 0.95}}}

    body, headers = signed(coral_request(ABUSIVE))
    response = client.post(PATH, data=body, headers=headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "REJECTED",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }


def test_a_held_comment_is_withheld_flagged_and_queued_for_our_moderators(
    client, coral_site, sessions, monkeypatch
):
    fake_scores(monkeypatch, toxicity=0.8, insult=0.7)
    body, headers = signed(coral_request(ABUSIVE))

    response = client.post(PATH, data=body, headers=headers)

    assert response.status_code == 200
    assert response.get_json()["status"] == "SYSTEM_WITHHELD"
    assert response.get_json()["actions"] == [
        {"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}
    ]
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
        assert comment.status == Status.HELD and comment.text == ABUSIVE
        assert comment.article.external_id == "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6"
        assert {score.label for score in comment.scores} == {"toxicity", "insult"}
        audit = session.scalars(select(AuditEvent)).one()
        assert audit.to_status == Status.HELD


def test_no_objection_is_a_204_without_a_body(client, coral_site, sessions, monkeypatch):
    fake_scores(monkeypatch, toxicity=0.01, insult=0.01)
    body, headers = signed(coral_request())

    response = client.post(PATH, data=body, headers=headers)

    assert response.status_code == 204 and response.data == b""
    with sessions() as session:
        assert session.scalars(select(Comment)).one().status == Status.APPROVED


def test_a_site_that_opts_out_keeps_nothing(client, coral_site, sessions, monkeypatch):
    with unit_of_work(sessions) as session:
        site = site_by_name(session, "example-news")
        configure_coral(session, site, SECRET, store=False)
    fake_scores(monkeypatch, toxicity=0.8)
    body, headers = signed(coral_request(ABUSIVE))

    response = client.post(PATH, data=body, headers=headers)

    assert response.get_json()["status"] == "SYSTEM_WITHHELD"
    with sessions() as session:
        assert session.scalar(select(Comment.id)) is None


def test_timeout_answers_204_so_coral_goes_on_and_the_comment_waits_in_our_queue(
    client, coral_site, sessions, monkeypatch
):
    def unavailable(self, texts, **kwargs):
        raise ScoringUnavailable("no worker answered within 2s")

    monkeypatch.setattr(TaskQueue, "score_now", unavailable)
    sent: list[list[int]] = []
    monkeypatch.setattr(TaskQueue, "send_for_scoring", lambda self, ids: sent.append(ids) or True)
    body, headers = signed(coral_request(ABUSIVE))

    response = client.post(PATH, data=body, headers=headers)

    assert response.status_code == 204
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
        assert comment.status == Status.PENDING
    assert sent == [[comment.id]]


def test_timeout_ms_lowers_the_wait_and_is_validated(client, coral_site, monkeypatch):
    waits: list[float] = []

    def record(self, texts, **kwargs):
        waits.append(kwargs["timeout"])
        raise ScoringUnavailable("slow")

    monkeypatch.setattr(TaskQueue, "score_now", record)
    monkeypatch.setattr(TaskQueue, "send_for_scoring", lambda self, ids: True)
    body, headers = signed(coral_request())

    assert client.post(PATH + "?timeout_ms=500", data=body, headers=headers).status_code == 204
    assert client.post(PATH + "?timeout_ms=0", data=body, headers=headers).status_code == 400
    assert waits == [0.5]


# --- End to end --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_signed_requests_against_a_real_worker(live_server, coral_site, sessions, warm_worker):
    url = live_server.url + PATH
    body, headers = signed(coral_request(ABUSIVE))
    toxic = requests.post(url, data=body, headers=headers, timeout=10)
    body, headers = signed(coral_request(FRIENDLY))
    clean = requests.post(url, data=body, headers=headers, timeout=10)

    assert toxic.status_code == 200
    assert toxic.json()["status"] in ("SYSTEM_WITHHELD", "REJECTED")
    assert toxic.json()["actions"] == [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]
    assert clean.status_code == 204
    body, headers = signed(coral_request(TWO_SENTENCES))
    mixed = requests.post(url, data=body, headers=headers, timeout=10)

    assert mixed.status_code == 200
    with sessions() as session:
        comments = {c.text: c for c in session.scalars(select(Comment))}
        statuses = {text: c.status for text, c in comments.items()}
        sentences = comments[TWO_SENTENCES].sentence_scores
    assert statuses == {
        ABUSIVE: Status.HELD,
        FRIENDLY: Status.APPROVED,
        TWO_SENTENCES: Status.HELD,
    }
    # The card can mark the sentence that drove the hold, as for comments posted to our API.
    worst = max(sentences, key=lambda s: s["scores"]["toxicity"])
    assert TWO_SENTENCES[worst["begin"] : worst["end"]] == "You are a pathetic idiot and a moron."


@pytest.mark.e2e
def test_a_site_that_rejects_gets_rejected_from_the_real_model(
    live_server, coral_site, sessions, warm_worker
):
    """REJECTED with its reason, from the real scores and the site's own reject band."""
    with unit_of_work(sessions) as session:
        site_by_name(session, "example-news").policy = {
            "labels": {"toxicity": {"hold_at": 0.3, "reject_at": 0.5}}
        }
    body, headers = signed(coral_request(ABUSIVE))
    answer = requests.post(live_server.url + PATH, data=body, headers=headers, timeout=10)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "REJECTED"
    assert answer.json()["actions"] == [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]
    with sessions() as session:
        stored = session.scalars(select(Comment).where(Comment.text == ABUSIVE)).one()
    assert stored.status == Status.REJECTED
    assert stored.reasons[0]["code"] == "reject_threshold"


@pytest.mark.e2e
def test_no_worker_means_204_within_the_timeout(database_url, sessions, site_key):
    with unit_of_work(sessions) as session:
        configure_coral(session, site_by_name(session, "example-news"), SECRET)
    settings = settings_for_tests(database_url, MODEL_PATH, sync_timeout=0.3)
    with serving(settings) as server:
        body, headers = signed(coral_request(ABUSIVE))
        response = requests.post(server.url + PATH, data=body, headers=headers, timeout=10)
    assert response.status_code == 204
    assert response.elapsed.total_seconds() < 2


def test_cli_sets_the_secret_and_the_opt_out(database_url, sessions, site_key):
    env = {"MODERATION_DATABASE_URL": database_url}
    runner = CliRunner()

    short = runner.invoke(main, ["site", "coral", "example-news", "--secret", "short"], env=env)
    stored = runner.invoke(
        main, ["site", "coral", "example-news", "--secret", SECRET, "--no-store"], env=env
    )

    assert short.exit_code != 0 and "16-200" in short.output
    assert stored.exit_code == 0, stored.output
    assert "/coral/sites/example-news/moderation" in stored.output
    with sessions() as session:
        site = site_by_name(session, "example-news")
        assert site.coral_signing_secret == SECRET and site.coral_store_comments is False


def test_coral_is_rate_limited_per_site_not_per_address(database_url, broker, sessions):
    # Counters live in Redis for a minute: names of their own keep runs apart.
    names = [f"coral-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with app_with(database_url, broker, ratelimit_sync="2/minute") as app:
        web = app.test_client()
        for name in names:
            make_site(sessions, name)
            with unit_of_work(sessions) as session:
                configure_coral(session, site_by_name(session, name), SECRET)
        answer = TextScores("m", "v", [{"toxicity": 0.01}])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TaskQueue, "score_now", lambda self, texts, **kw: answer)
            signed_requests = [signed(coral_request(f"{FRIENDLY} ({i})")) for i in range(4)]

            def ask(name, i):
                body, headers = signed_requests[i]
                url = f"/coral/sites/{name}/moderation"
                return web.post(url, data=body, headers=headers).status_code

            codes = [ask(names[0], i) for i in range(3)]
            other = ask(names[1], 3)

    assert codes == [204, 204, 429]
    assert other == 204
