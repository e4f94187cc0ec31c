"""The largest message: RabbitMQ's max_message_size, refused as soon as a header announces more.

RabbitMQ 3.10.8 checks the size once the whole body is in, and so buffers whatever a header
announces (2^62 bytes, if the client keeps sending); amqp-lite refuses on the header's word,
with RabbitMQ's reply, and keeps none of the body.
"""

from __future__ import annotations

import struct

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from amqp_lite import Broker, run_in_thread
from amqp_lite.limits import DEFAULT_MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE_CAP, Limits
from amqp_lite.wire import methods
from amqp_lite.wire.frames import encode_header, encode_method
from tests.rawclient import connected
from tests.sansio import opened


def test_the_default_and_the_ceiling_are_rabbitmqs() -> None:
    assert Limits().max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 134217728
    assert Limits(max_message_size=2**40).max_message_size == MAX_MESSAGE_SIZE_CAP == 536870912
    assert Limits().message_too_large(134217728) is None
    assert Limits().message_too_large(134217729) == (
        "message size 134217729 is larger than configured max size 134217728"
    )
    # At RabbitMQ's own ceiling the word "configured" goes, as in its text.
    assert Limits(max_message_size=2**40).message_too_large(2**30) == (
        "message size 1073741824 is larger than max size 536870912"
    )
    with pytest.raises(ValueError):
        Limits(max_message_size=-1)


def test_a_header_announcing_too_much_closes_the_channel_before_any_body() -> None:
    peer = opened(limits=Limits(max_message_size=100))
    peer.declare_queue(1, "q")
    publish = encode_method(1, methods.BasicPublish(exchange="", routing_key="q"))
    peer.send(publish + encode_header(1, 60, 2**62, b"\x00\x00"))
    [close] = peer.methods()
    assert close == methods.ChannelClose(
        reply_code=406,
        reply_text="PRECONDITION_FAILED - message size 4611686018427387904 is larger than "
        "configured max size 100",
        class_id=60,
        method_id=40,
    )
    # The body the client goes on sending meets a closed channel: dropped, not kept.
    body_frame = b"\x03\x00\x01" + struct.pack(">I", 1000) + b"x" * 1000 + b"\xce"
    for _ in range(100):
        peer.send(body_frame)
    assert peer.methods() == []
    peer.send_method(1, methods.ChannelCloseOk())
    peer.open_channel(1)
    peer.publish(1, "q", b"y" * 100)  # at the limit: accepted
    assert peer.call(1, methods.QueueDeclare(queue="q", passive=True), methods.QueueDeclareOk) == (
        methods.QueueDeclareOk(queue="q", message_count=1, consumer_count=0)
    )


async def test_over_the_wire_the_connection_and_its_other_channels_carry_on() -> None:
    async with Broker(max_message_size=1000) as broker:
        client = await connected(broker.port)
        await client.open_channel(2)
        await client.declare_queue(2, "q")
        await client.send(
            encode_method(1, methods.BasicPublish(exchange="", routing_key="q"))
            + encode_header(1, 60, 1001, b"\x00\x00")
        )
        close = await client.expect(methods.ChannelClose, 1)
        assert (close.reply_code, close.class_id, close.method_id) == (406, 60, 40)
        assert close.reply_text.endswith(
            "message size 1001 is larger than configured max size 1000"
        )
        await client.send_method(1, methods.ChannelCloseOk())
        await client.publish(2, "q", b"z" * 1000)
        assert await client.get(2, "q") == b"z" * 1000
        await client.close()
        await client.aclose()


def test_pika_hears_rabbitmqs_406() -> None:
    with run_in_thread(max_message_size=4096) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("q")
        channel.basic_publish("", "q", b"x" * 4097)
        with pytest.raises(ChannelClosedByBroker) as closed:
            channel.queue_declare("q", passive=True)
        assert closed.value.reply_code == 406
        assert closed.value.reply_text == (
            "PRECONDITION_FAILED - message size 4097 is larger than configured max size 4096"
        )
        connection.close()


def test_serve_takes_the_limit_in_rabbitmqs_units() -> None:
    from amqp_lite.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["serve", "--max-message-size", "big"])
    assert refused.value.code == 2
