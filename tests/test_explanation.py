"""Which sentences drove a hold: splitting, scoring at decision time, the card and the API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from moderation.db import unit_of_work
from moderation.models import Article, Comment, Site, Status
from moderation.policy import LABELS, SitePolicy
from moderation.schemas import CommentSubmission
from moderation.scoring.sentences import MAX_SENTENCES, Span, split_sentences
from moderation.services.comments import submit_comment
from moderation.services.decisions import explain_held, score_and_decide
from moderation.services.explanation import Segment, score_sentences, segments
from moderation.services.sites import create_site
from tests.fakes import BrokenScorer, KeywordScorer
from tests.moderation_support import moderator_accounts, sign_in
from tests.support import wait_until

SITE = "example-news"
CLEAN = "Thanks for the article, I enjoyed it."
ABUSIVE = "You are a pathetic idiot and a moron."
MIXED = f"{CLEAN} {ABUSIVE}"


def sentences(text: str) -> list[str]:
    return [span.of(text) for span in split_sentences(text)]


# ------------------------------------------------------------------------------ splitting


def test_each_span_is_a_sentence_by_offsets_into_the_original_text():
    text = "First one.  Second one!\tThird one?"
    assert split_sentences(text) == [Span(0, 10), Span(12, 23), Span(24, 34)]
    assert sentences(text) == ["First one.", "Second one!", "Third one?"]


def test_abbreviations_decimals_and_initialisms_do_not_end_a_sentence():
    text = "Dr. Smith paid 3.5 percent, e.g. in the U.S. and at example.com. J. K. Rowling agreed."
    assert sentences(text) == [
        "Dr. Smith paid 3.5 percent, e.g. in the U.S. and at example.com.",
        "J. K. Rowling agreed.",
    ]
    assert sentences("So am I. You are not.") == ["So am I.", "You are not."]
    assert sentences("1. Buy milk\n2. Go home") == ["1. Buy milk", "2. Go home"]


def test_runs_of_marks_quotes_ellipses_and_line_breaks_end_sentences():
    text = 'Really?! He said "go away." Wait… what\r\nnext line'
    assert sentences(text) == ["Really?!", 'He said "go away."', "Wait…", "what", "next line"]


def test_surrounding_whitespace_is_never_inside_a_span():
    text = "  \n Leading and trailing.   \n\n  "
    assert sentences(text) == ["Leading and trailing."]
    assert split_sentences(text) == [Span(4, 25)]
    assert split_sentences("") == [] and split_sentences(" \n\t ") == []


def test_a_text_without_a_boundary_is_one_sentence():
    assert split_sentences("no punctuation at all") == [Span(0, 21)]
    assert split_sentences("One sentence.") == [Span(0, 13)]


def test_spans_are_small_frozen_values():
    span = Span(1, 3)
    assert span == Span(1, 3) and hash(span) == hash(Span(1, 3))
    with pytest.raises(AttributeError):
        span.begin = 2  # type: ignore[misc]


# ------------------------------------------------------------------ explanation, pure parts


def scored(text: str, scorer: KeywordScorer) -> list[dict]:
    return score_sentences(scorer, {1: text})[1]


def test_the_sentences_are_scored_in_one_batch_capped_per_comment():
    scorer = KeywordScorer()
    long_text = " ".join(f"Sentence {i} is fine." for i in range(MAX_SENTENCES + 5))
    result = score_sentences(scorer, {1: MIXED, 2: "You idiot.", 3: long_text})
    capped = [f"Sentence {i} is fine." for i in range(MAX_SENTENCES)]
    assert scorer.batches == [[CLEAN, ABUSIVE, *capped]]
    assert set(result) == {1, 3} and len(result[3]) == MAX_SENTENCES
    assert [(s["begin"], s["end"]) for s in result[1]] == [
        (0, len(CLEAN)),
        (len(CLEAN) + 1, len(MIXED)),
    ]


def test_a_failing_scorer_gives_no_sentence_scores_instead_of_an_error():
    assert score_sentences(BrokenScorer(), {1: MIXED}) == {}


def test_segments_mark_only_sentences_that_reach_a_hold_threshold():
    parts = segments(MIXED, scored(MIXED, KeywordScorer()), SitePolicy())
    assert parts == [
        Segment(f"{CLEAN} "),
        Segment(ABUSIVE, ", ".join(f"{label} 0.97" for label in LABELS)),
    ]
    lenient = SitePolicy.with_thresholds({label: 0.99 for label in LABELS} | {"insult": 0.9})
    assert segments(MIXED, scored(MIXED, KeywordScorer()), lenient)[1].driver == "insult 0.97"


def test_segments_are_the_whole_text_without_usable_sentence_scores():
    assert segments(MIXED, None, SitePolicy()) == [Segment(MIXED)]
    broken = [{"begin": 5, "end": 999, "scores": {"insult": 1.0}}, {"begin": "x"}, "junk"]
    assert segments(MIXED, broken, SitePolicy()) == [Segment(MIXED)]


# --------------------------------------------------------------- at decision time, both DBs


def post(sessions, text: str, *, premoderate: bool = False) -> int:
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one_or_none()
        site = site or create_site(session, SITE)[0]
        data = CommentSubmission(article_id="a-1", author_id="u", author_name="U", text=text)
        comment = submit_comment(session, site, data).comment
        if premoderate:
            session.execute(update(Article).values(premoderate=True))
        return comment.id


def stored(sessions, comment_id: int) -> Comment:
    with sessions() as session:
        return session.get(Comment, comment_id)


def test_a_held_comment_stores_which_of_its_sentences_drove_the_hold(sessions):
    comment_id = post(sessions, MIXED)
    scorer = KeywordScorer()
    assert score_and_decide(sessions, [comment_id], scorer) == 1
    assert scorer.batches == [[MIXED], [CLEAN, ABUSIVE]]
    comment = stored(sessions, comment_id)
    assert comment.status == Status.HELD
    first, second = comment.sentence_scores
    assert MIXED[first["begin"] : first["end"]] == CLEAN
    assert MIXED[second["begin"] : second["end"]] == ABUSIVE
    drivers = [
        part.text for part in segments(MIXED, comment.sentence_scores, SitePolicy()) if part.driver
    ]
    assert drivers == [ABUSIVE]
    assert set(second["scores"]) == set(LABELS)


def test_a_single_sentence_comment_stores_nothing_extra(sessions):
    comment_id = post(sessions, ABUSIVE)
    scorer = KeywordScorer()
    score_and_decide(sessions, [comment_id], scorer)
    comment = stored(sessions, comment_id)
    assert comment.status == Status.HELD and comment.sentence_scores is None
    assert scorer.batches == [[ABUSIVE]]


def test_comments_not_held_by_their_scores_are_not_explained(sessions):
    published = post(sessions, "Nice piece. Well argued.")
    scorer = KeywordScorer()
    score_and_decide(sessions, [published], scorer)
    premoderated = post(sessions, "Nice piece. Well argued, again.", premoderate=True)
    score_and_decide(sessions, [premoderated], scorer)
    assert stored(sessions, published).status == Status.APPROVED
    assert stored(sessions, premoderated).status == Status.HELD
    assert stored(sessions, published).sentence_scores is None
    assert stored(sessions, premoderated).sentence_scores is None
    assert len(scorer.batches) == 2


def test_with_explain_later_no_decision_waits_for_its_sentences(sessions):
    held = post(sessions, MIXED)
    published = post(sessions, "Nice piece. Well argued.")
    premoderated = post(sessions, "Nice piece. Well argued, again.", premoderate=True)
    scorer = KeywordScorer()
    handed_over = []

    def explain_later(ids):
        # Called once the decisions are committed: each is readable, none explained yet.
        assert stored(sessions, held).status == Status.HELD
        handed_over.append(ids)

    ids = [held, published, premoderated]
    assert score_and_decide(sessions, ids, scorer, explain_later=explain_later) == 3

    # One forward pass, of the whole comments only; the held one is handed over to explain.
    assert scorer.batches == [
        [MIXED, "Nice piece. Well argued.", "Nice piece. Well argued, again."]
    ]
    assert handed_over == [[held]]
    assert stored(sessions, held).sentence_scores is None
    assert explain_held(sessions, [held], scorer) == 1
    assert scorer.batches[-1] == [CLEAN, ABUSIVE]
    _first, second = stored(sessions, held).sentence_scores
    assert MIXED[second["begin"] : second["end"]] == ABUSIVE
    # Explained once: a redelivered task scores nothing again.
    assert explain_held(sessions, [held], scorer) == 0 and len(scorer.batches) == 2


def test_a_comment_decided_before_its_explanation_is_not_explained(sessions):
    comment_id = post(sessions, MIXED)
    score_and_decide(sessions, [comment_id], KeywordScorer(), explain_later=lambda ids: None)
    with unit_of_work(sessions) as session:
        session.execute(update(Comment).values(status=Status.REJECTED))
    scorer = KeywordScorer()

    assert explain_held(sessions, [comment_id], scorer) == 0
    assert scorer.batches == [] and stored(sessions, comment_id).sentence_scores is None


class FailsOnSentences(KeywordScorer):
    """Scores whole comments, then fails on the sentence batch."""

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        if self.batches:
            raise RuntimeError("out of memory")
        return super().score_batch(texts)


def test_a_failed_sentence_batch_still_stores_the_decision(sessions):
    comment_id = post(sessions, MIXED)
    assert score_and_decide(sessions, [comment_id], FailsOnSentences()) == 1
    comment = stored(sessions, comment_id)
    assert comment.status == Status.HELD and comment.sentence_scores is None
    assert comment.reasons[0]["code"] == "hold_threshold"


# ------------------------------------------------------------------- the card and the API


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def test_the_card_marks_exactly_the_abusive_sentence_escaped(client, sessions, accounts):
    abusive = "You <b>idiot</b> & a moron."
    score_and_decide(sessions, [post(sessions, f"{CLEAN} {abusive}")], KeywordScorer())
    sign_in(client, accounts.moderator(SITE))
    html = client.get("/moderate").text
    text = re.search(r'<p class="text">(.*?)</p>', html, re.S).group(1)
    assert text.count("<mark") == 1
    assert text.startswith(f'{CLEAN} <mark class="driver" title="toxicity 0.97, ')
    assert text.endswith(">You &lt;b&gt;idiot&lt;/b&gt; &amp; a moron.</mark>")


def test_a_card_without_sentence_scores_shows_the_plain_text(client, sessions, accounts):
    score_and_decide(sessions, [post(sessions, ABUSIVE)], KeywordScorer())
    sign_in(client, accounts.moderator(SITE))
    assert f'<p class="text">{ABUSIVE}</p>' in client.get("/moderate").text


def test_the_moderation_api_returns_the_sentence_scores(client, sessions, accounts):
    comment_id = post(sessions, MIXED)
    score_and_decide(sessions, [comment_id], KeywordScorer())
    token = accounts.token(accounts.moderator(SITE))
    public_id = stored(sessions, comment_id).public_id
    response = client.get(
        f"/api/v1/moderation/comments/{public_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json
    assert [(s["begin"], s["end"]) for s in body["sentence_scores"]] == [
        (0, len(CLEAN)),
        (len(CLEAN) + 1, len(MIXED)),
    ]
    assert body["sentence_scores"][1]["scores"]["insult"] == pytest.approx(0.97)
    document = client.get("/api/v1/openapi.json").json
    schema = document["components"]["schemas"]["ModerationComment"]
    variants = schema["properties"]["sentence_scores"]["anyOf"]
    assert [variant["type"] for variant in variants] == ["array", "null"]


# ---------------------------------------------------------------- the real worker and model


@pytest.mark.e2e
def test_the_real_model_blames_the_abusive_sentence(worker, live_server, site_key, sessions):
    from tests.test_pipeline import post_comment

    public_id = post_comment(live_server.url, site_key, MIXED)

    def decided() -> Comment | None:
        with sessions() as session:
            comment = session.scalars(select(Comment).where(Comment.public_id == public_id)).one()
            return None if comment.status == Status.PENDING else comment

    assert wait_until(lambda: decided() is not None, timeout=120), "comment left pending"
    comment = decided()
    assert comment.status == Status.HELD, comment.reasons
    first, second = comment.sentence_scores
    assert MIXED[second["begin"] : second["end"]] == ABUSIVE
    assert max(second["scores"].values()) > max(first["scores"].values())
    assert max(comment.sentence_scores, key=lambda s: max(s["scores"].values())) is second
