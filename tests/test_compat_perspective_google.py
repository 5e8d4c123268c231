"""Google's own client, built from Google's own discovery document (revision 20190414, from
googleapis/google-api-go-client, descriptions shortened) pointed at our host."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from sqlalchemy import select

from moderation.compat.perspective_analysis import camel_case_keys, partial_response
from moderation.models import LabelledExample
from tests.support import app_with

GOOGLE_DOCUMENT = Path(__file__).parent / "data" / "commentanalyzer-v1alpha1-google.json"


def google_client(url: str, key: str):
    document = json.loads(GOOGLE_DOCUMENT.read_text())
    document["rootUrl"] = document["baseUrl"] = f"{url}/"
    return discovery.build_from_document(document, developerKey=key)


def test_proto_field_names_are_read_as_the_json_names():
    body = {"requested_attributes": {"SEVERE_TOXICITY": {"score_threshold": 0.5}}}
    assert camel_case_keys(body) == {
        "requestedAttributes": {"SEVERE_TOXICITY": {"scoreThreshold": 0.5}}
    }


def test_fields_selects_a_partial_response():
    body = {
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.9}, "spanScores": []}},
        "languages": ["en"],
        "detectedLanguages": ["en"],
    }
    assert partial_response(body, "languages") == {"languages": ["en"]}
    assert partial_response(body, "attributeScores/TOXICITY/summaryScore,languages") == {
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.9}}},
        "languages": ["en"],
    }
    assert partial_response(body, "attributeScores(TOXICITY/summaryScore/value)") == {
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.9}}}
    }


@pytest.mark.e2e
def test_google_s_client_analyzes_with_standard_parameters_and_snake_case(
    live_server, site_key, warm_worker
):
    client = google_client(live_server.url, site_key)
    body = {
        "comment": {"text": "You are a pathetic idiot."},
        "requested_attributes": {"TOXICITY": {}, "INSULT": {"score_type": "PROBABILITY"}},
        "do_not_store": True,
        "client_token": "tok-1",
    }
    answer = (
        client.comments().analyze(body=body, fields="attributeScores", quotaUser="u1").execute()
    )

    assert set(answer) == {"attributeScores"}
    assert set(answer["attributeScores"]) == {"TOXICITY", "INSULT"}
    assert 0.5 < answer["attributeScores"]["TOXICITY"]["summaryScore"]["value"] <= 1


def test_google_s_client_suggests_scores_kept_as_labelled_examples(live_server, site_key, sessions):
    client = google_client(live_server.url, site_key)
    # What Coral sends after a moderator rejects a comment (sendFeedback).
    body = {
        "comment": {"text": "You are a pathetic idiot."},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
        "communityId": "Coral:https://talk.news.example",
        "clientToken": "comment:8a1e",
    }
    answer = client.comments().suggestscore(body=body).execute()

    assert answer["clientToken"] == "comment:8a1e"
    with sessions() as session:
        (example,) = session.scalars(select(LabelledExample)).all()
    assert example.labels == {"toxicity": 1.0} and example.client_token == "comment:8a1e"
    assert example.community_id == "Coral:https://talk.news.example"


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"comment": {"text": "hi"}}, "NO_REQUESTED_ATTRIBUTES"),
        ({"comment": {"text": "  "}, "requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
        (
            {"comment": {"text": "é" * 10_241}, "requestedAttributes": {"TOXICITY": {}}},
            "COMMENT_TOO_LONG",
        ),
        (
            {"comment": {"text": "hi"}, "requestedAttributes": {"SPAM": {}}},
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
        ),
    ],
)
def test_errors_have_google_s_error_types(live_server, site_key, body, error_type):
    client = google_client(live_server.url, site_key)
    with pytest.raises(HttpError) as raised:
        client.comments().analyze(body=body).execute()
    assert raised.value.status_code == 400
    error = json.loads(raised.value.content)["error"]
    assert error["details"][0]["errorType"] == error_type


def test_text_up_to_20_kb_is_accepted(client, site_key):
    # 20,480 bytes of UTF-8, over the old 5,000 characters: not a length error.
    text = "word " * 4096
    response = client.post(
        f"/v1alpha1/comments:analyze?key={site_key}",
        json={"comment": {"text": text}, "requestedAttributes": {"SPAM": {}}},
    )
    assert response.get_json()["error"]["details"][0]["errorType"] != "COMMENT_TOO_LONG"


# --- Google's batch protocol (the discovery document's batchPath) -----------------------------


@pytest.mark.e2e
def test_google_s_client_batches_calls_and_each_gets_its_own_answer(
    live_server, site_key, warm_worker
):
    client = google_client(live_server.url, site_key)
    answers, errors = {}, {}

    def collect(request_id, response, exception):
        (errors if exception is not None else answers)[request_id] = exception or response

    def analyze(text: str):
        body = {"comment": {"text": text}, "requested_attributes": {"TOXICITY": {}}}
        return client.comments().analyze(body=body, fields="attributeScores")

    batch = client.new_batch_http_request(callback=collect)
    batch.add(analyze("You are a pathetic idiot."), request_id="insult")
    batch.add(analyze("   "), request_id="empty")
    batch.add(analyze("Thank you for this careful, well-sourced article."), request_id="kind")
    batch.execute()

    def toxicity(request_id: str) -> float:
        return answers[request_id]["attributeScores"]["TOXICITY"]["summaryScore"]["value"]

    assert set(answers) == {"insult", "kind"} and set(answers["insult"]) == {"attributeScores"}
    assert toxicity("insult") > 0.5 > toxicity("kind")
    assert errors["empty"].status_code == 400
    assert json.loads(errors["empty"].content)["error"]["details"][0]["errorType"] == (
        "COMMENT_EMPTY"
    )


def batch_body(*requests: bytes) -> tuple[bytes, str]:
    """A multipart/mixed batch of raw HTTP requests, each with a Content-ID."""
    boundary = "===batch-boundary==="
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <b + {n}>\r\n\r\n".encode()
        + raw
        + b"\r\n"
        for n, raw in enumerate(requests)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/mixed; boundary={boundary}"


def batch_answers(response) -> list[tuple[str, int, bytes]]:
    """(Content-ID, status, body) of each part of a batch answer."""
    import email.parser
    import email.policy

    head = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode()
    envelope = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        head + response.data
    )
    answers = []
    for part in envelope.get_payload():
        raw = part.get_payload(decode=True)
        status_line, _, rest = raw.partition(b"\r\n")
        answers.append(
            (part["Content-ID"], int(status_line.split()[1]), rest.split(b"\r\n\r\n")[1])
        )
    return answers


def test_each_batched_call_is_authenticated_and_routed_on_its_own(client, site_key):
    analyze = b'{"comment": {"text": "hi"}}'
    body, content_type = batch_body(
        b"POST /v1alpha1/comments:analyze?key=made-up HTTP/1.1\r\n"
        b"Content-Type: application/json\r\n\r\n" + analyze,
        b"GET /api/v1/comments/cmt_1 HTTP/1.1\r\nAuthorization: Bearer " + site_key.encode(),
        f"POST /v1alpha1/comments:analyze?key={site_key} HTTP/1.1\r\n".encode()
        + b"Content-Type: application/json\r\n\r\n"
        + analyze,
    )
    response = client.post("/batch", data=body, content_type=content_type)

    assert response.status_code == 200
    assert response.mimetype == "multipart/mixed"
    (bad_key, elsewhere, no_attributes) = batch_answers(response)
    assert bad_key[:2] == ("<response-b + 0>", 400)
    assert json.loads(bad_key[2])["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    # Only this API's own methods can be batched: the site API's path is not found here.
    assert elsewhere[:2] == ("<response-b + 1>", 404)
    assert json.loads(elsewhere[2])["error"]["status"] == "NOT_FOUND"
    assert no_attributes[:2] == ("<response-b + 2>", 400)
    assert json.loads(no_attributes[2])["error"]["details"][0]["errorType"] == (
        "NO_REQUESTED_ATTRIBUTES"
    )


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        (b'{"comment": {}}', "application/json", "multipart/mixed"),
        (b"--x--\r\n", "multipart/mixed; boundary=x", "no parts"),
        (
            b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--",
            "multipart/mixed; boundary=x",
            "application/http",
        ),
        (
            batch_body(*[b"GET /v1alpha1/x HTTP/1.1"] * 101)[0],
            "multipart/mixed; boundary====batch-boundary===",
            "at most 100",
        ),
    ],
)
def test_a_body_that_is_not_a_batch_is_a_400_in_google_s_shape(client, data, content_type, says):
    response = client.post("/batch", data=data, content_type=content_type)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and says in error["message"]


def test_a_batched_call_comes_from_the_batch_s_client_whatever_its_own_headers_say(
    database_url, broker, site_key
):
    # Behind one trusted proxy: the batch's address is the proxy's X-Forwarded-For. Calls
    # that claim addresses of their own still count against it, so made-up keys run out.
    client_address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    calls = [
        f"POST /v1alpha1/comments:analyze?key=made-up-{n} HTTP/1.1\r\n".encode()
        + f"X-Forwarded-For: 10.0.0.{n}\r\nHost: elsewhere.example\r\n".encode()
        + b'Content-Type: application/json\r\n\r\n{"comment": {"text": "hi"}}'
        for n in range(4)
    ]
    body, content_type = batch_body(*calls)
    with app_with(database_url, broker, trusted_proxies=1, ratelimit_invalid_key="2/minute") as app:
        response = app.test_client().post(
            "/batch",
            data=body,
            content_type=content_type,
            headers={"X-Forwarded-For": client_address},
        )

    assert [status for _id, status, _body in batch_answers(response)] == [400, 400, 429, 429]
