"""Split a comment into sentences, as offsets into its text, so each one can be scored alone.

A regular expression rather than a language model: comments are short, often lower-case
and loosely punctuated, and an explanation only needs boundaries a reader would agree with.
A boundary is a run of ``. ! ? …`` (with any closing quotes or brackets) followed by
whitespace or the end, CJK full stops, or a line break; a single ``.`` after a common
abbreviation, an initialism (``Dr.``, ``e.g.``, ``U.S.``, ``J. Smith``) or a list item's
number (``1. Buy milk``) is not one, and neither is a ``.`` inside a token (``3.5``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The most sentences of one text scored on their own (explanations, Perspective's spans):
# bounds the extra work one comment can cause.
MAX_SENTENCES = 32
# Closing quotes (straight, curly, guillemet) and brackets stay with the sentence they end.
_CLOSERS = "\"'\u201d\u2019\u00bb)\\]"
# . ! ? and … followed by a space or the end; CJK full stops and marks need no space.
_BOUNDARY = re.compile(
    rf"(?P<stops>[.!?\u2026]+)[{_CLOSERS}]*(?=\s|\Z)|[\u3002\uff01\uff1f]+|\n|\r"
)
# Opening quotes and brackets are not part of the token before a full stop.
_OPENERS = frozenset("\"'\u201c\u2018\u00ab([")
# "U.S", "e.g", "Ph.D", and initials of names ("J. Smith"; not the pronoun "I").
_INITIALISM = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}|[A-HJ-Z]")
# Lower-cased, without the full stop.
ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "rev", "hon"),
        *("gen", "col", "capt", "lt", "sgt", "gov", "sen", "rep", "pres"),
        *("vs", "etc", "cf", "al", "approx", "ca", "dept", "est", "fig"),
        *("inc", "ltd", "co", "corp"),
        *("jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)


@dataclass(frozen=True, slots=True)
class Span:
    """One sentence: ``text[begin:end]``, Python string offsets, without surrounding spaces."""

    begin: int
    end: int

    def of(self, text: str) -> str:
        """The sentence's text within the text it was split from."""
        return text[self.begin : self.end]


def split_sentences(text: str) -> list[Span]:
    """The sentences of ``text`` in order; empty for blank text, one span when nothing splits."""
    spans: list[Span] = []
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        if _after_abbreviation(text, start, boundary):
            continue
        _add_trimmed(spans, text, start, boundary.end())
        start = boundary.end()
    _add_trimmed(spans, text, start, len(text))
    return spans


def _after_abbreviation(text: str, start: int, boundary: re.Match[str]) -> bool:
    """Whether a lone ``.`` ends an abbreviation rather than a sentence."""
    if boundary.group("stops") != ".":
        return False
    end = begin = boundary.start()
    while begin > start and not text[begin - 1].isspace() and text[begin - 1] not in _OPENERS:
        begin -= 1
    word = text[begin:end]
    # "1. Buy milk": the number of a list item, not a sentence of its own.
    list_number = word.isdigit() and not text[start:begin].strip()
    return list_number or word.lower() in ABBREVIATIONS or bool(_INITIALISM.fullmatch(word))


def _add_trimmed(spans: list[Span], text: str, begin: int, end: int) -> None:
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    if begin < end:
        spans.append(Span(begin, end))
