"""What-if thresholds and the labelled export from moderators' decisions, on each database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from moderation.db import unit_of_work, utcnow
from moderation.models import AuditEvent, Comment, Moderator, Site, Status
from moderation.policy import FALLBACK_HOLD_AT, LABELS
from moderation.schemas import CommentSubmission
from moderation.scoring.training_data import read_labelled_csv
from moderation.services.comments import submit_comment
from moderation.services.decisions import store_decisions
from moderation.services.labelled_export import (
    EXPORT_COLUMNS,
)
from moderation.services.moderation import moderate
from moderation.services.sites import create_site
from moderation.services.what_if import (
    CalibrationError,
    Period,
    Tally,
    parse_period,
    parse_thresholds,
    what_if,
)
from tests.moderation_support import moderator_accounts, sign_in

SITE, OTHER = "example-news", "other-news"
SCORER = SimpleNamespace(model_name="calibration-test", model_version="1")
PROPOSED = {"toxicity": 0.6, "insult": 0.7}


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def site_row(session, name: str) -> Site:
    site = session.scalars(select(Site).where(Site.name == name)).one_or_none()
    return site or create_site(session, name)[0]


def scored(sessions, text: str, *, site: str = SITE, scores: dict[str, float] | None = None) -> str:
    """A comment on a pre-moderated article, scored (all labels 0.01 unless given) and held."""
    with unit_of_work(sessions) as session:
        data = CommentSubmission(
            article_id="budget-2026", author_id="reader-1", author_name="Ann", text=text
        )
        comment = submit_comment(session, site_row(session, site), data).comment
        comment.article.premoderate = True
        session.flush()
        if scores is not None:
            store_decisions(session, {comment.id: dict.fromkeys(LABELS, 0.01) | scores}, SCORER)
        return comment.public_id


def decide(sessions, account, public_id: str, status: str, days_ago: float, **options) -> None:
    """A moderator's decision, dated ``days_ago``; ``stale=True`` makes it a lost race."""
    with unit_of_work(sessions) as session:
        comment = session.scalars(select(Comment).where(Comment.public_id == public_id)).one()
        reason = options.get("reason", "offensive") if status == Status.REJECTED else None
        version = "1" if options.get("stale") else None
        moderator = session.get(Moderator, account.id)
        moderate(session, comment, moderator, status, reason, expected_version=version)
        last = select(func.max(AuditEvent.id)).where(AuditEvent.comment_id == comment.id)
        at = utcnow() - timedelta(days=days_ago)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == last.scalar_subquery()).values(created_at=at)
        )


def history(sessions, account) -> dict[str, str]:
    """Four approvals and four rejections, two days ago, with known scores.

    Current thresholds, the site's own so that no worker's model changes them: toxicity
    0.5, insult 0.5, obscene 0.6. Proposed: toxicity 0.6, insult 0.7.
    """
    with unit_of_work(sessions) as session:
        bands = {label: {"hold_at": value} for label, value in FALLBACK_HOLD_AT.items()}
        site_row(session, SITE).policy = {"labels": bands}
    seeded = {
        "a1": ({"toxicity": 0.55}, Status.APPROVED),  # held now, published as proposed
        "a2": ({"toxicity": 0.3}, Status.APPROVED),  # published both ways
        "a3": ({"insult": 0.65}, Status.APPROVED),  # held now, published as proposed
        "a4": ({}, Status.APPROVED),
        "r1": ({"toxicity": 0.95}, Status.REJECTED),  # held both ways
        "r2": ({"toxicity": 0.58}, Status.REJECTED),  # held now, a miss as proposed
        "r3": ({"insult": 0.2}, Status.REJECTED),  # a miss both ways
        "r4": ({"obscene": 0.65}, Status.REJECTED),  # obscene keeps its current 0.6
    }
    ids = {}
    for name, (scores, status) in seeded.items():
        ids[name] = scored(sessions, f"Comment {name}, with its own words.", scores=scores)
        decide(sessions, account, ids[name], status, days_ago=2)
    return ids


def replay(sessions, proposed, *, days: float = 30, until_days_ago: float = 0, sites=(SITE,)):
    now = utcnow()
    period = Period(now - timedelta(days=days), now - timedelta(days=until_days_ago))
    with sessions() as session:
        rows = list(session.scalars(select(Site).where(Site.name.in_(sites)).order_by(Site.name)))
        return what_if(session, rows, period, proposed)


# --------------------------------------------------------------------------------- what-if


def test_what_if_counts_false_holds_and_misses_now_and_as_proposed(sessions, accounts):
    history(sessions, accounts.moderator(SITE))
    result = replay(sessions, PROPOSED)
    assert (result.approved, result.rejected, result.decided, result.unscored) == (4, 4, 8, 0)
    assert result.current == Tally(approved_held=2, rejected_published=1)
    assert result.proposed == Tally(approved_held=0, rejected_published=2)
    site = result.sites[0]
    assert site.current_thresholds["toxicity"] == 0.5
    assert site.proposed_thresholds == site.current_thresholds | PROPOSED


def test_a_score_equal_to_the_threshold_holds(sessions, accounts):
    history(sessions, accounts.moderator(SITE))
    # a2's toxicity is exactly 0.3; a1 0.55, a3's insult 0.65: all at or above.
    result = replay(sessions, {"toxicity": 0.3, "insult": 0.65})
    assert result.proposed == Tally(approved_held=3, rejected_published=1)


def test_labels_not_proposed_keep_the_sites_current_thresholds(sessions, accounts):
    history(sessions, accounts.moderator(SITE))
    with unit_of_work(sessions) as session:
        # Toxicity holds only from 0.9; threat has no hold band but rejects from 0.8.
        site_row(session, SITE).policy = {
            "labels": {
                "toxicity": {"hold_at": 0.9},
                "insult": {"hold_at": 0.5},
                "obscene": {"hold_at": 0.6},
                "threat": {"reject_at": 0.8},
            }
        }
    result = replay(sessions, {})
    # The labels the site sets no band for hold where the model's fallback says.
    assert result.sites[0].current_thresholds == {
        "toxicity": 0.9,
        "insult": 0.5,
        "obscene": 0.6,
        "threat": 0.8,
        "severe_toxicity": FALLBACK_HOLD_AT["severe_toxicity"],
        "identity_attack": FALLBACK_HOLD_AT["identity_attack"],
    }
    assert result.proposed == result.current == Tally(1, 2)  # a3 held; r2, r3 missed
    assert replay(sessions, {"toxicity": 0.5}).proposed == Tally(2, 1)


def test_only_the_latest_decision_in_the_period_counts(sessions, accounts):
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    history(sessions, first)
    old = scored(sessions, "Decided long ago.", scores={"toxicity": 0.9})
    decide(sessions, first, old, Status.REJECTED, days_ago=40)
    reversed_ = scored(sessions, "Rejected, then approved.", scores={"toxicity": 0.55})
    decide(sessions, first, reversed_, Status.REJECTED, days_ago=45)
    decide(sessions, second, reversed_, Status.APPROVED, days_ago=3)
    later = scored(sessions, "Approved, then rejected yesterday.", scores={"insult": 0.2})
    decide(sessions, first, later, Status.APPROVED, days_ago=5)
    decide(sessions, second, later, Status.REJECTED, days_ago=1)
    # A lost race is an attempt, not a decision: r1 stays rejected.
    decide(sessions, second, history_id(sessions, "Comment r1"), Status.APPROVED, 1, stale=True)

    last_30 = replay(sessions, PROPOSED)
    # history + the reversal (approved, held now) + the late rejection (a miss both ways).
    assert (last_30.approved, last_30.rejected) == (5, 5)
    assert last_30.current == Tally(3, 2)
    until_2_days_ago = replay(sessions, PROPOSED, until_days_ago=1.5)
    # The late comment's latest decision is after the period: it is not counted at all.
    assert (until_2_days_ago.approved, until_2_days_ago.rejected) == (5, 4)
    last_50 = replay(sessions, PROPOSED, days=50)
    assert (last_50.approved, last_50.rejected) == (5, 6)
    assert replay(sessions, PROPOSED, days=1).decided == 0


def history_id(sessions, text_start: str) -> str:
    with sessions() as session:
        query = select(Comment.public_id).where(Comment.text.startswith(text_start))
        return session.scalars(query).one()


def test_decisions_without_scores_are_reported_not_counted(sessions, accounts):
    account = accounts.moderator(SITE)
    history(sessions, account)
    unscored = scored(sessions, "Never scored.")
    decide(sessions, account, unscored, Status.REJECTED, days_ago=1)
    result = replay(sessions, PROPOSED)
    assert (result.decided, result.unscored) == (8, 1)
    assert result.proposed == Tally(0, 2)


def test_every_site_is_replayed_with_its_own_thresholds(sessions, accounts):
    history(sessions, accounts.moderator(SITE))
    other = accounts.moderator(OTHER)
    with unit_of_work(sessions) as session:
        site_row(session, OTHER).policy = {"labels": {"toxicity": {"hold_at": 0.2}}}
    theirs = scored(sessions, "Their comment.", site=OTHER, scores={"toxicity": 0.3})
    decide(sessions, other, theirs, Status.APPROVED, days_ago=1)
    result = replay(sessions, {}, sites=(SITE, OTHER))
    assert [site.site for site in result.sites] == [SITE, OTHER]
    assert result.sites[1].current == Tally(1, 0)
    assert (result.approved, result.current) == (5, Tally(3, 1))


# ----------------------------------------------------------------------------------- input


def test_thresholds_are_numbers_from_0_to_1_for_known_labels():
    assert parse_thresholds([("toxicity", "0.6"), ("insult", " "), ("threat", "1")]) == {
        "toxicity": 0.6,
        "threat": 1.0,
    }
    for pair in [("toxicity", "1.5"), ("toxicity", "-0.1"), ("toxicity", "nan"), ("insult", "x")]:
        with pytest.raises(CalibrationError) as refused:
            parse_thresholds([pair])
        assert refused.value.field == pair[0]
    with pytest.raises(CalibrationError, match="unknown label 'toxicty'"):
        parse_thresholds([("toxicty", "0.5")])


def test_a_period_defaults_to_30_days_and_a_date_means_the_whole_day():
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    assert parse_period(None, None, now=now) == Period(now - timedelta(days=30), now)
    march = parse_period("2026-03-01", "2026-03-31", now=now)
    assert march == Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    moment = parse_period("2026-03-01T10:00:00+02:00", "2026-03-02T00:00:00Z", now=now)
    assert moment.since == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_period("2026-03-01T10:00", None, now=now).since.tzinfo is UTC
    for since, until in [("2026-13-01", None), ("yesterday", None), ("2026-03-02", "2026-03-01")]:
        with pytest.raises(CalibrationError):
            parse_period(since, until, now=now)


# ------------------------------------------------------------------------------------ API


def test_the_what_if_api_answers_for_the_moderators_sites(client, sessions, accounts):
    account = accounts.moderator(SITE)
    history(sessions, account)
    theirs = scored(sessions, "Another site's comment.", site=OTHER, scores={"toxicity": 0.9})
    decide(sessions, accounts.moderator(OTHER), theirs, Status.REJECTED, days_ago=1)
    auth = {"Authorization": f"Bearer {accounts.token(account)}"}
    answer = client.get("/api/v1/moderation/what-if?toxicity=0.6&insult=0.7", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert (body["approved"], body["rejected"], body["decided"]) == (4, 4, 8)
    assert body["current"] == {"approved_held": 2, "rejected_published": 1}
    assert body["proposed"] == {"approved_held": 0, "rejected_published": 2}
    assert [site["site"] for site in body["sites"]] == [SITE]
    assert body["sites"][0]["proposed"]["thresholds"]["toxicity"] == 0.6
    assert body["asked"] == PROPOSED
    same = client.get(f"/api/v1/moderation/what-if?site={SITE}", headers=auth).get_json()
    assert same["proposed"] == same["current"] == body["current"]
    since = (utcnow() - timedelta(days=1)).isoformat()
    recent = client.get("/api/v1/moderation/what-if", query_string={"since": since}, headers=auth)
    assert recent.get_json()["decided"] == 0
    other = client.get(f"/api/v1/moderation/what-if?site={OTHER}", headers=auth)
    assert other.status_code == 404
    assert other.get_json()["error"] == {
        "code": "not_found",
        "message": "no such site",
        "field": "site",
    }
    assert client.get("/api/v1/moderation/what-if").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("toxicity=1.5", "toxicity"),
        ("insult=-0.1", "insult"),
        ("insult=abc", "insult"),
        ("toxicity=nan", "toxicity"),
        ("toxicty=0.5", "toxicty"),
        ("since=2026-13-01", "since"),
        ("until=soon", "until"),
        ("since=2026-03-02&until=2026-03-01", "since"),
    ],
)
def test_bad_what_if_parameters_are_a_400(client, sessions, accounts, query, field):
    auth = {"Authorization": f"Bearer {accounts.token(accounts.moderator(SITE))}"}
    answer = client.get(f"/api/v1/moderation/what-if?{query}", headers=auth)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert error["message"]


def test_the_export_is_a_training_csv_the_model_tools_read(client, sessions, accounts, tmp_path):
    account = accounts.moderator(SITE)
    ids = history(sessions, account)
    tricky = 'Line one, "quoted"\nline two =1+1'
    verbatim = scored(sessions, tricky, scores={"toxicity": 0.7})
    decide(sessions, account, verbatim, Status.REJECTED, days_ago=1, reason="spam")
    theirs = scored(sessions, "Another site's comment.", site=OTHER, scores={})
    decide(sessions, accounts.moderator(OTHER), theirs, Status.APPROVED, days_ago=1)
    auth = {"Authorization": f"Bearer {accounts.token(account)}"}

    answer = client.get(f"/api/v1/moderation/export.csv?site={SITE}", headers=auth)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    lines = answer.text.splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)
    assert f'{ids["a1"]},"Comment a1, with its own words.",0,,,,,,' in answer.text
    assert f'{ids["r3"]},"Comment r3, with its own words.",1,,,,,,moderation:{SITE}' in answer.text
    assert "Another site" not in answer.text

    path = tmp_path / "export.csv"
    path.write_bytes(answer.data)
    comments = read_labelled_csv(path)
    assert len(comments) == 9
    assert sum(comment.is_toxic for comment in comments) == 5
    assert {comment.domain for comment in comments} == {"news_comment"}
    last = comments[-1]
    assert last.text == tricky
    assert last.labels == {"toxicity": 1.0} | dict.fromkeys(LABELS[1:])

    old = client.get("/api/v1/moderation/export.csv?until=2020-01-01", headers=auth)
    assert old.text.splitlines() == [",".join(EXPORT_COLUMNS)]
    bad = client.get("/api/v1/moderation/export.csv?since=later", headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "since"
    assert client.get("/api/v1/moderation/export.csv").status_code == 401


def test_the_openapi_document_describes_what_if_and_export(client):
    document = client.get("/api/v1/openapi.json").get_json()
    what_if_ = document["paths"]["/api/v1/moderation/what-if"]["get"]
    assert {param["name"] for param in what_if_["parameters"]} >= {"site", "since", *LABELS}
    assert "400" in what_if_["responses"]
    assert "WhatIf" in document["components"]["schemas"]
    export = document["paths"]["/api/v1/moderation/export.csv"]["get"]
    assert "text/csv" in export["responses"]["200"]["content"]
    assert "formula" in export["description"]


# ------------------------------------------------------------------------------------- UI


def test_a_moderator_sees_the_counts_in_plain_words(client, sessions, accounts):
    account = accounts.moderator(SITE, "<i>other</i>")
    history(sessions, account)
    sign_in(client, account)
    assert "/moderation/what-if" in client.get("/moderate").text
    with sessions() as session:
        site_id = site_row(session, SITE).id
    page = client.get(f"/moderation/what-if?site={site_id}&period=30&toxicity=0.6&insult=0.7")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "2 of 4 approved comments would have been held" in text  # current
    assert "1 of 4 rejected comments would have been published" in text
    assert "0 of 4 approved comments would have been held" in text  # proposed
    assert "2 of 4 rejected comments would have been published" in text
    assert 'name="obscene" min="0" max="1" step="any" value="0.6"' in page.text
    assert "2 fewer approved comments held for review, 1 more rejected comment published" in text
    assert "&lt;i&gt;other&lt;/i&gt;" in page.text and "<i>other</i>" not in page.text

    export_url = page.text.split('class="export" href="')[1].split('"')[0].replace("&amp;", "&")
    download = client.get(export_url)
    assert download.status_code == 200
    assert len(download.text.splitlines()) == 9

    default = " ".join(client.get("/moderation/what-if").text.split())
    assert "8 decided comments" in default
    bad = client.get(f"/moderation/what-if?site={site_id}&toxicity=2")
    assert bad.status_code == 400 and "toxicity must be a number from 0 to 1" in bad.text
    assert client.get("/moderation/what-if?site=999999").status_code == 404


def test_the_page_shows_the_thresholds_in_force_and_where_they_come_from(
    app, client, sessions, accounts
):
    from moderation.ops.heartbeat import Heartbeats
    from moderation.ops.web import STORE_KEY

    account = accounts.moderator(SITE)
    with unit_of_work(sessions) as session:
        site = site_row(session, SITE)
        site.policy = {"labels": {"insult": {"hold_at": 0.7}}}
        site_id = site.id
    heartbeats = Heartbeats(app.extensions[STORE_KEY])
    card = {
        "name": "combined-seed",
        "version": "abc123",
        "thresholds": {"toxicity": 0.336, "insult": 0.64},
        "thresholds_source": "recall 0.85 of toxic comments on out-of-fold scores of dev.csv",
    }
    heartbeats.beat("w@test", active=0, processed=0)
    heartbeats.describe_model("w@test", card)
    try:
        sign_in(client, account)
        text = " ".join(client.get(f"/moderation/what-if?site={site_id}").text.split())
    finally:
        heartbeats.forget("w@test")
    assert "Model combined-seed abc123" in text
    assert "toxicity</th> <td>0.336</td> <td>off</td> <td>model: recall 0.85" in text
    assert "insult</th> <td>0.700</td> <td>off</td> <td>site: site setting" in text
    assert "threat</th> <td>0.400</td> <td>off</td> <td>fallback" in text


def test_clients_suggested_labels_join_the_export(client, sessions, accounts, tmp_path):
    from moderation.services.labelled_examples import keep_suggestion

    account = accounts.moderator(SITE)
    history(sessions, account)
    with unit_of_work(sessions) as session:
        site = site_row(session, SITE)
        keep_suggestion(
            session,
            site,
            "A suggested insult, you fool.",
            {"toxicity": 1.0, "insult": 0.9},
            language="en",
            client_token="comment:42",
            community_id="Coral:news",
        )
        keep_suggestion(
            session,
            site,
            "A suggested fine comment.",
            {"toxicity": 0.0},
            language="en",
            client_token=None,
            community_id=None,
        )
    auth = {"Authorization": f"Bearer {accounts.token(account)}"}
    answer = client.get(f"/api/v1/moderation/export.csv?site={SITE}", headers=auth)
    assert "suggested by comment:42" in answer.text
    path = tmp_path / "export.csv"
    path.write_bytes(answer.data)
    by_text = {comment.text: comment for comment in read_labelled_csv(path)}
    insult = by_text["A suggested insult, you fool."]
    assert insult.labels["toxicity"] == 1.0 and insult.labels["insult"] == 1.0
    assert insult.labels["threat"] is None
    assert by_text["A suggested fine comment."].labels["toxicity"] == 0.0
