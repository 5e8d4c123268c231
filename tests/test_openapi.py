"""The OpenAPI document: valid OpenAPI 3.1, every route of the API in it, and real answers of
every operation, successes and errors, as its schemas say."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import pytest
import schemathesis
from sqlalchemy import select, update

from moderation.api.public import reader_author_id
from moderation.db import unit_of_work
from moderation.models import Comment, Site
from moderation.services.integration import ensure_publishable_key, set_allowed_origins
from moderation.services.sites import create_site
from moderation.services.webhooks import configure_webhook
from tests.moderation_support import ABUSIVE, moderator_accounts, seed_comment
from tests.support import UNREACHED_LIMITS, app_with

SITE = "example-news"
ORIGIN = "https://news.example"
ARTICLE = "politics/2026/budget"
# Blueprints whose every route the document describes; Coral and OpenAI are not in it.
DOCUMENTED_BLUEPRINTS = {
    "api_v1",
    "public_api",
    "public_api.dsa_public",
    "dsa_api",
    "compat_perspective",
}
_VARIABLE = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


@pytest.fixture(scope="module")
def api_app(database_url, broker):
    """An app whose rate limits other tests' requests (made-up keys, say) leave alone."""
    with app_with(database_url, broker, **UNREACHED_LIMITS) as app:
        yield app


@pytest.fixture
def client(api_app, sessions):
    """A test client of that app, on a clean database."""
    return api_app.test_client()


@pytest.fixture
def schema(api_app):
    """The served document, as schemathesis reads it."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


def paths_of(rule: str) -> list[str]:
    """A Flask rule as OpenAPI paths; ``any(a, b)`` is a path for each value."""
    found = _VARIABLE.search(rule)
    if found is None:
        return [rule]
    converter, args, name = found.groups()
    head, tail = rule[: found.start()], rule[found.end() :]
    values = [value.strip() for value in args.split(",")] if converter == "any" else [f"{{{name}}}"]
    return [head + value + rest for value in values for rest in paths_of(tail)]


def test_the_document_is_valid_openapi_3_1(schema):
    document = schema.raw_schema
    assert document["openapi"] == "3.1.0"
    schema.validate()
    for name, component in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(component), name
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_route_of_the_api_is_in_the_document(api_app, schema):
    routes = {
        (path, method.lower())
        for rule in api_app.url_map.iter_rules()
        if rule.endpoint.rpartition(".")[0] in DOCUMENTED_BLUEPRINTS
        and rule.endpoint != "api_v1.openapi_json"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for path in paths_of(rule.rule)
    }
    documented = {
        (path, method) for path, item in schema.raw_schema["paths"].items() for method in item
    }
    assert documented == routes
    assert len(routes) >= 20


def test_the_schemas_say_what_the_endpoints_answer(schema, client, sessions, accounts):
    checked: set[tuple[str, str]] = set()

    def call(method: str, path: str, url: str, expected: int, **kwargs):
        response = client.open(url, method=method.upper(), **kwargs)
        assert response.status_code == expected, (url, response.get_data(as_text=True))
        schema[path][method].validate_response(response)
        checked.add((path, method))
        return response

    site = _site(sessions)
    held, approved = _seeded(sessions)
    token = accounts.token(accounts.moderator(SITE))
    _site_api(call, site.auth, held, approved)
    _widget_api(call, site, approved)
    _moderation_api(call, {"Authorization": f"Bearer {token}"}, held, approved)
    _community_api(call, {"Authorization": f"Bearer {token}"}, sessions)
    _perspective(call, site.key)
    _dsa_exports(call, site.auth)
    _dsa_widget(call, site, sessions)
    documented = {
        (path, method) for path, item in schema.raw_schema["paths"].items() for method in item
    }
    assert checked == documented


class _Site:
    def __init__(self, key: str, publishable: str):
        self.key, self.publishable = key, publishable
        self.auth = {"Authorization": f"Bearer {key}"}


def _site(sessions) -> _Site:
    with unit_of_work(sessions) as session:
        site, key = create_site(session, SITE)
        publishable = ensure_publishable_key(session, site)
        set_allowed_origins(session, site, [ORIGIN])
        # Nothing listens there; the events are only recorded.
        configure_webhook(session, site, "http://127.0.0.1:9/hooks/moderation")
    return _Site(key, publishable)


def _seeded(sessions) -> tuple[str, str]:
    held = seed_comment(sessions, SITE, ABUSIVE + " Thank you for reading.", article=ARTICLE)
    approved = seed_comment(sessions, SITE, "Clear and fair, thank you.", article=ARTICLE)
    sentences = [{"begin": 0, "end": 48, "scores": {"insult": 0.9}}]
    with unit_of_work(sessions) as session:
        query = update(Comment).where(Comment.public_id == held)
        session.execute(query.values(sentence_scores=sentences, language="en"))
    return held, approved


def _site_api(call, auth: dict[str, str], held: str, approved: str) -> None:
    comments = "/api/v1/comments"
    body = {"article_id": "a-1", "author_id": "u-1", "author_name": "U", "text": "Fair."}
    replay = auth | {"Idempotency-Key": "k-1"}
    call("post", comments, comments, 202, json=body, headers=replay)
    call("post", comments, comments, 202, json=body, headers=replay)
    call("post", comments, comments, 422, json=body | {"text": " "}, headers=auth)
    call("post", comments, comments, 415, data="x", headers=auth)
    call("post", comments, comments, 400, data="{", headers=auth, content_type="application/json")
    call("post", comments, comments, 401, json=body)

    one = "/api/v1/comments/{public_id}"
    for public_id in (held, approved):
        detail = call("get", one, f"{comments}/{public_id}", 200, headers=auth).get_json()
        assert detail["decision"] is not None
    call("get", one, f"{comments}/cmt_nope", 404, headers=auth)

    page = "/api/v1/articles/{article_id}/comments"
    url = f"/api/v1/articles/{ARTICLE}/comments"
    listed = call("get", page, url, 200, headers=auth).get_json()
    assert [comment["id"] for comment in listed["comments"]] == [approved]
    call("get", page, f"{url}?limit=0", 422, headers=auth)

    settings = "/api/v1/articles/{article_id}/settings"
    url = "/api/v1/articles/closed-1/settings"
    call("get", settings, url, 404, headers=auth)
    call("patch", settings, url, 201, json={"closed": True, "title": "Closed"}, headers=auth)
    call("patch", settings, url, 200, json={"hold_links": True}, headers=auth)
    call("patch", settings, url, 422, json={"closed": "yes"}, headers=auth)
    call("get", settings, url, 200, headers=auth)
    closed = body | {"article_id": "closed-1"}
    call("post", comments, comments, 409, json=closed, headers=auth)

    deliveries = "/api/v1/webhooks/deliveries"
    log = call("get", deliveries, deliveries, 200, headers=auth).get_json()
    assert log["deliveries"], "the seeded decisions recorded no webhook event"
    call("get", deliveries, f"{deliveries}?status=lost", 422, headers=auth)
    (held_event,) = [item for item in log["deliveries"] if item["comment_id"] == held]
    delivery = f"{deliveries}/{held_event['id']}"
    detail = call("get", deliveries + "/{public_id}", delivery, 200, headers=auth).get_json()
    assert detail["event"]["data"]["transition"]["reasons"]
    call("post", deliveries + "/{public_id}/resend", f"{delivery}/resend", 202, headers=auth)
    call(
        "post", deliveries + "/{public_id}/resend", f"{deliveries}/whd_x/resend", 404, headers=auth
    )


def _widget_api(call, site: _Site, approved: str) -> None:
    page = "/api/v1/public/{key}/articles/{article_id}/comments"
    url = f"/api/v1/public/{site.publishable}/articles/{ARTICLE}/comments"
    origin = {"Origin": ORIGIN}
    listed = call("get", page, url, 200, headers=origin).get_json()
    assert listed["comments"][0]["id"] == approved
    call("get", page, url.replace(site.publishable, site.key), 400)
    call("get", page, url.replace(site.publishable, "mpk_nope"), 401)
    call("get", page, url, 403, headers={"Origin": "https://evil.example"})
    body = {"author_name": "Ann", "text": "Well argued.", "reader_token": "r" * 32}
    posted = call("post", page, url, 202, json=body, headers=origin).get_json()
    call("post", page, url, 403, json=body)
    call("post", page, url, 422, json=body | {"reader_token": "short"}, headers=origin)
    one = "/api/v1/public/{key}/comments/{public_id}"
    url = f"/api/v1/public/{site.publishable}/comments/{posted['id']}"
    call("get", one, url, 200, headers=origin)
    call("get", one, url.replace(posted["id"], "cmt_nope"), 404, headers=origin)
    reader = {"Reader-Token": body["reader_token"]}
    own = call("get", one, url, 200, headers=origin | reader).get_json()
    assert own["outcome"]["reason"] == "awaiting moderation"
    call("get", one, url, 422, headers=origin | {"Reader-Token": "short"})

    reports = one + "/reports"
    url = f"/api/v1/public/{site.publishable}/comments/{approved}/reports"
    report = {"reader_token": "q" * 32, "reason": "spam"}
    call("post", reports, url, 201, json=report, headers=origin)
    again = call("post", reports, url, 409, json=report, headers=origin).get_json()
    assert again["error"]["reported_at"]
    call("post", reports, url, 422, json=report | {"reason": "rude"}, headers=origin)
    call("post", reports, url.replace(approved, "cmt_nope"), 404, json=report, headers=origin)

    me = "/api/v1/public/{key}/me"
    url = f"/api/v1/public/{site.publishable}/me"
    call("get", me, url, 200, headers=origin | reader)
    call("get", me, url, 422, headers=origin)
    acknowledge = me + "/acknowledge"
    call("post", acknowledge, f"{url}/acknowledge", 200, json=body, headers=origin)


def _moderation_api(call, auth: dict[str, str], held: str, approved: str) -> None:
    queue = "/api/v1/moderation/queue"
    page = call("get", queue, queue, 200, headers=auth).get_json()
    assert [comment["id"] for comment in page["comments"]] == [held]
    assert page["comments"][0]["sentence_scores"]
    call("get", queue, f"{queue}?queue=all&order=score&limit=1", 200, headers=auth)
    call("get", queue, f"{queue}?order=random", 422, headers=auth)
    call("get", queue, queue, 401)

    one = "/api/v1/moderation/comments/{public_id}"
    url = f"/api/v1/moderation/comments/{held}"
    version = call("get", one, url, 200, headers=auth).get_json()["version"]
    call("get", one, "/api/v1/moderation/comments/cmt_nope", 404, headers=auth)
    approve, reject = one + "/approve", one + "/reject"
    call("post", reject, f"{url}/reject", 422, json={"reason": "rude"}, headers=auth)
    call("post", approve, f"{url}/approve", 200, json={"version": version}, headers=auth)
    call("post", approve, f"{url}/approve", 200, headers=auth)  # unchanged
    stale = {"reason": "spam", "version": version}
    call("post", reject, f"{url}/reject", 409, json=stale, headers=auth)

    bulk = "/api/v1/moderation/bulk"
    targets = [approved, {"id": held}, "cmt_nope"]
    body = {"action": "reject", "reason": "spam", "comments": targets}
    results = call("post", bulk, bulk, 200, json=body, headers=auth).get_json()["results"]
    assert [result["result"] for result in results] == ["applied", "applied", "not_found"]
    call("post", bulk, bulk, 422, json={"action": "delete", "comments": [held]}, headers=auth)

    audit = "/api/v1/moderation/audit"
    events = call("get", audit, audit, 200, headers=auth).get_json()["events"]
    assert any(event["actor_type"] == "moderator" for event in events)
    call("get", audit, f"{audit}?to=gone", 422, headers=auth)

    what_if = "/api/v1/moderation/what-if"
    call("get", what_if, f"{what_if}?site={SITE}&toxicity=0.5", 200, headers=auth)
    call("get", what_if, f"{what_if}?colour=0.5", 400, headers=auth)
    call("get", what_if, f"{what_if}?site=elsewhere", 404, headers=auth)
    export = "/api/v1/moderation/export.csv"
    csv = call("get", export, export, 200, headers=auth)
    assert csv.mimetype == "text/csv"


def _community_api(call, auth: dict[str, str], sessions) -> None:
    from moderation.services.reports import report_comment

    reported = seed_comment(sessions, SITE, "An opinion.", article=ARTICLE, author="u-9")
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        report_comment(session, site, reported, "reader-a", "illegal")
    queue = "/api/v1/moderation/queue"
    page = call("get", queue, f"{queue}?queue=reported", 200, headers=auth).get_json()
    assert page["comments"][0]["reports"][0]["reason"] == "illegal"
    dismiss = "/api/v1/moderation/comments/{public_id}/dismiss-reports"
    url = f"/api/v1/moderation/comments/{reported}/dismiss-reports"
    call("post", dismiss, url, 409, json={"version": "1"}, headers=auth)
    call("post", dismiss, url, 200, headers=auth)

    author = "/api/v1/moderation/authors/{site_name}/{author_id}"
    call("get", author, f"/api/v1/moderation/authors/{SITE}/u-9", 200, headers=auth)
    call("get", author, f"/api/v1/moderation/authors/{SITE}/nobody", 404, headers=auth)
    sanctions = author + "/sanctions"
    url = f"/api/v1/moderation/authors/{SITE}/u-9/sanctions"
    ban = {"kind": "ban", "reason": "threats", "reject_published": True}
    made = call("post", sanctions, url, 201, json=ban, headers=auth).get_json()
    call("post", sanctions, url, 422, json={"kind": "ban"}, headers=auth)
    lift = "/api/v1/moderation/sanctions/{public_id}/lift"
    url = f"/api/v1/moderation/sanctions/{made['sanction']['id']}/lift"
    call("post", lift, url, 200, json={"reason": "appeal"}, headers=auth)
    call("post", lift, url, 409, json={"reason": "again"}, headers=auth)


def _perspective(call, key: str) -> None:
    discovery = "/$discovery/rest"
    call("get", discovery, f"{discovery}?version=v1alpha1", 200)
    call("get", discovery, f"{discovery}?version=v1", 404)
    analyze = "/v1alpha1/comments:analyze"
    body = {"comment": {"text": "Fair."}, "requestedAttributes": {"TOXICITY": {}}}
    call("post", analyze, analyze, 403, json=body)
    call("post", analyze, f"{analyze}?key={key}", 400, json={"comment": {}})
    suggest = "/v1alpha1/comments:suggestscore"
    label = {
        "comment": {"text": "Fair."},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}},
    }
    call("post", suggest, suggest, 403, json=label)
    call("post", suggest, f"{suggest}?key={key}", 400, json={"comment": {"text": "Fair."}})
    call("post", suggest, f"{suggest}?key={key}", 200, json=label | {"clientToken": "comment:1"})
    part = f"POST {suggest}?key={key} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
    batch = (
        "--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n"
        + part
        + json.dumps(label)
        + "\r\n--b--\r\n"
    )
    call("post", "/batch", "/batch", 200, data=batch, content_type="multipart/mixed; boundary=b")
    call("post", "/batch", "/batch", 400, json=body)


def _dsa_exports(call, auth: dict[str, str]) -> None:
    today = datetime.now(UTC).date()
    period = f"since={today}&until={today + timedelta(days=1)}"
    statements = "/api/v1/dsa/statements"
    exported = call("get", statements, f"{statements}?{period}", 200, headers=auth).get_json()
    assert exported["statements"], "the decisions above issued no statement of reasons"
    inverted = f"since={today}&until={today - timedelta(days=1)}"
    call("get", statements, f"{statements}?{inverted}", 400, headers=auth)
    call(
        "get",
        statements,
        f"{statements}?since=0001-01-01T00:00%2B01:00&until={today}",
        400,
        headers=auth,
    )
    call("get", statements, f"{statements}?since=a%00b&until={today}", 422, headers=auth)
    call("get", statements, f"{statements}?{period}", 401)
    report = "/api/v1/dsa/report"
    rows = call("get", report, f"{report}?{period}", 200, headers=auth).get_json()["rows"]
    assert ("period", "since") in {(row["section"], row["item"]) for row in rows}
    call("get", report, f"{report}?since={today}", 400, headers=auth)
    call("get", report, f"{report}?{period}", 401)


def _dsa_widget(call, site: _Site, sessions) -> None:
    token = "d" * 32
    with sessions() as session:
        row = session.scalars(select(Site).where(Site.name == SITE)).one()
        author = reader_author_id(row, token)
    # The rules hold it: a restriction, with its statement of reasons.
    restricted = seed_comment(sessions, SITE, ABUSIVE, article=ARTICLE, author=author)
    origin = {"Origin": ORIGIN}
    base = f"/api/v1/public/{site.publishable}/dsa"

    notices = "/api/v1/public/{key}/dsa/notices"
    body = {
        "category": "defamation",
        "explanation": "It falsely accuses a named official of a crime.",
        "comments": [restricted],
        "good_faith": True,
        "reporter_name": "Eva Reader",
        "reporter_email": "eva@example.test",
    }
    filed = call("post", notices, f"{base}/notices", 201, json=body, headers=origin).get_json()
    call("post", notices, f"{base}/notices", 422, json=body | {"category": "rude"}, headers=origin)
    unstorable = body | {"explanation": "a\x00b"}
    call("post", notices, f"{base}/notices", 422, json=unstorable, headers=origin)
    call(
        "post",
        notices,
        f"{base}/notices",
        404,
        json=body | {"comments": "cmt_nope"},
        headers=origin,
    )
    call("post", notices, f"{base}/notices", 403, json=body)
    notice = notices + "/{reference}"
    status = call("get", notice, f"{base}/notices/{filed['reference']}", 200, headers=origin)
    assert status.get_json()["comments"] == [{"id": restricted, "outcome": "pending"}]
    call("get", notice, f"{base}/notices/DSA-NOPE", 404, headers=origin)

    statements = "/api/v1/public/{key}/dsa/statements"
    reader = origin | {"Reader-Token": token}
    mine = call("get", statements, f"{base}/statements", 200, headers=reader).get_json()
    (statement,) = mine["statements"]
    assert statement["comment_id"] == restricted and statement["appeal"] is None
    call("get", statements, f"{base}/statements", 401, headers=origin)

    appeal = statements + "/{public_id}/appeal"
    url = f"{base}/statements/{statement['id']}/appeal"
    text = {"text": "It is a quotation, not an insult."}
    call("post", appeal, url, 201, json=text, headers=reader)
    again = call("post", appeal, url, 409, json=text, headers=reader).get_json()
    assert again["error"]["code"] == "already_appealed"
    call("post", appeal, url, 422, json={"text": " "}, headers=reader)
    call("post", appeal, f"{base}/statements/sor_nope/appeal", 404, json=text, headers=reader)
    call("post", appeal, url, 401, json=text, headers=origin)


def test_a_drifted_answer_fails_its_schema(schema, client, site_key):
    """The check above would catch an endpoint answering a field its schema does not have."""
    from werkzeug.test import TestResponse

    from moderation.api.responses import CommentPage

    response = client.get(
        "/api/v1/articles/a/comments", headers={"Authorization": f"Bearer {site_key}"}
    )
    operation = schema["/api/v1/articles/{article_id}/comments"]["get"]
    operation.validate_response(response)
    drifted = TestResponse(
        [b'{"comments": [], "next_cursor": null, "total": 0}'],
        "200 OK",
        {"Content-Type": "application/json"},
        response.request,
    )
    with pytest.raises(AssertionError):
        operation.validate_response(drifted)
    assert CommentPage.model_json_schema()["additionalProperties"] is False
