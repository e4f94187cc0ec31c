"""Settling deliveries over the wire with pika: ack, nack, reject, recover, and what a closed
channel or connection gives back. Reply texts and orders are RabbitMQ 3.10's, observed on it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from amqp_lite import ThreadedBroker
from tests.pika_helpers import Received, collector, ready, wait_for

SIZES = [0, 300_000]  # empty, and big enough to span several body frames


def _body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _fill(channel: BlockingChannel, queue: str, count: int) -> None:
    channel.queue_declare(queue)
    for number in range(1, count + 1):
        channel.basic_publish("", queue, str(number).encode())


def _get_all(channel: BlockingChannel, queue: str, *, ack: bool) -> Received:
    """Everything ready in `queue` by basic.get, settled (ack) or left unacked."""
    taken: Received = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=ack)
        if method is None:
            return taken
        taken.append((body, method.delivery_tag, method.redelivered))


def _closed_with(error: ChannelClosedByBroker | ConnectionClosedByBroker) -> tuple[int, str]:
    return error.reply_code, error.reply_text


# -- requeue order -----------------------------------------------------------------------------


def test_requeued_messages_return_ahead_of_newer_ones_in_original_order(
    channel: BlockingChannel,
) -> None:
    _fill(channel, "order", 5)
    tags = [tag for _content, tag, _r in _get_all(channel, "order", ack=False)]
    channel.basic_nack(tags[3], requeue=True)  # "4" first, then "2": order is by position
    channel.basic_nack(tags[1], requeue=True)
    channel.basic_publish("", "order", b"6")
    assert [
        (body, redelivered) for body, _tag, redelivered in _get_all(channel, "order", ack=True)
    ] == [
        (b"2", True),
        (b"4", True),
        (b"6", False),
    ]


@pytest.mark.parametrize("size", SIZES)
def test_consumer_gets_requeued_messages_first(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("order")
    body = _body(size)
    channel.basic_publish("", "order", body + b"1")
    channel.basic_publish("", "order", body + b"2")
    taken = _get_all(channel, "order", ack=False)
    channel.basic_publish("", "order", body + b"3")
    channel.basic_reject(taken[0][1], requeue=True)
    channel.basic_reject(taken[1][1], requeue=True)
    received: Received = []
    channel.basic_consume("order", collector(received), auto_ack=True)
    wait_for(connection, lambda: len(received) == 3)
    assert [(got, redelivered) for got, _tag, redelivered in received] == [
        (body + b"1", True),
        (body + b"2", True),
        (body + b"3", False),
    ]


def test_nack_multiple_requeues_everything_up_to_the_tag(channel: BlockingChannel) -> None:
    _fill(channel, "multi", 5)
    tags = [tag for _content, tag, _r in _get_all(channel, "multi", ack=False)]
    channel.basic_nack(tags[2], multiple=True, requeue=True)
    assert _get_all(channel, "multi", ack=True) == [
        (b"1", 6, True),
        (b"2", 7, True),
        (b"3", 8, True),
    ]


def test_nack_zero_multiple_requeues_everything(channel: BlockingChannel) -> None:
    _fill(channel, "multi", 3)
    _get_all(channel, "multi", ack=False)
    channel.basic_nack(0, multiple=True, requeue=True)
    assert [body for body, _tag, _r in _get_all(channel, "multi", ack=True)] == [b"1", b"2", b"3"]


# -- settling for good -------------------------------------------------------------------------


def test_ack_zero_multiple_acks_everything_outstanding(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    _fill(channel, "all", 3)
    _get_all(channel, "all", ack=False)
    channel.basic_ack(0, multiple=True)
    channel.close()  # would requeue anything still unacked
    assert ready(connection.channel(), "all") == 0


def test_ack_zero_multiple_with_nothing_outstanding_is_fine(channel: BlockingChannel) -> None:
    channel.queue_declare("all")
    channel.basic_ack(0, multiple=True)
    assert ready(channel, "all") == 0


def test_ack_multiple_skips_tags_already_settled(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    _fill(channel, "gaps", 5)
    _get_all(channel, "gaps", ack=False)
    channel.basic_ack(3)
    channel.basic_ack(4, multiple=True)  # 1, 2 and 4; 5 stays unacked
    channel.close()
    assert _get_all(connection.channel(), "gaps", ack=True) == [(b"5", 1, True)]


@pytest.mark.parametrize("size", SIZES)
def test_reject_without_requeue_drops_the_message(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("drop")
    channel.basic_publish("", "drop", _body(size))
    channel.basic_publish("", "drop", b"kept")
    taken = _get_all(channel, "drop", ack=False)
    channel.basic_reject(taken[0][1], requeue=False)
    channel.close()
    assert _get_all(connection.channel(), "drop", ack=True) == [(b"kept", 1, True)]


def test_nack_without_requeue_drops_the_messages(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    _fill(channel, "drop", 3)
    _get_all(channel, "drop", ack=False)
    channel.basic_nack(2, multiple=True, requeue=False)
    channel.close()
    assert [body for body, _tag, _r in _get_all(connection.channel(), "drop", ack=True)] == [b"3"]


# -- unknown tags ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settle",
    [
        lambda channel: channel.basic_ack(5),
        lambda channel: channel.basic_ack(5, multiple=True),
        lambda channel: channel.basic_nack(5),
        lambda channel: channel.basic_reject(5),
    ],
    ids=["ack", "ack-multiple", "nack", "reject"],
)
def test_settling_an_unknown_tag_is_406(
    channel: BlockingChannel, settle: Callable[[BlockingChannel], None]
) -> None:
    channel.queue_declare("tags")
    settle(channel)
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(channel, "tags")  # the error closes the channel before this is answered
    assert _closed_with(closed.value) == (406, "PRECONDITION_FAILED - unknown delivery tag 5")


def test_double_ack_is_406(channel: BlockingChannel) -> None:
    _fill(channel, "tags", 1)
    [(_content, tag, _r)] = _get_all(channel, "tags", ack=False)
    channel.basic_ack(tag)
    channel.basic_ack(tag)
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(channel, "tags")
    assert _closed_with(closed.value) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")


def test_ack_zero_without_multiple_is_406(channel: BlockingChannel) -> None:
    _fill(channel, "tags", 1)
    _get_all(channel, "tags", ack=False)
    channel.basic_ack(0)
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(channel, "tags")
    assert _closed_with(closed.value) == (406, "PRECONDITION_FAILED - unknown delivery tag 0")


def test_tags_belong_to_their_channel(connection: pika.BlockingConnection) -> None:
    first, second = connection.channel(), connection.channel()
    _fill(first, "tags", 1)
    [(_content, tag, _r)] = _get_all(first, "tags", ack=False)
    second.basic_ack(tag)
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(second, "tags")
    assert _closed_with(closed.value) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")
    first.basic_ack(tag)  # still known where it was delivered
    assert ready(first, "tags") == 0


# -- basic.recover -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_recover_requeue_redelivers_unacked_with_redelivered_set(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("recover")
    body = _body(size)
    for _ in range(2):
        channel.basic_publish("", "recover", body)
    received: Received = []
    channel.basic_consume("recover", collector(received))
    wait_for(connection, lambda: len(received) == 2)
    channel.basic_recover(requeue=True)
    wait_for(connection, lambda: len(received) == 4)
    assert received[2:] == [(body, 3, True), (body, 4, True)]
    channel.basic_ack(2, multiple=True)  # the old tags are gone: only 3 and 4 are unacked
    with pytest.raises(ChannelClosedByBroker) as closed:
        ready(channel, "recover")
    assert _closed_with(closed.value) == (406, "PRECONDITION_FAILED - unknown delivery tag 2")


def test_recover_requeue_puts_got_messages_back_in_the_queue(channel: BlockingChannel) -> None:
    _fill(channel, "recover", 3)
    channel.basic_get("recover")
    channel.basic_get("recover")
    channel.basic_recover(requeue=True)
    assert _get_all(channel, "recover", ack=True) == [
        (b"1", 3, True),
        (b"2", 4, True),
        (b"3", 5, False),
    ]


def test_recover_without_requeue_is_not_implemented(channel: BlockingChannel) -> None:
    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.basic_recover(requeue=False)
    assert _closed_with(closed.value) == (540, "NOT_IMPLEMENTED - requeue=false")


# -- closing gives unacked messages back -------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_closing_a_channel_requeues_its_unacked_messages(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("back")
    body = _body(size)
    channel.basic_publish("", "back", body)
    channel.basic_publish("", "back", b"acked")
    channel.basic_publish("", "back", b"from consume")
    channel.basic_get("back")  # unacked
    method, _properties, _received = channel.basic_get("back")
    channel.basic_ack(method.delivery_tag)
    consumed: Received = []
    channel.basic_consume("back", collector(consumed))
    wait_for(connection, lambda: len(consumed) == 1)
    channel.close()
    assert [
        (got, redelivered)
        for got, _tag, redelivered in _get_all(connection.channel(), "back", ack=True)
    ] == [(body, True), (b"from consume", True)]


def test_closing_a_connection_requeues_its_unacked_messages(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    _fill(channel, "back", 2)
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as leaving:
        leaving_channel = leaving.channel()
        _get_all(leaving_channel, "back", ack=False)
    assert _get_all(channel, "back", ack=True) == [(b"1", 1, True), (b"2", 2, True)]


def test_a_dropped_socket_requeues_its_unacked_messages_at_once(
    broker: ThreadedBroker, connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("back")
    dropped = pika.BlockingConnection(pika.URLParameters(broker.url))
    dropped.channel().basic_consume("back", lambda *args: None)  # never acks
    channel.confirm_delivery()
    channel.basic_publish("", "back", b"1")
    assert ready(channel, "back") == 0  # delivered to the consumer about to drop
    received: Received = []
    channel.basic_consume("back", collector(received))
    # No connection.close: the TCP connection just goes, as when a client process dies.
    dropped._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    wait_for(connection, lambda: len(received) == 1)
    assert received == [(b"1", 1, True)]


def test_requeued_message_goes_to_a_waiting_consumer_on_another_channel(
    connection: pika.BlockingConnection,
) -> None:
    holder, waiter = connection.channel(), connection.channel()
    _fill(holder, "handover", 1)
    holder.basic_get("handover")
    received: Received = []
    waiter.basic_consume("handover", collector(received))
    holder.close()
    wait_for(connection, lambda: len(received) == 1)
    assert received == [(b"1", 1, True)]
