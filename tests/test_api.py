"""The site API on each database backend: acceptance, read-back, errors, isolation."""

import base64
import json

import pytest
from sqlalchemy import func, select

from moderation.db import unit_of_work
from moderation.models import Article, AuditEvent, Comment, Status
from moderation.services.sites import create_site

VALID = {
    "article_id": "politics/2026/budget",
    "article_url": "https://news.example/politics/2026/budget",
    "article_title": "The budget, explained",
    "author_id": "reader-1",
    "author_name": "Ann Reader",
    "text": "What a clear explainer, thank you.",
}


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def post(client, auth, body=None, **headers):
    return client.post("/api/v1/comments", json=body or VALID, headers=auth | headers)


def test_a_comment_is_accepted_as_pending_and_committed(client, auth, sessions, broker, settings):
    response = post(client, auth)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["id"].startswith("cmt_")
    assert response.headers["Location"] == f"/api/v1/comments/{body['id']}"
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
        assert (comment.public_id, comment.status) == (body["id"], Status.PENDING)
        assert comment.article.title == VALID["article_title"]
    sent_now(client)
    message = json.loads(broker.lindex(settings.task_queue, 0))
    assert message["headers"]["task"] == "moderation.score_comments"


def _body(message):
    return base64.b64decode(message["body"])


def sent_now(client):
    """Send what the app gathered for its next scoring message (it would within ms)."""
    client.application.extensions["moderation"].tasks.flush()


def test_the_task_carries_only_ids(client, auth, sessions, broker, settings):
    post(client, auth)
    sent_now(client)
    message = json.loads(broker.lindex(settings.task_queue, 0))
    args, kwargs, _ = json.loads(_body(message))
    with sessions() as session:
        assert args == [[session.scalar(select(Comment.id))]]
    assert kwargs == {}
    assert message["content-type"] == "application/json"


def test_text_is_stored_exactly(client, auth, sessions):
    text = "<script>alert(1)</script> \U0001f600 \u05e9\u05dc\u05d5\u05dd \u200b e\u0301"
    response = post(client, auth, VALID | {"text": text})
    assert response.status_code == 202
    fetched = client.get(response.headers["Location"], headers=auth).get_json()
    assert (
        fetched["text"]
        == "<script>alert(1)</script> \U0001f600 \u05e9\u05dc\u05d5\u05dd \u200b \u00e9"
    )


def test_idempotency_key_returns_the_same_comment(client, auth, sessions):
    first = post(client, auth, **{"Idempotency-Key": "abc-1"})
    again = post(client, auth, **{"Idempotency-Key": "abc-1"})
    assert again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(sessions, Comment) == 1


def test_idempotency_key_reused_for_other_text_is_a_conflict(client, auth, sessions):
    post(client, auth, **{"Idempotency-Key": "abc-2"})
    response = post(client, auth, VALID | {"text": "another"}, **{"Idempotency-Key": "abc-2"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert count(sessions, Comment) == 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"text": ""}, "text", "invalid"),
        ({"text": "  \n "}, "text", "invalid"),
        ({"text": "x" * 5001}, "text", "text_too_long"),
        ({"author_id": 7}, "author_id", "invalid"),
        ({"article_url": "ftp://x"}, "article_url", "invalid"),
        ({"parent_id": "cmt_unknown"}, "parent_id", "unknown_parent"),
    ],
)
def test_invalid_fields_are_422_with_the_field(client, auth, sessions, change, field, code):
    response = post(client, auth, VALID | change)
    assert response.status_code == 422
    assert response.get_json()["error"] | {"message": ""} == {
        "code": code,
        "message": "",
        "field": field,
    }
    assert count(sessions, Comment) == count(sessions, Article) == 0


@pytest.mark.parametrize("missing", ["article_id", "author_id", "author_name", "text"])
def test_missing_fields_are_422(client, auth, sessions, missing):
    body = {k: v for k, v in VALID.items() if k != missing}
    error = post(client, auth, body).get_json()["error"]
    assert (error["code"], error["field"]) == ("missing_field", missing)
    assert count(sessions, Comment) == 0


def test_malformed_json_is_400(client, auth, sessions):
    response = client.post(
        "/api/v1/comments", data="{not json", headers=auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_wrong_content_type_is_415(client, auth, sessions):
    response = client.post("/api/v1/comments", data="text=hi", headers=auth)
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_a_json_array_is_422(client, auth, sessions):
    response = client.post("/api/v1/comments", json=[VALID], headers=auth)
    assert response.status_code == 422


def test_body_over_64_kib_is_413(client, auth, sessions):
    body = json.dumps(VALID | {"padding": "x" * 70_000})
    response = client.post(
        "/api/v1/comments", data=body, headers=auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "body_too_large"
    assert count(sessions, Comment) == 0


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer msk_wrong", "Basic dXNlcjpwYXNz", "Bearer not-a-key"]
)
def test_missing_or_wrong_key_is_401(client, sessions, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/v1/comments", json=VALID, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(sessions, Comment) == 0


def test_another_sites_comment_is_404(client, auth, sessions):
    comment_id = post(client, auth).get_json()["id"]
    with unit_of_work(sessions) as session:
        other_key = create_site(session, "other-news")[1]
    response = client.get(
        f"/api/v1/comments/{comment_id}", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": "not_found", "message": "no such comment"}}


def test_closed_article_is_409(client, auth, sessions):
    post(client, auth)
    with unit_of_work(sessions) as session:
        session.scalars(select(Article)).one().closed = True
    response = post(client, auth, VALID | {"text": "late reply"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "article_closed"
    assert count(sessions, Comment) == 1


def test_published_list_shows_approved_only_newest_first_with_a_cursor(client, auth, sessions):
    ids = [post(client, auth, VALID | {"text": f"comment {i}"}).get_json()["id"] for i in range(5)]
    with unit_of_work(sessions) as session:
        for comment in session.scalars(select(Comment)):
            comment.status = Status.HELD if comment.public_id == ids[2] else Status.APPROVED
    url = "/api/v1/articles/politics/2026/budget/comments?limit=2"
    first = client.get(url, headers=auth).get_json()
    assert [c["id"] for c in first["comments"]] == [ids[4], ids[3]]
    second = client.get(f"{url}&cursor={first['next_cursor']}", headers=auth).get_json()
    assert [c["id"] for c in second["comments"]] == [ids[1], ids[0]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=%%%"])
def test_bad_paging_is_422(client, auth, sessions, query):
    response = client.get(f"/api/v1/articles/a/comments?{query}", headers=auth)
    assert response.status_code == 422


def test_a_reply_names_its_parent(client, auth, sessions):
    parent = post(client, auth).get_json()["id"]
    reply = post(client, auth, VALID | {"parent_id": parent, "text": "I agree"}).get_json()
    assert reply["parent_id"] == parent


def test_nothing_is_audited_at_submission(client, auth, sessions):
    post(client, auth)
    assert count(sessions, AuditEvent) == 0


def test_openapi_document_describes_the_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/comments", "/api/v1/comments/{public_id}"} <= set(spec["paths"])
    assert "text" in spec["components"]["schemas"]["CommentSubmission"]["properties"]
