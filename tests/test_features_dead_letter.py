"""Dead-lettering over the wire: reasons, the exact `x-death` RabbitMQ writes, DLX routing,
cycles, persistence. Every expectation was first observed on RabbitMQ 3.10.8.

The broker runs on a frozen clock, so `time` in x-death is exact and TTLs expire by
`broker.advance`, never by sleeping. The x-death checks read raw frames, because the wire types
matter (count is an `l`, time a `T`) and pika turns every integer into an int.
"""

from __future__ import annotations

import datetime
import struct
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from amqp_lite import Broker, ThreadedBroker, run_in_thread
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_content, encode_method
from amqp_lite.wire.properties import decode_properties
from tests.conftest import FROZEN_AT
from tests.pika_helpers import ready, wait_for
from tests.rawclient import RawClient, connected
from vhosts.clock import Clock

T0 = FROZEN_AT
PERSISTENT = pika.BasicProperties(delivery_mode=2)


pytestmark = [pytest.mark.frozen_clock, pytest.mark.confirms]


def _dlx_args(exchange: str, routing_key: str | None = None, **more: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-dead-letter-exchange": exchange, **more}
    if routing_key is not None:
        arguments["x-dead-letter-routing-key"] = routing_key
    return arguments


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _take(channel: BlockingChannel, queue: str) -> tuple[Any, Any, bytes]:
    """basic.get (auto-ack) of a message that must be there."""
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None, f"{queue} is empty"
    return method, properties, body


def _reject_next(channel: BlockingChannel, queue: str) -> None:
    method, _properties, _body = channel.basic_get(queue)
    assert method is not None, f"{queue} is empty"
    channel.basic_reject(method.delivery_tag, requeue=False)
    ready(channel, queue)  # a round trip: the reject is done before the test goes on


# -- typed wire values ---------------------------------------------------------------------------
# A decoded value is (type tag, payload); tables are lists of (key, value) so order is checked.


def S(text: str) -> tuple[str, Any]:
    return ("S", text)


def I(number: int) -> tuple[str, Any]:  # noqa: E743 - named after its AMQP type tag
    return ("I", number)


def L(number: int) -> tuple[str, Any]:
    return ("l", number)


def T(seconds: float) -> tuple[str, Any]:
    return ("T", int(seconds))


def A(*items: tuple[str, Any]) -> tuple[str, Any]:
    return ("A", list(items))


def F(table: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
    return ("F", list(table.items()))


def _typed_value(buf: bytes, off: int) -> tuple[tuple[str, Any], int]:
    tag = chr(buf[off])
    off += 1
    if tag in "SA":
        (size,) = struct.unpack_from(">I", buf, off)
        off += 4
        if tag == "S":
            return ("S", buf[off : off + size].decode()), off + size
        end, items = off + size, []
        while off < end:
            item, off = _typed_value(buf, off)
            items.append(item)
        return ("A", items), off
    if tag == "F":
        table, off = _typed_table(buf, off)
        return ("F", table), off
    fmt = {"l": ">q", "T": ">Q", "I": ">i"}[tag]
    return (tag, struct.unpack_from(fmt, buf, off)[0]), off + struct.calcsize(fmt)


def _typed_table(buf: bytes, off: int) -> tuple[list[tuple[str, Any]], int]:
    (size,) = struct.unpack_from(">I", buf, off)
    off += 4
    end, table = off + size, []
    while off < end:
        key = buf[off + 1 : off + 1 + buf[off]].decode()
        off += 1 + buf[off]
        value, off = _typed_value(buf, off)
        table.append((key, value))
    return table, off


def _typed_headers(raw_properties: bytes) -> list[tuple[str, Any]]:
    """The headers property, typed and in wire order, from raw content-header properties."""
    flags = raw_properties[0] << 8 | raw_properties[1]
    assert flags & 1 << 13, "no headers"
    off = 2
    for bit in (15, 14):  # content-type and content-encoding come first
        if flags & 1 << bit:
            off += 1 + raw_properties[off]
    return _typed_table(raw_properties, off)[0]


# -- a raw client's few operations ---------------------------------------------------------------


async def _declare_exchange(client: RawClient, name: str, type_name: str) -> None:
    await client.send_method(1, methods.ExchangeDeclare(exchange=name, type=type_name))
    await client.expect(methods.ExchangeDeclareOk)


async def _bind(client: RawClient, queue: str, exchange: str, key: str) -> None:
    await client.send_method(1, methods.QueueBind(queue=queue, exchange=exchange, routing_key=key))
    await client.expect(methods.QueueBindOk)


async def _publish(
    client: RawClient, exchange: str, key: str, body: bytes, properties: Any = None
) -> None:
    method = methods.BasicPublish(exchange=exchange, routing_key=key)
    content = encode_content(1, 60, body, client.frame_max, properties or Properties())
    await client.send(encode_method(1, method) + content)


async def _raw_get(client: RawClient, queue: str, *, no_ack: bool = True) -> tuple[Any, bytes]:
    """basic.get of a message that must be there: (get-ok, raw properties)."""
    await client.send_method(1, methods.BasicGet(queue=queue, no_ack=no_ack))
    get_ok = await client.expect(methods.BasicGetOk)
    header = await client.next_frame()
    received = 0
    while received < header.body_size:
        received += len((await client.next_frame()).payload)
    return get_ok, header.raw_properties


async def _raw_reject(client: RawClient, queue: str, delivery_tag: int | None = None) -> None:
    """Reject (without requeue) the given delivery, else the next message got from `queue`."""
    if delivery_tag is None:
        delivery_tag = (await _raw_get(client, queue, no_ack=False))[0].delivery_tag
    await client.send_method(1, methods.BasicReject(delivery_tag=delivery_tag))
    await client.declare_queue(1, queue, passive=True)  # a round trip: the reject is done


# -- the exact x-death -----------------------------------------------------------------------------


async def test_x_death_after_a_rejection_exactly_as_rabbitmq_writes_it() -> None:
    async with Broker(clock=Clock(frozen_at=T0)) as broker:
        client = await connected(broker.port)
        await _declare_exchange(client, "in", "direct")
        await _declare_exchange(client, "dlx", "fanout")
        await client.declare_queue(1, "src", arguments=_dlx_args("dlx"))
        await client.declare_queue(1, "dlq")
        await _bind(client, "src", "in", "src")
        await _bind(client, "dlq", "dlx", "")
        headers = {"z": 1, "CC": ["cc1"], "a": "x"}
        await _publish(
            client,
            "in",
            "src",
            b"m",
            Properties(headers=headers, delivery_mode=2, expiration="60000"),
        )
        await _raw_reject(client, "src")

        get_ok, raw = await _raw_get(client, "dlq")
        assert (get_ok.exchange, get_ok.routing_key) == ("dlx", "src")
        properties = decode_properties(raw)
        assert (properties.expiration, properties.delivery_mode) == (None, 2)
        # The header table comes back sorted by key. The first death's table keeps the order
        # RabbitMQ builds it in; routing-keys lists the CC keys; original-expiration is there
        # because the message had its own expiration.
        assert _typed_headers(raw) == list(
            {
                "CC": A(S("cc1")),
                "a": S("x"),
                "x-death": A(
                    F(
                        {
                            "count": L(1),
                            "reason": S("rejected"),
                            "queue": S("src"),
                            "time": T(T0),
                            "exchange": S("in"),
                            "routing-keys": A(S("src"), S("cc1")),
                            "original-expiration": S("60000"),
                        }
                    )
                ),
                "x-first-death-exchange": S("in"),
                "x-first-death-queue": S("src"),
                "x-first-death-reason": S("rejected"),
                "z": I(1),
            }.items()
        )
        await client.aclose()


async def test_x_death_after_one_and_two_cycles_newest_first_with_counts() -> None:
    """q1 rejects to q2, q2's TTL sends it back to q1: twice round."""
    async with Broker(clock=Clock(frozen_at=T0)) as broker:
        client = await connected(broker.port)
        await client.declare_queue(1, "q1", arguments=_dlx_args("", "q2"))
        await client.declare_queue(
            1, "q2", arguments=_dlx_args("", "q1", **{"x-message-ttl": 1000})
        )
        await _publish(client, "", "q1", b"m")
        q1_rejected_first = {
            "count": L(1),
            "reason": S("rejected"),
            "queue": S("q1"),
            "time": T(T0),
            "exchange": S(""),
            "routing-keys": A(S("q1")),
        }
        first_death = [
            ("x-first-death-exchange", S("")),
            ("x-first-death-queue", S("q1")),
            ("x-first-death-reason", S("rejected")),
        ]

        await _raw_reject(client, "q1")  # at T0
        broker.advance(5)  # q2's TTL is over: back to q1 at T0 + 5
        get_ok, raw = await _raw_get(client, "q1", no_ack=False)
        # A later death's table is written with its keys sorted; the older one is left as it was.
        q2_expired = {
            "count": L(1),
            "exchange": S(""),
            "queue": S("q2"),
            "reason": S("expired"),
            "routing-keys": A(S("q2")),
            "time": T(T0 + 5),
        }
        assert _typed_headers(raw) == [
            ("x-death", A(F(q2_expired), F(q1_rejected_first))),
            *first_death,
        ]

        broker.advance(5)
        await _raw_reject(client, "q1", get_ok.delivery_tag)
        broker.advance(5)  # at T0 + 15 q2 expires it again
        _get_ok, raw = await _raw_get(client, "q1")
        # Each repeat moves its table to the front with count 2, keeping its first time.
        q1_rejected_twice = dict(sorted(q1_rejected_first.items()), count=L(2))
        assert _typed_headers(raw) == [
            ("x-death", A(F(dict(q2_expired, count=L(2))), F(q1_rejected_twice))),
            *first_death,
        ]
        await client.aclose()


# -- reasons ---------------------------------------------------------------------------------------


def _deaths(properties: Any) -> list[dict[str, Any]]:
    return properties.headers["x-death"]


def test_reject_and_nack_single_and_multiple_dead_letter_as_rejected(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("src", arguments=_dlx_args("", "dlq"))
    for body in (b"1", b"2", b"3", b"4"):
        channel.basic_publish("", "src", body)
    tags = [channel.basic_get("src")[0].delivery_tag for _ in range(4)]
    channel.basic_reject(tags[0], requeue=False)
    channel.basic_nack(tags[1], requeue=False)
    channel.basic_nack(tags[3], multiple=True, requeue=False)  # 3 and 4
    got = [_take(channel, "dlq") for _ in range(4)]
    assert [body for _m, _p, body in got] == [b"1", b"2", b"3", b"4"]
    for _method, properties, _body in got:
        assert _deaths(properties) == [
            {
                "count": 1,
                "reason": "rejected",
                "queue": "src",
                "time": _at(T0),
                "exchange": "",
                "routing-keys": ["src"],
            }
        ]
    assert ready(channel, "src") == 0
    # Requeueing is not dead-lettering.
    channel.basic_publish("", "src", b"5")
    channel.basic_nack(channel.basic_get("src")[0].delivery_tag, requeue=True)
    assert (ready(channel, "src"), ready(channel, "dlq")) == (1, 0)


def test_expired_by_queue_ttl_has_no_original_expiration(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("src", arguments=_dlx_args("", "dlq", **{"x-message-ttl": 1000}))
    channel.basic_publish("", "src", b"m")
    broker.advance(2)
    _method, properties, body = _take(channel, "dlq")
    assert body == b"m"
    assert _deaths(properties) == [
        {
            "count": 1,
            "reason": "expired",
            "queue": "src",
            "time": _at(T0 + 2),
            "exchange": "",
            "routing-keys": ["src"],
        }
    ]
    assert properties.headers["x-first-death-reason"] == "expired"


def test_expired_by_its_own_expiration_keeps_it_as_original_expiration(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("dlq")
    # The queue's TTL is the lower one here; original-expiration is still the message's own.
    channel.queue_declare("src", arguments=_dlx_args("", "dlq", **{"x-message-ttl": 1000}))
    channel.basic_publish("", "src", b"m", pika.BasicProperties(expiration="5000"))
    broker.advance(1)
    _method, properties, _body = _take(channel, "dlq")
    assert properties.expiration is None  # removed, so the copy does not expire by it again
    [death] = _deaths(properties)
    assert (death["reason"], death["original-expiration"]) == ("expired", "5000")


def test_overflow_drop_head_dead_letters_the_oldest_as_maxlen(channel: BlockingChannel) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("src", arguments=_dlx_args("", "dlq", **{"x-max-length": 2}))
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "src", body)
    _method, properties, body = _take(channel, "dlq")
    assert body == b"1"
    assert [d["reason"] for d in _deaths(properties)] == ["maxlen"]
    assert properties.headers["x-first-death-reason"] == "maxlen"
    assert [_take(channel, "src")[2] for _ in range(2)] == [b"2", b"3"]


def test_overflow_reject_publish_dlx_dead_letters_the_refused_message(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("dlq")
    arguments = _dlx_args("", "dlq", **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    channel.queue_declare("src", arguments=arguments)
    channel.basic_publish("", "src", b"kept")
    with pytest.raises(pika.exceptions.NackError):  # the publisher hears no, as with reject-publish
        channel.basic_publish("", "src", b"refused")
    _method, properties, body = _take(channel, "dlq")
    assert body == b"refused"
    assert [(d["reason"], d["queue"]) for d in _deaths(properties)] == [("maxlen", "src")]
    assert _take(channel, "src")[2] == b"kept"


# -- where dead letters go -----------------------------------------------------------------------


def _cc_bcc_setup(channel: BlockingChannel, dead_letter_key: str | None) -> None:
    """src (bound to `in` by "src") dead-letters to direct `dlx`, where a queue waits per key."""
    channel.exchange_declare("in", "direct")
    channel.exchange_declare("dlx", "direct")
    for key in ("src", "cc1", "bcc1", "dlk"):
        channel.queue_declare(f"by-{key}")
        channel.queue_bind(f"by-{key}", "dlx", key)
    channel.queue_declare("src", arguments=_dlx_args("dlx", dead_letter_key))
    channel.queue_bind("src", "in", "src")
    headers = {"CC": ["cc1", "cc2"], "BCC": ["bcc1"]}
    channel.basic_publish("in", "src", b"m", pika.BasicProperties(headers=headers))
    _reject_next(channel, "src")


def test_without_a_dead_letter_key_the_original_keys_route_cc_and_bcc_included(
    channel: BlockingChannel,
) -> None:
    _cc_bcc_setup(channel, None)
    # RabbitMQ routes the dead letter by every key the message was published with, BCC's too.
    for queue in ("by-src", "by-cc1", "by-bcc1"):
        method, properties, _body = _take(channel, queue)
        assert (method.exchange, method.routing_key) == ("dlx", "src")
        assert properties.headers["CC"] == ["cc1", "cc2"]  # kept without a dead-letter key
        assert "BCC" not in properties.headers
        # routing-keys lists the CC keys, never the BCC ones.
        assert _deaths(properties)[0]["routing-keys"] == ["src", "cc1", "cc2"]
    assert ready(channel, "by-dlk") == 0


def test_a_dead_letter_key_replaces_every_key_and_drops_cc(channel: BlockingChannel) -> None:
    _cc_bcc_setup(channel, "dlk")
    method, properties, _body = _take(channel, "by-dlk")
    assert (method.exchange, method.routing_key) == ("dlx", "dlk")
    assert "CC" not in properties.headers and "BCC" not in properties.headers
    assert _deaths(properties)[0]["routing-keys"] == ["src", "cc1", "cc2"]
    assert [ready(channel, f"by-{key}") for key in ("src", "cc1", "bcc1")] == [0, 0, 0]


def test_bcc_never_reaches_a_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    _cc_bcc_setup(channel, None)
    seen: list[dict[str, Any]] = []
    for queue in ("by-src", "by-cc1", "by-bcc1"):
        channel.basic_consume(queue, lambda _c, _m, p, _b: seen.append(p.headers), auto_ack=True)
    wait_for(connection, lambda: len(seen) == 3)
    assert all("BCC" not in headers for headers in seen)


def test_a_consumer_sees_the_dlx_and_the_dead_letter_key_in_basic_deliver(
    connection: pika.BlockingConnection, channel: BlockingChannel
) -> None:
    channel.exchange_declare("dlx", "topic")
    channel.queue_declare("dlq")
    channel.queue_bind("dlq", "dlx", "dead.#")
    channel.queue_declare("src", arguments=_dlx_args("dlx", "dead.src"))
    channel.basic_publish("", "src", b"m")
    delivered: list[tuple[str, str, bool]] = []
    channel.basic_consume(
        "dlq",
        lambda _c, m, _p, _b: delivered.append((m.exchange, m.routing_key, m.redelivered)),
        auto_ack=True,
    )
    _reject_next(channel, "src")
    wait_for(connection, lambda: len(delivered) == 1)
    assert delivered == [("dlx", "dead.src", False)]


def test_dlx_is_the_default_exchange(channel: BlockingChannel) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare("to-dlq", arguments=_dlx_args("", "dlq"))
    channel.basic_publish("", "to-dlq", b"m")
    _reject_next(channel, "to-dlq")
    method, _properties, body = _take(channel, "dlq")
    assert (method.exchange, method.routing_key, body) == ("", "dlq", b"m")
    # Without a key the original one routes: a rejected message comes back to its own queue.
    channel.queue_declare("to-self", arguments=_dlx_args(""))
    channel.basic_publish("", "to-self", b"again")
    _reject_next(channel, "to-self")
    method, properties, body = _take(channel, "to-self")
    assert (method.routing_key, body, method.redelivered) == ("to-self", b"again", False)
    assert [(d["queue"], d["reason"]) for d in _deaths(properties)] == [("to-self", "rejected")]


def test_a_dlx_that_does_not_exist_drops_the_message(channel: BlockingChannel) -> None:
    channel.queue_declare("bystander")
    channel.queue_declare("src", arguments=_dlx_args("missing", "bystander"))
    channel.basic_publish("", "src", b"m")
    _reject_next(channel, "src")
    assert (ready(channel, "src"), ready(channel, "bystander")) == (0, 0)
    # Declaring the exchange later changes nothing for that message; it is gone.
    channel.exchange_declare("missing", "fanout")
    channel.queue_bind("bystander", "missing")
    assert ready(channel, "bystander") == 0


def test_without_a_dlx_a_rejected_message_is_simply_dropped(channel: BlockingChannel) -> None:
    channel.queue_declare("src")
    channel.basic_publish("", "src", b"m")
    _reject_next(channel, "src")
    assert ready(channel, "src") == 0


# -- cycles ----------------------------------------------------------------------------------------


def test_a_queue_dead_lettering_its_expired_messages_to_itself_drops_them(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("self", arguments=_dlx_args("", **{"x-message-ttl": 1000}))
    channel.basic_publish("", "self", b"m")
    broker.advance(1)
    assert ready(channel, "self") == 0
    broker.advance(10)
    assert channel.basic_get("self", auto_ack=True)[0] is None


def test_a_queue_dead_lettering_its_overflow_to_itself_drops_it(channel: BlockingChannel) -> None:
    channel.queue_declare("self", arguments=_dlx_args("", **{"x-max-length": 1}))
    channel.basic_publish("", "self", b"old")
    channel.basic_publish("", "self", b"new")
    assert ready(channel, "self") == 1
    assert _take(channel, "self")[2] == b"new"


def test_an_automatic_cycle_is_cut_only_for_the_queue_it_returns_to(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    """t1 expires to t2, t2 expires to a fanout bound to t1 and to a bystander."""
    channel.exchange_declare("fan", "fanout")
    channel.queue_declare("t1", arguments=_dlx_args("", "t2", **{"x-message-ttl": 1000}))
    channel.queue_declare("t2", arguments=_dlx_args("fan", **{"x-message-ttl": 1000}))
    channel.queue_declare("bystander")
    channel.queue_bind("t1", "fan")
    channel.queue_bind("bystander", "fan")
    channel.basic_publish("", "t1", b"m")
    broker.advance(1)  # t1 -> t2
    assert (ready(channel, "t1"), ready(channel, "t2")) == (0, 1)
    broker.advance(1)  # t2 -> fan: t1 would close the loop, the bystander would not
    assert [ready(channel, q) for q in ("t1", "t2", "bystander")] == [0, 0, 1]
    _method, properties, _body = _take(channel, "bystander")
    assert [(d["queue"], d["reason"]) for d in _deaths(properties)] == [
        ("t2", "expired"),
        ("t1", "expired"),
    ]


def test_a_cycle_with_a_rejection_goes_on(broker: ThreadedBroker, channel: BlockingChannel) -> None:
    channel.queue_declare("q1", arguments=_dlx_args("", "q2"))
    channel.queue_declare("q2", arguments=_dlx_args("", "q1", **{"x-message-ttl": 1000}))
    channel.basic_publish("", "q1", b"m")
    for _round in range(3):
        _reject_next(channel, "q1")
        broker.advance(1)
    _method, properties, _body = _take(channel, "q1")
    assert [(d["queue"], d["reason"], d["count"]) for d in _deaths(properties)] == [
        ("q2", "expired", 3),
        ("q1", "rejected", 3),
    ]


# -- persistence ---------------------------------------------------------------------------------


def test_a_persistent_dead_letter_in_a_durable_queue_survives_a_restart(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=T0)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("dlq", durable=True)
        channel.queue_declare("src", durable=True, arguments=_dlx_args("", "dlq"))
        channel.basic_publish("", "src", b"persistent", PERSISTENT)
        channel.basic_publish("", "src", b"transient")
        _reject_next(channel, "src")
        _reject_next(channel, "src")
        assert ready(channel, "dlq") == 2
        connection.close()

    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=T0 + 60)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        assert ready(channel, "src") == 0  # dead-lettered means gone from where it was
        method, properties, body = _take(channel, "dlq")
        assert (body, method.redelivered) == (b"persistent", False)
        assert properties.delivery_mode == 2  # it stays persistent
        assert _deaths(properties) == [
            {
                "count": 1,
                "reason": "rejected",
                "queue": "src",
                "time": _at(T0),
                "exchange": "",
                "routing-keys": ["src"],
            }
        ]
        assert channel.basic_get("dlq", auto_ack=True)[0] is None  # the transient one is not
        connection.close()
