"""consumer_timeout: a channel whose oldest delivery stays unacknowledged too long is closed,
with RabbitMQ's 406 (checked against RabbitMQ 3.10.8 with consumer_timeout = 5000), and its
deliveries go back to their queues. The broker's clock is frozen and moved by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from amqp_lite import Broker, Clock
from amqp_lite.consumer_timeout import CHECK_INTERVAL
from amqp_lite.wire import methods
from tests.conftest import FROZEN_AT
from tests.rawclient import RawClient, connected
from vhosts.policies import Policy, validate_policy

MINUTE = 60.0


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    async with Broker(clock=Clock(frozen_at=FROZEN_AT)) as running:
        yield running


async def _consume(client: RawClient, queue: str, count: int, channel: int = 1) -> None:
    await client.send_method(channel, methods.BasicConsume(queue=queue))
    await client.expect(methods.BasicConsumeOk, channel)
    for _ in range(count):
        await client.expect(methods.BasicDeliver, channel)
        await client.expect_content()


async def _still_open(client: RawClient, channel: int = 1) -> bool:
    """A round trip on the channel: its reply, or the close that came first."""
    await client.send_method(channel, methods.BasicQos(prefetch_count=0))
    frame = await client.next_frame()
    return isinstance(frame.method, methods.BasicQosOk)


def _wait(broker: Broker, minutes: float) -> None:
    """Move the clock a tick at a time, as it would pass."""
    for _ in range(round(minutes * MINUTE / CHECK_INTERVAL)):
        broker.advance(CHECK_INTERVAL)


async def test_an_unacked_delivery_closes_its_channel_after_30_minutes(broker: Broker) -> None:
    client = await connected(broker.port)
    await client.open_channel(2)
    await client.declare_queue(1, "work")
    for body in (b"a", b"b"):
        await client.publish(1, "work", body)
    await _consume(client, "work", 2)
    _wait(broker, 29)
    assert await _still_open(client)
    _wait(broker, 3)  # 30 minutes and at most a tick or two of checking
    close = await client.expect(methods.ChannelClose, 1)
    assert close == methods.ChannelClose(
        reply_code=406,
        reply_text="PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. "
        "Timeout value used: 1800000 ms. This timeout value can be configured, see consumers "
        "doc guide to learn more",
        class_id=0,
        method_id=0,
    )
    await client.send_method(1, methods.ChannelCloseOk())
    # The deliveries went back to the queue, and the connection's other channel carries on.
    ok = await client.declare_queue(2, "work", passive=True)
    assert ok.message_count == 2
    await client.send_method(2, methods.BasicGet(queue="work", no_ack=True))
    assert (await client.expect(methods.BasicGetOk, 2)).redelivered
    await client.expect_content()
    await client.close()
    await client.aclose()


async def test_the_oldest_delivery_still_unacked_is_the_one_timed(broker: Broker) -> None:
    client = await connected(broker.port)
    await client.declare_queue(1, "work")
    await client.publish(1, "work", b"first")
    await _consume(client, "work", 1)
    _wait(broker, 20)
    await client.publish(1, "work", b"second")  # delivered 20 minutes after the first
    await client.expect(methods.BasicDeliver, 1)
    await client.expect_content()
    _wait(broker, 5)
    await client.send_method(1, methods.BasicAck(delivery_tag=1))
    assert await _still_open(client)  # a round trip: the ack is in
    _wait(broker, 24)  # 49 minutes in, the second has waited 29: not yet
    assert await _still_open(client)
    _wait(broker, 4)
    assert not await _still_open(client)
    await client.aclose()


async def test_a_queues_own_timeout_argument_and_policy_the_smaller_wins(broker: Broker) -> None:
    broker.set_policy("/", "quick", "^policed$", {"consumer-timeout": 120_000}, apply_to="queues")
    client = await connected(broker.port)
    arguments = {"x-consumer-timeout": 60_000}
    await client.declare_queue(1, "argued", arguments=arguments)
    await client.declare_queue(1, "policed", arguments={"x-consumer-timeout": 600_000})
    await client.open_channel(2)
    await client.publish(1, "argued", b"m")
    await client.publish(2, "policed", b"m")
    await _consume(client, "argued", 1, channel=1)
    await _consume(client, "policed", 1, channel=2)
    _wait(broker, 2)
    assert await _still_open(client, 1)  # a minute, and a tick to notice the delivery
    _wait(broker, 1)
    close = await client.expect(methods.ChannelClose, 1)
    assert "Timeout value used: 60000 ms" in close.reply_text
    await client.send_method(1, methods.ChannelCloseOk())
    _wait(broker, 1)
    close = await client.expect(methods.ChannelClose, 2)
    assert "Timeout value used: 120000 ms" in close.reply_text
    await client.aclose()


async def test_a_basic_get_unacked_times_out_too(broker: Broker) -> None:
    client = await connected(broker.port)
    await client.declare_queue(1, "work", arguments={"x-consumer-timeout": 60_000})
    await client.publish(1, "work", b"m")
    await client.send_method(1, methods.BasicGet(queue="work"))
    await client.expect(methods.BasicGetOk, 1)
    await client.expect_content()
    _wait(broker, 3)
    assert (await client.expect(methods.ChannelClose, 1)).reply_code == 406
    await client.aclose()


async def test_no_node_timeout_means_only_queues_own() -> None:
    async with Broker(clock=Clock(frozen_at=FROZEN_AT), consumer_timeout=None) as broker:
        client = await connected(broker.port)
        await client.declare_queue(1, "work")
        await client.publish(1, "work", b"m")
        await _consume(client, "work", 1)
        _wait(broker, 24 * 60)
        assert await _still_open(client)
        await client.aclose()


def test_the_policy_key_is_checked_as_rabbitmq_3_12_checks_it() -> None:
    validate_policy(Policy("/", "p", ".*", "queues", 0, {"consumer-timeout": 0}))
    with pytest.raises(ValueError, match=r'^<<"x">> is not a valid consumer timeout$'):
        validate_policy(Policy("/", "p", ".*", "queues", 0, {"consumer-timeout": "x"}))
    with pytest.raises(ValueError, match="-1 is not a valid consumer timeout"):
        validate_policy(Policy("/", "p", ".*", "queues", 0, {"consumer-timeout": -1}))


async def test_checking_costs_nothing_between_ticks(broker: Broker) -> None:
    """No per-delivery stamp: a tick notes one mark per channel with deliveries outstanding."""
    client = await connected(broker.port)
    await client.declare_queue(1, "work")
    for _ in range(100):
        await client.publish(1, "work", b"m")
    await _consume(client, "work", 100)
    [connection] = broker.server.connections
    deliveries = connection.channels[1].deliveries
    assert deliveries.timeout_marks == []
    _wait(broker, 3)
    assert deliveries.timeout_marks == [(101, FROZEN_AT + MINUTE)]  # one mark, however many
    await client.aclose()
    await trio.testing.wait_all_tasks_blocked()
