"""Quorum queues over the wire with aio-pika: each rule of test_features_quorum.py as an asyncio
client meets it (declaring, requeue places, x-delivery-count, the delivery limit, the dead-letter
strategies, overflow, TTL, consumers, the delete flags, durability of every message).

Each scenario runs with asyncio.run in a sync test, against the `target` broker, so it passes
against RabbitMQ 3.10.8 too (`--rabbitmq-url`) except where it moves amqp-lite's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from amqp_lite import ThreadedBroker
from tests.conftest import Target

QUORUM = {"x-queue-type": "quorum"}
TIMEOUT = 15


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))


class Session:
    """A connection with a confirming channel; deletes what it declared when done."""

    def __init__(
        self, target: Target, connection: aio_pika.abc.AbstractConnection, channel: AbstractChannel
    ) -> None:
        self.target = target
        self.connection = connection
        self.channel = channel
        self.names: list[str] = []

    async def quorum(self, **arguments: Any) -> AbstractQueue:
        name = self.target.unique("aioqq")
        self.names.append(name)
        return await self.channel.declare_queue(
            name, durable=True, arguments={**QUORUM, **arguments}
        )

    async def publish(self, queue: str, *bodies: str, **properties: Any) -> list[bool]:
        acked = []
        for body in bodies:
            try:
                await self.channel.default_exchange.publish(
                    aio_pika.Message(body.encode(), **properties), routing_key=queue
                )
                acked.append(True)
            except aio_pika.exceptions.DeliveryError:
                acked.append(False)
        return acked

    async def drain(self, queue: AbstractQueue) -> list[str]:
        bodies = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            bodies.append(message.body.decode())
        return bodies


@asynccontextmanager
async def session(target: Target) -> AsyncIterator[Session]:
    connection = await aio_pika.connect(target.url)
    try:
        opened = Session(target, connection, await connection.channel(publisher_confirms=True))
        yield opened
        cleanup = await connection.channel()
        for name in opened.names:
            await cleanup.queue_delete(name)
    finally:
        await connection.close()


async def _refusal(
    target: Target, action: Callable[[AbstractChannel], Awaitable[Any]]
) -> tuple[type[Exception], str]:
    """The error aiormq raises for what the broker said to `action`, and the broker's text."""
    connection = await aio_pika.connect(target.url)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.AMQPError) as caught:
            await action(channel)
        return type(caught.value), str(caught.value.args[0])
    finally:
        await connection.close()


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """RabbitMQ applies a settlement a little later; amqp-lite has already."""
    while not await check():
        await asyncio.sleep(0.02)


def test_declaring_a_quorum_queue_and_its_refusals(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum(**{"x-delivery-limit": 3})
            again = await s.channel.declare_queue(
                queue.name, durable=True, arguments={**QUORUM, "x-delivery-limit": 3}
            )
            assert again.name == queue.name
            name = target.unique("aioqq")
            kind, text = await _refusal(
                target, lambda c: c.declare_queue(name, durable=False, arguments=QUORUM)
            )
            assert kind is aiormq.exceptions.ChannelPreconditionFailed
            assert text == (
                f"PRECONDITION_FAILED - invalid property 'non-durable' for queue '{name}' "
                "in vhost '/'"
            )
            kind, text = await _refusal(
                target,
                lambda c: c.declare_queue(
                    queue.name, durable=True, arguments={"x-queue-type": "classic"}
                ),
            )
            assert text == (
                f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{queue.name}' "
                "in vhost '/': received 'classic' but current is 'quorum'"
            )

    _run(scenario)


def test_requeue_places_and_x_delivery_count(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum()
            await s.publish(queue.name, "m1", "m2", "m3")
            first = await queue.get()
            assert first.headers["x-delivery-count"] == 0 and not first.redelivered
            await first.nack(requeue=True)  # to the back
            await _eventually(lambda: _ready(queue, 3))
            assert await s.drain(queue) == ["m2", "m3", "m1"]

            # A channel that goes puts what it held at the front, counted.
            await s.publish(queue.name, "a", "b")
            other = await s.connection.channel()
            held = await (await other.get_queue(queue.name, ensure=False)).get()
            assert held.body == b"a"
            await other.close()
            await _eventually(lambda: _ready(queue, 2))
            redelivered = await queue.get(no_ack=True)
            assert redelivered.body == b"a" and redelivered.redelivered
            assert redelivered.headers["x-delivery-count"] == 1

    _run(scenario)


async def _ready(queue: AbstractQueue, count: int) -> bool:
    declared = await queue.channel.declare_queue(queue.name, passive=True)
    assert declared.declaration_result is not None
    return bool(declared.declaration_result.message_count == count)


def test_a_poison_message_is_dead_lettered_past_the_delivery_limit(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            dead = await s.quorum()
            queue = await s.quorum(
                **{
                    "x-delivery-limit": 1,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": dead.name,
                }
            )
            await s.publish(queue.name, "poison")
            counts = []
            async with queue.iterator() as deliveries:
                async for message in deliveries:
                    counts.append(message.headers.get("x-delivery-count"))
                    await message.reject(requeue=True)
                    if len(counts) == 2:
                        break
            assert counts == [None, 1]
            await _eventually(lambda: _ready(dead, 1))
            message = await dead.get(no_ack=True)
            death = message.headers["x-death"][0]
            assert (message.body, death["reason"], death["queue"]) == (
                b"poison",
                "delivery_limit",
                queue.name,
            )

    _run(scenario)


def test_at_least_once_holds_a_dead_letter_and_reject_publish_nacks(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum(
                **{
                    "x-dead-letter-exchange": target.unique("nowhere"),
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                    "x-max-length": 1,
                }
            )
            await s.publish(queue.name, "poison")
            message = await queue.get()
            await message.reject(requeue=False)  # its exchange does not exist: held
            assert await s.publish(queue.name, "a", "b") == [True, False]

    _run(scenario)


def test_drop_head_and_reject_publish_dlx(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            for overflow in ("drop-head", "reject-publish-dlx"):
                queue = await s.quorum(**{"x-max-length": 2, "x-overflow": overflow})
                assert await s.publish(queue.name, "m1", "m2", "m3") == [True, True, True]
                assert await s.drain(queue) == ["m2", "m3"]

    _run(scenario)


def test_consumers_global_qos_and_the_delete_flags(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum(**{"x-single-active-consumer": True})

            async def global_qos(channel: AbstractChannel) -> None:
                await channel.set_qos(prefetch_count=5, global_=True)
                await (await channel.get_queue(queue.name, ensure=False)).consume(_ignore)

            kind, text = await _refusal(target, global_qos)
            assert kind is aiormq.exceptions.ConnectionNotImplemented
            assert text == (
                f"NOT_IMPLEMENTED - queue '{queue.name}' in vhost '/' does not support global qos"
            )
            kind, text = await _refusal(target, lambda c: c.queue_delete(queue.name, if_empty=True))
            assert kind is aiormq.exceptions.ConnectionNotImplemented
            assert text.endswith("if-empty flag set are not supported by quorum queues")

            received: list[tuple[str, str]] = []
            consumers = []
            for name in ("first", "second"):
                channel = await s.connection.channel()
                await channel.set_qos(prefetch_count=1)

                async def on(message: AbstractIncomingMessage, name: str = name) -> None:
                    received.append((name, message.body.decode()))

                shared = await channel.get_queue(queue.name, ensure=False)
                consumers.append((shared, await shared.consume(on)))
            await s.publish(queue.name, "m1", "m2")
            await _eventually(lambda: _has(received, 1))
            first, tag = consumers[0]
            await first.cancel(tag)  # m1 stays unacked with it
            await _eventually(lambda: _has(received, 2))
            assert received == [("first", "m1"), ("second", "m2")]

    _run(scenario)


async def _has(received: list[Any], count: int) -> bool:
    return len(received) >= count


async def _ignore(_message: AbstractIncomingMessage) -> None:
    pass


def test_ttl_expires_at_the_head(broker: ThreadedBroker) -> None:
    target = Target(broker.url, broker=broker)

    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum(**{"x-message-ttl": 60_000})
            await s.publish(queue.name, "old")
            broker.advance(61)
            await s.publish(queue.name, "new", expiration=1)
            assert await s.drain(queue) == ["new"]  # the message's 1 s has not passed yet

    _run(scenario)


def test_a_transient_message_in_a_quorum_queue_is_kept(target: Target) -> None:
    async def scenario() -> None:
        async with session(target) as s:
            queue = await s.quorum()
            sent = aio_pika.DeliveryMode.NOT_PERSISTENT
            assert await s.publish(queue.name, "m", delivery_mode=sent) == [True]
            message: AbstractIncomingMessage | None = await queue.get(no_ack=True)
            assert message is not None and message.delivery_mode == sent

    _run(scenario)
