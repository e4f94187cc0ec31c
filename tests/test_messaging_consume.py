"""Consuming over the wire with pika: consumers, basic.get, prefetch, round-robin, channel.flow.

Behaviour and reply texts are RabbitMQ 3.10's, observed on a real broker, except channel.flow
active=false, which RabbitMQ refuses (540) and we implement as the spec's pause.

Absence of a delivery is proven by the queue's ready count after a round trip, never by waiting:
the broker answers in order, so whatever it delivered was sent before the count.
"""

from __future__ import annotations

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from amqp_lite import ThreadedBroker
from tests.pika_helpers import Received, collector, ready, wait_for

SIZES = [0, 300_000]  # empty, and big enough to span several body frames


def _body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _publish(channel: BlockingChannel, queue: str, count: int) -> None:
    for number in range(count):
        channel.basic_publish("", queue, str(number).encode())


def _publisher(connection: pika.BlockingConnection) -> BlockingChannel:
    """A channel whose publishes are enqueued when basic_publish returns (confirms), so that a
    round trip on another channel sees them, as on RabbitMQ where channels do not share an order.
    """
    publisher = connection.channel()
    publisher.confirm_delivery()
    return publisher


def _bodies(received: Received) -> list[bytes]:
    return [body for body, _tag, _redelivered in received]


# -- consumers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_consumer_receives_in_order_and_ack_removes(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("work")
    bodies = [_body(size), b"two", _body(size)]
    for body in bodies:
        channel.basic_publish("", "work", body)
    received: Received = []
    channel.basic_consume("work", collector(received))
    wait_for(connection, lambda: len(received) == 3)
    assert _bodies(received) == bodies
    assert [tag for _content, tag, _r in received] == [1, 2, 3]
    assert not any(redelivered for _b, _t, redelivered in received)
    channel.basic_ack(3, multiple=True)
    channel.close()
    assert ready(connection.channel(), "work") == 0


def test_no_ack_consumer_settles_on_delivery(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("noack")
    _publish(channel, "noack", 3)
    received: Received = []
    channel.basic_consume("noack", collector(received), auto_ack=True)
    wait_for(connection, lambda: len(received) == 3)
    channel.close()  # nothing is unacked, so nothing comes back
    assert ready(connection.channel(), "noack") == 0


def test_acking_a_no_ack_delivery_is_406(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("noack")
    _publish(channel, "noack", 1)
    received: Received = []
    channel.basic_consume("noack", collector(received), auto_ack=True)
    wait_for(connection, lambda: len(received) == 1)
    channel.basic_ack(received[0][1])
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(channel, "noack")
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - unknown delivery tag 1",
    )


def test_cancel_stops_deliveries_and_its_unacked_can_still_be_acked(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("cancel")
    _publish(channel, "cancel", 1)
    received: Received = []
    tag = channel.basic_consume("cancel", collector(received))
    wait_for(connection, lambda: len(received) == 1)
    channel.basic_cancel(tag)  # waits for cancel-ok
    _publish(_publisher(connection), "cancel", 1)
    assert ready(channel, "cancel") == 1  # not delivered: nobody consumes now
    channel.basic_ack(received[0][1])
    channel.close()
    assert ready(connection.channel(), "cancel") == 1  # only the undelivered one


def test_consumer_tag_reused_on_a_channel_is_530(channel: BlockingChannel) -> None:
    channel.queue_declare("reuse")
    channel.basic_consume("reuse", lambda *args: None, consumer_tag="same")
    with pytest.raises(ConnectionClosedByBroker) as closed:
        # pika refuses a duplicate tag itself: send the method underneath it.
        channel._impl._rpc(
            pika.spec.Basic.Consume(queue="reuse", consumer_tag="same"),
            None,
            [pika.spec.Basic.ConsumeOk],
        )
        channel.queue_declare("reuse", passive=True)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        530,
        "NOT_ALLOWED - attempt to reuse consumer tag 'same'",
    )


# -- exclusive consumers -----------------------------------------------------------------------

EXCLUSIVE_USE = "ACCESS_REFUSED - queue 'solo' in vhost '/' in exclusive use"


def test_second_consumer_beside_an_exclusive_one_is_403(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("solo")
    channel.basic_consume("solo", lambda *args: None, exclusive=True)
    other = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as closed:
        other.basic_consume("solo", lambda *args: None)
    assert (closed.value.reply_code, closed.value.reply_text) == (403, EXCLUSIVE_USE)
    assert channel.is_open


def test_exclusive_consumer_when_others_exist_is_403(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("solo")
    channel.basic_consume("solo", lambda *args: None)
    elsewhere = pika.BlockingConnection(pika.URLParameters(broker.url))
    with pytest.raises(ChannelClosedByBroker) as closed:
        elsewhere.channel().basic_consume("solo", lambda *args: None, exclusive=True)
    elsewhere.close()
    assert (closed.value.reply_code, closed.value.reply_text) == (403, EXCLUSIVE_USE)


def test_after_the_exclusive_consumer_cancels_others_may_consume(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("solo")
    tag = channel.basic_consume("solo", lambda *args: None, exclusive=True)
    channel.basic_cancel(tag)
    received: Received = []
    connection.channel().basic_consume("solo", collector(received))
    _publish(channel, "solo", 1)
    wait_for(connection, lambda: len(received) == 1)


# -- basic.get ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_get_reports_the_messages_left_then_get_empty(channel: BlockingChannel, size: int) -> None:
    channel.queue_declare("get")
    body = _body(size)
    for _ in range(3):
        channel.basic_publish("", "get", body)
    left = []
    for _ in range(3):
        method, _properties, received = channel.basic_get("get", auto_ack=True)
        assert received == body
        assert (method.exchange, method.routing_key, method.redelivered) == ("", "get", False)
        left.append(method.message_count)
    assert left == [2, 1, 0]
    assert channel.basic_get("get", auto_ack=True) == (None, None, None)


def test_get_of_a_missing_queue_is_404(channel: BlockingChannel) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_get("absent")
    assert (closed.value.reply_code, closed.value.reply_text) == (
        404,
        "NOT_FOUND - no queue 'absent' in vhost '/'",
    )


def test_get_tags_and_consumer_tags_share_one_sequence(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("mixed")
    _publish(channel, "mixed", 2)
    method, _properties, _body_received = channel.basic_get("mixed")
    assert method.delivery_tag == 1
    received: Received = []
    channel.basic_consume("mixed", collector(received))
    wait_for(connection, lambda: len(received) == 1)
    assert received[0][1] == 2


# -- prefetch ----------------------------------------------------------------------------------


def test_per_consumer_prefetch_applies_to_each_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("qos")
    channel.basic_qos(prefetch_count=2)
    first: Received = []
    second: Received = []
    channel.basic_consume("qos", collector(first))
    channel.basic_consume("qos", collector(second))
    _publish(_publisher(connection), "qos", 10)
    wait_for(connection, lambda: len(first) + len(second) == 4)
    assert ready(channel, "qos") == 6
    connection.process_data_events(time_limit=0)
    assert (_bodies(first), _bodies(second)) == ([b"0", b"2"], [b"1", b"3"])
    channel.basic_ack(first[0][1])  # frees one unit of the first consumer's credit only
    wait_for(connection, lambda: len(first) == 3)
    assert ready(channel, "qos") == 5
    assert _bodies(first)[-1] == b"4"


def test_global_prefetch_is_shared_by_the_channels_consumers(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("qos")
    channel.basic_qos(prefetch_count=3, global_qos=True)
    first: Received = []
    second: Received = []
    channel.basic_consume("qos", collector(first))
    channel.basic_consume("qos", collector(second))
    _publish(_publisher(connection), "qos", 10)
    wait_for(connection, lambda: len(first) + len(second) == 3)
    assert ready(channel, "qos") == 7
    channel.basic_ack(first[0][1])
    wait_for(connection, lambda: len(first) + len(second) == 4)
    assert ready(channel, "qos") == 6


def test_per_consumer_and_global_prefetch_both_hold(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("qos")
    channel.basic_qos(prefetch_count=2)
    channel.basic_qos(prefetch_count=3, global_qos=True)
    first: Received = []
    second: Received = []
    channel.basic_consume("qos", collector(first))
    channel.basic_consume("qos", collector(second))
    _publish(_publisher(connection), "qos", 10)
    wait_for(connection, lambda: len(first) + len(second) == 3)
    assert ready(channel, "qos") == 7
    connection.process_data_events(time_limit=0)
    assert (len(first), len(second)) == (2, 1)


def test_messages_taken_with_get_do_not_count_against_global_prefetch(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("qos")
    _publish(channel, "qos", 5)
    channel.basic_qos(prefetch_count=2, global_qos=True)
    for _ in range(2):
        channel.basic_get("qos")  # left unacked
    received: Received = []
    channel.basic_consume("qos", collector(received))
    wait_for(connection, lambda: len(received) == 2)
    assert ready(channel, "qos") == 1


def test_prefetch_set_later_applies_to_later_consumers_only(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("early")
    channel.queue_declare("late")
    early: Received = []
    late: Received = []
    channel.basic_consume("early", collector(early))
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("late", collector(late))
    publisher = _publisher(connection)
    _publish(publisher, "early", 3)
    _publish(publisher, "late", 3)
    wait_for(connection, lambda: len(early) == 3 and len(late) == 1)
    assert ready(channel, "late") == 2


def test_prefetch_size_is_not_implemented_and_closes_the_connection(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.basic_qos(prefetch_size=4096)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        540,
        "NOT_IMPLEMENTED - prefetch_size!=0 (4096)",
    )


@pytest.mark.parametrize("size", SIZES)
def test_prefetch_one_with_acks_drains_the_queue_in_order(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("one")
    bodies = [_body(size) + bytes([number]) for number in range(4)]
    for body in bodies:
        channel.basic_publish("", "one", body)
    channel.basic_qos(prefetch_count=1)
    received: Received = []
    channel.basic_consume("one", collector(received))
    for count in range(1, 5):
        wait_for(connection, lambda count=count: len(received) == count)
        assert ready(channel, "one") == 4 - count
        channel.basic_ack(received[-1][1])
    assert _bodies(received) == bodies


# -- round-robin -------------------------------------------------------------------------------


def test_consumers_of_a_queue_take_turns(connection: pika.BlockingConnection) -> None:
    consumers: list[Received] = [[], [], []]
    channels = [connection.channel() for _ in consumers]
    channels[0].queue_declare("turns")
    for consumer_channel, received in zip(channels, consumers, strict=True):
        consumer_channel.basic_consume("turns", collector(received))
    _publish(_publisher(connection), "turns", 9)
    wait_for(connection, lambda: sum(map(len, consumers)) == 9)
    assert [_bodies(received) for received in consumers] == [
        [b"0", b"3", b"6"],
        [b"1", b"4", b"7"],
        [b"2", b"5", b"8"],
    ]


# -- channel.flow ------------------------------------------------------------------------------


@pytest.mark.parametrize("auto_ack", [False, True])
def test_flow_off_pauses_deliveries_and_flow_on_resumes_them(
    connection: pika.BlockingConnection, channel: BlockingChannel, auto_ack: bool
) -> None:
    # RabbitMQ 3.10 answers active=false with 540 NOT_IMPLEMENTED; we follow the spec instead.
    channel.queue_declare("flow")
    received: Received = []
    channel.basic_consume("flow", collector(received), auto_ack=auto_ack)
    assert channel.flow(False) is False
    publisher = _publisher(connection)
    _publish(publisher, "flow", 3)
    assert ready(channel, "flow") == 3  # held back for the paused channel
    connection.process_data_events(time_limit=0)
    assert received == []
    assert channel.flow(True) is True
    wait_for(connection, lambda: len(received) == 3)
    assert _bodies(received) == [b"0", b"1", b"2"]


def test_flow_off_on_one_channel_leaves_the_others_consuming(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("flow")
    paused: Received = []
    flowing: Received = []
    channel.basic_consume("flow", collector(paused))
    connection.channel().basic_consume("flow", collector(flowing))
    channel.flow(False)
    _publish(_publisher(connection), "flow", 4)
    wait_for(connection, lambda: len(flowing) == 4)
    assert paused == []


# -- independent channels ----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_an_error_on_one_channel_leaves_the_others_consuming(
    connection: pika.BlockingConnection, size: int
) -> None:
    first, second, failing = (connection.channel() for _ in range(3))
    first.queue_declare("a")
    second.queue_declare("b")
    got_a: Received = []
    got_b: Received = []
    first.basic_consume("a", collector(got_a))
    second.basic_consume("b", collector(got_b))
    with pytest.raises(ChannelClosedByBroker):
        failing.queue_declare("absent", passive=True)
    body = _body(size)
    publisher = _publisher(connection)
    publisher.basic_publish("", "a", body)
    publisher.basic_publish("", "b", body)
    wait_for(connection, lambda: len(got_a) == len(got_b) == 1)
    assert _bodies(got_a) == _bodies(got_b) == [body]


def test_a_consuming_channel_closed_by_an_error_hands_its_messages_to_another(
    connection: pika.BlockingConnection,
) -> None:
    failing, surviving = connection.channel(), connection.channel()
    failing.queue_declare("shared")
    failing.basic_qos(prefetch_count=1)
    held: Received = []
    failing.basic_consume("shared", collector(held))
    _publish(surviving, "shared", 1)
    wait_for(connection, lambda: len(held) == 1)
    received: Received = []
    surviving.basic_consume("shared", collector(received))
    failing.basic_ack(99)  # unknown tag: 406 closes that channel, requeueing what it held
    wait_for(connection, lambda: len(received) == 1)
    assert received == [(b"0", 1, True)]
    wait_for(connection, lambda: failing.is_closed)
