"""The firehose tracer: with tracing on for a vhost, publishes and deliveries are copied to
amq.rabbitmq.trace as RabbitMQ 3.10.8 copies them.

The `target` tests run against RabbitMQ too (--rabbitmq-url with --rabbitmqctl, for trace_on).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import trio
from pika.adapters.blocking_connection import BlockingChannel

from amqp_lite import Broker, ThreadedBroker, run_in_thread
from amqp_lite.wire import methods
from amqp_lite.wire.frames import encode_method
from amqp_lite.wire.properties import Properties, encode_properties
from tests.conftest import Target
from tests.management_client import Api
from tests.rawclient import connected

TRACE = "amq.rabbitmq.trace"
CONNECTION_NAME = re.compile(r"127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+")
FIXTURE = Path(__file__).parent / "fixtures" / "rabbitmq-trace-properties.json"

Trace = tuple[str, dict[str, Any], bytes]  # (routing key, headers, body)


@pytest.fixture
def traced(target: Target) -> Iterator[tuple[Target, str]]:
    """A fresh vhost with tracing on."""
    vhost = target.unique("traced")
    target.add_vhost(vhost)
    target.set_tracing(vhost, True)
    yield target, vhost
    target.set_tracing(vhost, False)
    target.delete_vhost(vhost)


def _open(target: Target, vhost: str) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(target.vhost_url(vhost)))
    return connection, connection.channel()


def _sink(channel: BlockingChannel, key: str = "#") -> str:
    """A queue that collects the firehose."""
    name = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(name, TRACE, key)
    return name


def _drain(channel: BlockingChannel, queue: str) -> list[Trace]:
    found = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return found
        assert method.exchange == TRACE
        # Only the headers property is set on a trace message.
        assert {k for k, v in vars(properties).items() if v is not None} == {"headers"}
        found.append((method.routing_key, properties.headers, body))


def _check_origin(headers: dict[str, Any], vhost: str, channel: int) -> None:
    assert CONNECTION_NAME.fullmatch(headers.pop("connection"))
    assert "@" in headers.pop("node")
    assert headers.pop("vhost") == vhost
    assert headers.pop("channel") == channel
    assert headers.pop("user") == "guest"


def test_every_vhost_has_the_internal_trace_exchange(target: Target) -> None:
    vhost = target.unique("trace-x")
    target.add_vhost(vhost)
    try:
        connection, channel = _open(target, vhost)
        channel.exchange_declare(TRACE, passive=True)
        channel.exchange_declare(TRACE, "topic", durable=True, internal=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.exchange_declare(TRACE, "topic", durable=True)
        assert refused.value.reply_code == 406
        assert "inequivalent arg 'internal'" in refused.value.reply_text
        channel = connection.channel()
        channel.basic_publish(TRACE, "publish.x", b"forged")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("", exclusive=True)
        assert (refused.value.reply_code, refused.value.reply_text) == (
            403,
            f"ACCESS_REFUSED - cannot publish to internal exchange '{TRACE}' in vhost '{vhost}'",
        )
        connection.close()
    finally:
        target.delete_vhost(vhost)


def test_publishes_and_deliveries_are_copied_with_rabbitmqs_headers(
    traced: tuple[Target, str],
) -> None:
    target, vhost = traced
    connection, channel = _open(target, vhost)
    sink = _sink(channel)
    orders = target.unique("orders")
    audit = target.unique("audit")
    channel.exchange_declare("shop", "topic")
    channel.queue_declare(orders, exclusive=True)
    channel.queue_declare(audit, exclusive=True)
    channel.queue_bind(orders, "shop", "order.#")
    channel.queue_bind(audit, "shop", "*.audit")
    properties = pika.BasicProperties(
        content_type="text/plain",
        delivery_mode=2,
        priority=3,
        correlation_id="c-1",
        timestamp=1_700_000_000,
        headers={"CC": ["x.audit"], "n": 7},
    )
    channel.confirm_delivery()
    channel.basic_publish("shop", "order.new", b"first", properties)
    channel.basic_publish("shop", "nowhere", b"lost")

    traces = _drain(channel, sink)
    assert [(key, body) for key, _, body in traces] == [
        ("publish.shop", b"first"),
        ("publish.shop", b"lost"),
    ]
    first = traces[0][1]
    _check_origin(first, vhost, 1)
    assert first == {
        "exchange_name": "shop",
        "routing_keys": ["order.new", "x.audit"],
        "properties": {
            "timestamp": 1_700_000_000,
            "correlation_id": "c-1",
            "priority": 3,
            "delivery_mode": 2,
            "headers": {"CC": ["x.audit"], "n": 7},
            "content_type": "text/plain",
        },
        "routed_queues": sorted([orders, audit]),
    }
    assert list(first) == [  # RabbitMQ's order, properties last field first
        "exchange_name",
        "routing_keys",
        "properties",
        "routed_queues",
    ]
    assert list(first["properties"]) == [
        "timestamp",
        "correlation_id",
        "priority",
        "delivery_mode",
        "headers",
        "content_type",
    ]
    lost = traces[1][1]
    _check_origin(lost, vhost, 1)
    assert lost == {
        "exchange_name": "shop",
        "routing_keys": ["nowhere"],
        "properties": {},
        "routed_queues": [],
    }

    # basic.get, a requeue, then a consumer on another channel: each is a delivery.
    method, _, _ = channel.basic_get(orders)
    channel.basic_nack(method.delivery_tag, requeue=True)
    consumer = connection.channel()
    got: list[bytes] = []
    consumer.basic_consume(orders, lambda ch, m, p, body: got.append(body), auto_ack=True)
    while not got:
        connection.process_data_events(time_limit=0.05)
    traces = _drain(channel, sink)
    assert [(key, body) for key, _, body in traces] == [
        (f"deliver.{orders}", b"first"),
        (f"deliver.{orders}", b"first"),
    ]
    for (_, headers, _), (channel_number, redelivered) in zip(
        traces, [(1, 0), (consumer.channel_number, 1)], strict=True
    ):
        _check_origin(headers, vhost, channel_number)
        assert headers.pop("redelivered") == redelivered
        assert headers == {
            "exchange_name": "shop",
            "routing_keys": ["order.new", "x.audit"],
            "properties": first["properties"],
        }
    connection.close()


def test_a_quorum_queue_delivery_is_traced_as_delivered(traced: tuple[Target, str]) -> None:
    """The deliver trace shows the message that went out: with a quorum queue's
    x-delivery-count on redeliveries, and on every basic.get."""
    target, vhost = traced
    connection, channel = _open(target, vhost)
    sink = _sink(channel, "deliver.#")
    queue = target.unique("votes")
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"consumed", pika.BasicProperties(headers={"n": 1}))
    received: list[tuple[bool, dict[str, Any]]] = []

    def requeue_twice(ch: BlockingChannel, method: Any, properties: Any, _body: bytes) -> None:
        received.append((method.redelivered, properties.headers))
        if len(received) < 3:
            ch.basic_nack(method.delivery_tag, requeue=True)
        else:
            ch.basic_ack(method.delivery_tag)
            ch.stop_consuming()

    channel.basic_consume(queue, requeue_twice)
    channel.start_consuming()
    channel.basic_publish("", queue, b"got", pika.BasicProperties(headers={"n": 2}))
    method, properties, _ = channel.basic_get(queue)
    received.append((method.redelivered, properties.headers))
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, properties, _ = channel.basic_get(queue, auto_ack=True)
    received.append((method.redelivered, properties.headers))
    assert received == [
        (False, {"n": 1}),
        (True, {"n": 1, "x-delivery-count": 1}),
        (True, {"n": 1, "x-delivery-count": 2}),
        (False, {"n": 2, "x-delivery-count": 0}),
        (True, {"n": 2, "x-delivery-count": 1}),
    ]
    traced_deliveries = [
        (bool(headers["redelivered"]), headers["properties"]["headers"])
        for _, headers, _ in _drain(channel, sink)
    ]
    assert traced_deliveries == received
    channel.queue_delete(queue)
    connection.close()


def test_bcc_keys_are_traced_though_the_header_is_gone(traced: tuple[Target, str]) -> None:
    target, vhost = traced
    connection, channel = _open(target, vhost)
    sink = _sink(channel, "publish.#")
    hidden = target.unique("hidden")
    channel.queue_declare(hidden, exclusive=True)
    channel.basic_publish(
        "", "nobody", b"secret", pika.BasicProperties(headers={"BCC": [hidden], "k": "v"})
    )
    [(_, headers, _)] = _drain(channel, sink)
    assert headers["routing_keys"] == ["nobody", hidden]
    assert headers["properties"] == {"headers": {"k": "v"}}
    # The default exchange's trace names a queue for every key, there or not, as RabbitMQ's.
    assert headers["routed_queues"] == sorted([hidden, "nobody"])
    connection.close()


def test_deliveries_of_trace_messages_are_not_traced_again(traced: tuple[Target, str]) -> None:
    target, vhost = traced
    connection, channel = _open(target, vhost)
    sink = _sink(channel, "publish.#")
    watcher = _sink(channel)  # sees the deliveries from `sink`, if they were traced
    channel.basic_publish("", "nobody", b"one")
    [_] = _drain(channel, sink)  # a delivery of a trace message
    assert [key for key, _, _ in _drain(channel, watcher)] == ["publish."]
    connection.close()


def test_nothing_is_traced_while_tracing_is_off(traced: tuple[Target, str]) -> None:
    target, vhost = traced
    connection, channel = _open(target, vhost)
    sink = _sink(channel)
    target.set_tracing(vhost, False)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"quiet")
    channel.basic_get(queue, auto_ack=True)
    assert _drain(channel, sink) == []
    target.set_tracing(vhost, True)
    channel.basic_publish("", queue, b"loud")
    assert [key for key, _, _ in _drain(channel, sink)] == ["publish."]
    connection.close()


# -- the wire form, against what RabbitMQ 3.10.8 sent ---------------------------------------------


def _tagged_table(data: bytes) -> list[tuple[str, str, Any]]:
    """A field table as (name, type tag, value), nested tables and arrays alike."""
    found = []
    offset = 0
    while offset < len(data):
        size = data[offset]
        name = data[offset + 1 : offset + 1 + size].decode()
        offset += 1 + size
        tag, value, offset = _tagged_value(data, offset)
        found.append((name, tag, value))
    return found


def _tagged_value(data: bytes, offset: int) -> tuple[str, Any, int]:
    tag = chr(data[offset])
    offset += 1
    if tag == "I":
        return tag, struct.unpack_from(">i", data, offset)[0], offset + 4
    (size,) = struct.unpack_from(">I", data, offset)
    raw = data[offset + 4 : offset + 4 + size]
    offset += 4 + size
    if tag == "S":
        return tag, raw.decode(), offset
    if tag == "F":
        return tag, _tagged_table(raw), offset
    assert tag == "A", tag
    items, at = [], 0
    while at < len(raw):
        item_tag, value, at = _tagged_value(raw, at)
        items.append((item_tag, value))
    return tag, items, offset


def _trace_headers(raw_properties: bytes) -> list[tuple[str, str, Any]]:
    assert raw_properties[:2] == b"\x20\x00"  # the headers property, alone
    (size,) = struct.unpack_from(">I", raw_properties, 2)
    return _tagged_table(raw_properties[6 : 6 + size])


def _with_origin(table: list[tuple[str, str, Any]], node: str, connection: str) -> list[Any]:
    values = {"node": node, "connection": connection}
    return [(name, tag, values.get(name, value)) for name, tag, value in table]


async def test_trace_headers_have_rabbitmqs_field_types(server: Broker) -> None:
    expected = json.loads(FIXTURE.read_text())
    server.admin.set_tracing("/", True)
    client = await connected(server.port)
    await client.declare_queue(1, "sink", exclusive=True)
    await client.send_method(1, methods.QueueBind(queue="sink", exchange=TRACE, routing_key="#"))
    await client.expect(methods.QueueBindOk, 1)
    await client.declare_queue(1, "ops-raw", exclusive=True)
    properties = Properties(
        content_type="text/plain",
        delivery_mode=2,
        priority=1,
        timestamp=1_700_000_000,
        headers={"h": 1},
    )
    header = struct.pack(">HHQ", 60, 0, 4) + encode_properties(properties)
    await client.send(
        encode_method(1, methods.BasicPublish(exchange="", routing_key="ops-raw"))
        + struct.pack(">BHI", 2, 1, len(header))
        + header
        + b"\xce"
        + struct.pack(">BHI", 3, 1, 4)
        + b"body\xce"
    )
    await client.send_method(1, methods.BasicGet(queue="ops-raw", no_ack=True))
    await client.expect(methods.BasicGetOk, 1)
    await client.expect_content()
    connection = next(iter(server.server.connections)).name
    node = server.node.cluster_name if server.node is not None else ""
    for key in ("publish.", "deliver.ops-raw"):
        await client.send_method(1, methods.BasicGet(queue="sink", no_ack=True))
        got = await client.expect(methods.BasicGetOk, 1)
        assert got.routing_key == key
        frame = await client.next_frame()
        assert (await client.next_frame()).payload == b"body"
        theirs = _trace_headers(bytes.fromhex(expected[key]))
        assert _trace_headers(frame.raw_properties) == _with_origin(theirs, node, connection)
    await client.close()


# -- turning it on and off through the management API ---------------------------------------------


def test_management_api_sets_tracing_with_put_vhost() -> None:
    with run_in_thread(management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        assert api.get("/api/vhosts/%2F")["tracing"] is False
        assert api.put("/api/vhosts/%2F", {"tracing": True}).status == 204
        assert api.get("/api/vhosts/%2F")["tracing"] is True
        assert broker.admin.tracing("/") is True
        refused = api.put("/api/vhosts/fresh", {"tracing": "yes"})
        assert (refused.status, refused.body) == (
            400,
            {"error": "bad_request", "reason": ["not_boolean", "yes"]},
        )
        assert api.call("GET", "/api/vhosts/fresh").status == 404  # nothing was made
        assert api.put("/api/vhosts/fresh", {"tracing": "true"}).status == 201
        assert api.get("/api/vhosts/fresh")["tracing"] is True
        assert api.put("/api/vhosts/%2F", {"tracing": False}).status == 204
        assert [v["tracing"] for v in api.get("/api/vhosts")] == [False, True]


async def test_a_vhost_starts_untraced(server: Broker) -> None:
    assert server.admin.tracing("/") is False
    with pytest.raises(Exception, match="no vhost"):
        server.admin.set_tracing("missing", True)
    await trio.lowlevel.checkpoint()


def test_copies_nobody_would_receive_are_counted_not_made(broker: ThreadedBroker) -> None:
    broker.admin.set_tracing("/", True)
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue

    def published_to_trace() -> int:
        return broker.call(lambda: broker.node.vhost("/").exchanges[TRACE].publish_in)

    channel.basic_publish("", queue, b"unheard")
    channel.basic_get(queue, auto_ack=True)
    assert published_to_trace() == 2  # a publish and a delivery, as RabbitMQ counts them
    sink = _sink(channel)
    channel.basic_publish("", queue, b"heard")
    assert [key for key, _, _ in _drain(channel, sink)] == ["publish."]
    assert published_to_trace() == 3
    connection.close()


def test_the_management_api_publishes_and_gets_traced() -> None:
    with run_in_thread(management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        broker.admin.set_tracing("/", True)
        connection, channel = _open(Target(broker.url, broker=broker), "/")
        sink = _sink(channel)
        queue = channel.queue_declare("via-http").method.queue
        published = api.post(
            "/api/exchanges/%2F/amq.default/publish",
            {
                "properties": {},
                "routing_key": queue,
                "payload": "hello",
                "payload_encoding": "string",
            },
        )
        assert published.body == {"routed": True}
        got = api.post(
            f"/api/queues/%2F/{queue}/get",
            {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"},
        )
        assert got.body[0]["payload"] == "hello"
        traces = _drain(channel, sink)
        assert [(key, body) for key, _, body in traces] == [
            ("publish.", b"hello"),
            (f"deliver.{queue}", b"hello"),
        ]
        for _, headers, _ in traces:
            assert (headers["connection"], headers["channel"], headers["user"]) == (
                "management API",
                1,
                "guest",
            )
        assert traces[0][1]["routed_queues"] == [queue]
        assert traces[1][1]["redelivered"] == 0
        connection.close()
