"""Declaring stream queues over the wire with pika: the flags, arguments and texts of RabbitMQ
3.10.8, redeclare equivalence, delete and purge.

Passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`), except where amqp-lite answers a clean
406 for what makes RabbitMQ crash the connection (541), which those tests say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from tests.conftest import Target
from tests.stream_helpers import Streams

STREAM = {"x-queue-type": "stream"}


@pytest.fixture
def streams(target: Target) -> Iterator[Streams]:
    made = Streams(target)
    yield made
    made.close()


def refused(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ChannelClosedByBroker) as caught:
        call()
    return caught.value.reply_code, caught.value.reply_text


def described(name: str) -> str:
    return f"queue '{name}' in vhost '/'"


def test_a_durable_stream_is_declared_and_declared_again(target: Target, streams: Streams) -> None:
    name = streams.declare()
    channel = streams.channel()
    ok = channel.queue_declare(name, durable=True, arguments=STREAM).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (name, 0, 0)
    assert channel.queue_declare(name, passive=True).method.queue == name


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        ({"durable": False}, "invalid property 'non-durable' for {}"),
        ({"exclusive": True}, "invalid property 'exclusive-owner' for {}"),
        ({"auto_delete": True}, "invalid property 'auto-delete' for {}"),
        # Checked in this order: auto-delete, exclusive, durable.
        ({"durable": False, "exclusive": True}, "invalid property 'exclusive-owner' for {}"),
        ({"exclusive": True, "auto_delete": True}, "invalid property 'auto-delete' for {}"),
        # ...after the arguments and what the stream type refuses.
        (
            {"durable": False, "arguments": {"x-max-length": 1}},
            "invalid arg 'x-max-length' for {} of queue type rabbit_stream_queue",
        ),
        (
            {"durable": False, "arguments": {"x-max-length-bytes": -1}},
            "invalid arg 'x-max-length-bytes' for {}: {{value_negative,-1}}",
        ),
    ],
)
def test_a_stream_is_durable_and_neither_exclusive_nor_auto_delete(
    target: Target, streams: Streams, flags: dict[str, Any], refusal: str
) -> None:
    name = target.unique("stream")
    arguments = flags.pop("arguments", None)
    code, text = refused(lambda: streams.declare(name, arguments, **flags))
    assert (code, text) == (406, "PRECONDITION_FAILED - " + refusal.format(described(name)))


@pytest.mark.parametrize("arguments", [{}, {"x-max-length-bytes": -1}, {"x-max-length": 1}])
def test_a_stream_is_never_server_named(streams: Streams, arguments: dict[str, Any]) -> None:
    code, text = refused(lambda: streams.declare("", arguments))
    assert (code, text) == (
        406,
        "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue",
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-max-length-bytes": 0},
        {"x-max-length-bytes": 10**12},
        {"x-max-age": "7D"},
        {"x-max-age": "1h"},
        {"x-max-age": "30s"},
        {"x-max-age": "10m"},
        {"x-max-age": "1M"},
        {"x-max-age": "2Y"},
        {"x-max-age": "007s"},
        {"x-stream-max-segment-size-bytes": 0},
        {"x-stream-max-segment-size-bytes": 3_000_000_000},
        {"x-initial-cluster-size": 1},
        {"x-queue-leader-locator": "client-local"},
        {"x-queue-leader-locator": "balanced"},
        {"x-stream-filter-size-bytes": 16},
        {"x-anything-else": "is ignored"},
    ],
)
def test_the_arguments_a_stream_takes(
    target: Target, streams: Streams, arguments: dict[str, Any]
) -> None:
    name = target.unique("stream")
    assert streams.declare(name, arguments) == name


@pytest.mark.parametrize(
    ("arguments", "key", "reason"),
    [
        ({"x-max-length-bytes": -1}, "x-max-length-bytes", "{value_negative,-1}"),
        ({"x-max-length-bytes": "a"}, "x-max-length-bytes", '"expected integer, got longstr"'),
        ({"x-max-age": "7d"}, "x-max-age", "invalid_max_age"),
        ({"x-max-age": "0s"}, "x-max-age", "invalid_max_age"),
        ({"x-max-age": "1.5h"}, "x-max-age", "invalid_max_age"),
        ({"x-max-age": "1h "}, "x-max-age", "invalid_max_age"),
        ({"x-max-age": 7}, "x-max-age", "{unacceptable_type,signedint}"),
        ({"x-max-age": b"1h"}, "x-max-age", "{unacceptable_type,binary}"),
        (
            {"x-stream-max-segment-size-bytes": -5},
            "x-stream-max-segment-size-bytes",
            "{value_negative,-5}",
        ),
        (
            {"x-stream-max-segment-size-bytes": "x"},
            "x-stream-max-segment-size-bytes",
            '"expected integer, got longstr"',
        ),
        ({"x-initial-cluster-size": 0}, "x-initial-cluster-size", "{value_zero,0}"),
        ({"x-initial-cluster-size": -1}, "x-initial-cluster-size", "{value_negative,-1}"),
        ({"x-queue-leader-locator": "zzz"}, "x-queue-leader-locator", "invalid_queue_locator_arg"),
        # In RabbitMQ's order, whatever the table's: bytes, age, segment size, cluster size...
        (
            {"x-max-age": "7d", "x-max-length-bytes": -1},
            "x-max-length-bytes",
            "{value_negative,-1}",
        ),
        (
            {"x-initial-cluster-size": -1, "x-stream-max-segment-size-bytes": -1},
            "x-stream-max-segment-size-bytes",
            "{value_negative,-1}",
        ),
        ({"x-queue-leader-locator": "zzz", "x-max-age": "7d"}, "x-max-age", "invalid_max_age"),
        # ...and all of them before what the type refuses.
        ({"x-max-length": 5, "x-max-age": "7d"}, "x-max-age", "invalid_max_age"),
    ],
)
def test_invalid_arguments_get_rabbitmqs_texts(
    target: Target,
    streams: Streams,
    arguments: dict[str, Any],
    key: str,
    reason: str,
) -> None:
    name = target.unique("stream")
    code, text = refused(lambda: streams.declare(name, arguments))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for {described(name)}: {reason}",
    )


@pytest.mark.parametrize("age", ["abc", "", "-1s", " 1h", "h"])
def test_an_age_without_leading_digits_is_a_clean_406(
    target: Target, streams: Streams, age: str
) -> None:
    """RabbitMQ 3.10.8 crashes on these (541 INTERNAL_ERROR, the connection closed)."""
    name = target.unique("stream")
    if not target.is_amqp_lite:
        with pytest.raises(ConnectionClosedByBroker) as crashed:
            streams.declare(name, {"x-max-age": age})
        assert crashed.value.reply_code == 541
        return
    code, text = refused(lambda: streams.declare(name, {"x-max-age": age}))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-max-age' for {described(name)}: invalid_max_age",
    )


def test_a_segment_size_over_three_gigabytes_is_refused_after_the_flags(
    target: Target, streams: Streams
) -> None:
    name = target.unique("stream")
    big = {"x-stream-max-segment-size-bytes": 3_000_000_001}
    code, text = refused(lambda: streams.declare(name, big))
    assert (code, text) == (
        406,
        "PRECONDITION_FAILED - Exceeded max value for x-stream-max-segment-size-bytes",
    )
    code, text = refused(lambda: streams.declare(name, big, durable=False))
    assert text.endswith(f"invalid property 'non-durable' for {described(name)}")
    code, text = refused(lambda: streams.declare(name, {**big, "x-max-age": "7d"}))
    assert text.endswith("invalid_max_age")


@pytest.mark.parametrize(
    "key",
    [
        "x-max-length",
        "x-message-ttl",
        "x-expires",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-overflow",
        "x-max-priority",
        "x-single-active-consumer",
        "x-queue-mode",
        "x-queue-version",
        "x-delivery-limit",
        "x-dead-letter-strategy",
        "x-max-in-memory-length",
        "x-quorum-initial-group-size",
    ],
)
def test_what_other_queue_types_take_is_refused_whatever_its_value(
    target: Target, streams: Streams, key: str
) -> None:
    name = target.unique("stream")
    value = "x" if key in ("x-dead-letter-exchange", "x-queue-mode", "x-overflow") else -1
    code, text = refused(lambda: streams.declare(name, {key: value}))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for {described(name)} "
        "of queue type rabbit_stream_queue",
    )


def test_refused_arguments_are_named_in_the_order_of_the_table(
    target: Target, streams: Streams
) -> None:
    name = target.unique("stream")
    arguments = {"x-max-length": 1, "x-message-ttl": 1}
    _code, text = refused(lambda: streams.declare(name, arguments))
    assert "'x-max-length'" in text


@pytest.mark.parametrize(
    ("again", "refusal"),
    [
        (
            {"x-max-age": "2h", "x-max-length-bytes": 1000, "x-stream-max-segment-size-bytes": 500},
            "inequivalent arg 'x-max-age' for {}: received '2h' but current is '1h'",
        ),
        (
            {"x-max-length-bytes": 1000, "x-stream-max-segment-size-bytes": 500},
            "inequivalent arg 'x-max-age' for {}: received none but current is the value '1h' "
            "of type 'longstr'",
        ),
        (
            {"x-max-age": "1h", "x-max-length-bytes": 1001, "x-stream-max-segment-size-bytes": 500},
            "inequivalent arg 'x-max-length-bytes' for {}: received '1001' but current is '1000'",
        ),
        (
            {"x-max-age": "1h", "x-max-length-bytes": 1000},
            "inequivalent arg 'x-stream-max-segment-size-bytes' for {}: received none but "
            "current is the value '500' of type 'signedint'",
        ),
    ],
)
def test_a_redeclare_must_be_equivalent(
    target: Target,
    streams: Streams,
    again: dict[str, Any],
    refusal: str,
) -> None:
    name = target.unique("stream")
    first = {"x-max-age": "1h", "x-max-length-bytes": 1000, "x-stream-max-segment-size-bytes": 500}
    streams.declare(name, first)
    code, text = refused(lambda: streams.declare(name, again))
    assert (code, text) == (406, "PRECONDITION_FAILED - " + refusal.format(described(name)))
    # What a stream does not take may differ freely.
    streams.declare(name, {**first, "x-max-length": 1, "x-foo": 1})


def test_a_stream_is_not_a_classic_queue_either_way(target: Target, streams: Streams) -> None:
    stream, classic = target.unique("stream"), target.unique("classic")
    streams.declare(stream)
    _code, text = refused(lambda: streams.channel().queue_declare(stream, durable=True))
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for {described(stream)}: "
        "received none but current is the value 'stream' of type 'longstr'"
    )
    _code, text = refused(
        lambda: streams.channel().queue_declare(
            stream, durable=True, arguments={"x-queue-type": "classic"}
        )
    )
    assert text.endswith("received 'classic' but current is 'stream'")
    streams.channel().queue_declare(classic, durable=True)
    _code, text = refused(lambda: streams.declare(classic))
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for {described(classic)}: "
        "received the value 'stream' of type 'longstr' but current is none"
    )


def test_delete_ignores_if_empty_and_if_unused_and_counts_nothing(
    target: Target, streams: Streams
) -> None:
    name = target.unique("stream")
    streams.declare(name)
    channel = streams.channel()
    channel.confirm_delivery()
    channel.basic_publish("", name, b"kept")
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(name, lambda *_: None)
    other = streams.channel()
    assert other.queue_delete(name, if_empty=True, if_unused=True).method.message_count == 0
    code, _ = refused(lambda: streams.channel().queue_declare(name, passive=True))
    assert code == 404


def test_purge_is_not_implemented(target: Target, streams: Streams) -> None:
    name = target.unique("stream")
    streams.declare(name)
    with pytest.raises(ConnectionClosedByBroker) as closed:
        streams.channel().queue_purge(name)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        540,
        f"NOT_IMPLEMENTED - queue.purge not supported by stream queues {described(name)}",
    )
