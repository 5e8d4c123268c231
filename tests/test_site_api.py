"""Site integration on each database backend: the widget's public API, CORS, article settings,
the rules at submit, and rate limits."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from moderation.db import unit_of_work
from moderation.models import Article, AuditEvent, Comment, Status
from moderation.services.decisions import store_decisions
from moderation.services.sites import create_site
from tests.fakes import KeywordScorer
from tests.support import WIDGET_ORIGIN, app_with, make_site

ORIGIN = WIDGET_ORIGIN
ARTICLE = "politics/2026/budget"
GENEROUS = {
    "ratelimit_public_ip": "1000/minute",
    "ratelimit_public_author": "1000/minute",
    "ratelimit_public_site": "1000/minute",
}


@pytest.fixture(scope="module")
def site_app(database_url, broker):
    with app_with(database_url, broker, **GENEROUS) as app:
        yield app


@pytest.fixture
def web(site_app, sessions):
    return site_app.test_client()


@pytest.fixture
def site(sessions):
    return make_site(sessions, banned_words=["idiot"], suspect_words=["scam"])


def comments_url(site, article=ARTICLE):
    return f"/api/v1/public/{site.publishable}/articles/{article}/comments"


def widget_post(web, site, text="Clear and fair, thank you.", reader="r" * 32, **extra):
    headers = {"Origin": extra.pop("origin", ORIGIN)} | extra.pop("headers", {})
    url = comments_url(site, extra.pop("article", ARTICLE))
    body = {"author_name": "Ann", "text": text, "reader_token": reader} | extra
    return web.post(url, json=body, headers=headers)


def stored(sessions):
    with sessions() as session:
        return list(session.scalars(select(Comment).order_by(Comment.id)))


def count(sessions, model):
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


# --- The widget's public API -----------------------------------------------------------------


def test_the_widget_posts_a_comment_and_lists_the_published_ones(web, site, sessions):
    response = widget_post(web, site, article_title="The budget", article_url="https://n.ex/b")
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    fields = {"id", "status", "parent_id", "author_name", "text", "created_at"}
    # The poster is the author: they are told the outcome too.
    assert set(body) == fields | {"outcome"}
    assert body["outcome"]["reason"] == "awaiting moderation"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    (comment,) = stored(sessions)
    assert comment.author_id.startswith("reader_") and "r" * 32 not in comment.author_id
    assert comment.article.title == "The budget"

    listed = web.get(comments_url(site), headers={"Origin": ORIGIN}).get_json()
    assert listed == {
        "article": {"id": ARTICLE, "closed": False},
        "comments": [],
        "next_cursor": None,
    }
    own = web.get(f"/api/v1/public/{site.publishable}/comments/{body['id']}").get_json()
    assert own["status"] == "pending"

    with unit_of_work(sessions) as session:
        session.get(Comment, comment.id).status = Status.APPROVED
    listed = web.get(comments_url(site)).get_json()
    assert [c["id"] for c in listed["comments"]] == [body["id"]]
    assert "author_id" not in listed["comments"][0]


def test_a_page_title_names_an_article_only_the_first_time(web, site, sessions):
    widget_post(web, site, article_title="Original title")
    widget_post(web, site, text="Another view entirely.", article_title="Defaced title")
    with sessions() as session:
        assert session.scalars(select(Article.title)).one() == "Original title"


def test_another_sites_comment_is_404_through_the_widget(web, site, sessions):
    comment_id = widget_post(web, site).get_json()["id"]
    other = make_site(sessions, "other-news")
    response = web.get(f"/api/v1/public/{other.publishable}/comments/{comment_id}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"text": "   "}, "text"),
        ({"author_name": ""}, "author_name"),
        ({"reader_token": "short"}, "reader_token"),
        ({"reader_token": "x" * 20 + "<>"}, "reader_token"),
    ],
)
def test_invalid_widget_posts_are_422_and_store_nothing(web, site, sessions, change, field):
    response = widget_post(web, site, **change)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert count(sessions, Comment) == 0


# --- Keys and CORS ---------------------------------------------------------------------------


def test_cors_from_a_disallowed_origin_is_refused_without_cors_headers(web, site, sessions):
    evil = "https://evil.example"
    preflight = web.options(
        comments_url(site),
        headers={"Origin": evil, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    posted = widget_post(web, site, origin=evil)
    assert posted.status_code == 403
    assert posted.get_json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in posted.headers
    read = web.get(comments_url(site), headers={"Origin": evil})
    assert read.status_code == 403
    assert "Access-Control-Allow-Origin" not in read.headers
    assert count(sessions, Comment) == 0


def test_an_allowed_origin_gets_a_preflight_naming_it_alone(web, site):
    response = web.options(
        comments_url(site),
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_a_write_without_an_origin_is_refused(web, site, sessions):
    response = web.post(
        comments_url(site),
        json={"author_name": "A", "text": "hello", "reader_token": "r" * 32},
    )
    assert response.status_code == 403
    assert count(sessions, Comment) == 0


def test_the_secret_key_is_never_accepted_by_the_public_api(web, site):
    response = web.get(f"/api/v1/public/{site.key}/articles/{ARTICLE}/comments")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "secret_key_exposed"
    unknown = web.get(f"/api/v1/public/mpk_unknown/articles/{ARTICLE}/comments")
    assert unknown.status_code == 401


def test_the_demo_page_never_shows_the_secret_key(web, sessions):
    from moderation.demo import prepare_demo_site

    with unit_of_work(sessions) as session:
        secret = create_site(session, "demo")[1]
        publishable = prepare_demo_site(session, ["http://localhost"])
    page = web.get("/demo").get_data(as_text=True)
    assert publishable in page and secret not in page
    assert "What is your opinion" not in page  # rendered by the widget, not the server


# --- Article settings and the rules at submit ------------------------------------------------


def settings_url(article=ARTICLE):
    return f"/api/v1/articles/{article}/settings"


def test_article_settings_create_read_and_change(web, site):
    assert web.get(settings_url(), headers=site.auth).status_code == 404
    created = web.patch(settings_url(), json={"hold_links": True}, headers=site.auth)
    assert created.status_code == 201
    assert created.get_json() == {
        "article_id": ARTICLE,
        "title": None,
        "url": None,
        "closed": False,
        "premoderate": False,
        "hold_links": True,
    }
    changed = web.patch(settings_url(), json={"premoderate": True}, headers=site.auth)
    assert changed.status_code == 200
    assert changed.get_json()["premoderate"] and changed.get_json()["hold_links"]
    assert web.get(settings_url(), headers=site.auth).get_json() == changed.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"closed": "yes"}, "closed"), ({"colour": "red"}, "colour"), ({"url": "ftp://x"}, "url")],
)
def test_bad_article_settings_are_422(web, site, body, field):
    response = web.patch(settings_url(), json=body, headers=site.auth)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


def test_article_settings_are_per_site(web, site, sessions):
    web.patch(settings_url(), json={"closed": True}, headers=site.auth)
    other = make_site(sessions, "other-news")
    assert web.get(settings_url(), headers=other.auth).status_code == 404
    assert widget_post(web, other).status_code == 202


def test_a_closed_article_answers_409_to_the_widget_and_the_site(web, site, sessions):
    web.patch(settings_url(), json={"closed": True}, headers=site.auth)
    response = widget_post(web, site)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "article_closed"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    server = web.post(
        "/api/v1/comments",
        json={"article_id": ARTICLE, "author_id": "a", "author_name": "A", "text": "hello"},
        headers=site.auth,
    )
    assert server.status_code == 409
    assert web.get(comments_url(site)).get_json()["article"]["closed"] is True
    assert count(sessions, Comment) == 0


@pytest.mark.parametrize("text", ["You 1D10T!", "what an i.d.i.o.t", "IIIDIOOOT", "ïdíøts"])
def test_a_banned_word_rejects_at_once_however_it_is_spelled(web, site, sessions, broker, text):
    response = widget_post(web, site, text=text)
    assert response.status_code == 202
    assert response.get_json()["status"] == "rejected"
    (comment,) = stored(sessions)
    assert comment.status == Status.REJECTED
    assert comment.decided_at is not None
    assert comment.reasons[0] | {"message": ""} == {
        "code": "banned_word",
        "label": "banned_words",
        "score": None,
        "threshold": None,
        "message": "",
    }
    with sessions() as session:
        audit = session.scalars(select(AuditEvent)).one()
    assert (audit.actor_type, audit.from_status, audit.to_status, audit.reason) == (
        "system",
        "pending",
        "rejected",
        "rules",
    )
    assert audit.detail["reasons"] == comment.reasons


@pytest.mark.parametrize("text", ["Sounds like a sc4m", "SCAAAM!", "s.c.a.m"])
def test_a_suspect_word_holds_however_it_is_spelled(web, site, sessions, text):
    response = widget_post(web, site, text=text)
    assert response.get_json()["status"] == "held"
    (comment,) = stored(sessions)
    assert [reason["code"] for reason in comment.reasons] == ["suspect_word"]


def test_the_secret_key_api_runs_the_same_rules(web, site, sessions):
    body = {"article_id": ARTICLE, "author_id": "a1", "author_name": "A", "text": "1d10t"}
    response = web.post("/api/v1/comments", json=body, headers=site.auth)
    assert response.status_code == 202
    assert response.get_json()["status"] == "rejected"


def test_a_repeat_post_is_rejected_and_another_reader_is_not(web, site, sessions):
    first = widget_post(web, site, text="Same words as before")
    again = widget_post(web, site, text="same  words as BEFORE")
    other = widget_post(web, site, text="Same words as before", reader="o" * 32)
    assert [r.get_json()["status"] for r in (first, again, other)] == [
        "pending",
        "rejected",
        "pending",
    ]
    repeat = stored(sessions)[1]
    assert repeat.reasons[0]["code"] == "repeat_post"


def test_an_idempotent_retry_is_not_a_repeat_post(web, site, sessions):
    headers = {"Idempotency-Key": "k-1"}
    first = widget_post(web, site, headers=headers)
    again = widget_post(web, site, headers=headers)
    assert again.get_json() == first.get_json()
    assert count(sessions, Comment) == 1


def test_links_are_held_only_on_articles_that_hold_them(web, site, sessions):
    text = "More at https://example.org/report"
    assert widget_post(web, site, text=text).get_json()["status"] == "pending"
    web.patch(settings_url("linked"), json={"hold_links": True}, headers=site.auth)
    held = widget_post(web, site, text=text + " !", article="linked")
    assert held.get_json()["status"] == "held"
    assert stored(sessions)[1].reasons[0]["code"] == "link"


def test_length_limits_of_the_site_refuse_with_422(web, sessions):
    site = make_site(sessions, min_length=10, max_length=50)
    short = widget_post(web, site, text=" too short ")
    assert short.status_code == 422
    assert short.get_json()["error"] | {"message": ""} == {
        "code": "text_too_short",
        "message": "",
        "field": "text",
    }
    assert widget_post(web, site, text="x" * 51).get_json()["error"]["code"] == "text_too_long"
    assert count(sessions, Comment) == count(sessions, Article) == 0


def test_a_premoderated_article_holds_what_the_model_would_publish(web, site, sessions):
    web.patch(settings_url(), json={"premoderate": True}, headers=site.auth)
    widget_post(web, site)
    (comment,) = stored(sessions)
    with unit_of_work(sessions) as session:
        store_decisions(session, {comment.id: dict.fromkeys(("toxicity",), 0.01)}, KeywordScorer())
    (comment,) = stored(sessions)
    assert comment.status == Status.HELD
    assert comment.reasons[0]["code"] == "premoderation"


def test_a_comment_decided_by_a_rule_is_not_sent_to_the_model(web, site, sessions, broker):
    queue = web.application.extensions["moderation"].settings.task_queue
    broker.delete(queue)
    widget_post(web, site, text="idiot")
    assert broker.llen(queue) == 0
    widget_post(web, site, text="A kind word")
    assert broker.llen(queue) == 1


# --- Rate limits -----------------------------------------------------------------------------


def fresh() -> str:
    """A reader token no earlier test used (rate-limit counters are shared in Redis)."""
    return uuid.uuid4().hex


def assert_429(response):
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["code"] == "too_many_requests"


def test_posts_are_limited_per_reader(database_url, broker, sessions):
    with app_with(
        database_url, broker, **(GENEROUS | {"ratelimit_public_author": "2/minute"})
    ) as app:
        web, site = app.test_client(), make_site(sessions)
        reader = fresh()
        ok = [widget_post(web, site, text=f"comment {i}", reader=reader) for i in range(2)]
        assert [r.status_code for r in ok] == [202, 202]
        limited = widget_post(web, site, text="comment 3", reader=reader)
        assert_429(limited)
        assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert widget_post(web, site, text="comment 3", reader=fresh()).status_code == 202
    assert count(sessions, Comment) == 3


def test_posts_are_limited_per_client_ip_behind_the_trusted_proxy(database_url, broker, sessions):
    overrides = GENEROUS | {"ratelimit_public_ip": "2/minute", "trusted_proxies": 1}
    with app_with(database_url, broker, **overrides) as app:
        web, site = app.test_client(), make_site(sessions)

        def from_ip(ip, i):
            headers = {"X-Forwarded-For": ip}
            return widget_post(web, site, text=f"c{i}", reader=fresh(), headers=headers)

        # Counters outlive one test in the shared Redis, so each run uses its own addresses.
        first, second = (f"203.0.113.{uuid.uuid4().int % 250}", f"2001:db8::{fresh()[:4]}")
        assert [from_ip(first, i).status_code for i in range(2)] == [202, 202]
        assert_429(from_ip(first, 3))
        assert from_ip(second, 4).status_code == 202


def test_posts_are_limited_per_publishable_key(database_url, broker, sessions):
    with app_with(
        database_url, broker, **(GENEROUS | {"ratelimit_public_site": "2/minute"})
    ) as app:
        web, site, other = app.test_client(), make_site(sessions), make_site(sessions, "other")
        for i in range(2):
            assert widget_post(web, site, text=f"c{i}", reader=fresh()).status_code == 202
        assert_429(widget_post(web, site, text="c9", reader=fresh()))
        assert widget_post(web, other, text="c9", reader=fresh()).status_code == 202


def test_the_site_api_is_limited_per_site_key(database_url, broker, sessions):
    with app_with(database_url, broker, ratelimit_site_key="2/minute") as app:
        web, site, other = app.test_client(), make_site(sessions), make_site(sessions, "other")

        def post(target, i):
            body = {"article_id": "a", "author_id": f"u{i}", "author_name": "U", "text": f"t{i}"}
            return web.post("/api/v1/comments", json=body, headers=target.auth)

        assert [post(site, i).status_code for i in range(2)] == [202, 202]
        assert_429(post(site, 3))
        assert post(other, 4).status_code == 202


# --- The document ----------------------------------------------------------------------------


def test_openapi_describes_the_integration_endpoints(web):
    spec = web.get("/api/v1/openapi.json").get_json()
    assert {
        "/api/v1/public/{key}/articles/{article_id}/comments",
        "/api/v1/public/{key}/comments/{public_id}",
        "/api/v1/articles/{article_id}/settings",
        "/api/v1/webhooks/deliveries",
        "/api/v1/webhooks/deliveries/{public_id}/resend",
    } <= set(spec["paths"])
    assert set(spec["webhooks"]) == {"comment.decided", "comment.moderated"}
    public_post = spec["paths"]["/api/v1/public/{key}/articles/{article_id}/comments"]["post"]
    assert public_post["security"] == []


def test_made_up_keys_are_refused_before_the_database_after_a_few(database_url, broker, sessions):
    """A flood of invalid keys from one address stops costing queries once over the limit."""
    from sqlalchemy import event

    from tests.support import app_with

    queries: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if "sites" in statement:
            queries.append(statement)

    # The limiter's counters outlive one test app: an address of this run's own.
    flooder, bystander = ("10." + ".".join(map(str, uuid.uuid4().bytes[:3])) for _ in "ab")
    with app_with(database_url, broker, ratelimit_invalid_key="3/minute") as limited:
        client = limited.test_client()
        engine = limited.extensions["moderation"].engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            answers = [
                client.get(
                    "/api/v1/comments/cmt_x",
                    headers={"Authorization": f"Bearer msk_made-up-{i}"},
                    environ_base={"REMOTE_ADDR": flooder},
                )
                for i in range(6)
            ]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        other = client.get(
            "/api/v1/comments/cmt_x",
            headers={"Authorization": "Bearer msk_made-up-other"},
            environ_base={"REMOTE_ADDR": bystander},
        )
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429, 429]
    assert answers[3].json["error"]["code"] == "too_many_invalid_keys"
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert len(queries) == 3  # one lookup per key until the limit, none after
    assert other.status_code == 401  # another address is not punished
