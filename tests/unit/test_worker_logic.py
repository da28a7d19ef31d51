"""The worker's per-command step, without a broker: redelivery after a crash, and bad input."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

from schemas.commands import Endorse, PublishDemand, RespondToDemand
from schemas.deadletters import DeadLetter
from schemas.results import CommandAccepted
from streams.app import NegotiationTable, NegotiationWorker, Outbox, WorkerConfig, process_command
from streams.codec import DEAD_LETTER_VALUE_LIMIT, decode_result, encode_command, encode_event
from streams.core.decider import Context, decide
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, item

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def endorsing() -> Negotiation:
    n = Negotiation(item("no-ads"))
    n.invite("uni", weight=3).invite("hbo", weight=1)
    n.position("uni", "no-ads").publish().respond(accept("no-ads")).propose()
    return n


def run(table: NegotiationTable, command: object, offset: int) -> Outbox:
    outbox = Outbox()
    key = command.negotiation_id.encode()  # type: ignore[attr-defined]
    process_command(
        outbox,
        table,
        topic="t.commands",
        partition=0,
        offset=offset,
        key=key,
        value=encode_command(command),
        now=NOW,
        consumer="test",
    )  # type: ignore[arg-type]
    return outbox


def table_with(n: Negotiation, tail: list[object], replay_from: int) -> NegotiationTable:
    table = NegotiationTable(replay_from=replay_from)
    for event in n.events:
        message = encode_event(event)
        table.recover(message.value, [("koopkracht-command-offset", b"1")])
    for event in tail:
        message = encode_event(event)  # type: ignore[arg-type]
        table.recover(message.value, [("koopkracht-command-offset", str(replay_from).encode())])
    return table


def test_a_command_whose_writes_a_crash_cut_short_gets_the_rest_of_its_events_written() -> None:
    # Given an endorsement that decides the agreement: EndorsementGiven + AgreementReached
    n = endorsing()
    command = n.command(Endorse, "uni", decision="accept")
    decided = decide(n.s, command, Context(NOW)).events
    assert [e.type for e in decided] == ["EndorsementGiven", "AgreementReached"]
    # And a log that holds only the first of them (the crash came between the two writes)
    table = table_with(n, [decided[0]], replay_from=100)

    # When the command is delivered again after the restart
    outbox = run(table, command, offset=100)

    # Then only the missing event is written, with the next sequence, and the state is agreed
    assert len(outbox.events) == 1
    assert f'"sequence":{decided[1].sequence}'.encode() in outbox.events[0][1]
    assert b'"type":"AgreementReached"' in outbox.events[0][1]
    state = table.state(n.negotiation_id)
    assert state is not None
    assert state.phase == "agreed"
    assert state.sequence == decided[1].sequence
    # And the answer is the first decision's, marked as decided before
    (result,) = [decode_result(value) for _, value in outbox.results]
    assert isinstance(result, CommandAccepted)
    assert result.duplicate
    assert (result.first_sequence, result.last_sequence) == (decided[0].sequence, decided[1].sequence)


def test_a_command_fully_logged_before_a_crash_writes_nothing_again() -> None:
    n = endorsing()
    command = n.command(Endorse, "uni", decision="accept")
    decided = decide(n.s, command, Context(NOW)).events
    table = table_with(n, list(decided), replay_from=100)
    outbox = run(table, command, offset=100)
    assert outbox.events == []
    assert table.state(n.negotiation_id).phase == "agreed"  # type: ignore[union-attr]


def test_a_refused_command_redelivered_meets_the_state_it_first_met() -> None:
    # Given a vendor response refused while collecting (offset 100), then a publication
    # (offset 101) whose event is in the log although the committed offset is still 100
    n = Negotiation(item("no-ads"))
    n.invite("uni", weight=2).position("uni", "no-ads")
    response = n.command(RespondToDemand, VENDOR, demand_version=1, items=(accept("no-ads"),))
    publish = n.command(PublishDemand, COORDINATOR)
    published = decide(n.s, publish, Context(NOW)).events
    table = NegotiationTable(replay_from=100)
    for event in n.events:
        table.recover(encode_event(event).value, [("koopkracht-command-offset", b"1")])
    table.recover(encode_event(published[0]).value, [("koopkracht-command-offset", b"101")])

    # When both are delivered again after a restart, in order
    first = run(table, response, offset=100)
    second = run(table, publish, offset=101)

    # Then the response is refused again for the same reason (the demand was not published yet),
    # instead of being accepted against the later state
    (refused,) = [decode_result(value) for _, value in first.results]
    assert refused.type == "rejected"
    assert refused.status == 409  # type: ignore[union-attr]
    assert first.events == []
    # And the publication is answered from the log without writing it again
    (again,) = [decode_result(value) for _, value in second.results]
    assert isinstance(again, CommandAccepted)
    assert again.duplicate
    assert second.events == []
    assert table.state(n.negotiation_id).phase == "negotiating"  # type: ignore[union-attr]


def test_a_huge_undecodable_command_is_dead_lettered_within_a_message_size() -> None:
    outbox = Outbox()
    value = b"x" * (3 * DEAD_LETTER_VALUE_LIMIT)
    process_command(
        outbox,
        NegotiationTable(),
        topic="t.commands",
        partition=2,
        offset=7,
        key=b"n",
        value=value,
        now=NOW,
        consumer="test",
    )
    ((key, raw),) = outbox.dead_letters
    letter = DeadLetter.model_validate_json(raw)
    assert len(raw) < 2 * DEAD_LETTER_VALUE_LIMIT
    assert base64.b64decode(letter.value_base64 or "") == value[:DEAD_LETTER_VALUE_LIMIT]
    assert str(len(value)) in letter.reason
    assert (letter.partition, letter.offset, key) == (2, 7, b"n")


def test_a_released_partition_takes_its_drawn_documents_with_it() -> None:
    # Given a worker that drew the state document of a negotiation in partition 0
    worker = NegotiationWorker(WorkerConfig(bootstrap="unused:9092"))
    n = endorsing()
    worker.tables[0] = table_with(n, [], replay_from=2)
    state = worker.tables[0].state(n.s.negotiation_id)
    assert state is not None
    worker.documents.draw(state)
    assert n.s.negotiation_id in worker.documents
    # When the partition is released (another worker takes it over)
    asyncio.run(worker._release({0}))
    # Then its table and its drawn rows are gone: a later owner starts from its own state
    assert worker.tables == {}
    assert n.s.negotiation_id not in worker.documents
