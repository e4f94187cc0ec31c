"""A message goes out as it came in: headers the broker must rewrite (dead-lettering's x-death,
BCC's removal, a delayed message's x-delay, direct reply-to's reply_to) leave every other
header octet for octet, whatever its type. RabbitMQ 3.10.8 does so; a header that decoded but
could not be encoded again (a timestamp past year 9999) used to take the broker down.
"""

from __future__ import annotations

import struct

import pytest
import trio

from amqp_lite import Broker
from amqp_lite.wire import methods
from amqp_lite.wire.fields import decode_table
from amqp_lite.wire.frames import HeaderFrame, encode_body, encode_header, encode_method
from tests.rawclient import RawClient, connected


def entry(key: bytes, tag: bytes, value: bytes) -> bytes:
    return bytes((len(key),)) + key + tag + value


def table(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


# One header of each type whose Python value a naive codec would send back differently.
ODD = (
    entry(b"ts-huge", b"T", b"\xff" * 8),  # beyond datetime
    entry(b"int8", b"b", b"\xff"),
    entry(b"uint8", b"B", b"\xff"),
    entry(b"int16", b"s", b"\xff\xfe"),
    entry(b"uint16", b"u", b"\xff\xfe"),
    entry(b"uint32", b"i", b"\xff\xff\xff\xfe"),
    entry(b"long-small", b"l", struct.pack(">q", 5)),
    entry(b"float", b"f", b"\x00\x00\x00\x01"),  # the smallest subnormal (NaNs are refused)
    entry(b"double", b"d", b"\x80\x00\x00\x00\x00\x00\x00\x00"),  # -0.0
    entry(b"decimal", b"D", b"\x02\x00\x00\x01\x00"),
    entry(
        b"nested", b"F", table(entry(b"when", b"T", b"\xff" * 8), entry(b"n", b"u", b"\x00\x07"))
    ),
    entry(b"list", b"A", table(b"b\x01", b"s\x00\x02", b"i\x00\x00\x00\x03")),  # an array
)
HEADERS_FLAG = 0x2000
REPLY_TO_FLAG = 0x0200


def properties(*entries: bytes, flags: int = HEADERS_FLAG, reply_to: bytes = b"") -> bytes:
    raw = struct.pack(">H", flags) + table(*entries)
    if flags & REPLY_TO_FLAG:
        raw += bytes((len(reply_to),)) + reply_to
    return raw


async def publish_raw(
    client: RawClient, routing_key: str, raw_properties: bytes, body: bytes, exchange: str = ""
) -> None:
    method = methods.BasicPublish(exchange=exchange, routing_key=routing_key)
    await client.send(
        encode_method(1, method)
        + encode_header(1, 60, len(body), raw_properties)
        + encode_body(1, body, client.frame_max)
    )


async def get_raw(client: RawClient, queue: str) -> tuple[bytes, bytes]:
    """basic.get (no-ack) of one message that must be there: (raw properties, body)."""
    await client.send_method(1, methods.BasicGet(queue=queue, no_ack=True))
    await client.expect(methods.BasicGetOk, 1)
    return await content(client)


async def content(client: RawClient) -> tuple[bytes, bytes]:
    header = await client.next_frame()
    assert isinstance(header, HeaderFrame), header
    body = b""
    while len(body) < header.body_size:
        body += (await client.next_frame()).payload
    return header.raw_properties, body


def headers_of(raw_properties: bytes) -> bytes:
    """The encoded header table of properties that have only headers set."""
    assert raw_properties[:2] == struct.pack(">H", HEADERS_FLAG), raw_properties[:2]
    return raw_properties[2:]


async def test_a_header_that_only_travels_comes_back_octet_for_octet(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "plain")
        raw = properties(*ODD)
        await publish_raw(client, "plain", raw, b"body")
        assert await get_raw(client, "plain") == (raw, b"body")
        await client.close()


async def test_bcc_goes_and_every_other_header_stays_as_it_was(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "to")
        await client.declare_queue(1, "bcc")
        bcc = entry(b"BCC", b"A", table(b"S" + struct.pack(">I", 3) + b"bcc"))
        await publish_raw(client, "to", properties(*ODD[:3], bcc, *ODD[3:]), b"m")
        for queue in ("to", "bcc"):
            assert await get_raw(client, queue) == (properties(*ODD), b"m")
        await client.close()


async def test_a_dead_letter_keeps_the_headers_it_had(server: Broker) -> None:
    """RabbitMQ adds x-death and x-first-death-*, and sorts the table by key; each header the
    message came with is still there as it was sent."""
    async with await connected(server.port) as client:
        await client.declare_queue(1, "dead")
        dead_letters = {
            "x-message-ttl": 0,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dead",
        }
        await client.declare_queue(1, "short-lived", arguments=dead_letters)
        await publish_raw(client, "short-lived", properties(*ODD), b"m")
        raw, _body = await get_raw(client, "dead")
        headers = headers_of(raw)
        for original in ODD:
            assert original in headers
        keys = list(decode_table(headers))
        assert "x-death" in keys
        assert keys == sorted(keys)
        await client.close()


async def test_expiring_while_its_holder_hangs_up_dead_letters_to_a_waiting_consumer(
    server: Broker,
) -> None:
    """The rewrite happens while the holder's connection is released, outside any frame, and
    the copy is delivered to another connection at once: that path took the broker down."""
    consumer = await connected(server.port)
    await consumer.declare_queue(1, "dead")
    await consumer.send_method(1, methods.BasicConsume(queue="dead", consumer_tag="c", no_ack=True))
    await consumer.expect(methods.BasicConsumeOk, 1)

    holder = await connected(server.port)
    arguments = {
        "x-message-ttl": 60_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "dead",
    }
    await holder.declare_queue(1, "held", arguments=arguments)
    await publish_raw(holder, "held", properties(*ODD), b"m")
    await holder.send_method(1, methods.BasicGet(queue="held"))  # held, not acked
    await holder.expect(methods.BasicGetOk, 1)
    await content(holder)
    server.advance(61)
    await holder.aclose()  # back to its queue, expired: dead-lettered

    await consumer.expect(methods.BasicDeliver, 1)
    raw, body = await content(consumer)
    assert body == b"m"
    assert all(original in raw for original in ODD)
    await consumer.close()
    await consumer.aclose()


async def test_a_bcc_message_behind_a_backlog_reaches_a_slow_consumer(server: Broker) -> None:
    """The consumer's output is full, so the message waits in the queue; it is encoded when the
    writer drains the output and resumes deliveries, in the writer task."""
    consumer = await connected(server.port)
    await consumer.declare_queue(1, "slow")
    await consumer.send_method(1, methods.BasicConsume(queue="slow", consumer_tag="c", no_ack=True))
    await consumer.expect(methods.BasicConsumeOk, 1)
    async with await connected(server.port) as publisher:
        await publisher.send_method(1, methods.ConfirmSelect())
        await publisher.expect(methods.ConfirmSelectOk, 1)
        backlog = 15
        for _ in range(backlog):
            await publisher.publish(1, "slow", b"b" * 100_000)
        bcc = entry(b"BCC", b"A", table(b"S" + struct.pack(">I", 5) + b"other"))
        await publish_raw(publisher, "slow", properties(bcc, *ODD), b"last")
        acked = 0
        while acked < backlog + 1:
            acked = (await publisher.expect(methods.BasicAck, 1)).delivery_tag
        await publisher.close()
    received = []
    with trio.fail_after(20):
        while len(received) < backlog + 1:
            await consumer.expect(methods.BasicDeliver, 1)
            received.append(await content(consumer))
    assert received[-1] == (properties(*ODD), b"last")
    await consumer.close()
    await consumer.aclose()


async def test_a_released_delayed_message_keeps_its_other_headers(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.send_method(
            1,
            methods.ExchangeDeclare(
                exchange="later", type="x-delayed-message", arguments={"x-delayed-type": "direct"}
            ),
        )
        await client.expect(methods.ExchangeDeclareOk, 1)
        await client.declare_queue(1, "due")
        await client.send_method(
            1, methods.QueueBind(queue="due", exchange="later", routing_key="k")
        )
        await client.expect(methods.QueueBindOk, 1)
        delay = entry(b"x-delay", b"I", struct.pack(">i", 5000))
        await publish_raw(client, "k", properties(*ODD, delay), b"m", exchange="later")
        await client.send_method(1, methods.QueueDeclare(queue="due", passive=True))
        await client.expect(methods.QueueDeclareOk, 1)
        server.advance(6)
        raw, _body = await get_raw(client, "due")
        headers = headers_of(raw)
        assert all(original in headers for original in ODD)
        assert decode_table(headers)["x-delay"] == -5000
        await client.close()


async def test_a_direct_reply_to_request_keeps_its_headers(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "rpc")
        await client.send_method(
            1, methods.BasicConsume(queue="amq.rabbitmq.reply-to", consumer_tag="r", no_ack=True)
        )
        await client.expect(methods.BasicConsumeOk, 1)
        raw = properties(
            *ODD, flags=HEADERS_FLAG | REPLY_TO_FLAG, reply_to=b"amq.rabbitmq.reply-to"
        )
        await publish_raw(client, "rpc", raw, b"request")
        delivered, _body = await get_raw(client, "rpc")
        kept = struct.pack(">H", HEADERS_FLAG | REPLY_TO_FLAG) + table(*ODD)
        assert delivered.startswith(kept)
        reply_to = delivered[len(kept) :]
        assert reply_to[0] == len(reply_to) - 1
        assert reply_to[1:].startswith(b"amq.rabbitmq.reply-to.")  # this channel's address now
        await client.close()


@pytest.mark.parametrize(
    ("tag", "value", "name"),
    [
        (b"b", b"\x01", "byte"),
        (b"B", b"\x01", "unsignedbyte"),
        (b"s", b"\x00\x01", "short"),
        (b"u", b"\x00\x01", "unsignedshort"),
        (b"I", b"\x00\x00\x00\x01", "signedint"),
        (b"i", b"\x00\x00\x00\x01", "unsignedint"),
        (b"l", b"\x00" * 7 + b"\x01", "long"),
        (b"L", b"\x00" * 7 + b"\x01", "long"),
        (b"f", b"\x00" * 4, "float"),
        (b"d", b"\x00" * 8, "double"),
        (b"T", b"\x00" * 8, "timestamp"),
        (b"T", b"\xff" * 8, "timestamp"),
    ],
)
async def test_a_cc_header_of_the_wrong_type_is_named_by_the_type_it_came_with(
    server: Broker, tag: bytes, value: bytes, name: str
) -> None:
    async with await connected(server.port) as client:
        await publish_raw(client, "nowhere", properties(entry(b"CC", tag, value)), b"m")
        close = await client.expect(methods.ChannelClose, 1)
        assert close.reply_code == 406
        assert close.reply_text == (
            f'PRECONDITION_FAILED - invalid message: {{unacceptable_type_in_header,"CC",{name}}}'
        )
        await client.send_method(1, methods.ChannelCloseOk())
        await client.close()
