"""Priority queues (x-max-priority) over the wire with pika: delivery order, messages without a
priority or above the maximum, requeues, and the argument's checks. Every order and text was
first observed on RabbitMQ 3.10.8.
"""

from __future__ import annotations

from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

from tests.pika_helpers import Received, collector, wait_for


def _publish(channel: BlockingChannel, queue: str, *messages: tuple[str, int | None]) -> None:
    for body, priority in messages:
        properties = pika.BasicProperties(priority=priority) if priority is not None else None
        channel.basic_publish("", queue, body.encode(), properties)


def _take_all(channel: BlockingChannel, queue: str) -> list[tuple[str, bool]]:
    """(body, redelivered) of everything ready, in delivery order."""
    taken = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body.decode(), method.redelivered))


def _bodies(channel: BlockingChannel, queue: str) -> list[str]:
    return [body for body, _redelivered in _take_all(channel, queue)]


def test_higher_priorities_first_fifo_within_one(channel: BlockingChannel) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 10})
    _publish(channel, "q", ("a1", 1), ("b5", 5), ("c1", 1), ("d10", 10), ("e5", 5))
    assert _bodies(channel, "q") == ["d10", "b5", "e5", "a1", "c1"]


def test_no_priority_counts_as_zero_and_above_the_maximum_as_the_maximum(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 5})
    _publish(
        channel,
        "q",
        ("none-1", None),
        ("p3-a", 3),
        ("p9", 9),
        ("p0", 0),
        ("p5", 5),
        ("p3-b", 3),
        ("none-2", None),
        ("p255", 255),
    )
    # p9 and p255 take their turns among the 5s in publish order; none-1, p0, none-2 are all 0.
    assert _bodies(channel, "q") == ["p9", "p5", "p255", "p3-a", "p3-b", "none-1", "p0", "none-2"]


def test_a_delivered_message_keeps_the_priority_it_was_published_with(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 2})
    _publish(channel, "q", ("m", 200))
    _method, properties, _body = channel.basic_get("q", auto_ack=True)
    assert properties.priority == 200


@pytest.mark.parametrize("arguments", [{}, {"x-max-priority": 0}])
def test_without_priorities_the_property_is_ignored(
    channel: BlockingChannel, arguments: dict[str, Any]
) -> None:
    channel.queue_declare("q", arguments=arguments)
    _publish(channel, "q", ("a", 1), ("b", 9), ("c", None))
    assert _bodies(channel, "q") == ["a", "b", "c"]


def test_a_consumer_gets_the_highest_priority_waiting_each_time(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 10})
    _publish(channel, "q", ("low-1", 1), ("high", 9), ("low-2", 1))
    channel.basic_qos(prefetch_count=1)
    received: Received = []
    channel.basic_consume("q", collector(received))
    wait_for(connection, lambda: len(received) == 1)
    publisher = connection.channel()
    publisher.confirm_delivery()  # so the queue has it before the ack below
    _publish(publisher, "q", ("middle", 5))  # arrives while the consumer has no room
    while len(received) < 4:
        count = len(received)
        channel.basic_ack(received[-1][1])
        wait_for(connection, lambda: len(received) > count)  # noqa: B023
    channel.basic_ack(received[-1][1])
    assert [body for body, _tag, _redelivered in received] == [
        b"high",
        b"middle",
        b"low-1",
        b"low-2",
    ]


# -- requeues ------------------------------------------------------------------------------------


def test_requeued_messages_return_to_their_places_within_their_priorities(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 3})
    _publish(channel, "q", ("a1", 1), ("b2", 2), ("c1", 1), ("d2", 2), ("e0", 0), ("f1", 1))
    taken = {}
    for _ in range(4):
        method, _properties, body = channel.basic_get("q")
        taken[body.decode()] = method.delivery_tag
    assert list(taken) == ["b2", "d2", "a1", "c1"]
    channel.basic_nack(taken["d2"], requeue=True)
    _publish(channel, "q", ("g2", 2), ("h1", 1))
    channel.basic_nack(taken["c1"], requeue=True)
    channel.basic_nack(taken["b2"], requeue=True)  # a1 stays unacked
    assert _take_all(channel, "q") == [
        ("b2", True),
        ("d2", True),
        ("g2", False),
        ("c1", True),
        ("f1", False),
        ("h1", False),
        ("e0", False),
    ]


def test_closing_the_channel_requeues_in_place_too(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    channel.queue_declare("q", arguments={"x-max-priority": 5})
    _publish(channel, "q", ("a5", 5), ("b1", 1), ("c5", 5), ("d1", 1))
    taker = connection.channel()
    assert [taker.basic_get("q")[2] for _ in range(3)] == [b"a5", b"c5", b"b1"]
    _publish(channel, "q", ("e5", 5), ("f1", 1))
    taker.close()
    assert _take_all(channel, "q") == [
        ("a5", True),
        ("c5", True),
        ("e5", False),
        ("b1", True),
        ("d1", False),
        ("f1", False),
    ]


def test_a_consumer_that_requeues_gets_the_message_again_before_lower_ones(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 5})
    _publish(channel, "q", ("low", 1), ("high", 5))
    channel.basic_qos(prefetch_count=1)
    received: Received = []
    channel.basic_consume("q", collector(received))
    wait_for(connection, lambda: len(received) == 1)
    channel.basic_nack(received[0][1], requeue=True)
    wait_for(connection, lambda: len(received) == 2)
    channel.basic_ack(received[1][1])
    wait_for(connection, lambda: len(received) == 3)
    channel.basic_ack(received[2][1])
    assert [(body, redelivered) for body, _tag, redelivered in received] == [
        (b"high", False),
        (b"high", True),
        (b"low", False),
    ]


def test_a_message_that_expired_at_the_head_of_its_priority_is_dropped(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 5})
    channel.basic_publish("", "q", b"gone", pika.BasicProperties(priority=1, expiration="0"))
    _publish(channel, "q", ("kept", 1), ("high", 3))
    assert _bodies(channel, "q") == ["high", "kept"]


# -- the argument --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 10, 255])
def test_max_priority_from_0_to_255_is_accepted(channel: BlockingChannel, value: int) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": value})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (256, "{max_value_exceeded,256}"),
        (1000, "{max_value_exceeded,1000}"),
        (-1, "{value_negative,-1}"),
        ("5", '"expected integer, got longstr"'),
        (True, '"expected integer, got bool"'),
    ],
)
def test_other_max_priorities_are_refused(
    channel: BlockingChannel, value: object, reason: str
) -> None:
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("q", arguments={"x-max-priority": value})
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {reason}",
    )


@pytest.mark.parametrize(
    ("again", "text"),
    [
        ({"x-max-priority": 6}, "received '6' but current is '5'"),
        ({}, "received none but current is the value '5' of type 'signedint'"),
    ],
)
def test_redeclaring_with_another_max_priority_is_refused(
    channel: BlockingChannel, again: dict[str, Any], text: str
) -> None:
    channel.queue_declare("q", arguments={"x-max-priority": 5})
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("q", arguments=again)
    assert caught.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q' in vhost '/': "
        f"{text}"
    )
