"""Broken and out-of-order frames: the close, reply code, text and class/method ids RabbitMQ sends.

Every expectation was first observed on RabbitMQ 3.10.8 with the same raw bytes.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import AsyncIterator

import pika
import pytest

from amqp_lite import Broker, ThreadedBroker
from amqp_lite.wire import methods
from amqp_lite.wire.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    encode_body,
    encode_content,
    encode_header,
    encode_method,
)
from amqp_lite.wire.properties import EMPTY_RAW_PROPERTIES
from tests.rawclient import RawClient, connected

PUBLISH_IDS = (60, 40)  # RabbitMQ blames the basic.publish whose content goes wrong


@pytest.fixture
async def client(server: Broker) -> AsyncIterator[RawClient]:
    """Handshake done, channel 1 open."""
    async with await RawClient.connect(server.port) as raw:
        await raw.handshake()
        await raw.open_channel(1)
        yield raw


def _frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def _publish(channel: int = 1, routing_key: str = "q", **flags: bool) -> bytes:
    return encode_method(channel, methods.BasicPublish(routing_key=routing_key, **flags))


def _header(channel: int = 1, size: int = 3, class_id: int = 60) -> bytes:
    return encode_header(channel, class_id, size, EMPTY_RAW_PROPERTIES)


def _body(channel: int = 1, data: bytes = b"abc") -> bytes:
    return encode_body(channel, data, 131072)


def _declare(channel: int = 1) -> bytes:
    return encode_method(channel, methods.QueueDeclare(queue="x"))


async def _close_after(client: RawClient, data: bytes, reply_code: int) -> methods.Method:
    await client.send(data)
    return await client.expect_connection_close(reply_code)


# -- the frame envelope: 501 --------------------------------------------------------------------


@pytest.mark.parametrize("frame_max", [4096, 131072])
async def test_a_frame_over_the_negotiated_frame_max_is_501(server: Broker, frame_max: int) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.handshake(frame_max=frame_max)
        await client.open_channel(1)
        # Only the frame header needs to arrive: the size alone condemns it.
        close = await _close_after(client, struct.pack(">BHI", 3, 1, frame_max + 1), 501)
    assert close.reply_text.startswith("FRAME_ERROR - type 3")
    assert f"frame_too_large {frame_max + 1}" in close.reply_text
    assert (close.class_id, close.method_id) == (0, 0)


async def test_a_payload_of_exactly_frame_max_is_accepted_like_rabbitmq(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.handshake(frame_max=4096)
        await client.open_channel(1)
        await client.declare_queue(1, "fudge")
        await client.send(
            _publish(routing_key="fudge") + _header(size=4096) + _frame(3, 1, b"x" * 4096)
        )
        assert await client.get(1, "fudge") == b"x" * 4096
        await client.close()


async def test_a_bad_frame_end_is_501(client: RawClient) -> None:
    flow = encode_method(1, methods.ChannelFlow(active=True))
    close = await _close_after(client, flow[:-1] + b"\x00", 501)
    assert close.reply_text.startswith("FRAME_ERROR - type 1")
    assert "invalid frame end" in close.reply_text  # RabbitMQ: {invalid_frame_end_marker,0}


async def test_an_unknown_frame_type_is_501(client: RawClient) -> None:
    close = await _close_after(client, _frame(9, 1, b""), 501)
    assert close.reply_text.startswith("FRAME_ERROR - type 9")


async def test_a_heartbeat_with_a_payload_is_501(client: RawClient) -> None:
    close = await _close_after(client, _frame(8, 0, b"x"), 501)
    assert close.reply_text.startswith("FRAME_ERROR - ")


async def test_a_heartbeat_on_a_channel_is_505(client: RawClient) -> None:
    close = await _close_after(client, _frame(8, 1, b""), 505)
    assert close.reply_text.startswith("UNEXPECTED_FRAME - ")


async def test_reply_texts_carry_their_code_name_once(client: RawClient) -> None:
    close = await _close_after(client, b"\x00" * 7 + b"garbage!" * 4, 501)
    assert close.reply_text.count("FRAME_ERROR") == 1, close.reply_text


# -- content in the wrong place: 505 -------------------------------------------------------------

CONTENT_OUT_OF_PLACE = "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
EXPECTED_BODY = "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
EXPECTED_HEADER = (
    "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
)


@pytest.mark.parametrize("frame", [_header(), _body()], ids=["header", "body"])
async def test_content_without_a_publish_is_505(client: RawClient, frame: bytes) -> None:
    close = await _close_after(client, frame, 505)
    assert close.reply_text == CONTENT_OUT_OF_PLACE
    assert (close.class_id, close.method_id) == (0, 0)


@pytest.mark.parametrize("frame", [_header(2), _body(2)], ids=["header", "body"])
async def test_content_on_a_channel_never_opened_is_505(client: RawClient, frame: bytes) -> None:
    close = await _close_after(client, frame, 505)
    assert close.reply_text == CONTENT_OUT_OF_PLACE


async def test_content_on_channel_zero_is_505(client: RawClient) -> None:
    await _close_after(client, _body(0), 505)


async def test_a_method_between_publish_and_header_is_505(client: RawClient) -> None:
    close = await _close_after(client, _publish() + _declare(), 505)
    assert close.reply_text == EXPECTED_HEADER
    assert (close.class_id, close.method_id) == PUBLISH_IDS


async def test_a_method_between_header_and_body_is_505(client: RawClient) -> None:
    close = await _close_after(client, _publish() + _header() + _declare(), 505)
    assert close.reply_text == EXPECTED_BODY
    assert (close.class_id, close.method_id) == PUBLISH_IDS


async def test_a_method_between_two_body_frames_is_505(client: RawClient) -> None:
    data = _publish() + _header(size=6) + _body(data=b"abc") + _declare()
    close = await _close_after(client, data, 505)
    assert close.reply_text == EXPECTED_BODY
    assert (close.class_id, close.method_id) == PUBLISH_IDS


async def test_a_second_header_instead_of_the_body_is_505(client: RawClient) -> None:
    close = await _close_after(client, _publish() + _header() + _header(), 505)
    assert close.reply_text == EXPECTED_BODY
    assert (close.class_id, close.method_id) == PUBLISH_IDS


async def test_a_header_of_another_class_is_505(client: RawClient) -> None:
    close = await _close_after(client, _publish() + _header(class_id=50), 505)
    assert close.reply_text == (
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
    )
    assert (close.class_id, close.method_id) == PUBLISH_IDS


async def test_interleaved_content_on_another_channel_is_fine(client: RawClient) -> None:
    """Content must be contiguous per channel only: channel 2 may talk in between."""
    await client.open_channel(2)
    await client.declare_queue(1, "q")
    await client.send(
        _publish(1)
        + encode_method(2, methods.QueueDeclare(queue="q", passive=True))
        + _header(1)
        + _publish(2)
        + _body(1, b"one")
        + _header(2)
        + _body(2, b"two")
    )
    await client.expect(methods.QueueDeclareOk, 2)
    assert await client.get(1, "q") == b"one"
    assert await client.get(1, "q") == b"two"
    await client.close()


async def test_publishing_to_a_missing_exchange_closes_the_channel_naming_basic_publish(
    client: RawClient,
) -> None:
    publish = encode_method(1, methods.BasicPublish(exchange="nowhere", routing_key="q"))
    await client.send(publish + encode_content(1, 60, b"abc", 131072))
    close = await client.expect(methods.ChannelClose, 1)
    assert (close.reply_code, close.reply_text) == (
        404,
        "NOT_FOUND - no exchange 'nowhere' in vhost '/'",
    )
    assert (close.class_id, close.method_id) == PUBLISH_IDS
    await client.send_method(1, methods.ChannelCloseOk())
    await client.open_channel(1)
    await client.close()


# -- channels: 504 -------------------------------------------------------------------------------


async def test_a_method_on_a_channel_never_opened_is_504(client: RawClient) -> None:
    close = await _close_after(client, _declare(2), 504)
    assert close.reply_text == "CHANNEL_ERROR - expected 'channel.open'"
    assert (close.class_id, close.method_id) == (50, 10)


async def test_channel_open_twice_is_504(client: RawClient) -> None:
    close = await _close_after(client, encode_method(1, methods.ChannelOpen()), 504)
    assert close.reply_text == "CHANNEL_ERROR - second 'channel.open' seen"
    assert (close.class_id, close.method_id) == (20, 10)


@pytest.mark.parametrize(
    "method",
    [
        methods.ConnectionOpen(virtual_host="/"),
        methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0),
        methods.ConnectionCloseOk(),
        methods.QueueDeclare(queue="x"),
    ],
    ids=lambda method: method.NAME,
)
async def test_an_unexpected_method_on_channel_zero_is_504(
    client: RawClient, method: methods.Method
) -> None:
    close = await _close_after(client, encode_method(0, method), 504)
    assert close.reply_text == "CHANNEL_ERROR - unexpected method in connection state running"
    assert (close.class_id, close.method_id) == (method.CLASS_ID, method.METHOD_ID)


async def test_channel_max_counts_open_channels(server: Broker) -> None:
    """RabbitMQ limits how many channels are open, not which numbers they use."""
    async with await RawClient.connect(server.port) as client:
        await client.handshake(channel_max=3)
        for number in (1, 1000, 65535):
            await client.open_channel(number)
        close = await _close_after(client, encode_method(2, methods.ChannelOpen()), 530)
    assert close.reply_text == (
        "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)"
    )


async def test_frames_after_a_channel_error_are_dropped_until_close_ok(client: RawClient) -> None:
    await client.send_method(1, methods.QueueDeclare(queue="missing", passive=True))
    close = await client.expect(methods.ChannelClose, 1)
    assert close.reply_code == 404
    # Crossing our channel.close on the wire: ignored, content included, nothing answered.
    await client.send(_declare(1) + _publish(1) + _header(1) + _body(1))
    await client.send_method(1, methods.ChannelCloseOk())
    await client.open_channel(1)  # the number is free again
    await client.declare_queue(1, "after")
    await client.close()


# -- methods we do not do: 540 -------------------------------------------------------------------


async def test_publish_with_immediate_is_540(client: RawClient) -> None:
    data = _publish(immediate=True) + encode_content(1, 60, b"abc", 131072)
    close = await _close_after(client, data, 540)
    assert close.reply_text == "NOT_IMPLEMENTED - immediate=true"
    assert (close.class_id, close.method_id) == PUBLISH_IDS


@pytest.mark.parametrize("ids", [(60, 99), (99, 10)], ids=["method", "class"])
async def test_an_unknown_method_closes_the_connection(
    client: RawClient, ids: tuple[int, int]
) -> None:
    # RabbitMQ drops the TCP connection without a word; a 540 close tells the client more.
    close = await _close_after(client, _frame(1, 1, struct.pack(">HH", *ids)), 540)
    assert close.reply_text == f"NOT_IMPLEMENTED - unknown method {ids[0]}.{ids[1]}"


# -- field tables: 501 ---------------------------------------------------------------------------


def _table_of(tag: bytes, value: bytes) -> bytes:
    """A field table of one entry, "k", with the raw value after its tag."""
    entry = b"\x01k" + tag + value
    return struct.pack(">I", len(entry)) + entry


NON_FINITE = [
    (b"d", struct.pack(">d", float("inf")), "double inf"),
    (b"d", struct.pack(">d", float("-inf")), "double -inf"),
    (b"d", struct.pack(">d", float("nan")), "double nan"),
    (b"f", struct.pack(">f", float("inf")), "float inf"),
    (b"f", struct.pack(">f", float("nan")), "float nan"),
]


# RabbitMQ 3.10.8 cannot hold a non-finite number: a method's table with one drops the TCP
# connection without a word (as an unknown field tag does), and a content header's closes the
# connection with 541 INTERNAL_ERROR once the channel decodes it. amqp-lite refuses both as it
# refuses an unknown tag: 501, saying what it found.
@pytest.mark.parametrize(("tag", "value", "what"), NON_FINITE, ids=[w for *_, w in NON_FINITE])
async def test_a_non_finite_number_in_arguments_is_501(
    client: RawClient, tag: bytes, value: bytes, what: str
) -> None:
    declare = struct.pack(">HHH", 50, 10, 0) + b"\x01x" + b"\x00" + _table_of(tag, value)
    close = await _close_after(client, _frame(1, 1, declare), 501)
    assert (
        close.reply_text
        == f"FRAME_ERROR - cannot decode queue.declare arguments: non-finite {what}"
    )
    assert (close.class_id, close.method_id) == (50, 10)


@pytest.mark.parametrize(("tag", "value", "what"), NON_FINITE, ids=[w for *_, w in NON_FINITE])
async def test_a_non_finite_number_in_headers_is_501(
    client: RawClient, tag: bytes, value: bytes, what: str
) -> None:
    raw_properties = struct.pack(">H", 0x2000) + _table_of(tag, value)
    content = encode_content(1, 60, b"abc", 131072, raw_properties=raw_properties)
    close = await _close_after(client, _publish() + content, 501)
    assert close.reply_text == f"FRAME_ERROR - cannot decode content properties: non-finite {what}"


async def test_a_non_finite_number_in_client_properties_is_a_hang_up(
    server: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Before connection.open a malformed frame gets no reply, from RabbitMQ or from us."""
    async with await RawClient.connect(server.port) as raw:
        await raw.send(PROTOCOL_HEADER)
        await raw.expect(methods.ConnectionStart, 0)
        response = b"\x00guest\x00guest"
        start_ok = (
            struct.pack(">HH", 10, 11)
            + _table_of(b"d", struct.pack(">d", float("inf")))
            + b"\x05PLAIN"
            + struct.pack(">I", len(response))
            + response
            + b"\x05en_US"
        )
        await raw.send(_frame(1, 0, start_ok))
        assert await raw.frames_until_eof() == []
    assert "connection.start-ok arguments: non-finite double inf" in caplog.text


# -- robustness ----------------------------------------------------------------------------------


async def test_junk_after_the_handshake_costs_only_that_connection(broker: ThreadedBroker) -> None:
    async with await RawClient.connect(broker.port) as bad:
        await bad.handshake()
        await bad.send(b"\x00" * 7 + b"this is not AMQP at all" * 100)
        await bad.expect_connection_close(501)
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as good:
        channel = good.channel()
        channel.queue_declare("still-works")
        channel.basic_publish("", "still-works", b"yes")
        assert channel.basic_get("still-works", auto_ack=True)[2] == b"yes"


def _valid_traffic() -> bytes:
    """A session's worth of well-formed frames for the fuzzer to damage."""
    return b"".join(
        [
            encode_method(2, methods.ChannelOpen()),
            encode_method(1, methods.QueueDeclare(queue="fuzz", arguments={"x-max-length": 5})),
            encode_method(1, methods.ConfirmSelect()),
            encode_method(1, methods.BasicPublish(routing_key="fuzz", mandatory=True)),
            encode_content(1, 60, b"body" * 10, 131072),
            encode_method(1, methods.BasicConsume(queue="fuzz", consumer_tag="c")),
            encode_method(1, methods.BasicAck(delivery_tag=1)),
            encode_method(2, methods.ExchangeDeclare(exchange="fx", type="topic")),
            encode_method(2, methods.QueueBind(queue="fuzz", exchange="fx", routing_key="#")),
            encode_method(1, methods.BasicGet(queue="fuzz")),
            encode_method(2, methods.ChannelClose(reply_code=200)),
            HEARTBEAT_FRAME,
        ]
    )


async def test_damaged_frames_never_cost_more_than_their_connection(
    server: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Flip a few random octets of valid traffic: the connection may close, nothing may crash."""
    traffic = _valid_traffic()
    rng = random.Random(20240501)
    caplog.set_level(logging.ERROR, logger="amqp_lite")
    for _ in range(150):
        damaged = bytearray(traffic)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        async with await RawClient.connect(server.port) as client:
            await client.handshake()
            await client.open_channel(1)
            await client.send(bytes(damaged))
            # EOF, not connection.close: a damaged size may leave the server inside a frame.
            await client.stream.send_eof()
            frames = await client.frames_until_eof()
        codes = [
            getattr(f, "method", None) and getattr(f.method, "reply_code", None) for f in frames
        ]
        assert 541 not in codes, frames
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with await RawClient.connect(server.port) as client:
        await client.handshake()
        await client.open_channel(1)
        await client.close()
    assert len(server.server.connections) <= 1  # only the last one, perhaps still closing


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("q" * 255, id="ascii"),
        pytest.param("x" + "é" * 120, id="cut-inside-a-character"),
    ],
)
async def test_an_error_text_longer_than_255_octets_is_cut_as_rabbitmq_cuts_it(
    server: Broker, name: str
) -> None:
    """Observed on RabbitMQ 3.10.8: the first 252 octets and '...', the channel closed with the
    error's own code (not a 541 for a text that did not fit)."""
    async with await connected(server.port) as client:
        await client.send_method(1, methods.BasicGet(queue=name))
        close = await client.expect(methods.ChannelClose, 1)
        full = f"NOT_FOUND - no queue '{name}' in vhost '/'".encode()
        assert (close.reply_code, close.class_id, close.method_id) == (404, 60, 70)
        assert close.reply_text.encode("utf-8", "surrogateescape") == full[:252] + b"..."
        await client.send_method(1, methods.ChannelCloseOk())
        await client.open_channel(2)  # the connection is fine
        await client.close()


async def test_a_connection_error_text_longer_than_255_octets_is_cut_too(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.send(PROTOCOL_HEADER)
        await client.expect(methods.ConnectionStart, 0)
        await client.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\0guest\0guest", locale="en_US"
            ),
        )
        tune = await client.expect(methods.ConnectionTune, 0)
        await client.send_method(
            0,
            methods.ConnectionTuneOk(
                channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0
            ),
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="v" * 255))
        close = await client.expect_connection_close(530)
        assert close.reply_text == ("NOT_ALLOWED - vhost " + "v" * 255)[:252] + "..."
        assert (close.class_id, close.method_id) == (10, 40)
