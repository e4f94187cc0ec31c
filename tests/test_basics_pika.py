"""The everyday path over real TCP with pika: declare, publish, consume, get, ack."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker


def test_publish_and_get_round_trip(channel) -> None:
    channel.queue_declare("hello")
    channel.basic_publish("", "hello", b"Hello, world")
    method, _properties, body = channel.basic_get("hello", auto_ack=True)
    assert body == b"Hello, world"
    assert method.routing_key == "hello"
    assert method.message_count == 0
    assert channel.basic_get("hello", auto_ack=True) == (None, None, None)


def test_all_properties_survive_byte_for_byte(channel) -> None:
    channel.queue_declare("props")
    sent = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"a": 1, "b": "two", "nested": {"list": [1, "x", True]}},
        delivery_mode=2,
        priority=5,
        correlation_id="corr",
        reply_to="reply",
        expiration="60000",
        message_id="id-1",
        timestamp=1700000000,
        type="kind",
        user_id="guest",
        app_id="app",
        cluster_id="cluster",
    )
    channel.basic_publish("", "props", b"{}", properties=sent)
    _method, received, body = channel.basic_get("props", auto_ack=True)
    assert body == b"{}"
    for name in (
        "content_type",
        "content_encoding",
        "headers",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
        "cluster_id",
    ):
        assert getattr(received, name) == getattr(sent, name), name


@pytest.mark.parametrize("size", [0, 1, 131072 - 8, 131072, 1_000_000])
def test_bodies_of_any_size_are_reassembled(channel, size: int) -> None:
    channel.queue_declare("sizes")
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    channel.basic_publish("", "sizes", body)
    _method, _props, received = channel.basic_get("sizes", auto_ack=True)
    assert received == body


def test_consume_and_ack(connection, channel) -> None:
    channel.queue_declare("work")
    for i in range(5):
        channel.basic_publish("", "work", str(i).encode())
    received = []
    for method, _props, body in channel.consume("work", inactivity_timeout=5):
        assert method is not None
        received.append(body)
        channel.basic_ack(method.delivery_tag)
        if len(received) == 5:
            break
    channel.cancel()
    assert received == [b"0", b"1", b"2", b"3", b"4"]
    assert channel.queue_declare("work", passive=True).method.message_count == 0


def test_missing_queue_closes_the_channel_with_404(connection) -> None:
    channel = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.queue_declare("nope", passive=True)
    assert caught.value.reply_code == 404
    assert caught.value.reply_text == "NOT_FOUND - no queue 'nope' in vhost '/'"
    assert connection.is_open
    assert (
        connection.channel().queue_declare("", exclusive=True).method.queue.startswith("amq.gen-")
    )
