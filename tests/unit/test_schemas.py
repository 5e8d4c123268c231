import unicodedata

import pytest
from pydantic import ValidationError

from moderation.schemas import MAX_TEXT_LENGTH, CommentSubmission

VALID = {"article_id": "a-1", "author_id": "u-1", "author_name": "Ann", "text": "Fair point."}


def errors_for(**changes):
    with pytest.raises(ValidationError) as info:
        CommentSubmission.model_validate(VALID | changes)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_valid_submission():
    assert CommentSubmission.model_validate(VALID).text == "Fair point."


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_text_is_refused(text):
    assert "text" in errors_for(text=text)


def test_text_at_the_limit_is_accepted_and_over_it_refused():
    assert CommentSubmission.model_validate(VALID | {"text": "x" * MAX_TEXT_LENGTH})
    assert "at most 5000" in errors_for(text="x" * (MAX_TEXT_LENGTH + 1))["text"]


def test_text_is_normalised_to_nfc_and_otherwise_kept_exactly():
    decomposed = "Cafe\u0301 <script>alert(1)</script> \U0001f600 \u05e9\u05dc\u05d5\u05dd"
    stored = CommentSubmission.model_validate(VALID | {"text": decomposed}).text
    assert stored == unicodedata.normalize("NFC", decomposed)
    assert "Caf\u00e9" in stored


@pytest.mark.parametrize("text", ["a\x00b", "lone \ud800 surrogate"])
def test_unstorable_characters_are_refused(text):
    assert "text" in errors_for(text=text)


def test_wrong_types_are_refused_not_coerced():
    assert "article_id" in errors_for(article_id=123)
    assert "text" in errors_for(text=["a"])


def test_missing_fields_are_named():
    with pytest.raises(ValidationError) as info:
        CommentSubmission.model_validate({"text": "hi"})
    missing = {e["loc"][0] for e in info.value.errors() if e["type"] == "missing"}
    assert missing == {"article_id", "author_id", "author_name"}


def test_article_url_must_be_http():
    assert "article_url" in errors_for(article_url="javascript:alert(1)")
