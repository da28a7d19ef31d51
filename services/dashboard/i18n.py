"""The dashboard's words, in gettext catalogues (Babel): English is the source language, every
other language is a file, ``locale/<code>/LC_MESSAGES/messages.po``.

The language list is the folders of ``locale`` that hold a ``messages.po``: a third language is
that file and nothing else (docs/dashboard.md). The ``.po`` is read with Babel when a language is
first used and kept as a ``Translations`` in memory: no compiled ``.mo`` is committed or built,
so the text in the repository is the text on the board.

``t`` is the translation function of templates and Python alike: ``t("Sign in with {label}",
label=...)`` translates, then fills the ``{name}`` placeholders (``t("…").format(…)`` does too).
A word shown through a variable (a phase, a priority) is marked with ``N_`` where it is defined,
so that ``make messages`` extracts it. The built-in catalogue's titles, units, descriptions and
options are extracted from ``schemas/catalogue/catalogue.json`` into the same catalogue
(:func:`extract_catalogue`), and the board shows them in the reader's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from services.catalogue import load_catalogue

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE = "en"
"""The language the texts are written in: the msgids."""
DOMAIN = "messages"


def N_(text: str) -> str:
    """Marks ``text`` for extraction; it is translated where it is shown."""
    return text


# Words the templates show through a variable (``t(phase)``): marked here so that they are extracted.
WORDS = (
    *(N_("collecting"), N_("negotiating"), N_("endorsing"), N_("agreed"), N_("abandoned")),
    *(N_("implementing"), N_("fulfilled")),
    *(N_("coordinator"), N_("member"), N_("vendor"), N_("owner"), N_("approver"), N_("contributor")),
    *(N_("must"), N_("should"), N_("could")),
    *(N_("pending"), N_("accepted"), N_("countered"), N_("rejected"), N_("conflict")),
    *(N_("accept"), N_("counter"), N_("reject")),
)


@cache
def languages() -> tuple[str, ...]:
    """The board's languages: English, then every folder of ``locale`` with a ``messages.po``."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())
    return (SOURCE, *found)


@cache
def language_name(code: str) -> str:
    """A language's name in itself ("Nederlands"), for the language links."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def translations(language: str) -> NullTranslations:
    """The language's catalogue: its ``.po`` read with Babel and compiled in memory, once (an
    unknown language is English: the cache holds only the known ones)."""
    return _compiled(language if language in languages() else SOURCE)


@cache
def _compiled(language: str) -> NullTranslations:
    if language == SOURCE:
        return NullTranslations()
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy (unchecked) translation shows as English
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def translator(language: str) -> Callable[..., str]:
    """``t`` for the language: the text translated, its ``{name}`` placeholders filled from ``params``."""
    gettext = translations(language).gettext

    def t(text: str, **params: Any) -> str:
        said = gettext(text) if text else text  # gettext("") would be the catalogue's header
        return said.format(**params) if params else said

    return t


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: ``?lang=``, else the cookie, else the browser's first known language."""
    known = languages()
    for candidate in (query, cookie):
        if candidate in known:
            return candidate
    for part in (accept_language or "").split(","):
        primary = part.split(";")[0].strip().split("-")[0].lower()
        if primary in known:
            return primary
    return SOURCE


# -- the built-in catalogue's words ----------------------------------------------------------------

CATALOGUE_FIELDS = ("title", "unit", "description")


def extract_catalogue(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel's extractor for ``schemas/catalogue/catalogue.json`` (babel.cfg): every item's title,
    unit, description and options, each with the item's key as the translator's comment."""
    document = json.loads(fileobj.read().decode("utf-8"))
    for line, entry in enumerate(document["items"], start=1):
        for field in CATALOGUE_FIELDS:
            if entry.get(field):
                yield line, None, entry[field], [f"catalogue {entry['key']}: {field}"]
        for option in entry.get("options") or ():
            yield line, None, option, [f"catalogue {entry['key']}: option"]


class ItemWords:
    """A requirement item's title, unit, description and options in the reader's language: the
    built-in catalogue's items are translated (their English is a msgid, extracted from
    catalogue.json); an item the coordinator defined inline (its key not in the catalogue, or its
    text not the catalogue's) is shown as the coordinator wrote it. ``item`` is anything with the
    item's ``key`` and the field: a requirement item, a published item, a commitment."""

    def __init__(self, t: Callable[..., str]) -> None:
        self._t = t

    def _field(self, item: Any, field: str) -> str:
        text = getattr(item, field, None)
        if not text:
            return text or ""
        entry = load_catalogue().get(item.key)
        return self._t(text) if entry is not None and getattr(entry, field, None) == text else text

    def title(self, item: Any) -> str:
        return self._field(item, "title")

    def unit(self, item: Any) -> str:
        return self._field(item, "unit")

    def description(self, item: Any) -> str:
        return self._field(item, "description")

    def option(self, key: str, option: str) -> str:
        entry = load_catalogue().get(key)
        return self._t(option) if entry is not None and option in (entry.options or ()) else option

    def options(self, key: str, options: Any) -> str:
        return ", ".join(self.option(key, option) for option in options or ())
