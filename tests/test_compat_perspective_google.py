"""Google's own client, built from Google's own discovery document (revision 20190414, from
googleapis/google-api-go-client, descriptions shortened) pointed at our host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from sqlalchemy import select

from moderation.compat.perspective_analysis import camel_case_keys, partial_response
from moderation.models import LabelledExample

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
