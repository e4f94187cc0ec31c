"""Publishing over the wire with pika: mandatory returns, publisher confirms, transactions.

Reply codes and texts are RabbitMQ 3.10's, observed on a real broker.
"""

from __future__ import annotations

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from tests.pika_helpers import ready

SIZES = [0, 300_000]  # empty, and big enough to span several body frames


def _body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _drain(channel: BlockingChannel, queue: str) -> list[bytes]:
    bodies = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


# -- mandatory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange", ["", "amq.direct"])
@pytest.mark.parametrize("size", SIZES)
def test_unroutable_mandatory_publish_is_returned_with_its_message(
    connection: pika.BlockingConnection, channel: BlockingChannel, exchange: str, size: int
) -> None:
    returned = []
    channel.add_on_return_callback(lambda _ch, *message: returned.append(message))
    body = _body(size)
    sent = pika.BasicProperties(message_id="m-1", headers={"k": "v"})
    channel.basic_publish(exchange, "nowhere", body, properties=sent, mandatory=True)
    channel.queue_declare("", exclusive=True)  # a round trip: the return was sent before its reply
    connection.process_data_events(time_limit=0)
    [(method, properties, returned_body)] = returned
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == (exchange, "nowhere")
    assert returned_body == body
    assert (properties.message_id, properties.headers) == ("m-1", {"k": "v"})


def test_unroutable_publish_without_mandatory_is_dropped_silently(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    returned = []
    channel.add_on_return_callback(lambda *args: returned.append(args))
    channel.basic_publish("", "nowhere", b"lost")
    channel.queue_declare("", exclusive=True)
    connection.process_data_events(time_limit=0)
    assert returned == []
    assert channel.is_open


def test_routable_mandatory_publish_is_not_returned(channel: BlockingChannel) -> None:
    channel.queue_declare("target")
    channel.confirm_delivery()  # a return would come before the ack and make pika raise
    channel.basic_publish("", "target", b"kept", mandatory=True)
    assert ready(channel, "target") == 1


@pytest.mark.parametrize("size", SIZES)
def test_with_confirms_an_unroutable_mandatory_publish_raises_unroutable(
    channel: BlockingChannel, size: int
) -> None:
    # pika raises UnroutableError only if the return arrives before the publish's ack.
    channel.confirm_delivery()
    body = _body(size)
    with pytest.raises(UnroutableError) as raised:
        channel.basic_publish("", "nowhere", body, mandatory=True)
    [returned] = raised.value.messages
    assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
    assert returned.body == body
    channel.queue_declare("after")
    channel.basic_publish("", "after", b"fine", mandatory=True)  # the channel carries on
    assert ready(channel, "after") == 1


# -- publisher confirms ------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_every_confirmed_publish_is_acked_and_enqueued(channel: BlockingChannel, size: int) -> None:
    channel.queue_declare("confirmed")
    channel.confirm_delivery()
    body = _body(size)
    for _ in range(5):
        channel.basic_publish("", "confirmed", body)  # raises unless acked
    assert _drain(channel, "confirmed") == [body] * 5


def test_confirm_select_twice_is_fine(channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    channel._impl.confirm_delivery(lambda _frame: None)  # pika refuses twice; send it anyway
    channel.queue_declare("twice")
    channel.basic_publish("", "twice", b"x")
    assert channel.is_open


def test_tx_select_after_confirm_select_is_406(channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.tx_select()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    )


def test_confirm_select_after_tx_select_is_406(channel: BlockingChannel) -> None:
    channel.tx_select()
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.confirm_delivery()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    )


# -- transactions ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_transactional_publishes_appear_only_at_commit_in_order(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("tx")
    observer = connection.channel()
    channel.tx_select()
    bodies = [_body(size), b"second"]
    for body in bodies:
        channel.basic_publish("", "tx", body)
    assert ready(observer, "tx") == 0
    channel.tx_commit()
    assert _drain(observer, "tx") == bodies


def test_rollback_discards_the_transactions_publishes(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("tx")
    channel.tx_select()
    channel.basic_publish("", "tx", b"discarded")
    channel.tx_rollback()
    channel.basic_publish("", "tx", b"kept")
    channel.tx_commit()
    assert _drain(connection.channel(), "tx") == [b"kept"]


def test_uncommitted_publishes_vanish_with_the_channel(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("tx")
    channel.tx_select()
    channel.basic_publish("", "tx", b"never")
    channel.close()
    assert ready(connection.channel(), "tx") == 0


@pytest.mark.parametrize("size", SIZES)
def test_ack_in_a_transaction_takes_effect_at_commit(
    connection: pika.BlockingConnection, channel: BlockingChannel, size: int
) -> None:
    channel.queue_declare("tx")
    channel.basic_publish("", "tx", _body(size))
    method, _properties, _body_received = channel.basic_get("tx")
    channel.tx_select()
    channel.basic_ack(method.delivery_tag)
    channel.tx_commit()
    channel.close()  # an unacked message would be requeued now
    assert ready(connection.channel(), "tx") == 0


def test_rolled_back_ack_leaves_the_message_unacked(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("tx")
    channel.basic_publish("", "tx", b"still mine")
    method, _properties, _body_received = channel.basic_get("tx")
    channel.tx_select()
    channel.basic_ack(method.delivery_tag)
    channel.tx_rollback()
    observer = connection.channel()
    assert ready(observer, "tx") == 0  # unacked, not requeued by the rollback
    channel.close()
    redelivered, _properties, body = observer.basic_get("tx", auto_ack=True)
    assert (body, redelivered.redelivered) == (b"still mine", True)


def test_rolled_back_ack_can_be_acked_again_and_committed(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("tx")
    channel.basic_publish("", "tx", b"x")
    method, _properties, _body_received = channel.basic_get("tx")
    channel.tx_select()
    channel.basic_ack(method.delivery_tag)
    channel.tx_rollback()
    channel.basic_ack(method.delivery_tag)  # the tag is known again
    channel.tx_commit()
    channel.close()
    assert ready(connection.channel(), "tx") == 0


def test_nack_requeue_in_a_transaction_requeues_at_commit(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.queue_declare("tx")
    channel.basic_publish("", "tx", b"n")
    method, _properties, _body_received = channel.basic_get("tx")
    channel.tx_select()
    channel.basic_nack(method.delivery_tag, requeue=True)
    observer = connection.channel()
    assert ready(observer, "tx") == 0
    channel.tx_commit()
    redelivered, _properties, body = observer.basic_get("tx", auto_ack=True)
    assert (body, redelivered.redelivered) == (b"n", True)


@pytest.mark.parametrize("method_name", ["tx_commit", "tx_rollback"])
def test_commit_or_rollback_without_select_is_406(
    channel: BlockingChannel, method_name: str
) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        getattr(channel, method_name)()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - channel is not transactional",
    )
