"""Validated shapes of what sites send; every constraint here becomes a 422 with a field."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

MAX_TEXT_LENGTH = 5000
# NUL cannot be stored by PostgreSQL and lone surrogates cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Half of a UTF-16 pair on its own: valid JSON (an escape), but no text the model can read.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("contains NUL or unpaired surrogate characters")
    return unicodedata.normalize("NFC", value)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace only")
    return value


def _text_length(value: str) -> str:
    if len(value) > MAX_TEXT_LENGTH:
        # Its own error code, as the site's shorter limit answers (rules: text_too_long).
        raise PydanticCustomError(
            "text_too_long", "must be at most {limit} characters", {"limit": MAX_TEXT_LENGTH}
        )
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


# A value that is left out (a query parameter not sent, a field not written), never null.
Omitted = SkipJsonSchema[None]
StorableStr = Annotated[str, AfterValidator(_storable)]
Identifier = Annotated[StorableStr, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Name = Annotated[StorableStr, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
CommentText = Annotated[
    StorableStr,
    AfterValidator(_not_blank),
    AfterValidator(_text_length),
    # Checked by _text_length, after NFC normalisation; said here for the API's document.
    Field(json_schema_extra={"maxLength": MAX_TEXT_LENGTH}),
]


class CommentSubmission(BaseModel):
    """A reader's comment as the site posts it."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "article_id": "budget-2026",
                    "article_title": "The budget, explained",
                    "article_url": "https://news.example/budget-2026",
                    "author_id": "reader-17",
                    "author_name": "Ann",
                    "text": "Clear and fair, thank you.",
                }
            ]
        },
    )

    article_id: Identifier
    article_url: (
        Annotated[StorableStr, Field(max_length=2000), AfterValidator(_http_url)] | None
    ) = None
    article_title: Annotated[StorableStr, Field(max_length=500)] | None = None
    author_id: Identifier
    author_name: Name
    text: CommentText
    parent_id: Annotated[StorableStr, Field(max_length=32)] | None = None
