"""Consuming from stream queues over the wire with pika: prefetch and acks required, basic.get,
nack and reject refused, x-stream-offset in all its forms, the x-stream-offset header on every
delivery, and consumers that read the same log independently.

Passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`), except where amqp-lite answers a clean
406 for what makes RabbitMQ crash (541), which those tests say.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_content, encode_method
from exchanges.erlang_text import type_name
from tests.conftest import Target
from tests.rawclient import RawClient
from tests.stream_helpers import Streams, channel_error, collect, connection_error, consume


@pytest.fixture
def streams(target: Target) -> Iterator[Streams]:
    made = Streams(target)
    yield made
    made.close()


@pytest.fixture
def ten(streams: Streams) -> str:
    """A stream holding m0..m9 at offsets 0..9, every other one with a header of its own."""
    name = streams.declare()
    channel = streams.channel()
    channel.confirm_delivery()
    for i in range(10):
        headers = {"i": i} if i % 2 else None
        channel.basic_publish("", name, f"m{i}".encode(), pika.BasicProperties(headers=headers))
    return name


def described(name: str) -> str:
    return f"queue '{name}' in vhost '/'"


def bodies(deliveries: list[Any]) -> list[bytes]:
    return [d.body for d in deliveries]


# -- what a consumer must be ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "qos",
    [None, {"prefetch_count": 0}, {"prefetch_count": 5, "global_qos": True}],
)
def test_a_consumer_needs_a_prefetch_count(
    streams: Streams, ten: str, qos: dict[str, Any] | None
) -> None:
    channel = streams.channel()
    if qos is not None:
        channel.basic_qos(**qos)
    code, text = channel_error(lambda: channel.basic_consume(ten, lambda *_: None))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - consumer prefetch count is not set for '{described(ten)}'",
    )


def test_global_qos_is_not_supported(streams: Streams, ten: str) -> None:
    channel = streams.channel()
    channel.basic_qos(prefetch_count=5)
    channel.basic_qos(prefetch_count=5, global_qos=True)
    code, text = connection_error(lambda: channel.basic_consume(ten, lambda *_: None))
    assert (code, text) == (540, f"NOT_IMPLEMENTED - {described(ten)} does not support global qos")


def test_a_per_consumer_prefetch_after_a_global_one_lifts_it(streams: Streams, ten: str) -> None:
    channel = streams.channel()
    channel.basic_qos(prefetch_count=5, global_qos=True)
    channel.basic_qos(prefetch_count=3)  # RabbitMQ lifts the channel's limit here
    got = consume(channel, ten, {"x-stream-offset": "first"}, prefetch=3, count=3, ack=False)
    assert bodies(got) == [b"m0", b"m1", b"m2"]


def test_automatic_acknowledgement_is_not_implemented(streams: Streams, ten: str) -> None:
    channel = streams.channel()
    channel.basic_qos(prefetch_count=5)
    code, text = connection_error(
        lambda: channel.basic_consume(ten, lambda *_: None, auto_ack=True)
    )
    assert (code, text) == (
        540,
        f"NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues "
        f"{described(ten)}",
    )
    # Without a prefetch count, that is what is said first.
    code, text = channel_error(
        lambda: streams.channel().basic_consume(ten, lambda *_: None, auto_ack=True)
    )
    assert code == 406


def test_consumer_priorities_are_refused_before_anything_else(streams: Streams, ten: str) -> None:
    for value in (5, "a"):
        code, text = channel_error(
            lambda value=value: streams.channel().basic_consume(
                ten, lambda *_: None, arguments={"x-priority": value}
            )
        )
        assert (code, text) == (
            406,
            f"PRECONDITION_FAILED - invalid arg 'x-priority' for {described(ten)} "
            "of queue type rabbit_stream_queue",
        )


def test_basic_get_is_not_implemented(streams: Streams, ten: str) -> None:
    for auto_ack in (False, True):
        code, text = connection_error(
            lambda auto_ack=auto_ack: streams.channel().basic_get(ten, auto_ack=auto_ack)
        )
        assert (code, text) == (
            540,
            f"NOT_IMPLEMENTED - basic.get not supported by stream queues {described(ten)}",
        )


@pytest.mark.parametrize("settle", ["nack", "nack-requeue", "reject", "reject-requeue"])
def test_nack_and_reject_are_not_implemented(streams: Streams, ten: str, settle: str) -> None:
    channel = streams.channel()
    got = consume(channel, ten, {"x-stream-offset": "first"}, prefetch=2, count=2, ack=False)
    verb, requeue = settle.split("-")[0], settle.endswith("requeue")
    call = channel.basic_nack if verb == "nack" else channel.basic_reject

    def settle_it() -> None:
        call(got[0].tag, requeue=requeue)
        collect(streams.connection, [], None, 1.0)

    assert connection_error(settle_it) == (
        540,
        "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues "
        f"{described(ten)}",
    )


def test_basic_recover_is_not_implemented_either(streams: Streams, ten: str) -> None:
    """RabbitMQ 3.10.8 crashes (541) on basic.recover with stream deliveries unacked; amqp-lite
    refuses it as it refuses a nack that requeues."""
    channel = streams.channel()
    consume(channel, ten, {"x-stream-offset": "first"}, prefetch=2, count=2, ack=False)
    code, text = connection_error(lambda: channel.basic_recover(requeue=True))
    if not streams.target.is_amqp_lite:
        assert code == 541
        return
    assert (code, text) == (
        540,
        "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues "
        f"{described(ten)}",
    )


def test_an_unknown_delivery_tag_closes_the_channel(streams: Streams, ten: str) -> None:
    channel = streams.channel()
    consume(channel, ten, {"x-stream-offset": "first"}, prefetch=2, count=2, ack=False)

    def ack_unknown() -> None:
        channel.basic_ack(99)
        channel.basic_qos(prefetch_count=2)  # waits for its reply: the close comes instead

    assert channel_error(ack_unknown) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


# -- where a consumer starts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        ("first", [0, 1, 2]),
        ("last", [9]),  # the last chunk: each message was confirmed before the next
        (5, [5, 6, 7]),
        (0, [0, 1, 2]),
        (-1, [0, 1, 2]),  # before the first is the first
        (b"first", [0, 1, 2]),  # a binary will do for a name
    ],
)
def test_x_stream_offset_names_where_to_start(
    streams: Streams, ten: str, offset: Any, expected: list[int]
) -> None:
    got = consume(streams.channel(), ten, {"x-stream-offset": offset}, count=len(expected))
    assert [d.offset for d in got] == expected
    assert bodies(got) == [b"m%d" % o for o in expected]


@pytest.mark.parametrize("arguments", [None, {"x-stream-offset": "next"}])
def test_next_and_no_offset_read_only_what_comes(
    streams: Streams, ten: str, arguments: dict[str, Any] | None
) -> None:
    channel = streams.channel()
    channel.basic_qos(prefetch_count=10)
    got: list[tuple[int, bytes]] = []
    channel.basic_consume(
        ten, lambda ch, m, p, b: got.append((p.headers["x-stream-offset"], b)), arguments=arguments
    )
    collect(streams.connection, got, None)
    assert got == []
    streams.publish(ten, [b"new"])
    collect(streams.connection, got, 1)
    assert got == [(10, b"new")]


def test_an_offset_past_the_end_waits_for_it(streams: Streams) -> None:
    name = streams.declare()
    streams.publish(name, [b"a0", b"a1", b"a2"])
    channel = streams.channel()
    channel.basic_qos(prefetch_count=10)
    got: list[tuple[int, bytes]] = []
    channel.basic_consume(
        name,
        lambda ch, m, p, b: got.append((p.headers["x-stream-offset"], b)),
        arguments={"x-stream-offset": 5},
    )
    collect(streams.connection, got, None)
    assert got == []
    streams.publish(name, [b"b0", b"b1", b"b2", b"b3", b"b4"])
    collect(streams.connection, got, 3)
    assert got == [(5, b"b2"), (6, b"b3"), (7, b"b4")]


def test_a_timestamp_or_an_interval_starts_at_the_first_message_since(
    streams: Streams, ten: str
) -> None:
    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    in_an_hour = hour_ago + datetime.timedelta(hours=2)
    for offset, expected in [(hour_ago, 10), ("1h", 10), ("1D", 10), (in_an_hour, 0)]:
        got = consume(streams.channel(), ten, {"x-stream-offset": offset}, wait=0.5)
        assert len(got) == expected, offset
    streams.target.let_time_pass(1.1)  # an AMQP timestamp has whole seconds
    streams.publish(ten, [b"late"])
    got = consume(streams.channel(), ten, {"x-stream-offset": "1s"}, count=1)
    assert bodies(got) == [b"late"]


def test_last_starts_at_the_newest_chunk(streams: Streams) -> None:
    """Messages written together form a chunk; `last` starts at the beginning of the newest."""
    name = streams.declare()
    channel = streams.channel()
    for i in range(200):  # no confirms: they arrive together, and are written together
        channel.basic_publish("", name, b"%d" % i)
    channel.confirm_delivery()
    channel.basic_publish("", name, b"end")
    got = consume(streams.channel(), name, {"x-stream-offset": "last"}, wait=1.0)
    assert got and got[-1].body == b"end"
    assert bodies(got) == [b"%d" % i for i in range(200 - len(got) + 1, 200)] + [b"end"]


@pytest.mark.parametrize("interval", ["7d", "0s", "1.5h"])
def test_an_invalid_interval_gets_rabbitmqs_text(streams: Streams, ten: str, interval: str) -> None:
    code, text = channel_error(
        lambda: consume(streams.channel(), ten, {"x-stream-offset": interval})
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for {described(ten)}: "
        f'{{invalid_stream_offset_arg,{{longstr,<<"{interval}">>}}}}',
    )


@pytest.mark.parametrize(
    ("offset", "shown"),
    [
        ("abc", '{longstr,<<"abc">>}'),
        ("", "{longstr,<<>>}"),
        (True, "{bool,true}"),
        (1.5, "{double,1.5}"),
        ([1], "{array,[{signedint,1}]}"),
        ({"a": 1}, '{table,[{<<"a">>,signedint,1}]}'),
        (None, "{void,undefined}"),
    ],
)
async def test_offsets_rabbitmq_crashes_on_get_a_clean_406(
    target: Target, offset: Any, shown: str
) -> None:
    """RabbitMQ 3.10.8 closes the connection with 541 INTERNAL_ERROR for these."""
    queue = target.unique("stream")
    async with await RawClient.connect(target.port, target.host) as client:
        await client.handshake()
        await client.open_channel(1)
        await client.declare_queue(1, queue, durable=True, arguments={"x-queue-type": "stream"})
        await client.send_method(1, methods.BasicQos(prefetch_count=10))
        await client.expect(methods.BasicQosOk, 1)
        arguments = {"x-stream-offset": offset}
        await client.send_method(1, methods.BasicConsume(queue=queue, arguments=arguments))
        if target.is_amqp_lite:
            close = await client.expect(methods.ChannelClose, 1)
            assert (close.reply_code, close.reply_text) == (
                406,
                f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for {described(queue)}: "
                f"{{invalid_stream_offset_arg,{shown}}}",
            )
        else:
            close = await client.expect(methods.ConnectionClose, 0)
            assert close.reply_code == 541
    async with await RawClient.connect(target.port, target.host) as client:
        await client.handshake()
        await client.open_channel(1)
        await client.send_method(1, methods.QueueDelete(queue=queue))
        await client.expect(methods.QueueDeleteOk, 1)


async def test_every_delivery_carries_its_offset_as_a_long(target: Target) -> None:
    """x-stream-offset travels as a signed 64-bit integer (l), which Java clients cast to Long,
    after the headers the publisher gave; one the publisher set is replaced."""
    queue = target.unique("stream")
    async with await RawClient.connect(target.port, target.host) as client:
        await client.handshake()
        await client.open_channel(1)
        await client.declare_queue(1, queue, durable=True, arguments={"x-queue-type": "stream"})
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        properties = Properties(headers={"a": 1, "x-stream-offset": 77})
        publish = methods.BasicPublish(exchange="", routing_key=queue)
        await client.send(
            encode_method(1, publish) + encode_content(1, 60, b"x", 131072, properties)
        )
        await client.expect(methods.BasicAck, 1)
        await client.send_method(1, methods.BasicQos(prefetch_count=10))
        await client.expect(methods.BasicQosOk, 1)
        consume = methods.BasicConsume(queue=queue, arguments={"x-stream-offset": "first"})
        await client.send_method(1, consume)
        await client.expect(methods.BasicConsumeOk, 1)
        await client.expect(methods.BasicDeliver, 1)
        received, _body = await client.expect_content()
        headers = received.headers
        assert list(headers) == ["a", "x-stream-offset"]
        assert headers["x-stream-offset"] == 0
        assert type_name(headers["x-stream-offset"]) == "long"
        await client.send_method(1, methods.QueueDelete(queue=queue))
        await client.expect(methods.QueueDeleteOk, 1)


# -- many consumers ------------------------------------------------------------------------------


def test_consumers_read_the_same_log_independently(streams: Streams, ten: str) -> None:
    one, two = streams.channel(), streams.channel()
    from_first = consume(one, ten, {"x-stream-offset": "first"}, count=10)
    from_seven = consume(two, ten, {"x-stream-offset": 7}, count=3)
    assert [d.offset for d in from_first] == list(range(10))
    assert [d.offset for d in from_seven] == [7, 8, 9]
    # Two on one channel, each from its own place, with delivery tags of the channel.
    channel = streams.channel()
    channel.basic_qos(prefetch_count=100)
    got: dict[str, list[int]] = {"a": [], "b": []}
    for tag, start in (("a", 8), ("b", 6)):
        channel.basic_consume(
            ten,
            lambda ch, m, p, b, tag=tag: got[tag].append(p.headers["x-stream-offset"]),
            arguments={"x-stream-offset": start},
            consumer_tag=tag,
        )
    collect(streams.connection, got["b"], 4)
    collect(streams.connection, got["a"], 2)
    assert got == {"a": [8, 9], "b": [6, 7, 8, 9]}
    if streams.target.is_amqp_lite:  # RabbitMQ's declare-ok counts no stream consumers
        assert streams.channel().queue_declare(ten, passive=True).method.consumer_count == 4
    # What comes now goes to every one of them.
    streams.publish(ten, [b"m10"])
    collect(streams.connection, got["a"], 3)
    collect(streams.connection, got["b"], 5)
    assert got == {"a": [8, 9, 10], "b": [6, 7, 8, 9, 10]}


def test_prefetch_bounds_what_is_delivered_and_each_ack_gives_credit_back(
    streams: Streams, ten: str
) -> None:
    channel = streams.channel()
    channel.basic_qos(prefetch_count=3)
    got: list[tuple[int, int]] = []
    channel.basic_consume(
        ten,
        lambda ch, m, p, b: got.append((m.delivery_tag, p.headers["x-stream-offset"])),
        arguments={"x-stream-offset": "first"},
    )
    collect(streams.connection, got, 3)
    collect(streams.connection, got, None)
    assert got == [(1, 0), (2, 1), (3, 2)]
    channel.basic_ack(2)  # the second only: room for one more
    collect(streams.connection, got, 4)
    collect(streams.connection, got, None)
    assert got[3:] == [(4, 3)]
    channel.basic_ack(0, multiple=True)  # all: three more
    collect(streams.connection, got, 7)
    assert got[4:] == [(5, 4), (6, 5), (7, 6)]


def test_deleting_a_stream_cancels_its_consumers(streams: Streams) -> None:
    name = streams.declare()
    channel = streams.channel()
    cancelled: list[Any] = []
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    channel.basic_qos(prefetch_count=1)
    tag = channel.basic_consume(name, lambda *_: None)
    streams.channel().queue_delete(name)
    collect(streams.connection, cancelled, 1)
    assert cancelled == [tag]
