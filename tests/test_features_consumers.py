"""Consumer priorities (x-priority), single active consumer and x-queue-type over the wire with
pika. Outcomes and texts were first observed on RabbitMQ 3.10.8; the one place this broker
deliberately differs is said where it is tested.

Publishers confirm, so a message is in its queue before the test acks or cancels anything:
RabbitMQ orders a publish and an ack from different channels only so.
"""

from __future__ import annotations

from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

from amqp_lite import ThreadedBroker
from tests.pika_helpers import Received, collector, wait_for


@pytest.fixture
def publisher(connection: pika.BlockingConnection) -> BlockingChannel:
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def _publish(channel: BlockingChannel, queue: str, *bodies: str) -> None:
    for body in bodies:
        channel.basic_publish("", queue, body.encode())


def _bodies(received: Received) -> list[str]:
    return [body.decode() for body, _tag, _redelivered in received]


def _consumer(
    connection: pika.BlockingConnection,
    queue: str,
    received: Received,
    *,
    prefetch: int = 0,
    auto_ack: bool = False,
    **arguments: Any,
) -> BlockingChannel:
    channel = connection.channel()
    if prefetch:
        channel.basic_qos(prefetch_count=prefetch)
    channel.basic_consume(queue, collector(received), auto_ack=auto_ack, arguments=arguments)
    return channel


def _settle(connection: pika.BlockingConnection) -> None:
    """Give deliveries that should not come a chance to show up."""
    connection.process_data_events(time_limit=0.05)


# -- consumer priorities -------------------------------------------------------------------------


def test_the_higher_priority_consumer_gets_messages_while_it_has_room(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q")
    low: Received = []
    high: Received = []
    low_channel = _consumer(connection, "q", low, prefetch=2)  # came first, priority 0
    high_channel = _consumer(connection, "q", high, prefetch=2, **{"x-priority": 5})
    _publish(publisher, "q", "m0", "m1", "m2", "m3", "m4", "m5")
    wait_for(connection, lambda: len(high) + len(low) == 4)
    assert (_bodies(high), _bodies(low)) == (["m0", "m1"], ["m2", "m3"])
    high_channel.basic_ack(high[0][1])  # room again: the next waiting message is its
    wait_for(connection, lambda: len(high) == 3)
    low_channel.basic_ack(low[0][1])
    wait_for(connection, lambda: len(low) == 3)
    assert (_bodies(high), _bodies(low)) == (["m0", "m1", "m4"], ["m2", "m3", "m5"])


def test_consumers_of_the_same_priority_take_turns_and_lower_ones_wait(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q")
    first: Received = []
    second: Received = []
    lowest: Received = []
    _consumer(connection, "q", first, auto_ack=True, **{"x-priority": 3})
    _consumer(connection, "q", second, auto_ack=True, **{"x-priority": 3})
    _consumer(connection, "q", lowest, auto_ack=True)
    _publish(publisher, "q", *(f"m{n}" for n in range(6)))
    wait_for(connection, lambda: len(first) + len(second) == 6)
    _settle(connection)
    assert _bodies(first) == ["m0", "m2", "m4"]
    assert _bodies(second) == ["m1", "m3", "m5"]
    assert lowest == []


def test_a_negative_priority_is_below_the_default(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q")
    negative: Received = []
    default: Received = []
    _consumer(connection, "q", negative, auto_ack=True, **{"x-priority": -5})
    _consumer(connection, "q", default, auto_ack=True)
    _publish(publisher, "q", "m0", "m1")
    wait_for(connection, lambda: len(default) == 2)
    _settle(connection)
    assert negative == []


def test_when_the_preferred_consumer_goes_the_others_take_over(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q")
    low: Received = []
    high: Received = []
    _consumer(connection, "q", low, prefetch=10)
    high_channel = _consumer(connection, "q", high, prefetch=1, **{"x-priority": 9})
    _publish(publisher, "q", "m0", "m1", "m2")
    wait_for(connection, lambda: len(high) + len(low) == 3)
    high_channel.close()  # "m0", unacked, goes back to the head of the queue
    wait_for(connection, lambda: len(low) == 3)
    assert [(body, redelivered) for body, _tag, redelivered in low] == [
        (b"m1", False),
        (b"m2", False),
        (b"m0", True),
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [("5", '"expected integer, got longstr"'), (True, '"expected integer, got bool"')],
)
def test_an_x_priority_that_is_not_an_integer_is_refused(
    channel: BlockingChannel, value: object, reason: str
) -> None:
    channel.queue_declare("q")
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.basic_consume("q", collector([]), arguments={"x-priority": value})
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': {reason}",
    )


@pytest.mark.parametrize("value", [-5, 0, 2**40])
def test_any_integer_is_a_priority(channel: BlockingChannel, value: int) -> None:
    channel.queue_declare("q")
    channel.basic_consume("q", collector([]), arguments={"x-priority": value})


# -- single active consumer ----------------------------------------------------------------------

SAC = {"x-single-active-consumer": True}


def test_only_the_first_consumer_gets_messages_whatever_the_priorities(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    first: Received = []
    later: Received = []
    first_channel = _consumer(connection, "q", first, prefetch=2)
    _consumer(connection, "q", later, auto_ack=True, **{"x-priority": 10})
    assert publisher.queue_declare("q", passive=True).method.consumer_count == 2
    _publish(publisher, "q", "m0", "m1", "m2", "m3")
    wait_for(connection, lambda: len(first) == 2)
    first_channel.basic_ack(first[1][1], multiple=True)
    wait_for(connection, lambda: len(first) == 4)
    _settle(connection)
    assert _bodies(first) == ["m0", "m1", "m2", "m3"]
    assert later == []


def test_when_the_active_consumers_channel_closes_the_next_one_takes_over_in_order(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    first: Received = []
    second: Received = []
    third: Received = []
    first_channel = _consumer(connection, "q", first, prefetch=2)
    _consumer(connection, "q", second, auto_ack=True)
    _consumer(connection, "q", third, auto_ack=True)
    _publish(publisher, "q", "m0", "m1", "m2", "m3", "m4")
    wait_for(connection, lambda: len(first) == 2)
    first_channel.close()  # m0 and m1 go back to the head of the queue
    wait_for(connection, lambda: len(second) == 5)
    _settle(connection)
    assert [(body, redelivered) for body, _tag, redelivered in second] == [
        (b"m0", True),
        (b"m1", True),
        (b"m2", False),
        (b"m3", False),
        (b"m4", False),
    ]
    assert third == []


def test_cancelling_a_waiting_consumer_changes_nothing(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    active: Received = []
    active_channel = _consumer(connection, "q", active, prefetch=1)
    waiting_channel = connection.channel()
    waiting_channel.basic_consume("q", collector([]), consumer_tag="waiting")
    _publish(publisher, "q", "m0", "m1")
    wait_for(connection, lambda: len(active) == 1)
    waiting_channel.basic_cancel("waiting")
    active_channel.basic_ack(active[0][1])
    wait_for(connection, lambda: len(active) == 2)
    assert _bodies(active) == ["m0", "m1"]


def test_after_the_active_consumer_cancels_new_messages_go_to_the_next(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    first: Received = []
    second: Received = []
    first_channel = connection.channel()
    first_channel.basic_consume("q", collector(first), auto_ack=True, consumer_tag="first")
    _consumer(connection, "q", second, auto_ack=True)
    _publish(publisher, "q", "m0")
    wait_for(connection, lambda: len(first) == 1)
    first_channel.basic_cancel("first")
    _publish(publisher, "q", "m1", "m2")
    wait_for(connection, lambda: len(second) == 2)
    assert (_bodies(first), _bodies(second)) == (["m0"], ["m1", "m2"])


def _cancel_the_active_holding_two(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> tuple[BlockingChannel, Received, Received]:
    """The active consumer takes m0 and m1 (prefetch 2), leaves m2..m4 waiting, and cancels
    without settling: (its channel, what it got, what the next consumer gets)."""
    publisher.queue_declare("q", arguments=SAC)
    first: Received = []
    second: Received = []
    first_channel = connection.channel()
    first_channel.basic_qos(prefetch_count=2)
    first_channel.basic_consume("q", collector(first), consumer_tag="first")
    _consumer(connection, "q", second, auto_ack=True)
    _publish(publisher, "q", "m0", "m1", "m2", "m3", "m4")
    wait_for(connection, lambda: len(first) == 2)
    first_channel.basic_cancel("first")
    return first_channel, first, second


def test_after_the_active_consumer_cancels_what_waits_stays_until_the_queue_stirs(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    """RabbitMQ makes the next consumer active at once but does not run the queue for it:
    the waiting messages stay put, and an ack of the cancelled consumer does not stir them.
    A requeue does, and puts the requeued messages first."""
    first_channel, first, second = _cancel_the_active_holding_two(connection, publisher)
    _settle(connection)
    assert second == []
    assert publisher.queue_declare("q", passive=True).method.message_count == 3
    first_channel.basic_ack(first[0][1])
    _settle(connection)
    assert second == []
    first_channel.basic_nack(first[1][1], requeue=True)
    wait_for(connection, lambda: len(second) == 4)
    assert [(body, redelivered) for body, _tag, redelivered in second] == [
        (b"m1", True),
        (b"m2", False),
        (b"m3", False),
        (b"m4", False),
    ]


def test_after_the_active_consumer_cancels_a_new_consumer_stirs_the_queue(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    _first_channel, _first, second = _cancel_the_active_holding_two(connection, publisher)
    third: Received = []
    _consumer(connection, "q", third, auto_ack=True)
    wait_for(connection, lambda: len(second) == 3)
    _settle(connection)
    assert (_bodies(second), third) == (["m2", "m3", "m4"], [])


def test_after_the_active_consumer_cancels_a_publish_stirs_the_queue_in_order(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    """Deliberately unlike RabbitMQ 3.10.8, where the new message goes straight to the next
    consumer and overtakes the ones waiting (which stay put): here the queue runs in order."""
    _first_channel, _first, second = _cancel_the_active_holding_two(connection, publisher)
    _publish(publisher, "q", "m5")
    wait_for(connection, lambda: len(second) == 4)
    assert _bodies(second) == ["m2", "m3", "m4", "m5"]


def test_when_the_active_consumers_connection_drops_the_next_one_takes_over_in_order(
    broker: ThreadedBroker, connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    other = pika.BlockingConnection(pika.URLParameters(broker.url))
    first: Received = []
    _consumer(other, "q", first, prefetch=2)
    second: Received = []
    _consumer(connection, "q", second, auto_ack=True)
    _publish(publisher, "q", "m0", "m1", "m2")
    wait_for(other, lambda: len(first) == 2)
    other.close()
    wait_for(connection, lambda: len(second) == 3)
    assert [(body, redelivered) for body, _tag, redelivered in second] == [
        (b"m0", True),
        (b"m1", True),
        (b"m2", False),
    ]


def test_basic_get_takes_from_the_queue_beside_the_active_consumer(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments=SAC)
    active: Received = []
    _consumer(connection, "q", active, prefetch=1)
    _publish(publisher, "q", "m0", "m1")
    wait_for(connection, lambda: len(active) == 1)
    _method, _properties, body = publisher.basic_get("q", auto_ack=True)
    assert (_bodies(active), body) == (["m0"], b"m1")


def test_an_exclusive_consumer_is_refused_beside_an_active_one(
    connection: pika.BlockingConnection,
) -> None:
    channel = connection.channel()
    channel.queue_declare("q", arguments=SAC)
    channel.basic_consume("q", collector([]))
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.basic_consume("q", collector([]), exclusive=True)
    assert (caught.value.reply_code, caught.value.reply_text) == (
        403,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    )


def test_single_active_consumer_false_is_an_ordinary_queue(
    connection: pika.BlockingConnection, publisher: BlockingChannel
) -> None:
    publisher.queue_declare("q", arguments={"x-single-active-consumer": False})
    first: Received = []
    second: Received = []
    _consumer(connection, "q", first, auto_ack=True)
    _consumer(connection, "q", second, auto_ack=True)
    _publish(publisher, "q", "m0", "m1")
    wait_for(connection, lambda: len(first) + len(second) == 2)
    assert (_bodies(first), _bodies(second)) == (["m0"], ["m1"])


# -- queue arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"x-single-active-consumer": "true"}, "{unacceptable_type,longstr}"),
        ({"x-single-active-consumer": 1}, "{unacceptable_type,signedint}"),
        ({"x-queue-type": "bogus"}, "\"unsupported queue type 'bogus'\""),
        ({"x-queue-type": "Classic"}, "\"unsupported queue type 'Classic'\""),
        ({"x-queue-type": 5}, "{unacceptable_type,signedint}"),
    ],
)
def test_bad_queue_arguments_are_refused(
    channel: BlockingChannel, arguments: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("q", arguments=arguments)
    key = next(iter(arguments))
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue 'q' in vhost '/': {reason}",
    )


@pytest.mark.parametrize(
    ("first", "again"), [("classic", "classic"), ("classic", None), (None, "classic")]
)
def test_classic_is_accepted_and_the_same_as_no_queue_type(
    channel: BlockingChannel, first: str | None, again: str | None
) -> None:
    def arguments(value: str | None) -> dict[str, str]:
        return {} if value is None else {"x-queue-type": value}

    channel.queue_declare("q", arguments=arguments(first))
    channel.queue_declare("q", arguments=arguments(again))


@pytest.mark.parametrize(
    ("first", "again", "text"),
    [
        ("classic", "quorum", "received 'quorum' but current is 'classic'"),
        (None, "quorum", "received the value 'quorum' of type 'longstr' but current is none"),
    ],
)
def test_redeclaring_with_another_queue_type_is_refused(
    channel: BlockingChannel, first: str | None, again: str, text: str
) -> None:
    channel.queue_declare("q", arguments={} if first is None else {"x-queue-type": first})
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("q", arguments={"x-queue-type": again})
    assert caught.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': {text}"
    )
