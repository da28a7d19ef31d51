"""Request/reply: send a command and await the worker's result by command id, with a timeout.

The client reads the command-results topic from its end (all partitions, no consumer group),
so every API process sees the answers to the commands it sent. A timeout does not mean the
command is lost: it stays in the commands topic and is decided in order; sending it again with
the same command id returns the first decision of an accepted command (a refused one is decided
again, against the state as it is then).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.commands import Command
from schemas.results import CommandResult
from schemas.topics import COMMAND_RESULTS, COMMANDS
from streams.codec import decode_result, encode_command
from streams.connection import KafkaConnection
from streams.tracing import Tracing

log = structlog.get_logger("koopkracht.client")


class CommandTimeout(TimeoutError):
    """No result within the timeout; the command may still be decided later.

    ``delivery``: when the command is in the producer's queue but the broker has not confirmed it,
    the future of that confirmation: it still resolves (delivered) or fails (the command is not
    on the topic, and may be sent again under its id)."""

    def __init__(self, message: str, delivery: asyncio.Future[Any] | None = None) -> None:
        super().__init__(message)
        self.delivery = delivery


class CommandNotQueued(Exception):
    """The producer did not take the command within the timeout (no metadata, a full queue): it is
    not on the topic, and may be sent again."""


class CommandClient:
    def __init__(
        self,
        bootstrap: KafkaConnection | str,
        topic_prefix: str = "koopkracht",
        client_id: str = "koopkracht-api",
        tracing: Tracing | None = None,
        request_timeout_ms: int = 40_000,
    ) -> None:
        self.kafka = KafkaConnection.of(bootstrap)
        self.request_timeout_ms = request_timeout_ms
        """How long the producer tries to deliver a queued command before it gives it up (aiokafka's default)."""
        self.tracing = tracing or Tracing.off()
        """Sending a command is a span; the command's message carries its context (``streams.tracing``)."""
        self.commands_topic = COMMANDS.name(topic_prefix)
        self.results_topic = COMMAND_RESULTS.name(topic_prefix)
        self.client_id = client_id
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            self._producer = self.kafka.producer(
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=0,
                request_timeout_ms=self.request_timeout_ms,
            )
            await self._producer.start()
            self._consumer = self.kafka.consumer(
                client_id=self.client_id,
                enable_auto_commit=False,
                isolation_level="read_committed",  # a result of an aborted transaction was never given
                fetch_max_wait_ms=50,
            )
            await self._consumer.start()
            partitions = await self._producer.partitions_for(self.results_topic)
            assignment = [TopicPartition(self.results_topic, p) for p in sorted(partitions)]
            self._consumer.assign(assignment)
            await self._consumer.seek_to_end(*assignment)
            for tp in assignment:  # resolve the end offsets now, before any command is sent
                await self._consumer.position(tp)
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._read_results(), name="command-results-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for future in self._pending.values():
            future.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def __aenter__(self) -> CommandClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _read_results(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        result = decode_result(record.value)
                    except ValueError:
                        log.warning("undecodable command result", partition=record.partition, offset=record.offset)
                        continue
                    future = self._pending.pop(result.command_id, None)
                    if future is not None and not future.done():
                        future.set_result(result)

    async def submit(self, command: Command, timeout: float = 10.0) -> asyncio.Future[CommandResult]:  # noqa: ASYNC109
        """Put the command on the commands topic and wait for the broker's acknowledgement.

        Returns the future of its result. Raises ``CommandTimeout`` (or the producer's error) when
        the broker did not acknowledge in time: then the command may or may not be on the topic.
        """
        assert self._producer is not None, "start() the client first"
        loop = asyncio.get_running_loop()
        future = self._pending.get(command.command_id)
        if future is None:
            future = self._pending[command.command_id] = loop.create_future()
        attributes = {
            "messaging.message.id": command.command_id,
            "koopkracht.command": command.type,
            "koopkracht.negotiation_id": command.negotiation_id,
        }
        deadline = loop.time() + timeout
        with self.tracing.sending(self.commands_topic, attributes):
            # Two steps, because they differ in what a timeout means: aiokafka's ``send`` returns
            # once the record is in its queue (cancelled before that, the record was never queued);
            # the delivery then resolves when the broker confirms it, or fails when it gives up.
            try:
                delivery = await asyncio.wait_for(
                    self._producer.send(
                        self.commands_topic,
                        key=command.negotiation_id.encode(),
                        value=encode_command(command),
                        headers=self.tracing.headers() or None,
                    ),
                    timeout,
                )
            except TimeoutError:
                raise CommandNotQueued(
                    f"the producer did not take command {command.command_id} within {timeout} s"
                ) from None
            try:
                await asyncio.wait_for(asyncio.shield(delivery), max(0.001, deadline - loop.time()))
            except TimeoutError:
                raise CommandTimeout(
                    f"the broker did not confirm command {command.command_id} within {timeout} s", delivery
                ) from None
        return future

    def pending(self, command_id: str) -> asyncio.Future[CommandResult] | None:
        """The result this process is still waiting for, if it sent that command."""
        return self._pending.get(command_id)

    async def send(self, command: Command, timeout: float = 10.0) -> CommandResult:  # noqa: ASYNC109
        """Send the command and return the worker's result; raises CommandTimeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        future = await self.submit(command, timeout)
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.001, deadline - loop.time()))
        except TimeoutError:
            # The future stays registered: a later result still resolves it for a concurrent or
            # repeated send of the same command id.
            raise CommandTimeout(f"no result for command {command.command_id} within {timeout} s") from None

    async def send_raw(self, key: bytes | None, value: bytes) -> Any:
        """Put arbitrary bytes on the commands topic (for tests of bad input)."""
        assert self._producer is not None
        return await self._producer.send_and_wait(self.commands_topic, key=key, value=value)
