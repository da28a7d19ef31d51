"""The dashboard speaks every language of its locale folder: each text the code, the templates and
the built-in catalogue show has a translation in every ``messages.po``, with the same placeholders.

The texts are extracted the way ``make messages`` extracts them (babel.cfg), so an English text
added with ``t("…")`` and not translated fails here, as does a translation Babel marked fuzzy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from services.dashboard import i18n
from services.dashboard.i18n import LOCALE_DIR, choose, languages, translator

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}|%\((\w+)\)[sd]")


def extracted() -> set[str]:
    """Every msgid of the code, templates and catalogue, as ``make messages`` extracts them."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "t": None, "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def texts() -> set[str]:
    return extracted()


def placeholders(text: str) -> list[str]:
    return sorted(a or b for a, b in PLACEHOLDER.findall(text))


def test_every_text_has_a_translation_with_the_same_placeholders(texts: set[str]) -> None:
    # Given every text the dashboard may show (found at all: a template's, a chart's, the core's, the catalogue's)
    assert {"why?", "Cohesion", "Location where data is stored and processed", "days"} <= texts
    assert len(languages()) >= 2
    for language in languages()[1:]:
        with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=language)
        translated = {}
        for message in catalog:
            if not message.id:
                continue
            singular = message.id if isinstance(message.id, str) else message.id[0]
            strings = [message.string] if isinstance(message.string, str) else list(message.string)
            if message.fuzzy or not all(strings):
                continue  # shown in English: counts as missing
            translated[singular] = (message.id, strings)
        # Then each has a translation in the language's catalogue, not fuzzy
        assert sorted(texts - translated.keys()) == [], f"untranslated in {language}: run make messages, translate"
        # And the translation keeps the text's placeholders
        for text in texts:
            ids, strings = translated[text]
            for string in strings:
                expected = placeholders(ids if isinstance(ids, str) else ids[-1])
                assert placeholders(string) == expected, (language, text, string)


def test_the_template_is_what_the_code_says(texts: set[str]) -> None:
    # Given the committed messages.pot
    with (LOCALE_DIR / "messages.pot").open("rb") as pot:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot) if m.id}
    # Then it holds exactly the texts of the code (make messages was run after the last change)
    assert sorted(texts ^ template) == []


def test_the_language_list_is_the_locale_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a locale folder with a third language's file (a copy of the Dutch one, retitled)
    for code in ("nl", "de"):
        folder = tmp_path / code / "LC_MESSAGES"
        folder.mkdir(parents=True)
        text = (LOCALE_DIR / "nl/LC_MESSAGES/messages.po").read_text(encoding="utf-8")
        if code == "de":
            text = text.replace('msgstr "Cohesie"', 'msgstr "Kohäsion"').replace("Language: nl", "Language: de")
        (folder / "messages.po").write_text(text, encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    for cached in (i18n.languages, i18n._compiled):
        cached.cache_clear()
    try:
        # Then the board offers it, a German browser gets it, and its words are the file's
        assert languages() == ("en", "de", "nl")
        assert choose(None, None, "de-DE,de;q=0.9,en;q=0.5") == "de"
        assert translator("de")("Cohesion") == "Kohäsion"
        assert i18n.language_name("de") == "Deutsch"
    finally:
        for cached in (i18n.languages, i18n._compiled):
            cached.cache_clear()


def test_t_translates_and_fills_placeholders() -> None:
    # Given the Dutch and the English t
    nl, en = translator("nl"), translator("en")
    # Then a text is translated, its placeholders filled either way, and an unknown text stays as written
    assert nl("Sign in with {label}", label="SURFconext") == "Inloggen met SURFconext"
    assert nl("Sign in with {label}").format(label="SURFconext") == "Inloggen met SURFconext"
    assert en("Sign in with {label}", label="SURFconext") == "Sign in with SURFconext"
    assert nl("A title the coordinator wrote") == "A title the coordinator wrote"
    assert nl("") == ""
    # And the browser's first known language wins, English when none is known
    assert choose(None, None, "fr-FR,nl;q=0.8") == "nl"
    assert choose(None, None, "fr-FR") == "en"
    assert choose("en", "nl", "nl") == "en"


def test_no_text_is_marked_inside_an_f_string() -> None:
    # Given the Python the catalogue is extracted from
    import ast

    hidden = []
    for folder in ("services", "streams/core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.JoinedStr):
                    continue
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Name)
                        and inner.func.id in ("t", "N_")
                        and inner.args
                        and isinstance(inner.args[0], ast.Constant)
                    ):
                        hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno}: {inner.args[0].value!r}")
    # Then no t("…") sits inside an f-string, where `make messages` cannot see it (it would never be
    # translated, and the completeness test above would not notice)
    assert hidden == []
