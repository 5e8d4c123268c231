"""The categories both notices and statements of reasons use, in the Transparency Database's
terms: the kinds of illegal content a reader can name (Art. 16) and the database's
STATEMENT_CATEGORY_ values they map to.

Constants only, so that moderation.dsa.notices and moderation.dsa.statements both import
them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

SPEECH = "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
VIOLENCE = "STATEMENT_CATEGORY_VIOLENCE"
SCOPE = "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"
CIVIC = "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS"
SEXUAL = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"


@dataclass(frozen=True)
class Category:
    """A kind of illegal content a reader can name, and its Transparency Database category."""

    label: str
    tdb_category: str
    anonymous: bool = False


# The kinds of illegal content a notice names.
CATEGORIES = {
    "hate_speech": Category("Illegal hate speech or incitement to violence", SPEECH),
    "defamation": Category("Defamation, insult or threats (criminal law)", SPEECH),
    "terrorism": Category("Terrorist content", "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"),
    "child_sexual_abuse": Category(
        "Child sexual abuse material", "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", anonymous=True
    ),
    "privacy": Category(
        "Personal data or private images shared unlawfully",
        "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    ),
    "intellectual_property": Category(
        "Copyright or other intellectual property infringement",
        "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    ),
    "scam": Category("Scam or fraud", "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"),
    "other": Category("Other illegal content", SPEECH),
}


def notice_category(category: str | None) -> str:
    """The Transparency Database category of a notice's category."""
    found = CATEGORIES.get(category or "")
    return found.tdb_category if found else SPEECH
