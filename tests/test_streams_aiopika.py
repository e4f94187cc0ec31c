"""Stream queues from asyncio: the same rules over aio-pika, each scenario in asyncio.run.

pytest-trio owns `async def` tests here, so these are plain functions that start their own event
loop against the threaded broker.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable
from typing import Any

import aio_pika
import aiormq
import pytest

from amqp_lite import ThreadedBroker

TIMEOUT = 10
STREAM = {"x-queue-type": "stream"}


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    pass


def _run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, TIMEOUT))


async def _stream(connection: aio_pika.abc.AbstractConnection, count: int = 10) -> None:
    """Stream 's' with m0..m(count-1), published with confirms."""
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue("s", durable=True, arguments=STREAM)
    for i in range(count):
        value = "red" if i % 3 == 0 else None
        headers = {"x-stream-filter-value": value} if value else None
        await channel.default_exchange.publish(
            aio_pika.Message(b"m%d" % i, headers=headers), routing_key="s"
        )


async def _read(
    connection: aio_pika.abc.AbstractConnection,
    arguments: dict[str, Any],
    count: int,
    consumer_tag: str | None = None,
) -> list[tuple[int, bytes]]:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=count)  # no more than asked for
    queue = await channel.declare_queue("s", passive=True)
    got: list[tuple[int, bytes]] = []
    done = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append((int(message.headers["x-stream-offset"]), message.body))  # type: ignore[arg-type]
        if len(got) == count:  # all of them acked at once; any later delivery is left unacked
            await message.ack(multiple=True)
            done.set()

    await queue.consume(on_message, arguments=arguments, consumer_tag=consumer_tag)
    await done.wait()
    await channel.close()
    return got[:count]


def test_consumers_read_from_their_offsets(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            await _stream(connection)
            got = await _read(connection, {"x-stream-offset": "first"}, 10)
            assert got == [(i, b"m%d" % i) for i in range(10)]
            assert await _read(connection, {"x-stream-offset": 7}, 3) == [
                (7, b"m7"),
                (8, b"m8"),
                (9, b"m9"),
            ]
            # Confirms of a broker without a data directory do not wait for the disk, so the
            # last chunk may have several messages; it ends with the last one.
            last = await _read(connection, {"x-stream-offset": "last"}, 1)
            assert last[0][0] <= 9
            an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
            assert len(await _read(connection, {"x-stream-offset": an_hour_ago}, 10)) == 10
            assert len(await _read(connection, {"x-stream-offset": "1h"}, 10)) == 10

    _run(scenario())


def test_filters_and_tracking(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            await _stream(connection)
            reds = {"x-stream-offset": "first", "x-stream-filter": "red"}
            assert [o for o, _ in await _read(connection, reds, 4)] == [0, 3, 6, 9]
            tracked = {"x-stream-offset": "first", "x-stream-automatic-offset-tracking": True}
            assert [o for o, _ in await _read(connection, tracked, 4, "me")] == [0, 1, 2, 3]
            assert [o for o, _ in await _read(connection, tracked, 2, "me")] == [4, 5]
            # aio-pika lets the server name a consumer: such a one is not tracked.
            assert [o for o, _ in await _read(connection, tracked, 2)] == [0, 1]
            assert [o for o, _ in await _read(connection, tracked, 2)] == [0, 1]

    _run(scenario())


@pytest.mark.parametrize(
    ("qos", "arguments", "error", "text"),
    [
        (None, {}, aiormq.exceptions.ChannelPreconditionFailed, "consumer prefetch count"),
        (
            10,
            {"x-stream-offset": 1.5},  # a float (f): RabbitMQ crashes, amqp-lite says why
            aiormq.exceptions.ChannelPreconditionFailed,
            "{invalid_stream_offset_arg,{float,1.5}}",
        ),
        (10, {"x-priority": 1}, aiormq.exceptions.ChannelPreconditionFailed, "x-priority"),
    ],
)
def test_consumers_that_are_refused(
    broker: ThreadedBroker, qos: int | None, arguments: dict[str, Any], error: type, text: str
) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            await _stream(connection, 1)
            channel = await connection.channel()
            if qos is not None:
                await channel.set_qos(prefetch_count=qos)
            queue = await channel.declare_queue("s", passive=True)
            with pytest.raises(error, match=text.replace("{", r"\{").replace(".", r"\.")):
                await queue.consume(_ignore, arguments=arguments)

    _run(scenario())


def test_basic_get_and_no_ack_close_the_connection(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        for attempt in ("get", "no_ack"):
            async with await aio_pika.connect(broker.url) as connection:
                await _stream(connection, 1)
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=10)
                queue = await channel.declare_queue("s", passive=True)
                with pytest.raises(aiormq.exceptions.ConnectionNotImplemented):
                    if attempt == "get":
                        await queue.get()
                    else:
                        await queue.consume(_ignore, no_ack=True)

    _run(scenario())


@pytest.mark.parametrize(
    ("flags", "arguments", "text"),
    [
        ({"durable": False}, {}, "invalid property 'non-durable'"),
        ({"durable": True}, {"x-max-length": 5}, "of queue type rabbit_stream_queue"),
        ({"durable": True}, {"x-max-age": "7d"}, "invalid_max_age"),
    ],
)
def test_declarations_that_are_refused(
    broker: ThreadedBroker, flags: dict[str, Any], arguments: dict[str, Any], text: str
) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match=text):
                await channel.declare_queue("d", arguments={**STREAM, **arguments}, **flags)

    _run(scenario())


def test_retention_keeps_the_newest_messages(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            limits = {"x-max-length-bytes": 2000, "x-stream-max-segment-size-bytes": 500}
            await channel.declare_queue("s", durable=True, arguments={**STREAM, **limits})
            for i in range(100):
                message = aio_pika.Message(b"%03d" % i + b"." * 40)
                await channel.default_exchange.publish(message, routing_key="s")
            queue = await channel.declare_queue("s", passive=True)
            kept = queue.declaration_result.message_count
            assert 0 < kept < 100
            got = await _read(connection, {"x-stream-offset": "first"}, kept)
            assert [offset for offset, _ in got] == list(range(100 - kept, 100))

    _run(scenario())
