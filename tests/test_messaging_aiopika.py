"""The asyncio client works too: aio-pika scenarios, each run with asyncio.run in a sync test.

pytest-trio owns `async def` tests here, so the asyncio ones are plain functions that start
their own event loop against the threaded broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import aio_pika
import aiormq
import pytest

from amqp_lite import ThreadedBroker

SIZES = [0, 300_000]  # empty, and big enough to span several body frames
TIMEOUT = 10  # a broker that stops answering fails the test instead of hanging it


def _body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, TIMEOUT))


async def _ready(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count


def test_many_concurrent_confirmed_publishes_are_all_acked(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue("confirmed")
            exchange = channel.default_exchange
            # Sent back to back, so the broker may confirm several with one multiple ack.
            confirmations = await asyncio.gather(
                *(
                    exchange.publish(aio_pika.Message(str(n).encode()), routing_key="confirmed")
                    for n in range(200)
                )
            )
            assert all(isinstance(c, aiormq.spec.Basic.Ack) for c in confirmations)
            assert await _ready(channel, "confirmed") == 200

    _run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_unroutable_mandatory_publish_fails_with_its_returned_message(
    broker: ThreadedBroker, size: int
) -> None:
    # aiormq matches a return to its publish only when the return precedes the ack.
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            body = _body(size)
            with pytest.raises(aiormq.exceptions.PublishError) as failed:
                await channel.default_exchange.publish(
                    aio_pika.Message(body), routing_key="nowhere", mandatory=True
                )
            returned = failed.value.message
            assert (returned.delivery.reply_code, returned.delivery.reply_text) == (
                312,
                "NO_ROUTE",
            )
            assert returned.body == body

    _run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_consume_nack_requeue_then_ack(broker: ThreadedBroker, size: int) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1)
            queue = await channel.declare_queue("work")
            body = _body(size)
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key="work")
            seen: list[tuple[bytes, bool]] = []
            async with queue.iterator() as messages:
                async for message in messages:
                    seen.append((message.body, message.redelivered))
                    if not message.redelivered:
                        await message.nack(requeue=True)
                    else:
                        await message.ack()
                        break
            assert seen == [(body, False), (body, True)]
            assert await _ready(channel, "work") == 0

    _run(scenario())


def test_a_channel_error_leaves_another_channel_consuming(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            consuming = await connection.channel()
            queue = await consuming.declare_queue("survivor")
            failing = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await failing.declare_queue("absent", passive=True)
            await consuming.default_exchange.publish(aio_pika.Message(b""), routing_key="survivor")
            async with queue.iterator() as messages:
                async for message in messages:
                    assert message.body == b""
                    await message.ack()
                    break

    _run(scenario())


def test_transaction_commit_and_rollback(broker: ThreadedBroker) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url) as connection:
            channel = await connection.channel(publisher_confirms=False)
            await channel.declare_queue("tx")
            observer = await connection.channel()
            transaction = channel.transaction()
            await transaction.select()
            await channel.default_exchange.publish(aio_pika.Message(b"rolled back"), "tx")
            await transaction.rollback()
            await channel.default_exchange.publish(aio_pika.Message(b"committed"), "tx")
            assert await _ready(observer, "tx") == 0
            await transaction.commit()
            assert await _ready(observer, "tx") == 1
            queue = await observer.get_queue("tx")
            message = await queue.get(no_ack=True)
            assert message.body == b"committed"

    _run(scenario())
