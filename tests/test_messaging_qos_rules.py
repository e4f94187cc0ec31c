"""How basic.qos global=true and global=false combine, as RabbitMQ 3.10.8 combines them.

A per-consumer prefetch (global=false) applies to consumers made after it; a global one to the
channel's consumers together. And, as in RabbitMQ, a global=false qos lifts the channel's global
limit: set global first and per-consumer after, and only the per-consumer limit holds. Each test
passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`).
"""

from __future__ import annotations

import pytest
import trio

from amqp_lite.wire import methods
from tests.conftest import Target
from tests.rawclient import RawClient

# Nothing more arrives within this long once the expected deliveries are in. (A broker
# delivering on its own schedule gives no event for "no more"; RabbitMQ delivers in well under
# a millisecond here.)
QUIET = 0.3


async def _deliveries_by_consumer(client: RawClient, expected: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    while sum(counts.values()) < expected:
        method = await client.expect(methods.BasicDeliver, 1)
        await client.expect_content()
        counts[method.consumer_tag] = counts.get(method.consumer_tag, 0) + 1
    with trio.move_on_after(QUIET):
        frame = await client.next_frame()
        pytest.fail(f"more than {expected} deliveries: {frame}")
    return dict(sorted(counts.items()))


async def _qos(client: RawClient, count: int, *, global_: bool) -> None:
    await client.send_method(1, methods.BasicQos(prefetch_count=count, global_=global_))
    await client.expect(methods.BasicQosOk, 1)


async def _consume(client: RawClient, queue: str, *tags: str) -> None:
    for tag in tags:  # no-wait: deliveries to the first may come before the next's consume-ok
        consume = methods.BasicConsume(queue=queue, consumer_tag=tag, no_wait=True)
        await client.send_method(1, consume)


async def _with_messages(target: Target, count: int) -> tuple[RawClient, str]:
    queue = target.unique("qos")
    client = await RawClient.connect(target.port, target.host)
    await client.handshake()
    await client.open_channel(1)
    await client.declare_queue(1, queue, exclusive=True)
    for _ in range(count):
        await client.publish(1, queue, b"m")
    return client, queue


async def test_per_consumer_then_global_both_hold(target: Target) -> None:
    client, queue = await _with_messages(target, 10)
    async with client:
        await _qos(client, 2, global_=False)
        await _qos(client, 3, global_=True)
        await _consume(client, queue, "a", "b")
        assert await _deliveries_by_consumer(client, 3) == {"a": 2, "b": 1}


async def test_global_then_per_consumer_leaves_only_the_per_consumer_limit(
    target: Target,
) -> None:
    client, queue = await _with_messages(target, 10)
    async with client:
        await _qos(client, 3, global_=True)
        await _qos(client, 2, global_=False)
        await _consume(client, queue, "a", "b")
        assert await _deliveries_by_consumer(client, 4) == {"a": 2, "b": 2}


async def test_a_per_consumer_qos_of_0_lifts_the_global_limit_for_later_consumers(
    target: Target,
) -> None:
    client, queue = await _with_messages(target, 10)
    async with client:
        await _qos(client, 3, global_=True)
        await _qos(client, 0, global_=False)
        await _consume(client, queue, "a")
        assert await _deliveries_by_consumer(client, 10) == {"a": 10}


async def test_global_alone_is_shared_by_the_channels_consumers(target: Target) -> None:
    client, queue = await _with_messages(target, 0)
    async with client:
        await _qos(client, 3, global_=True)
        await _consume(client, queue, "a", "b", "c", "d")
        for _ in range(10):
            await client.publish(1, queue, b"m")
        assert await _deliveries_by_consumer(client, 3) == {"a": 1, "b": 1, "c": 1}
