"""The Perspective-compatible API: Google's own client library, built from our discovery
document, against a live server and a real worker; Perspective's error shapes; the retry
advice when no worker answers; and nothing about a comment stored or logged."""

from __future__ import annotations

import json
import time

import pytest
from celery.signals import before_task_publish
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from sqlalchemy import func, select

from moderation.compat.perspective_analysis import (
    MAX_TEXT_BYTES,
    AnalyzeRequest,
    Attribute,
    analyze_response,
    utf16_offsets,
)
from moderation.compat.perspective_errors import PerspectiveError
from moderation.db import Base
from moderation.tasks_client import (
    SCORE_TEXTS,
    ScoringUnavailable,
    TaskQueue,
    TextScores,
)
from tests.support import app_with

ANALYZE = "/v1alpha1/comments:analyze"
DISCOVERY = "/$discovery/rest?version={apiVersion}"
ANALYZER_ERROR = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
FRIENDLY = "Thank you for this thoughtful and well researched article."
TOXIC = "You are a complete idiot and nobody wants to hear from you."


def analyze_body(text: str = FRIENDLY, **fields) -> dict:
    return {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}} | fields


def google_error(response, code: int, status: str) -> dict:
    """The error of a response in Google's shape, checked."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    assert isinstance(error["message"], str) and error["message"]
    return error


def detail_of(error: dict, type_url: str) -> dict:
    return next(detail for detail in error.get("details", []) if detail["@type"] == type_url)


# --- Google's client against a live server and a real worker ----------------------------------


@pytest.fixture
def perspective(warm_worker, live_server, site_key):
    """``comments()`` of Google's client, built from this service's discovery document."""
    service = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=site_key,
        discoveryServiceUrl=live_server.url + DISCOVERY,
        static_discovery=False,
        cache_discovery=False,
    )
    with service:
        yield service.comments()


@pytest.mark.e2e
def test_googles_client_scores_a_toxic_comment_above_a_friendly_one(perspective):
    def toxicity(text: str) -> float:
        body = analyze_body(text, requestedAttributes={"TOXICITY": {}, "INSULT": {}})
        response = perspective.analyze(body=body).execute()
        assert set(response["attributeScores"]) == {"TOXICITY", "INSULT"}
        assert response["languages"] == ["en"] and response["detectedLanguages"] == ["en"]
        summary = response["attributeScores"]["TOXICITY"]["summaryScore"]
        assert summary["type"] == "PROBABILITY" and 0 <= summary["value"] <= 1
        assert "spanScores" not in response["attributeScores"]["TOXICITY"]
        return summary["value"]

    assert toxicity(TOXIC) > toxicity(FRIENDLY) + 0.3


@pytest.mark.e2e
def test_span_annotations_score_each_sentence(perspective):
    text = f"{FRIENDLY} {TOXIC}"
    body = analyze_body(text, spanAnnotations=True, languages=["en"])
    toxicity = perspective.analyze(body=body).execute()["attributeScores"]["TOXICITY"]
    spans = toxicity["spanScores"]
    assert [text[span["begin"] : span["end"]] for span in spans] == [FRIENDLY, TOXIC]
    assert all(span["score"]["type"] == "PROBABILITY" for span in spans)
    assert spans[1]["score"]["value"] > spans[0]["score"]["value"]


@pytest.mark.e2e
def test_client_token_is_echoed_and_thresholds_leave_attributes_out(perspective):
    body = analyze_body(
        FRIENDLY,
        requestedAttributes={"TOXICITY": {"scoreThreshold": 0.99}, "THREAT": {"scoreThreshold": 0}},
        clientToken="request-17",
    )
    response = perspective.analyze(body=body).execute()
    assert response["clientToken"] == "request-17"
    assert set(response["attributeScores"]) == {"THREAT"}


@pytest.mark.e2e
def test_an_attribute_the_model_cannot_score_is_perspectives_error(perspective):
    # The seed model is not one of Detoxify's ``unbiased`` models: no sexual_explicit label.
    body = analyze_body(requestedAttributes={"TOXICITY": {}, "SEXUALLY_EXPLICIT": {}})
    with pytest.raises(HttpError) as raised:
        perspective.analyze(body=body).execute()
    assert raised.value.resp.status == 400
    detail = raised.value.error_details[0]
    assert detail["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    assert detail["languageNotSupportedByAttributeError"]["attribute"] == "SEXUALLY_EXPLICIT"

    body["dropUnsupportedAttributes"] = True
    response = perspective.analyze(body=body).execute()
    assert set(response["attributeScores"]) == {"TOXICITY"}


@pytest.mark.e2e
def test_googles_client_reads_our_errors(live_server, site_key):
    service = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey="msk_not-a-key",
        discoveryServiceUrl=live_server.url + DISCOVERY,
        static_discovery=False,
        cache_discovery=False,
    )
    with service, pytest.raises(HttpError) as raised:
        service.comments().analyze(body=analyze_body()).execute()
    assert raised.value.resp.status == 400
    assert raised.value.reason == "API key not valid. Please pass a valid API key."
    assert raised.value.error_details[0]["reason"] == "API_KEY_INVALID"


def row_counts(sessions) -> dict[str, int]:
    with sessions() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


@pytest.mark.e2e
def test_do_not_store_leaves_no_row_and_no_log_line_with_the_text(
    perspective, warm_worker, sessions, caplog
):
    secret = "My neighbour Ann Example at 12 Quiet Lane is a complete idiot."
    before = row_counts(sessions)
    published: list[dict] = []

    def capture(headers=None, **_kwargs):
        published.append(dict(headers or {}))

    before_task_publish.connect(capture, weak=False)
    try:
        with caplog.at_level("DEBUG"):
            body = analyze_body(secret, doNotStore=True, spanAnnotations=True)
            assert perspective.analyze(body=body).execute()["attributeScores"]["TOXICITY"]
    finally:
        before_task_publish.disconnect(capture)
    assert row_counts(sessions) == before
    # Workers log (JSON: in full) and broadcast in task events the argsrepr, not the args.
    (task,) = [headers for headers in published if headers.get("task") == SCORE_TEXTS]
    assert "Quiet Lane" not in task["argsrepr"]
    logged = "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
    assert "comments:analyze" in logged
    assert "Quiet Lane" not in logged
    assert "Quiet Lane" not in warm_worker.log_path.read_text(errors="replace")


# --- Perspective's error shapes, without a worker ----------------------------------------------


def post(client, body, key: str | None) -> object:
    url = ANALYZE if key is None else f"{ANALYZE}?key={key}&alt=json"
    if isinstance(body, str | bytes):
        return client.post(url, data=body, content_type="application/json")
    return client.post(url, json=body)


def test_a_request_without_a_key_is_refused_as_google_does(client):
    error = google_error(post(client, analyze_body(), None), 403, "PERMISSION_DENIED")
    assert error["message"] == "The request is missing a valid API key."


@pytest.mark.parametrize("key", ["msk_unknown", "mpk_publishable", "x" * 300])
def test_a_key_that_is_not_a_site_key_is_api_key_invalid(client, site_key, key):
    error = google_error(post(client, analyze_body(), key), 400, "INVALID_ARGUMENT")
    assert error["message"] == "API key not valid. Please pass a valid API key."
    info = detail_of(error, "type.googleapis.com/google.rpc.ErrorInfo")
    assert info["reason"] == "API_KEY_INVALID"


BAD_REQUESTS = {
    "malformed JSON": ('{"comment": {"text": "hi"', None),
    "not UTF-8": (b'{"comment": {"text": "\xff\xfe"}}', None),
    "an array": ("[1, 2]", None),
    "no comment": ({"requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
    "no text": ({"comment": {}, "requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
    "empty text": (analyze_body(""), "COMMENT_EMPTY"),
    "blank text": (analyze_body(" \n\t "), "COMMENT_EMPTY"),
    "text too long": (analyze_body("x" * (MAX_TEXT_BYTES + 1)), "COMMENT_TOO_LONG"),
    "text not a string": (analyze_body(17), None),
    "comment not an object": ({"comment": "hi", "requestedAttributes": {"TOXICITY": {}}}, None),
    "HTML comment": (
        {"comment": {"text": "<b>hi</b>", "type": "HTML"}, "requestedAttributes": {"A": {}}},
        None,
    ),
    "lone surrogate": ('{"comment": {"text": "\\ud800"}, "requestedAttributes": {"A": {}}}', None),
    "no attributes": ({"comment": {"text": "hi"}}, "NO_REQUESTED_ATTRIBUTES"),
    "empty attributes": (analyze_body(requestedAttributes={}), "NO_REQUESTED_ATTRIBUTES"),
    "attributes a list": (analyze_body(requestedAttributes=["TOXICITY"]), None),
    "unknown attribute": (
        analyze_body(requestedAttributes={"TOXICITY_EXPERIMENTAL": {}}),
        "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
    ),
    "not English": (analyze_body(languages=["fr"]), "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"),
    "languages not strings": (analyze_body(languages=[1]), None),
    "score type": (analyze_body(requestedAttributes={"TOXICITY": {"scoreType": "RAW"}}), None),
    "threshold a string": (
        analyze_body(requestedAttributes={"TOXICITY": {"scoreThreshold": "0.5"}}),
        None,
    ),
    "parameters a list": (analyze_body(requestedAttributes={"TOXICITY": []}), None),
    "doNotStore a string": (analyze_body(doNotStore="yes"), None),
    "spanAnnotations a number": (analyze_body(spanAnnotations=1), None),
    "clientToken an object": (analyze_body(clientToken={}), None),
    "context a list": (analyze_body(context=[]), None),
}


@pytest.mark.parametrize("body, error_type", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_are_400_in_perspectives_shape(client, site_key, body, error_type):
    error = google_error(post(client, body, site_key), 400, "INVALID_ARGUMENT")
    assert error["details"], error
    if error_type is not None:
        assert detail_of(error, ANALYZER_ERROR)["errorType"] == error_type
    else:
        assert detail_of(error, "type.googleapis.com/google.rpc.BadRequest")["fieldViolations"]


def test_a_language_error_names_the_attribute_and_languages(client, site_key):
    body = analyze_body(languages=["de", "fr"], requestedAttributes={"INSULT": {}})
    error = google_error(post(client, body, site_key), 400, "INVALID_ARGUMENT")
    assert error["message"] == "Attribute INSULT does not support request languages: de,fr"
    detail = detail_of(error, ANALYZER_ERROR)["languageNotSupportedByAttributeError"]
    assert detail == {"detectedLanguages": ["de", "fr"], "attribute": "INSULT"}


def test_unsupported_languages_are_dropped_on_request_without_scoring(client, site_key):
    body = analyze_body(languages=["fr"], dropUnsupportedAttributes=True, clientToken="t")
    response = post(client, body, site_key)
    assert response.status_code == 200
    assert response.get_json() == {
        "attributeScores": {},
        "languages": ["fr"],
        "detectedLanguages": ["en"],
        "clientToken": "t",
    }


def test_unknown_paths_methods_and_large_bodies_answer_in_googles_shape(client, site_key):
    google_error(client.post("/v1alpha1/comments:moderate"), 404, "NOT_FOUND")
    google_error(client.get("/$discovery/nothing"), 404, "NOT_FOUND")
    wrong_method = client.get(f"{ANALYZE}?key={site_key}")
    google_error(wrong_method, 405, "UNIMPLEMENTED")
    assert "POST" in wrong_method.headers["Allow"]
    huge = json.dumps(analyze_body("x" * 70_000))
    google_error(post(client, huge, site_key), 413, "INVALID_ARGUMENT")


# --- When no worker answers: 503 with retry advice ---------------------------------------------


def assert_retry_advice(response) -> None:
    error = google_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == "1"
    assert detail_of(error, RETRY_INFO)["retryDelay"] == "1s"


def test_scoring_unavailable_is_503_with_retry_advice(client, site_key, monkeypatch):
    def unavailable(self, texts, *, spans=False, timeout=None, language=None):
        raise ScoringUnavailable("no worker answered within 2s")

    monkeypatch.setattr(TaskQueue, "score_now", unavailable)
    assert_retry_advice(post(client, analyze_body(), site_key))


def test_no_worker_on_the_queue_is_a_quick_503(database_url, broker, sessions, site_key):
    with app_with(database_url, broker, sync_timeout=0.05) as app:
        started = time.monotonic()
        response = post(app.test_client(), analyze_body(), site_key)
        elapsed = time.monotonic() - started
    assert_retry_advice(response)
    assert elapsed < 2


# --- Responses from given scores ---------------------------------------------------------------


def test_thresholds_filter_summaries_and_spans():
    text = "Fine. Awful."
    scored = TextScores(
        "fake",
        "1",
        [{"toxicity": 0.6, "insult": 0.2}],
        [
            [
                {"begin": 0, "end": 5, "scores": {"toxicity": 0.1, "insult": 0.1}},
                {"begin": 6, "end": 12, "scores": {"toxicity": 0.9, "insult": 0.3}},
            ]
        ],
    )
    attributes = [Attribute("TOXICITY", "toxicity", 0.5), Attribute("INSULT", "insult", 0.5)]
    request = AnalyzeRequest(text, tuple(attributes), span_annotations=True)
    response = analyze_response(request, attributes, scored)
    assert response["attributeScores"] == {
        "TOXICITY": {
            "summaryScore": {"value": 0.6, "type": "PROBABILITY"},
            "spanScores": [{"begin": 6, "end": 12, "score": {"value": 0.9, "type": "PROBABILITY"}}],
        }
    }
    assert "clientToken" not in response


def test_span_offsets_are_utf16_code_units_as_perspective_documents():
    text = "\U0001f600 Great. \U0001f621 Awful."
    assert utf16_offsets("a\U0001f600b") == [0, 1, 3, 4]
    scored = TextScores(
        "fake",
        "1",
        [{"toxicity": 0.5}],
        [
            [
                {"begin": 0, "end": 8, "scores": {"toxicity": 0.1}},
                {"begin": 9, "end": 17, "scores": {"toxicity": 0.9}},
            ]
        ],
    )
    attributes = [Attribute("TOXICITY", "toxicity")]
    request = AnalyzeRequest(text, tuple(attributes), span_annotations=True)
    spans = analyze_response(request, attributes, scored)["attributeScores"]["TOXICITY"][
        "spanScores"
    ]
    utf16 = text.encode("utf-16-le")
    sliced = [utf16[2 * s["begin"] : 2 * s["end"]].decode("utf-16-le") for s in spans]
    assert sliced == ["\U0001f600 Great.", "\U0001f621 Awful."]


def test_sexually_explicit_is_scored_by_a_model_with_the_label():
    scored = TextScores("unbiased", "1", [{"toxicity": 0.2, "sexual_explicit": 0.7}])
    attributes = [Attribute("SEXUALLY_EXPLICIT", "sexual_explicit")]
    request = AnalyzeRequest("text", tuple(attributes))
    response = analyze_response(request, attributes, scored)
    assert response["attributeScores"]["SEXUALLY_EXPLICIT"]["summaryScore"]["value"] == 0.7
    with pytest.raises(PerspectiveError):
        analyze_response(request, attributes, TextScores("original", "1", [{"toxicity": 0.2}]))


def test_answers_use_the_scores_the_worker_returned(client, site_key, monkeypatch):
    seen = {}

    def score_now(self, texts, *, spans=False, timeout=None, language=None):
        seen.update(texts=texts, spans=spans)
        return TextScores("fake", "1", [{"toxicity": 0.25, "obscene": 0.75}], None)

    monkeypatch.setattr(TaskQueue, "score_now", score_now)
    body = analyze_body(
        "Plain words.",
        requestedAttributes={"TOXICITY": {"scoreType": "PROBABILITY"}, "PROFANITY": None},
        languages=["en-GB"],
        doNotStore=True,
        sessionId="s",
        communityId="c",
        context={"entries": [{"text": "the article"}]},
    )
    response = post(client, body, site_key)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert seen == {"texts": ["Plain words."], "spans": False}
    scores = response.get_json()["attributeScores"]
    assert scores["PROFANITY"]["summaryScore"]["value"] == 0.75
    assert response.get_json()["languages"] == ["en-GB"]


# --- The discovery and OpenAPI documents -------------------------------------------------------


def test_discovery_document_describes_the_analyze_method(client):
    document = client.get("/$discovery/rest?version=v1alpha1").get_json()
    assert document["kind"] == "discovery#restDescription"
    assert (document["name"], document["version"]) == ("commentanalyzer", "v1alpha1")
    assert document["rootUrl"] == "http://localhost/"
    method = document["resources"]["comments"]["methods"]["analyze"]
    assert (method["httpMethod"], method["path"]) == ("POST", "v1alpha1/comments:analyze")
    assert "stored" in method["description"]
    assert set(document["parameters"]) >= {"key", "alt", "prettyPrint"}
    assert {"AnalyzeCommentRequest", "AnalyzeCommentResponse"} <= set(document["schemas"])
    google_error(client.get("/$discovery/rest?version=v1"), 404, "NOT_FOUND")


def test_discovery_root_url_follows_the_trusted_proxy(database_url, broker):
    with app_with(database_url, broker, trusted_proxies=1) as app:
        response = app.test_client().get(
            "/$discovery/rest?version=v1alpha1",
            headers={"X-Forwarded-Proto": "https", "Host": "moderation.example"},
        )
    assert response.get_json()["rootUrl"] == "https://moderation.example/"


def test_openapi_document_lists_the_perspective_paths(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    analyze = spec["paths"]["/v1alpha1/comments:analyze"]["post"]
    assert analyze["tags"] == ["Perspective-compatible"]
    assert analyze["security"] == [{"perspectiveKey": []}]
    assert spec["paths"]["/$discovery/rest"]["get"]["tags"] == ["Perspective-compatible"]
    assert spec["components"]["securitySchemes"]["perspectiveKey"]["in"] == "query"
    request = spec["components"]["schemas"]["PerspectiveAnalyzeCommentRequest"]
    assert request["properties"]["comment"]["$ref"] == "#/components/schemas/PerspectiveTextEntry"
