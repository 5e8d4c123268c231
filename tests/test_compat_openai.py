"""OpenAI-compatible /v1/moderations: the openai SDK against a live server and a real worker."""

from __future__ import annotations

import json

import openai
import pytest

from moderation.compat.openai_moderations import CATEGORY_LABELS
from moderation.models import Comment
from moderation.tasks_client import ScoringUnavailable, TaskQueue, TextScores
from tests.conftest import MODEL_PATH
from tests.support import app_with, make_site, serving, settings_for_tests

pytestmark = pytest.mark.e2e

ABUSIVE = "You are a pathetic idiot and a worthless moron."
FRIENDLY = "Thank you for this thoughtful and well researched article."


@pytest.fixture
def sdk(live_server, site_key, warm_worker):
    """The official SDK, pointed at our server with the site key as its API key."""
    with openai.OpenAI(api_key=site_key, base_url=f"{live_server.url}/v1", max_retries=0) as client:
        yield client


def test_sdk_gets_moderation_results_for_a_list(sdk, sessions, model_dir):
    response = sdk.moderations.create(input=[ABUSIVE, FRIENDLY])

    abusive, friendly = response.results
    assert abusive.flagged and not friendly.flagged
    assert abusive.categories.harassment is True
    assert abusive.category_scores.harassment > friendly.category_scores.harassment
    assert abusive.category_scores.self_harm == 0.0
    meta = json.loads((model_dir / "meta.json").read_text())
    assert response.model == f"{meta['name']}:{meta['version']}"
    # Nothing is stored: this API answers, it does not queue.
    with sessions() as session:
        assert session.query(Comment).count() == 0


def test_sdk_accepts_a_single_string_and_text_parts(sdk):
    single = sdk.moderations.create(input=FRIENDLY)
    parts = sdk.moderations.create(input=[{"type": "text", "text": FRIENDLY}])

    assert len(single.results) == len(parts.results) == 1
    assert single.results[0].category_scores.harassment == pytest.approx(
        parts.results[0].category_scores.harassment
    )


def test_content_parts_are_one_input_with_one_result(sdk):
    # OpenAI's multimodal example: a list of parts is one input, not one input per part.
    parts = sdk.moderations.create(
        input=[
            {"type": "text", "text": "Thank you for the article."},
            {"type": "text", "text": ABUSIVE},
        ]
    )
    strings = sdk.moderations.create(input=["Thank you for the article.", ABUSIVE])
    assert len(parts.results) == 1 and len(strings.results) == 2
    assert parts.results[0].flagged is True
    assert parts.results[0].category_applied_input_types.harassment == ["text"]


def test_sdk_reports_a_wrong_key_as_authentication_error(live_server):
    client = openai.OpenAI(api_key="msk_wrong", base_url=f"{live_server.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.moderations.create(input=FRIENDLY)
    assert caught.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"input": [{"type": "image_url", "image_url": {"url": "https://x"}}]}, "input"),
        ({"input": "x" * 5001}, "input"),
        ({"input": ["a"] * 33}, "input"),
        ({"input": ["a", {"type": "text", "text": "b"}]}, "input"),
        (
            {"input": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
            "input",
        ),
        ({"input": "half a pair \ud800 of surrogates"}, "input"),
    ],
)
def test_bad_requests_get_openai_error_shape(client, auth, body, param):
    response = client.post("/v1/moderations", json=body, headers=auth)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]


def test_not_json_missing_key_and_wrong_method_keep_the_shape(client, auth):
    not_json = client.post("/v1/moderations", data="input=x", headers=auth)
    no_key = client.post("/v1/moderations", json={"input": "x"})
    wrong_method = client.get("/v1/moderations", headers=auth)

    assert not_json.status_code == 400 and "error" in not_json.get_json()
    assert no_key.status_code == 401 and no_key.get_json()["error"]["type"]
    assert wrong_method.status_code == 405
    assert set(wrong_method.get_json()["error"]) == {"message", "type", "param", "code"}


def test_worker_timeout_is_a_503_with_retry_advice(client, auth, monkeypatch):
    def unavailable(self, texts, **kwargs):
        raise ScoringUnavailable("no worker answered within 2s")

    monkeypatch.setattr(TaskQueue, "score_now", unavailable)
    response = client.post("/v1/moderations", json={"input": FRIENDLY}, headers=auth)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["type"] == "server_error"


def test_no_worker_at_all_times_out_as_503(database_url, sessions, site_key):
    # A queue no worker consumes and a short wait: the real timeout path, end to end.
    settings = settings_for_tests(database_url, MODEL_PATH, sync_timeout=0.3)
    with serving(settings) as server:
        client = openai.OpenAI(api_key=site_key, base_url=f"{server.url}/v1", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.moderations.create(input=FRIENDLY)
    assert caught.value.status_code == 503


def test_categories_follow_the_site_policy(client, auth, monkeypatch):
    scores = {
        "toxicity": 0.2,
        "severe_toxicity": 0.0,
        "obscene": 0.0,
        "threat": 0.45,
        "insult": 0.9,
        "identity_attack": 0.1,
    }
    answer = TextScores("m", "v", [scores])
    monkeypatch.setattr(TaskQueue, "score_now", lambda self, texts, **kw: answer)

    result = client.post("/v1/moderations", json={"input": "x"}, headers=auth).get_json()
    (only,) = result["results"]

    assert only["flagged"] is True  # insult 0.9 >= hold at 0.5; threat 0.45 >= 0.4
    assert only["categories"]["harassment"] is True
    assert only["categories"]["harassment/threatening"] is True
    assert only["category_scores"]["harassment/threatening"] == 0.45
    assert only["categories"]["hate"] is False
    assert only["category_scores"]["sexual"] == 0.0  # the model has no such label
    assert only["category_applied_input_types"]["sexual"] == []
    assert set(only["categories"]) == set(CATEGORY_LABELS)


def test_the_compatible_apis_have_a_rate_limit_of_their_own(database_url, broker, sessions):
    scores = {"toxicity": 0.1}
    with app_with(database_url, broker, ratelimit_sync="2/minute") as app:
        web, site, other = app.test_client(), make_site(sessions), make_site(sessions, "other")
        answer = TextScores("m", "v", [scores])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TaskQueue, "score_now", lambda self, texts, **kw: answer)

            def ask(target):
                return web.post("/v1/moderations", json={"input": "x"}, headers=target.auth)

            assert [ask(site).status_code for _ in range(2)] == [200, 200]
            limited = ask(site)
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
            assert limited.get_json()["error"]["code"] == "rate_limit_exceeded"
            assert ask(other).status_code == 200
            # The site's own API keeps its separate, larger budget.
            body = {"article_id": "a", "author_id": "u", "author_name": "U", "text": "t"}
            assert web.post("/api/v1/comments", json=body, headers=site.auth).status_code == 202
