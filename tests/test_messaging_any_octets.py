"""Routing keys, header keys and header values are octets to RabbitMQ 3.10.8, UTF-8 or not: it
routes them, stores them and delivers them back as they came. Only the names and keys of the
other methods (declares, binds, consumer tags...) must be UTF-8 (501 otherwise)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from amqp_lite import Broker
from amqp_lite.wire import methods
from amqp_lite.wire.frames import HeaderFrame, encode_body, encode_header
from tests.rawclient import RawClient, connected

KEY = b"k.\xff\xfe"  # not UTF-8


def octets(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def shortstr(data: bytes) -> bytes:
    return bytes((len(data),)) + data


def table(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def publish_frame(exchange: bytes, routing_key: bytes, mandatory: bool = False) -> bytes:
    arguments = b"\x00\x00" + shortstr(exchange) + shortstr(routing_key) + bytes((mandatory,))
    payload = struct.pack(">HH", 60, 40) + arguments
    return struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"


def method_frame(class_id: int, method_id: int, arguments: bytes) -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + arguments
    return struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"


async def publish(
    client: RawClient,
    exchange: bytes,
    routing_key: bytes,
    body: bytes = b"m",
    properties: bytes = b"\x00\x00",
    *,
    mandatory: bool = False,
) -> None:
    await client.send(
        publish_frame(exchange, routing_key, mandatory)
        + encode_header(1, 60, len(body), properties)
        + encode_body(1, body, client.frame_max)
    )


async def get(client: RawClient, queue: str) -> tuple[bytes, bytes, bytes]:
    """basic.get no-ack of a message that is there: (routing key octets, raw properties, body)."""
    await client.send_method(1, methods.BasicGet(queue=queue, no_ack=True))
    get_ok = await client.expect(methods.BasicGetOk, 1)
    header = await client.next_frame()
    assert isinstance(header, HeaderFrame)
    body = (await client.next_frame()).payload if header.body_size else b""
    return octets(get_ok.routing_key), header.raw_properties, body


async def bind(client: RawClient, queue: str, exchange: str, key: str = "", **kw: object) -> None:
    await client.send_method(
        1, methods.QueueBind(queue=queue, exchange=exchange, routing_key=key, **kw)
    )
    await client.expect(methods.QueueBindOk, 1)


async def test_a_routing_key_of_any_octets_is_routed_and_delivered_as_it_came(
    server: Broker,
) -> None:
    async with await connected(server.port) as client:
        for queue, exchange, key in [
            ("fanned", "amq.fanout", ""),
            ("every", "amq.topic", "#"),
            ("first-word", "amq.topic", "k.*"),
        ]:
            await client.declare_queue(1, queue)
            await bind(client, queue, exchange, key)
        await publish(client, b"amq.fanout", KEY, b"1")
        await publish(client, b"amq.topic", KEY, b"2")
        assert await get(client, "fanned") == (KEY, b"\x00\x00", b"1")
        assert await get(client, "every") == (KEY, b"\x00\x00", b"2")
        assert await get(client, "first-word") == (KEY, b"\x00\x00", b"2")

        await client.send_method(
            1, methods.ExchangeDeclare(exchange="hash", type="x-consistent-hash")
        )
        await client.expect(methods.ExchangeDeclareOk, 1)
        await client.declare_queue(1, "hashed")
        await bind(client, "hashed", "hash", "1")
        await publish(client, b"hash", KEY, b"3")
        assert await get(client, "hashed") == (KEY, b"\x00\x00", b"3")
        await client.close()


async def test_headers_of_any_octets_route_and_come_back_as_they_came(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "matched")
        # A binding argument's key and value of the same octets (field tables take any).
        arguments = {"x-match": "all", "\udcffk": "v\udcfe"}
        await bind(client, "matched", "amq.headers", arguments=arguments)
        entry = shortstr(b"\xffk") + b"S" + struct.pack(">I", 2) + b"v\xfe"
        properties = struct.pack(">H", 0x8000 | 0x2000) + shortstr(b"text/\xff") + table(entry)
        await publish(client, b"amq.headers", b"", b"h", properties)
        assert await get(client, "matched") == (b"", properties, b"h")
        await client.close()


async def test_an_unroutable_key_of_any_octets_is_returned_as_it_came(server: Broker) -> None:
    async with await connected(server.port) as client:
        await publish(client, b"amq.direct", KEY, mandatory=True)
        returned = await client.expect(methods.BasicReturn, 1)
        assert (returned.reply_code, octets(returned.routing_key)) == (312, KEY)
        await client.expect_content()
        await client.close()


async def test_a_dead_letter_names_the_key_it_was_published_with(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "dead")
        arguments = {"x-message-ttl": 0, "x-dead-letter-exchange": "amq.fanout"}
        await client.declare_queue(1, "expiring", arguments=arguments)
        await bind(client, "dead", "amq.fanout")
        await bind(client, "expiring", "amq.topic", "#")
        await publish(client, b"amq.topic", KEY)
        routing_key, properties, _body = await get(client, "dead")
        assert routing_key == KEY
        # x-death's routing-keys: an array of one longstr, the key's octets.
        assert b"\x0crouting-keysA" + table(b"S" + struct.pack(">I", len(KEY)) + KEY) in properties
        await client.close()


async def test_a_persistent_message_keeps_its_key_across_a_restart(tmp_path: Path) -> None:
    async with Broker(data_dir=tmp_path) as broker, await connected(broker.port) as client:
        await client.declare_queue(1, "kept", durable=True)
        await bind(client, "kept", "amq.topic", "#")
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        await publish(client, b"amq.topic", KEY, b"p", b"\x10\x00\x02")  # delivery_mode 2
        await client.expect(methods.BasicAck, 1)  # on disk
        await client.close()
    async with Broker(data_dir=tmp_path) as broker, await connected(broker.port) as client:
        assert await get(client, "kept") == (KEY, b"\x10\x00\x02", b"p")
        await client.close()


async def test_publishing_to_an_exchange_of_such_a_name_is_404_naming_its_octets(
    server: Broker,
) -> None:
    async with await connected(server.port) as client:
        await publish(client, b"no\xff", b"k")
        close = await client.expect(methods.ChannelClose, 1)
        assert close.reply_code == 404
        assert octets(close.reply_text) == b"NOT_FOUND - no exchange 'no\xff' in vhost '/'"
        await client.send_method(1, methods.ChannelCloseOk())
        await client.close()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            method_frame(50, 10, b"\x00\x00" + shortstr(b"q\xff") + b"\x00" + table(b"")),
            id="queue.declare",
        ),
        pytest.param(
            method_frame(
                50,
                20,
                b"\x00\x00\x01q" + shortstr(b"amq.direct") + shortstr(KEY) + b"\x00" + table(b""),
            ),
            id="queue.bind",
        ),
        pytest.param(
            method_frame(60, 20, b"\x00\x00\x01q" + shortstr(b"c\xff") + b"\x00" + table(b"")),
            id="basic.consume",
        ),
    ],
)
async def test_other_methods_need_utf8_names_as_rabbitmq_does(server: Broker, frame: bytes) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "q")
        await client.send(frame)
        close = await client.expect_connection_close(501)
        assert (close.reply_text, close.class_id, close.method_id) == (
            "FRAME_ERROR - Malformed UTF-8 in shortstr",
            0,
            0,
        )
