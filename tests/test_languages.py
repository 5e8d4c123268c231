"""Comments in other languages than English, on each database: routed by the workers (with
stand-in scorers, then end to end with a real worker), shown and filtered for moderators, and
answered by the Perspective-compatible API."""

from __future__ import annotations

import pytest
import requests
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from sqlalchemy import func, select

from moderation.db import unit_of_work
from moderation.models import AuditEvent, Comment, CommentScore, Site, Status
from moderation.policy import LABELS, SitePolicy
from moderation.schemas import CommentSubmission
from moderation.scoring.language import Multilingual
from moderation.services.comments import submit_comment
from moderation.services.decisions import score_and_decide
from moderation.services.moderation import QueueFilter, queue_counts, queue_page
from moderation.services.sites import create_site
from moderation.tasks_client import TaskQueue, TextScores
from tests.fakes import KeywordScorer
from tests.moderation_support import moderator_accounts, sign_in
from tests.support import app_with, wait_until

GERMAN = "Du bist ein kompletter Idiot, halt einfach die Klappe und geh nach Hause."
FRENCH = "Merci pour cet article clair et bien documenté sur le budget de la ville."
SPANISH = "Eres un completo idiota, nadie quiere leer tus comentarios en este periódico."
ITALIAN = "Grazie per un articolo chiaro ed equilibrato sul bilancio del comune."
ENGLISH_CLEAN = "Thank you for a clear and balanced piece on the city budget."
ENGLISH_ABUSIVE = "You are a complete idiot and nobody wants to read your comments."


class MultilingualFake(KeywordScorer):
    """A stand-in for a multilingual model, told apart by its name."""

    model_name = "multilingual-fake"


def add_comments(sessions, *texts: str, policy: SitePolicy | None = None) -> dict[str, int]:
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site)).first() or create_site(session, "s", policy)[0]
        ids = {}
        for i, text in enumerate(texts):
            data = CommentSubmission(article_id="a", author_id=f"u{i}", author_name="U", text=text)
            ids[text] = submit_comment(session, site, data).comment.id
        return ids


def comments_by_text(sessions) -> dict[str, Comment]:
    with sessions() as session:
        return {c.text: c for c in session.scalars(select(Comment))}


def scored_texts(sessions) -> dict[str, set[str]]:
    """Each scored comment's text and the models that scored it."""
    query = select(Comment.text, CommentScore.model_name).join(CommentScore)
    with sessions() as session:
        found: dict[str, set[str]] = {}
        for text, model in session.execute(query):
            found.setdefault(text, set()).add(model)
        return found


# --- The workers' routing, with stand-in scorers ----------------------------------------------


def test_english_is_scored_and_other_languages_are_held_unscored(sessions):
    texts = [ENGLISH_CLEAN, ENGLISH_ABUSIVE, GERMAN, SPANISH]
    add_comments(sessions, *texts)
    scorer = KeywordScorer()
    with sessions() as session:
        ids = list(session.scalars(select(Comment.id)))
    assert score_and_decide(sessions, ids, scorer) == 4
    assert scorer.batches == [[ENGLISH_CLEAN, ENGLISH_ABUSIVE]]
    found = comments_by_text(sessions)
    assert (found[ENGLISH_CLEAN].status, found[ENGLISH_CLEAN].language) == ("approved", "en")
    assert found[ENGLISH_ABUSIVE].reasons[0]["code"] == "hold_threshold"
    for text, language, name in ((GERMAN, "de", "German"), (SPANISH, "es", "Spanish")):
        comment = found[text]
        assert (comment.status, comment.language, comment.top_score) == ("held", language, None)
        assert comment.reasons == [
            {
                "code": "language_not_supported",
                "label": None,
                "score": None,
                "threshold": None,
                "language": language,
                "message": f"language not supported: {name} ({language})",
            }
        ]
    assert set(scored_texts(sessions)) == {ENGLISH_CLEAN, ENGLISH_ABUSIVE}
    with sessions() as session:
        events = dict(session.execute(select(AuditEvent.comment_id, AuditEvent.reason)).all())
    assert events[found[GERMAN].id] == "language_not_supported"
    assert events[found[ENGLISH_CLEAN].id] == "scored"


def test_a_multilingual_model_scores_the_languages_it_covers(sessions):
    add_comments(sessions, ENGLISH_CLEAN, SPANISH, FRENCH, GERMAN)
    main, other = KeywordScorer(), MultilingualFake()
    with sessions() as session:
        ids = list(session.scalars(select(Comment.id)))
    multilingual = Multilingual(other, frozenset({"es", "fr"}))
    assert score_and_decide(sessions, ids, main, multilingual=multilingual) == 4
    assert main.batches == [[ENGLISH_CLEAN]]
    assert other.batches == [[SPANISH, FRENCH]]
    assert scored_texts(sessions) == {
        ENGLISH_CLEAN: {"keyword-fake"},
        SPANISH: {"multilingual-fake"},
        FRENCH: {"multilingual-fake"},
    }
    found = comments_by_text(sessions)
    assert (found[SPANISH].status, found[SPANISH].language) == ("held", "es")
    assert found[SPANISH].reasons[0]["code"] == "hold_threshold"
    assert (found[FRENCH].status, found[FRENCH].language) == ("approved", "fr")
    assert found[GERMAN].reasons[0]["code"] == "language_not_supported"


def test_a_site_may_publish_other_languages_unscored(sessions):
    add_comments(
        sessions, GERMAN, ENGLISH_ABUSIVE, policy=SitePolicy(unsupported_language="publish")
    )
    with sessions() as session:
        ids = list(session.scalars(select(Comment.id)))
    score_and_decide(sessions, ids, KeywordScorer())
    found = comments_by_text(sessions)
    assert found[GERMAN].status == Status.APPROVED
    assert found[GERMAN].reasons[0]["code"] == "language_not_supported"
    assert found[ENGLISH_ABUSIVE].status == Status.HELD
    assert set(scored_texts(sessions)) == {ENGLISH_ABUSIVE}


# --- Moderators: the language on the card and as a queue filter -------------------------------


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


@pytest.fixture
def held_in_languages(sessions):
    """Held comments: three German, one Spanish, two English, one too short to tell."""
    germans = [f"{GERMAN} ({n})" for n in range(3)]
    short = "Idiot!!"
    texts = [germans[0], SPANISH, ENGLISH_ABUSIVE, germans[1], f"{ENGLISH_ABUSIVE}!", germans[2]]
    add_comments(sessions, *texts, short)
    with sessions() as session:
        ids = list(session.scalars(select(Comment.id).order_by(Comment.id)))
    score_and_decide(sessions, ids, KeywordScorer())
    by_text = {text: comment.public_id for text, comment in comments_by_text(sessions).items()}
    return {
        "de": [by_text[text] for text in germans],
        "es": [by_text[SPANISH]],
        "und": [by_text[short]],
    }


def test_the_queue_filters_by_language_and_pages_with_the_keyset_cursor(
    sessions, held_in_languages
):
    with sessions() as session:
        seen, cursor = [], None
        while True:
            page = queue_page(session, None, QueueFilter(language="de"), cursor, limit=2)
            seen += [comment.public_id for comment in page.comments]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == held_in_languages["de"]
        counts = queue_counts(session, None, QueueFilter(language="de"))
        assert (counts["held"], counts["all"]) == (3, 3)
        assert queue_counts(session, None, QueueFilter())["held"] == 7
        undetermined = queue_page(session, None, QueueFilter(language="und")).comments
        assert [c.public_id for c in undetermined] == held_in_languages["und"]


def test_the_moderation_api_filters_by_language_and_shows_it(
    client, sessions, accounts, held_in_languages
):
    token = accounts.token(accounts.moderator("s"))
    headers = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/moderation/queue?language=de&limit=2"
    first = client.get(url, headers=headers).get_json()
    assert [c["language"] for c in first["comments"]] == ["de", "de"]
    assert first["counts"]["held"] == 3
    rest = client.get(f"{url}&cursor={first['next_cursor']}", headers=headers).get_json()
    ids = [c["id"] for c in first["comments"] + rest["comments"]]
    assert ids == held_in_languages["de"] and rest["next_cursor"] is None
    spanish = client.get("/api/v1/moderation/queue?language=ES", headers=headers).get_json()
    assert [c["id"] for c in spanish["comments"]] == held_in_languages["es"]
    detail = client.get(f"/api/v1/moderation/comments/{ids[0]}", headers=headers).get_json()
    assert detail["language"] == "de"
    assert detail["decision"]["reasons"][0]["message"] == "language not supported: German (de)"
    bad = client.get("/api/v1/moderation/queue?language=german!", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "language"


def test_the_workspace_filters_by_language_and_the_card_shows_it(
    client, sessions, accounts, held_in_languages
):
    sign_in(client, accounts.moderator("s"))
    page = client.get("/moderate?language=de").text
    assert page.count('class="card ') == 3
    assert all(f'id="card-{public_id}"' in page for public_id in held_in_languages["de"])
    assert held_in_languages["es"][0] not in page
    assert '<option value="de" selected>German</option>' in page
    assert page.count('title="Detected language: German (de)">de</span>') == 3
    assert "language not supported: German (de)" in page
    more = client.get("/moderate?language=es&fragment=more").text
    assert held_in_languages["es"][0] in more and held_in_languages["de"][0] not in more


# --- Perspective: the detected language ---------------------------------------------------------

ANALYZE = "/v1alpha1/comments:analyze"


def analyze(client, key: str, text: str, **fields):
    body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}} | fields
    return client.post(f"{ANALYZE}?key={key}", json=body)


@pytest.fixture
def scored_now(monkeypatch):
    """What the web asked a worker to score (the worker answers toxicity 0.5)."""
    asked: list[dict] = []

    def score_now(self, texts, *, spans=False, timeout=None, language=None):
        asked.append({"texts": texts, "language": language})
        return TextScores("fake", "1", [{"toxicity": 0.5}], None)

    monkeypatch.setattr(TaskQueue, "score_now", score_now)
    return asked


def test_perspective_reports_the_detected_language(client, site_key, scored_now):
    answer = analyze(client, site_key, ENGLISH_CLEAN)
    assert answer.status_code == 200
    assert answer.get_json()["detectedLanguages"] == ["en"]
    assert answer.get_json()["languages"] == ["en"]
    assert scored_now == [{"texts": [ENGLISH_CLEAN], "language": None}]


def test_perspective_refuses_a_detected_language_no_model_covers(client, site_key, scored_now):
    answer = analyze(client, site_key, GERMAN)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert (error["status"], error["message"]) == (
        "INVALID_ARGUMENT",
        "Attribute TOXICITY does not support request languages: de",
    )
    (detail,) = error["details"]
    assert detail["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    assert detail["languageNotSupportedByAttributeError"] == {
        "detectedLanguages": ["de"],
        "attribute": "TOXICITY",
    }
    dropped = analyze(client, site_key, GERMAN, dropUnsupportedAttributes=True).get_json()
    assert dropped == {"attributeScores": {}, "languages": ["de"], "detectedLanguages": ["de"]}
    assert scored_now == []


def test_perspective_sends_covered_languages_to_the_multilingual_model(
    database_url, broker, sessions, site_key, scored_now
):
    with app_with(database_url, broker, model_multilingual="multilingual") as app:
        client = app.test_client()
        french = analyze(client, site_key, FRENCH)
        assert french.status_code == 200
        assert french.get_json()["detectedLanguages"] == ["fr"]
        asked = analyze(client, site_key, "Tres bien", languages=["fr-CA"])
        assert asked.get_json()["languages"] == ["fr-CA"]
        assert analyze(client, site_key, GERMAN).status_code == 400
    assert scored_now == [
        {"texts": [FRENCH], "language": "fr"},
        {"texts": ["Tres bien"], "language": "fr"},
    ]


@pytest.mark.e2e
def test_googles_client_gets_the_language_error_from_a_live_server(
    warm_worker, live_server, site_key
):
    service = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=site_key,
        discoveryServiceUrl=live_server.url + "/$discovery/rest?version={apiVersion}",
        static_discovery=False,
        cache_discovery=False,
    )
    with service:
        comments = service.comments()
        body = {"comment": {"text": ENGLISH_ABUSIVE}, "requestedAttributes": {"INSULT": {}}}
        english = comments.analyze(body=body).execute()
        assert english["detectedLanguages"] == ["en"]
        assert english["attributeScores"]["INSULT"]["summaryScore"]["value"] > 0.5
        body["comment"]["text"] = ITALIAN
        with pytest.raises(HttpError) as raised:
            comments.analyze(body=body).execute()
    assert raised.value.resp.status == 400
    assert raised.value.reason == "Attribute INSULT does not support request languages: it"
    assert raised.value.error_details[0]["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"


# --- End to end: the API, a real worker, the real model -----------------------------------------


def post(url: str, key: str, text: str) -> str:
    response = requests.post(
        f"{url}/api/v1/comments",
        json={"article_id": "world", "author_id": "r", "author_name": "R", "text": text},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def pending(sessions) -> int:
    with sessions() as session:
        query = select(func.count()).where(Comment.status == Status.PENDING)
        return session.scalar(query.select_from(Comment))


@pytest.mark.e2e
def test_a_real_worker_holds_other_languages_or_publishes_them_where_the_site_says(
    worker, live_server, sessions, site_key
):
    with unit_of_work(sessions) as session:
        policy = SitePolicy(unsupported_language="publish")
        publishing_key = create_site(session, "publishes-all", policy)[1]
    texts = [ENGLISH_CLEAN, ENGLISH_ABUSIVE, GERMAN, FRENCH, SPANISH, ITALIAN]
    held_site = {post(live_server.url, site_key, text): text for text in texts}
    publishing = {post(live_server.url, publishing_key, text): text for text in texts}
    assert wait_until(lambda: pending(sessions) == 0, timeout=180), "comments left pending"
    with sessions() as session:
        comments = {c.public_id: c for c in session.scalars(select(Comment))}
        scored = dict(
            session.execute(
                select(Comment.public_id, func.count(CommentScore.id))
                .join(CommentScore, isouter=True)
                .group_by(Comment.public_id)
            ).all()
        )
    expected = {
        ENGLISH_CLEAN: "en",
        ENGLISH_ABUSIVE: "en",
        GERMAN: "de",
        FRENCH: "fr",
        SPANISH: "es",
        ITALIAN: "it",
    }
    for public_id, text in {**held_site, **publishing}.items():
        comment = comments[public_id]
        assert comment.language == expected[text], text
        if expected[text] == "en":
            assert scored[public_id] == len(LABELS), text
            continue
        assert scored[public_id] == 0, text
        assert [reason["code"] for reason in comment.reasons] == ["language_not_supported"]
        target = Status.HELD if public_id in held_site else Status.APPROVED
        assert comment.status == target, text
    by_text = {text: comments[public_id] for public_id, text in held_site.items()}
    assert by_text[ENGLISH_CLEAN].status == Status.APPROVED
    assert by_text[ENGLISH_ABUSIVE].status == Status.HELD
    assert by_text[ENGLISH_ABUSIVE].reasons[0]["code"] == "hold_threshold"
    german = next(key for key, text in held_site.items() if text == GERMAN)
    body = requests.get(
        f"{live_server.url}/api/v1/comments/{german}",
        headers={"Authorization": f"Bearer {site_key}"},
        timeout=10,
    ).json()
    assert body["decision"]["reasons"][0]["message"] == "language not supported: German (de)"
    assert body["scores"] == {} and body["model"] is None
