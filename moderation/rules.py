"""Rules that need no model, run before it: length, closed article, words, repeat post, links,
and the author rules (pre-moderated author, new commenter, recent history, coordinated text).

Pure functions: the text, the article's settings, what is known of the author and the site's
rules go in; a refusal (the comment is not stored) or a decision with every rule's findings
comes out. Rules run in a fixed order and the first one that decides wins; the findings of
the rules after it are kept as reasons too, so a moderator sees everything that matched.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moderation.models import Status
from moderation.policy import Decision, Reason
from moderation.schemas import MAX_TEXT_LENGTH

MAX_WORDS = 2000


class SiteRules(BaseModel):
    """A site's rule settings, stored as JSON on the site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_length: int = Field(1, ge=1, le=MAX_TEXT_LENGTH)
    max_length: int = Field(MAX_TEXT_LENGTH, ge=1, le=MAX_TEXT_LENGTH)
    banned_words: tuple[str, ...] = Field((), max_length=MAX_WORDS)
    suspect_words: tuple[str, ...] = Field((), max_length=MAX_WORDS)
    # Same author, same text within this many seconds is a repeat post (0: off).
    repeat_window_seconds: int = Field(600, ge=0, le=7 * 24 * 3600)
    # Author rules, all off by default. New commenters: hold an author's first N comments
    # until one of them is approved.
    new_commenter_holds: int = Field(0, ge=0, le=100)
    # Recent history: hold when the author's share of rejections among their comments
    # decided in the last ``history_days`` reaches this percentage (0: off), once they have
    # at least ``history_min_decisions`` decided comments.
    history_reject_percent: int = Field(0, ge=0, le=100)
    history_min_decisions: int = Field(5, ge=1, le=1000)
    history_days: int = Field(7, ge=1, le=365)
    # Coordinated text: hold when this many different authors (this one included) posted
    # the same text within the last hour (0: off; at least 2 when on).
    coordinated_authors: int = Field(0, ge=0, le=1000)
    # Reader reports: open reports that send a published comment back to the held queue.
    report_threshold: int = Field(3, ge=1, le=1000)
    illegal_report_threshold: int = Field(1, ge=1, le=1000)
    # Comments per author through any ingest path (the site API and the widget), in the
    # notation of the rate limits ("10/minute;100/hour"); None: MODERATION_RATELIMIT_AUTHOR.
    author_rate_limit: str | None = Field(None, min_length=3, max_length=100)

    @field_validator("coordinated_authors")
    @classmethod
    def _coordinated_needs_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("coordinated_authors must be 0 (off) or at least 2")
        return value

    @field_validator("author_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        from limits import parse_many

        if value is None:
            return None
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"author_rate_limit {value!r} is not a rate limit such as 10/minute;100/hour"
            ) from None
        return value

    @field_validator("banned_words", "suspect_words")
    @classmethod
    def _clean_words(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = (" ".join(word.split()) for word in words)
        return tuple(dict.fromkeys(word for word in cleaned if _tokens(normalise(word))))

    @model_validator(mode="after")
    def _min_below_max(self) -> SiteRules:
        if self.min_length > self.max_length:
            raise ValueError("min_length must not be above max_length")
        return self

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> SiteRules:
        """The rules a site row holds, defaults filled in."""
        return cls.model_validate(stored or {})


def stored_rules(stored: dict[str, Any] | None) -> SiteRules:
    """The rules a site row stores, parsed once per distinct value in a process."""
    return _parsed_rules(json.dumps(stored or {}, sort_keys=True))


@lru_cache(maxsize=256)
def _parsed_rules(stored: str) -> SiteRules:
    # Validating long word lists on every comment would cost more than the matching.
    return SiteRules.from_stored(json.loads(stored))


@dataclass(frozen=True)
class RuleContext:
    """What the rules look at for one new comment."""

    text: str
    article_closed: bool = False
    hold_links: bool = False
    # The author's texts on this site within the repeat window.
    recent_texts: Sequence[str] = ()
    author: AuthorContext | None = None


@dataclass(frozen=True)
class AuthorContext:
    """What the author rules know of the author on this site; read only for rules that are on."""

    # A moderator put every comment of this author to pre-moderation.
    premoderated: bool = False
    # Comments of the author before this one, and how many of them were approved.
    earlier_comments: int = 0
    approved_comments: int = 0
    # Decided comments in the history window, and how many of them were rejected.
    recent_decided: int = 0
    recent_rejected: int = 0
    # Other authors who posted the same text within the last hour.
    same_text_authors: int = 0


@dataclass(frozen=True)
class Refusal:
    """The comment is not stored at all; the API answers with this status and code."""

    status: int
    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class Finding(Reason):
    """A rule that matched: stored like a model reason, with its own plain-words message."""

    outcome: Status = Status.HELD
    note: str = ""

    @property
    def message(self) -> str:
        """What matched and what the rule does about it."""
        action = "reject" if self.outcome == Status.REJECTED else "hold"
        return f"{self.note} -> {action}"

    def as_dict(self) -> dict[str, Any]:
        """The same keys as a model reason."""
        return {
            "code": self.code,
            "label": self.label,
            "score": self.score,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True)
class Verdict:
    """A refusal, or the decision of the first rule that decided (None: the model decides)."""

    refusal: Refusal | None = None
    decision: Decision | None = None


def evaluate(context: RuleContext, rules: SiteRules) -> Verdict:
    """Run every rule in order; the first refusal stops, the first decision wins."""
    refusal = length_refusal(context.text, rules) or closed_refusal(context.article_closed)
    if refusal is not None:
        return Verdict(refusal=refusal)
    findings = [
        *word_findings(context.text, rules.banned_words, Status.REJECTED, "banned_word"),
        *word_findings(context.text, rules.suspect_words, Status.HELD, "suspect_word"),
        *repeat_findings(context.text, context.recent_texts),
        *link_findings(context.text, context.hold_links),
        *author_findings(context.author, rules),
    ]
    if not findings:
        return Verdict()
    return Verdict(decision=Decision(findings[0].outcome, tuple(findings)))


def length_refusal(text: str, rules: SiteRules) -> Refusal | None:
    """Too short or too long for this site."""
    length = len(text.strip())
    if length < rules.min_length:
        message = f"text must be at least {rules.min_length} characters"
        return Refusal(422, "text_too_short", message, "text")
    if len(text) > rules.max_length:
        message = f"text must be at most {rules.max_length} characters"
        return Refusal(422, "text_too_long", message, "text")
    return None


def closed_refusal(article_closed: bool) -> Refusal | None:
    """A closed article takes no new comments."""
    if article_closed:
        return Refusal(409, "article_closed", "this article is closed for comments")
    return None


def word_findings(text: str, words: Iterable[str], outcome: Status, code: str) -> list[Finding]:
    """One finding per listed word or phrase the text contains, however it is spelled."""
    matcher = word_matcher(tuple(words))
    label = "banned_words" if outcome == Status.REJECTED else "suspect_words"
    kind = "banned" if outcome == Status.REJECTED else "suspect"
    return [
        Finding(code, label, outcome=outcome, note=f'{kind} word "{word}"')
        for word in matcher.matches(text)
    ]


@lru_cache(maxsize=128)
def word_matcher(words: tuple[str, ...]) -> WordMatcher:
    """A matcher per word list, built once per process (lists change rarely)."""
    return WordMatcher(words)


def repeat_findings(text: str, recent_texts: Iterable[str]) -> list[Finding]:
    """The author posted the same text a short while ago."""
    key = _repeat_key(text)
    repeats = sum(1 for recent in recent_texts if _repeat_key(recent) == key)
    if not repeats:
        return []
    note = f"same text posted {repeats} time(s) shortly before"
    return [
        Finding("repeat_post", "repeat_post", float(repeats), outcome=Status.REJECTED, note=note)
    ]


def _repeat_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# Anything shaped like a host name, with an optional scheme, port and path; whether it ends
# in a real public suffix is decided by tldextract, against the Public Suffix List.
_HOST_LIKE = re.compile(
    r"(?P<scheme>https?://)?(?P<host>(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_][\w-]*[^\W_])"
    r"(?::\d{1,5})?(?:/\S*)?",
    re.UNICODE,
)
_SUFFIXES: Any = None
_SUFFIXES_LOCK = threading.Lock()


def _public_suffixes() -> Any:
    """tldextract on the Public Suffix List snapshot it ships: never fetched, never cached."""
    global _SUFFIXES
    with _SUFFIXES_LOCK:
        if _SUFFIXES is None:
            import tldextract

            _SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    return _SUFFIXES


def find_links(text: str) -> list[str]:
    """URLs and bare domain names in the text: every public suffix, IDNs included.

    A bare name whose suffix starts with a capital (``end.It was``) reads as a missing
    space after a full stop, not a link.
    """
    found = []
    for match in _HOST_LIKE.finditer(text):
        host = match.group("host")
        parts = _public_suffixes()(host)
        if not parts.suffix or not parts.domain:
            continue
        bare = match.group("scheme") is None and not host.lower().startswith("www.")
        if bare and parts.suffix[0].isupper():
            continue
        found.append(match.group(0).rstrip(".,;:!?)'\""))
    return found


def link_findings(text: str, hold_links: bool) -> list[Finding]:
    """Links, when the article holds comments that have them."""
    if not hold_links:
        return []
    links = find_links(text)
    if not links:
        return []
    note = f"{len(links)} link(s) on an article that holds comments with links"
    return [Finding("link", "links", float(len(links)), outcome=Status.HELD, note=note)]


def author_findings(author: AuthorContext | None, rules: SiteRules) -> list[Finding]:
    """Pre-moderated author, new commenter, recent history, coordinated text: each holds."""
    if author is None:
        return []
    findings = []
    if author.premoderated:
        note = "a moderator put this author's comments to pre-moderation"
        findings.append(Finding("author_premoderated", "author", note=note))
    if (
        rules.new_commenter_holds
        and author.approved_comments == 0
        and author.earlier_comments < rules.new_commenter_holds
    ):
        nth = author.earlier_comments + 1
        first = rules.new_commenter_holds
        note = f"new commenter: comment {nth} of the first {first}, none approved yet"
        findings.append(Finding("new_commenter", "author", float(nth), note=note))
    if (
        rules.history_reject_percent
        and author.recent_decided >= rules.history_min_decisions
        and author.recent_rejected * 100 >= rules.history_reject_percent * author.recent_decided
    ):
        share = round(100 * author.recent_rejected / author.recent_decided)
        note = (
            f"{author.recent_rejected} of the author's {author.recent_decided} comments in the"
            f" last {rules.history_days} days were rejected ({share} %,"
            f" hold from {rules.history_reject_percent} %)"
        )
        findings.append(
            Finding(
                "recent_history",
                "author",
                share / 100,
                rules.history_reject_percent / 100,
                note=note,
            )
        )
    if rules.coordinated_authors and author.same_text_authors + 1 >= rules.coordinated_authors:
        count = author.same_text_authors + 1
        note = f"the same text from {count} different authors within an hour"
        findings.append(Finding("coordinated_text", "coordinated_text", float(count), note=note))
    return findings


def same_text_key(text: str) -> str:
    """The form in which two texts count as the same (case, spacing and width folded)."""
    return _repeat_key(text)


# --- Matching words however they are spelled ------------------------------------------------

# Cyrillic, Greek and other letters that look like Latin ones, written as escapes.
_LOOKALIKE_LETTERS = (
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456"
    "\u0458\u0455\u043a\u043c\u0442\u043d\u0432\u0501"
    "\u03b1\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4"
    "\u03c5\u03c7\u00f8\u0142\u0111\u0127\u0131"
)
_LATIN_LETTERS = "aeopcyxijskmthbdaeikvoptuxoldhi"
_LOOKALIKE_MAP = dict(zip(_LOOKALIKE_LETTERS, _LATIN_LETTERS, strict=True)) | {
    "\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "0": "o", "1": "i", "3": "e", "4": "a",
    "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "|": "l", "+": "t",
    "\u20ac": "e",
}  # fmt: skip
# '1' and '|' stand for either i or l, so text is also read the other way round.
_READINGS = (
    str.maketrans(_LOOKALIKE_MAP),
    str.maketrans(_LOOKALIKE_MAP | {"1": "l", "|": "i"}),
)
# Characters dropped inside a word ("i.d.i.o.t", "f-o-o"); '*' is kept: it stands for a vowel.
_FILLER = re.compile(r"(?<=\w)[.\-_~'`\"·•^]+(?=\w)")
_TOKEN = re.compile(r"[\w*]+")
# '!' is an i only inside a word ("b!tch"); at the end it is punctuation ("idiot!").
_BANG_IN_WORD = re.compile(r"!(?=\w)")
_VOWELS = frozenset("aeiouy")


def normalise(text: str, reading: int = 0) -> str:
    """Lower case, no accents, look-alike letters and symbols read as the letters they mimic."""
    decomposed = unicodedata.normalize("NFKD", _BANG_IN_WORD.sub("i", text))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _FILLER.sub("", plain.casefold().translate(_READINGS[reading]))


def _tokens(normalised: str) -> list[str]:
    tokens = _TOKEN.findall(normalised)
    return tokens + _spelled_out(tokens)


def _spelled_out(tokens: list[str]) -> list[str]:
    """Runs of single letters ("i d i o t") read as one word too."""
    joined = []
    for is_single, group in groupby(tokens, key=lambda token: len(token) == 1):
        letters = list(group)
        if is_single and len(letters) >= 3:
            joined.append("".join(letters))
    return joined


Runs = tuple[tuple[str, int], ...]


def _runs(token: str) -> Runs:
    """ "iddiooot" -> (("i", 1), ("d", 2), ("i", 1), ("o", 3), ("t", 1))."""
    return tuple((char, len(list(group))) for char, group in groupby(token))


class WordMatcher:
    """Finds listed words in text in linear time, whatever the case, accents, repeats or swaps.

    A listed phrase ("scum bag") also matches written as one word ("scum-bag", "scumbag").

    A text word matches a listed word when it has the same letters in the same order, each
    repeated at least as often as in the listed word ("idiooot" matches "idiot", but "as"
    does not match "ass"), optionally followed by a plural "s" or "es".
    """

    def __init__(self, words: Iterable[str]):
        self._by_first: dict[str, list[tuple[str, tuple[Runs, ...]]]] = {}
        for word in words:
            tokens = _TOKEN.findall(normalise(word))
            readings = [tokens, ["".join(tokens)]] if len(tokens) > 1 else [tokens]
            for reading in readings:
                parts = tuple(_runs(token) for token in reading)
                if parts:
                    self._by_first.setdefault(_skeleton(parts[0]), []).append((word, parts))
        # Listed words by their shape with vowels masked, for text that writes '*' for one.
        self._by_mask: dict[str, list[str]] = {}
        for key in self._by_first:
            self._by_mask.setdefault(_mask_vowels(key), []).append(key)

    def matches(self, text: str) -> list[str]:
        """The listed words found in the text, each once, in list order of first match."""
        if not self._by_first:
            return []
        found: dict[str, None] = {}
        for reading in range(len(_READINGS)):
            tokens = [_runs(token) for token in _tokens(normalise(text, reading))]
            for index, token in enumerate(tokens):
                for word, parts in self._candidates(token):
                    if _phrase_at(tokens, index, parts):
                        found.setdefault(word)
        return list(found)

    def _candidates(self, token: Runs) -> list[tuple[str, tuple[Runs, ...]]]:
        skeleton = _skeleton(token)
        candidates = [
            entry for stem in _plural_stems(skeleton) for entry in self._by_first.get(stem, ())
        ]
        if "*" in skeleton:
            candidates += self._starred(skeleton)
        return candidates

    def _starred(self, skeleton: str) -> list[tuple[str, tuple[Runs, ...]]]:
        # '*' written for a vowel ("sh*t"): listed words of the same shape are the candidates.
        found = []
        for stem in _plural_stems(skeleton):
            for key in self._by_mask.get(_mask_vowels(stem), ()):
                if all(
                    a == b or (a == "*" and b in _VOWELS) for a, b in zip(stem, key, strict=True)
                ):
                    found += self._by_first[key]
        return found


def _mask_vowels(skeleton: str) -> str:
    return "".join("*" if char in _VOWELS else char for char in skeleton)


def _plural_stems(skeleton: str) -> list[str]:
    stems = [skeleton]
    for suffix in ("s", "es"):
        if skeleton.endswith(suffix) and len(skeleton) > len(suffix):
            stems.append(skeleton[: -len(suffix)])
    return stems


def _skeleton(runs: Runs) -> str:
    return "".join(char for char, _count in runs)


def _phrase_at(tokens: list[Runs], index: int, parts: tuple[Runs, ...]) -> bool:
    if index + len(parts) > len(tokens):
        return False
    last = len(parts) - 1
    return all(
        _token_matches(tokens[index + offset], part, plural_ok=offset == last)
        for offset, part in enumerate(parts)
    )


def _token_matches(token: Runs, word: Runs, *, plural_ok: bool) -> bool:
    extra = len(token) - len(word)
    if extra and not (plural_ok and _plural_suffix(token, word)):
        return False
    return all(
        _run_matches(token_run, word_run) for token_run, word_run in zip(token, word, strict=False)
    )


def _plural_suffix(token: Runs, word: Runs) -> bool:
    return _skeleton(token[len(word) :]) in ("s", "es")


def _run_matches(token_run: tuple[str, int], word_run: tuple[str, int]) -> bool:
    char, count = token_run
    letter, needed = word_run
    same = char == letter or (char == "*" and letter in _VOWELS)
    return same and count >= needed
