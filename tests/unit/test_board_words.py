"""The board in words, in the reader's language: every event type has a sentence for each audience
(the core decides who is named, the dashboard words it), and a Dutch board has no English left.

The boards are drawn from the same templates and the same core reads as the dashboard's pages
(``streams.core.reads.board``, ``services.dashboard.routes.words``), on negotiations in every phase.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from schemas.events import EVENT_TYPES
from services.application.documents import FeedEntry
from services.dashboard.routes import templates, words
from services.dashboard.timeline import SENTENCES as WORDS
from services.dashboard.timeline import timeline_words
from streams.core import reads, timeline, views
from streams.core.notices import figures_before, notices, phrase
from streams.core.state import NegotiationState, evolve
from streams.core.views import Audience, audience
from tests.unit.boards import MEMBERS, SCENARIOS
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation

VIEWERS = {"coordinator": COORDINATOR, "member": "m1", "vendor": VENDOR}


def feed(n: Negotiation, viewer: Audience) -> list[FeedEntry]:
    """The viewer's change feed (as ``Application.change_feed`` cuts it): the vendor counts its own events."""
    entries, counted = [], 0
    for event in n.events:
        data = views.event_view(n.s, event, viewer)
        if data is None:
            continue
        counted += 1
        number = counted if viewer.role == "vendor" else event.sequence
        entries.append(FeedEntry(sequence=number, type=event.type, occurred_at=event.occurred_at, data=data))
    return entries


def lines(n: Negotiation, viewer: Audience) -> list[tuple[FeedEntry, timeline.Line]]:
    return [(e, timeline.describe(n.s, e.type, e.data, viewer)) for e in feed(n, viewer)]


def board(n: Negotiation, by: str, language: str) -> str:
    """The whole board page as the dashboard draws it for ``by``'s approver, in ``language``."""
    viewer = audience(n.s, by)
    assert viewer is not None
    data = reads.board(n.s, viewer)
    said = words(language)
    name = n.names[by]
    caller = SimpleNamespace(
        organisation_id=by, name=name, role=viewer.role, person=SimpleNamespace(name="Pieter van Dam", role="approver")
    )
    return templates.env.get_template("board.html").render(
        **said,
        notice=None,
        error=None,
        once="once-token",
        sso_label=None,
        caller=caller,
        csrf="csrf-token",
        nid=n.negotiation_id,
        event_types=[*EVENT_TYPES, "changed"],
        now=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        may_act=True,
        drafts={},
        timeline=lines(n, viewer),
        timeline_words=timeline_words(said["t"], said["item_words"], {i.key: i for i in data["summary"].items}),
        **data,
    )


class Text(HTMLParser):
    """The visible text nodes of a page (not scripts), each stripped and with its spaces joined."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._hidden:
            self.nodes.append(text)


def text_nodes(page: str) -> list[str]:
    parser = Text()
    parser.feed(page)
    return parser.nodes


# Words that are the same in Dutch, or are no English at all: brands, abbreviations, units of measure.
SAME_IN_DUTCH = {
    "Koopkracht", "English", "Nederlands", "Live", "Status", "conflict", "open", "E-mail", "Label",
    "SHA-256", "UTC", "NL", "EU", "ISO", "SOC", "Type", "II", "BIO", "PUE", "WCAG", "AI", "q", "C", "W", "w",
}  # fmt: skip


def written_by_parties(n: Negotiation) -> set[str]:
    """What the parties wrote (names, titles, questions, comments, evidence, reasons): shown as written."""
    texts = set(n.names.values()) | set(MEMBERS.values()) | {"Pieter van Dam"}
    for event in n.events:
        data = event.model_dump(mode="json")
        for field in ("title", "question", "answer", "comment", "evidence", "reason", "name"):
            if isinstance(data.get(field), str):
                texts.add(data[field])
        position = data.get("position") or {}
        if position.get("rationale"):
            texts.add(position["rationale"])
    return texts


def english_left(node: str, allowed: set[str], keys: set[str]) -> list[str]:
    """The English words of a text node that appears unchanged on the Dutch board, after what
    may stay as it is (the parties' own words, item keys, numbers, dates) is taken out."""
    rest = node
    for text in sorted(allowed | keys, key=len, reverse=True):
        rest = rest.replace(text, " ")
    found = re.findall(r"(?<!\w)[A-Za-z][A-Za-z'\u2019-]+(?!\w)", rest)  # words, not hashes
    return [word for word in found if word not in SAME_IN_DUTCH]


# -- the timeline in words --------------------------------------------------------------------------


def test_every_event_type_has_a_sentence_for_each_audience() -> None:
    # Given the event types of the schemas, and the sentences the core may give each
    assert set(timeline.SENTENCES) == set(EVENT_TYPES)
    said = {f"{kind}.{subject}" for kind, subjects in timeline.SENTENCES.items() for subject in subjects}
    # Then the dashboard has words for each one, and none for a sentence the core never gives
    assert sorted(said - WORDS.keys()) == []
    assert sorted(WORDS.keys() - said) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_timeline_names_whom_the_reader_may_see_and_nobody_else(scenario: str) -> None:
    # Given a negotiation in this phase, with positions that are not transparent
    n = SCENARIOS[scenario]()
    assert not n.s.policy.transparent_positions
    for role, by in VIEWERS.items():
        viewer = audience(n.s, by)
        assert viewer is not None
        # When each event the viewer may see is told in words
        for entry, line in lines(n, viewer):
            # Then the sentence is one its event type has
            kind, _, subject = line.sentence.partition(".")
            assert kind == entry.type and subject in timeline.SENTENCES[kind]
            # And a member is named only to the coordinator; to another member and the vendor it is "a member"
            if role != "coordinator":
                assert "actor" not in line.params, (role, line)
                assert not set(MEMBERS.values()) & {str(v) for v in line.params.values()} or (
                    entry.type == "MemberInvited" and role == "member"
                ), (role, line)


def told(n: Negotiation, by: str, language: str) -> list[str]:
    """The viewer's timeline in words, in ``language``."""
    viewer = audience(n.s, by)
    assert viewer is not None
    said = words(language)
    worded = timeline_words(said["t"], said["item_words"], n.s.items)
    return [worded(line) for _, line in lines(n, viewer)]


def test_the_timeline_speaks_to_each_audience() -> None:
    # Given a negotiation past the agreement, its timeline told to each party
    n = SCENARIOS["implementing"]()
    coordinator, member, vendor = (told(n, by, "en") for by in VIEWERS.values())
    location = "Location where data is stored and processed"
    locatie = "Locatie waar gegevens worden opgeslagen en verwerkt"
    # Then the coordinator reads who stated what, on which item by its title, in English and Dutch
    assert f"Universiteit Utrecht stated its position on {location}" in coordinator
    assert f"Universiteit Utrecht heeft een standpunt ingenomen over {locatie}" in told(n, COORDINATOR, "nl")
    # And the member reads its own acts as its own, and the others' not at all
    assert f"You stated your position on {location}" in member
    assert not any("Hogeschool Rotterdam stated" in line for line in member)
    # And the vendor reads the coalition's acts, and no member's
    assert "The coalition published version 1 (3 items)" in vendor
    assert "The agreement is reached" in vendor
    assert not any(name in line for line in vendor for name in MEMBERS.values())


# -- a Dutch board has no English left ----------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["collecting", "answered", "endorsing", "planned", "implementing", "reopened"])
@pytest.mark.parametrize("role", VIEWERS)
def test_a_dutch_board_has_no_english_left(scenario: str, role: str) -> None:
    # Given the board of a negotiation in this phase, drawn in English and in Dutch
    n = SCENARIOS[scenario]()
    english, dutch = text_nodes(board(n, VIEWERS[role], "en")), text_nodes(board(n, VIEWERS[role], "nl"))
    assert len(dutch) > 20
    # When a text node of the Dutch board is the same as on the English one
    same = [node for node in dutch if node in set(english)]
    # Then it is a name, a key, a number, a date, the parties' own words or a word Dutch shares
    allowed = written_by_parties(n)
    keys = set(n.s.items)
    left = {node: english_left(node, allowed, keys) for node in same}
    assert {node: found for node, found in left.items() if found} == {}


# -- notices in the reader's language --------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["fulfilled", "reopened", "abandoned"])
def test_every_notice_has_a_stable_code_json_params_and_dutch_words(scenario: str) -> None:
    # Given every notice of a whole negotiation, told to each party as its events happen
    n = SCENARIOS[scenario]()
    dutch = words("nl")["t"]
    state: NegotiationState | None = None
    told = 0
    for event in n.events:
        before = figures_before(state, ["m1"])
        state = evolve(state, event)
        for by in VIEWERS.values():
            viewer = audience(state, by)
            if viewer is None or views.event_view(state, event, viewer) is None:  # m1 before its invitation
                continue
            for notice in notices(before, state, event, viewer):
                told += 1
                # Then its parameters are plain JSON (a webhook's), and its words come from code and parameters
                assert json.loads(json.dumps(dict(notice.params))) == dict(notice.params)
                assert phrase(notice.code, notice.params).render() == notice.text
                # And its Dutch differs from its English, unless it is only names, keys and numbers
                nl = phrase(notice.code, json.loads(json.dumps(dict(notice.params)))).render(dutch)
                same = nl == notice.text
                assert not same or english_left(nl, written_by_parties(n), set(n.s.items)) == [], nl
    assert told > 10


def test_a_member_reads_the_vendors_answer_in_its_own_words() -> None:
    # Given the vendor's answer to a member's positions, told to that member
    n = SCENARIOS["answered"]()
    event = next(e for e in n.events if e.type == "VendorResponded")
    said = notices(figures_before(None, []), n.s, event, audience(n.s, "m2"))  # type: ignore[arg-type]
    offer = next(notice for notice in said if notice.params["item"] == "diagnostic-data-retention")
    # Then in English and in Dutch it says the counter, the unit, the member's limit and the verdict
    assert offer.text == "The vendor countered diagnostic-data-retention with 60 days; your limit is 30: not met."
    assert phrase(offer.code, offer.params).render(words("nl")["t"]) == (
        "De leverancier deed een tegenbod op diagnostic-data-retention: 60 dagen; uw grens is 30: niet voldaan."
    )
