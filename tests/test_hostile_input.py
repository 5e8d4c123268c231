"""Hostile input: any Unicode is stored exactly or refused with a 4xx; the API keeps its schema."""

from __future__ import annotations

import json
import unicodedata

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from moderation.schemas import MAX_TEXT_LENGTH
from tests.moderation_support import moderator_accounts
from tests.support import UNREACHED_LIMITS, app_with

EDGE_TEXTS = [
    "\U0001f600\U0001f3f3\ufe0f\u200d\U0001f308 family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c",
    "zero\u200bwidth\u200c\u200d\ufeff",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334a\u0340\u0341l\u0364g\u0301o\u0360",
    "x" * MAX_TEXT_LENGTH,
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
]


def post_raw(client, auth, raw: str):
    return client.post(
        "/api/v1/comments", data=raw.encode(), headers=auth | {"Content-Type": "application/json"}
    )


def submission(text: str) -> dict:
    return {"article_id": "unicode", "author_id": "a", "author_name": "A", "text": text}


def assert_stored_exactly_or_refused(client, auth, text: str, response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 202:
        stored = client.get(response.headers["Location"], headers=auth).get_json()["text"]
        assert stored == unicodedata.normalize("NFC", text)
    else:
        assert 400 <= response.status_code < 500
        assert set(response.get_json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_texts_are_stored_exactly(client, auth, text):
    response = client.post("/api/v1/comments", json=submission(text), headers=auth)
    assert response.status_code == 202
    assert_stored_exactly_or_refused(client, auth, text, response)


@pytest.mark.parametrize(
    "escaped", ["\\ud800", "lone \\udfff low", "nul \\u0000 byte", "\\ud83d\\ude00 ok \\ud83d"]
)
def test_unstorable_json_escapes_are_refused(client, auth, escaped):
    raw = json.dumps(submission("placeholder")).replace("placeholder", escaped)
    response = post_raw(client, auth, raw)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "text"


def test_one_character_over_the_limit_is_refused(client, auth):
    response = client.post(
        "/api/v1/comments", json=submission("x" * (MAX_TEXT_LENGTH + 1)), headers=auth
    )
    assert response.status_code == 422


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(alphabet=st.characters(codec=None), max_size=300))
def test_any_unicode_is_stored_exactly_or_refused(client, auth, text):
    raw = json.dumps(submission(text))  # escapes surrogates and control characters
    assert_stored_exactly_or_refused(client, auth, text, post_raw(client, auth, raw))


@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # a digit to str.isdigit, not to int()
        "limit=%D9%A3",  # an Arabic-Indic 3
        "cursor=99999999999",  # past a 32-bit id
        "cursor=Yzk5OTk5OTk5OTk5",  # an encoded cursor past a 32-bit id
        "cursor=a%00b",  # PostgreSQL can neither store nor compare a NUL
    ],
)
def test_odd_query_parameters_are_refused_with_a_422(client, auth, query):
    for path in ("/api/v1/articles/a/comments", "/api/v1/webhooks/deliveries"):
        response = client.get(f"{path}?{query}", headers=auth)
        assert response.status_code == 422, response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["before=99999999999", "before=%C2%B2", "actor=a%00b"])
def test_odd_moderation_query_parameters_are_refused_with_a_422(client, site_key, accounts, query):
    token = accounts.token(accounts.moderator("example-news"))
    response = client.get(
        f"/api/v1/moderation/audit?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/comments/a%00b"),
        ("GET", "/api/v1/articles/a%00b/comments"),
        ("PATCH", "/api/v1/articles/a%00b/settings"),
        ("GET", "/api/v1/webhooks/deliveries/a%00b"),
        ("GET", "/api/v1/moderation/comments/a%00b"),
    ],
)
def test_a_nul_in_a_path_names_nothing(client, auth, method, path):
    response = client.open(path, method=method, json={"closed": True}, headers=auth)
    assert response.status_code == 404, response.get_data(as_text=True)


def test_a_bulk_action_on_an_id_with_a_nul_is_refused(client, site_key, accounts):
    token = accounts.token(accounts.moderator("example-news"))
    response = client.post(
        "/api/v1/moderation/bulk",
        json={"action": "approve", "comments": ["cmt_a\x00b"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "comments"


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


@pytest.fixture(scope="module")
def fuzzed_app(database_url, broker):
    """An app that lets every generated request through its rate limits to the code."""
    with app_with(database_url, broker, **UNREACHED_LIMITS) as app:
        yield app


def test_every_endpoint_answers_by_its_schema_and_never_5xx(fuzzed_app, site_key, accounts):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)
    # Each operation gets the credential its security asks for: the site key by default.
    moderator_token = accounts.token(accounts.moderator("example-news"))
    credentials = {"moderatorToken": moderator_token, "siteKey": site_key}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3

    for operation in operations:
        security = operation.definition.raw.get("security", [{"siteKey": []}])
        names = [name for requirement in security for name in requirement]
        token = credentials.get(names[0] if names else "", site_key)
        answers_by_its_schema(operation, {"Authorization": f"Bearer {token}"})


def answers_by_its_schema(operation, headers: dict[str, str]) -> None:
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def conforms(case):
        # Schema-valid bodies may still break business rules (unknown parent, blank text
        # after normalisation), which answer 422 by design.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    conforms()
