"""Direct reply-to (amq.rabbitmq.reply-to) over the wire with pika, as RabbitMQ documents it:
the requester consumes the pseudo-queue in no-ack mode, the broker rewrites `reply_to` into an
address of that consumer, and replies published to the default exchange with the address as
routing key reach it. Every outcome and text was first observed on RabbitMQ 3.10.8.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from amqp_lite import ThreadedBroker
from tests.pika_helpers import wait_for

REPLY_TO = "amq.rabbitmq.reply-to"
REQUEST = pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1")

Replies = list[tuple[Any, Any, bytes]]  # (method, properties, body)


@pytest.fixture
def responder_connection(broker: ThreadedBroker) -> Iterator[pika.BlockingConnection]:
    """The service side of the RPC, on a connection of its own."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield conn
    if conn.is_open:
        conn.close()


@pytest.fixture
def responder(responder_connection: pika.BlockingConnection) -> BlockingChannel:
    channel = responder_connection.channel()
    channel.confirm_delivery()  # so a returned reply raises UnroutableError
    channel.queue_declare("requests")
    return channel


def _listen(channel: BlockingChannel, replies: Replies, **options: Any) -> str:
    def on_reply(_channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
        replies.append((method, properties, body))

    return channel.basic_consume(REPLY_TO, on_reply, auto_ack=True, **options)


def _address(requester: BlockingChannel, responder: BlockingChannel) -> str:
    """Send a request; the reply address the responder receives with it."""
    requester.basic_publish("", "requests", b"request", REQUEST)
    # basic.publish has no reply; a passive declare on the same channel is answered only after
    # the broker has handled the publish, so the other connection's get cannot overtake it.
    requester.queue_declare("requests", passive=True)
    method, properties, _body = responder.basic_get("requests", auto_ack=True)
    assert method is not None
    return properties.reply_to


def _returned(channel: BlockingChannel, key: str, body: bytes) -> tuple[Any, ...]:
    with pytest.raises(UnroutableError) as caught:
        channel.basic_publish("", key, body, mandatory=True)
    (returned,) = caught.value.messages
    method = returned.method
    return method.reply_code, method.reply_text, method.exchange, method.routing_key, returned.body


def _closed_with(channel: BlockingChannel, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ChannelClosedByBroker) as caught:
        call(*args, **kwargs)
        channel.basic_qos()  # a round trip, so an error on an asynchronous method shows
    return f"{caught.value.reply_code} {caught.value.reply_text}"


# -- the round trip ------------------------------------------------------------------------------


def test_a_reply_reaches_the_requesters_reply_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    replies: Replies = []
    tag = _listen(channel, replies)
    address = _address(channel, responder)
    assert address.startswith(REPLY_TO + ".") and len(address) > len(REPLY_TO) + 1
    responder.basic_publish("", address, b"reply", pika.BasicProperties(correlation_id="c1"))
    wait_for(connection, lambda: len(replies) == 1)
    method, properties, body = replies[0]
    assert (method.consumer_tag, method.exchange, method.routing_key) == (tag, "", address)
    assert (method.redelivered, properties.correlation_id, body) == (False, "c1", b"reply")


def test_every_request_of_a_channel_carries_the_same_address(
    channel: BlockingChannel, responder: BlockingChannel
) -> None:
    _listen(channel, [])
    assert _address(channel, responder) == _address(channel, responder)


def test_replies_carry_the_next_delivery_tag_without_using_it_up(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    """Nobody can ack a reply, so RabbitMQ does not spend a delivery tag on it."""
    channel.queue_declare("mine")
    replies: Replies = []
    _listen(channel, replies)
    address = _address(channel, responder)
    channel.basic_publish("", "mine", b"first")
    assert channel.basic_get("mine", auto_ack=True)[0].delivery_tag == 1
    for body in (b"a", b"b"):
        responder.basic_publish("", address, body)
    wait_for(connection, lambda: len(replies) == 2)
    channel.basic_publish("", "mine", b"second")
    method, _properties, _body = channel.basic_get("mine")
    assert method.delivery_tag == 2
    responder.basic_publish("", address, b"c")
    wait_for(connection, lambda: len(replies) == 3)
    channel.basic_ack(2)  # the tag is the get's, not a reply's
    channel.queue_declare("mine", passive=True)  # a round trip: the ack was taken
    assert [(method.delivery_tag, body) for method, _p, body in replies] == [
        (2, b"a"),
        (2, b"b"),
        (3, b"c"),
    ]


def test_a_mandatory_reply_is_delivered_and_returned_both(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    """RabbitMQ 3.10.8 hands the reply to its consumer, but its routing finds no queue."""
    replies: Replies = []
    _listen(channel, replies)
    address = _address(channel, responder)
    assert _returned(responder, address, b"reply") == (312, "NO_ROUTE", "", address, b"reply")
    wait_for(connection, lambda: len(replies) == 1)
    assert replies[0][2] == b"reply"


def test_the_requester_may_reply_to_itself(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    replies: Replies = []
    _listen(channel, replies)
    address = _address(channel, responder)
    channel.basic_publish("", address, b"self")
    wait_for(connection, lambda: len(replies) == 1)


def test_only_the_default_exchange_reaches_a_reply_address(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    replies: Replies = []
    _listen(channel, replies)
    address = _address(channel, responder)
    with pytest.raises(UnroutableError):
        responder.basic_publish("amq.direct", address, b"elsewhere", mandatory=True)
    responder.basic_publish("", address, b"reply")
    wait_for(connection, lambda: len(replies) == 1)
    assert [body for _m, _p, body in replies] == [b"reply"]


# -- replies nobody waits for --------------------------------------------------------------------


def test_a_reply_after_the_requesters_channel_closed_is_dropped_or_returned(
    connection: pika.BlockingConnection, responder: BlockingChannel
) -> None:
    requester = connection.channel()
    _listen(requester, [])
    address = _address(requester, responder)
    requester.close()
    assert _returned(responder, address, b"late") == (312, "NO_ROUTE", "", address, b"late")
    responder.basic_publish("", address, b"late, not mandatory")  # acked and dropped


def test_a_reply_after_the_reply_consumer_was_cancelled_is_returned(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    tag = _listen(channel, [])
    address = _address(channel, responder)
    channel.basic_cancel(tag)
    assert _returned(responder, address, b"late")[:2] == (312, "NO_ROUTE")
    replies: Replies = []
    _listen(channel, replies)  # consuming again makes a new address; the old one stays dead
    assert _address(channel, responder) != address
    assert _returned(responder, address, b"old")[:2] == (312, "NO_ROUTE")
    connection.process_data_events(time_limit=0.05)
    assert replies == []


@pytest.mark.parametrize("key", [REPLY_TO, REPLY_TO + ".bogus"])
def test_a_reply_to_no_address_is_returned(responder: BlockingChannel, key: str) -> None:
    assert _returned(responder, key, b"m") == (312, "NO_ROUTE", "", key, b"m")


# -- what RabbitMQ refuses -----------------------------------------------------------------------


def test_a_reply_consumer_must_not_acknowledge(channel: BlockingChannel) -> None:
    text = _closed_with(channel, channel.basic_consume, REPLY_TO, lambda *a: None, auto_ack=False)
    assert text == "406 PRECONDITION_FAILED - reply consumer cannot acknowledge"


def test_a_channel_has_one_reply_consumer(channel: BlockingChannel) -> None:
    _listen(channel, [])
    text = _closed_with(channel, _listen, channel, [])
    assert text == "406 PRECONDITION_FAILED - reply consumer already set"


def test_a_request_needs_a_reply_consumer_on_its_own_channel(
    connection: pika.BlockingConnection,
) -> None:
    _listen(connection.channel(), [])  # another channel's consumer does not count
    channel = connection.channel()
    text = _closed_with(channel, channel.basic_publish, "", "requests", b"request", REQUEST)
    assert text == "406 PRECONDITION_FAILED - fast reply consumer does not exist"


def test_the_pseudo_queue_cannot_be_read_with_basic_get(channel: BlockingChannel) -> None:
    text = _closed_with(channel, channel.basic_get, REPLY_TO, auto_ack=True)
    assert text == f"404 NOT_FOUND - no queue '{REPLY_TO}' in vhost '/'"


# -- declaring -----------------------------------------------------------------------------------


@pytest.mark.parametrize("passive", [True, False])
def test_declaring_the_pseudo_queue_answers_as_for_a_queue_with_one_consumer(
    channel: BlockingChannel, passive: bool
) -> None:
    """With or without a reply consumer, and whatever the other declare fields say."""
    declared = channel.queue_declare(
        REPLY_TO, passive=passive, durable=True, arguments={"x-max-length": "not checked"}
    ).method
    assert (declared.queue, declared.message_count, declared.consumer_count) == (REPLY_TO, 0, 1)


def test_a_live_reply_address_can_be_declared(
    connection: pika.BlockingConnection, channel: BlockingChannel, responder: BlockingChannel
) -> None:
    requester = connection.channel()
    _listen(requester, [])
    address = _address(requester, responder)
    for passive in (True, False):
        declared = responder.queue_declare(address, passive=passive, exclusive=True).method
        assert (declared.queue, declared.message_count, declared.consumer_count) == (address, 0, 1)
    requester.close()
    text = _closed_with(channel, channel.queue_declare, address, passive=True)
    assert text == f"404 NOT_FOUND - no queue '{address}' in vhost '/'"


@pytest.mark.parametrize("name", [REPLY_TO + ".bogus", REPLY_TO + "X"])
@pytest.mark.parametrize("passive", [True, False])
def test_other_names_with_the_prefix_are_not_found(
    channel: BlockingChannel, name: str, passive: bool
) -> None:
    text = _closed_with(channel, channel.queue_declare, name, passive=passive)
    assert text == f"404 NOT_FOUND - no queue '{name}' in vhost '/'"
