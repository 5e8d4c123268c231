"""The rules that run before the model: pure functions, checked without a database."""

import pytest
from pydantic import ValidationError

from moderation.models import Status
from moderation.rules import (
    RuleContext,
    SiteRules,
    WordMatcher,
    evaluate,
    find_links,
    normalise,
)

RULES = SiteRules(
    banned_words=("idiot", "kill yourself", "ass"), suspect_words=("scam", "scum bag")
)


def verdict(text: str, rules: SiteRules = RULES, **context):
    return evaluate(RuleContext(text=text, **context), rules)


@pytest.mark.parametrize(
    "text",
    [
        "You IDIOT!",
        "you 1d10t",
        "ïdíøt",
        "iiidiooooot",
        "i.d.i.o.t",
        "i d i o t",
        "\u03b9d\u03b9\u03bft",  # Greek iota and omicron
        "\uff49\uff44\uff49\uff4f\uff54",  # full-width letters
        "what idiots",
        "id*ot",
        "Ki11 y0urself",
        "KILL   YOURSELF!!",
        "a$$",
    ],
)
def test_banned_words_are_found_however_they_are_spelled(text):
    result = verdict(text)
    assert result.decision is not None
    assert result.decision.outcome == Status.REJECTED
    assert result.decision.reasons[0].code == "banned_word"


@pytest.mark.parametrize(
    "text",
    [
        "A thoughtful and idiomatic translation.",
        "As soon as the class passed the assessment",
        "The bass player was brilliant",
        "Kill the lights, yourself included? No, just the lights.",
        "",
    ],
)
def test_ordinary_words_that_contain_a_listed_word_do_not_match(text):
    assert WordMatcher(RULES.banned_words).matches(text) == []


def test_suspect_words_hold_and_phrases_match_written_together():
    for text in ("Looks like a sc4m to me", "what a scum-bag", "SCUMBAG"):
        result = verdict(text)
        assert result.decision.outcome == Status.HELD, text
        assert result.decision.reasons[0].code == "suspect_word"


def test_the_first_decision_wins_and_every_finding_is_kept():
    result = verdict(
        "you idiot, this scam is at www.example.com",
        hold_links=True,
        recent_texts=["You  idiot, this SCAM is at www.example.com"],
    )
    codes = [reason.code for reason in result.decision.reasons]
    assert codes == ["banned_word", "suspect_word", "repeat_post", "link"]
    assert result.decision.outcome == Status.REJECTED


def test_a_hold_before_a_reject_wins_because_it_comes_first():
    # Suspect words run before the repeat-post rule, so the hold decides.
    result = verdict("a scam", recent_texts=["a scam"])
    assert result.decision.outcome == Status.HELD
    assert [r.code for r in result.decision.reasons] == ["suspect_word", "repeat_post"]


def test_reasons_have_the_shape_of_model_reasons():
    reason = verdict("idiot").decision.reasons[0].as_dict()
    assert reason == {
        "code": "banned_word",
        "label": "banned_words",
        "score": None,
        "threshold": None,
        "message": 'banned word "idiot" -> reject',
    }


def test_length_refuses_before_anything_else():
    rules = SiteRules(min_length=5, max_length=20, banned_words=("idiot",))
    assert verdict("idiot" * 5, rules).refusal.code == "text_too_long"
    assert verdict(" ab ", rules).refusal.code == "text_too_short"
    assert verdict(" ab ", rules).refusal.status == 422
    assert verdict("idiot", rules).decision.outcome == Status.REJECTED


def test_a_closed_article_refuses_with_409_after_length():
    closed = verdict("fine words", article_closed=True)
    assert (closed.refusal.status, closed.refusal.code) == (409, "article_closed")
    too_long = verdict("x" * 6000, article_closed=True)
    assert too_long.refusal.code == "text_too_long"


def test_repeat_post_compares_case_and_spacing_insensitively():
    result = verdict("Same  text", recent_texts=["same text", "other"])
    assert result.decision.outcome == Status.REJECTED
    assert result.decision.reasons[0].code == "repeat_post"
    assert verdict("new text", recent_texts=["same text"]).decision is None


def test_links_hold_only_where_the_article_asks_for_it():
    text = "read https://example.org/a and example.com, not a.b"
    assert find_links(text) == ["https://example.org/a", "example.com"]
    assert verdict(text).decision is None
    held = verdict(text, hold_links=True).decision
    assert held.outcome == Status.HELD
    assert held.reasons[0].as_dict()["score"] == 2.0


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("details at example.eu today", ["example.eu"]),
        ("go to nieuws.nl!", ["nieuws.nl"]),
        ("see whitehouse.us.", ["whitehouse.us"]),
        ("cheap at bücher.de now", ["bücher.de"]),
        ("тут пример.рф", ["пример.рф"]),
        ("the BBC at bbc.co.uk/news", ["bbc.co.uk/news"]),
        (
            "ask at https://news.example.com:8443/a?b=1, then",
            ["https://news.example.com:8443/a?b=1"],
        ),
        ("www.spam.xyz", ["www.spam.xyz"]),
    ],
)
def test_every_public_suffix_is_a_link(text, links):
    assert find_links(text) == links
    assert verdict(text, hold_links=True).decision.outcome == Status.HELD


@pytest.mark.parametrize(
    "text",
    [
        "the U.S. economy grew 3.5 percent",
        "e.g. the bridge",
        "it ended.It was late",  # a missing space, not a link to the .it domain
        "a.b is not a domain, nor is version 1.2.3",
    ],
)
def test_text_that_only_looks_dotted_is_not_a_link(text):
    assert find_links(text) == []


def test_clean_text_leaves_the_decision_to_the_model():
    result = verdict("A fair and useful article, thank you.", hold_links=True)
    assert result.refusal is None and result.decision is None


def test_normalise_reads_accents_and_swaps():
    assert normalise("Ça V4 b1€n") == "ca va bien"


def test_rules_validate():
    with pytest.raises(ValidationError):
        SiteRules(min_length=10, max_length=5)
    with pytest.raises(ValidationError):
        SiteRules(max_length=9000)
    assert SiteRules(banned_words=(" a  b ", "a b", "!!")).banned_words == ("a b",)
    assert SiteRules.from_stored(None) == SiteRules()
