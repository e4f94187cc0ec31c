"""What a stream keeps: retention by size and age removing whole segments from the head, the
same limits set by policy, and the log surviving restarts and kill -9."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.exceptions import AMQPError

from amqp_lite import ThreadedBroker, run_in_thread
from tests.conftest import Target
from tests.processes import BrokerProcess
from tests.stream_helpers import STREAM, Streams, consume
from vhosts.policies import Policy, validate_policy


@pytest.fixture
def streams(target: Target) -> Iterator[Streams]:
    made = Streams(target)
    yield made
    made.close()


def offsets_from_first(url: str, name: str, count: int | None = None) -> list[tuple[int, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        got = consume(connection.channel(), name, {"x-stream-offset": "first"}, count=count)
        return [(d.offset, d.body) for d in got]
    finally:
        connection.close()


def test_retention_by_size_removes_the_oldest_segments(streams: Streams) -> None:
    name = streams.declare(
        arguments={"x-max-length-bytes": 500, "x-stream-max-segment-size-bytes": 200}
    )
    published = [b"%02d" % i + b"." * 48 for i in range(30)]
    streams.publish(name, published)
    kept = consume(streams.channel(), name, {"x-stream-offset": "first"}, wait=0.5)
    assert 0 < len(kept) < 30
    assert [d.body for d in kept] == published[-len(kept) :]  # only ever a prefix goes
    assert kept[0].offset > 0


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[ThreadedBroker]:
    from amqp_lite import Clock

    # A data directory: a broker without one confirms a stream publish before its log is
    # written, and a consumer coming right after the confirm might not see it yet.
    with run_in_thread(clock=Clock(frozen_at=1_700_000_000.0), data_dir=tmp_path) as broker:
        yield broker


def stream_on(broker: ThreadedBroker, arguments: dict[str, Any]) -> pika.BlockingConnection:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.queue_declare("s", durable=True, arguments={**STREAM, **arguments})
    return connection


def publish(connection: pika.BlockingConnection, bodies: list[bytes]) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("", "s", body)
    channel.close()


def test_retention_by_age_removes_segments_whose_newest_message_is_older(
    frozen: ThreadedBroker,
) -> None:
    connection = stream_on(frozen, {"x-max-age": "30s", "x-stream-max-segment-size-bytes": 200})
    old = [b"old-%d" % i + b"." * 60 for i in range(6)]
    publish(connection, old)
    frozen.advance(29)
    assert [body for _, body in offsets_from_first(frozen.url, "s", 6)] == old  # not yet
    frozen.advance(2)  # the timer removes what is past its age, the segment written to stays
    left = [body for _, body in offsets_from_first(frozen.url, "s")]
    assert 0 < len(left) < 6 and left == old[-len(left) :]
    publish(connection, [b"new"])  # a new segment; the one before it goes once it is old
    frozen.advance(31)
    assert offsets_from_first(frozen.url, "s") == [(6, b"new")]
    connection.close()


@pytest.mark.parametrize(
    ("definition", "left"),
    [
        ({"max-length-bytes": 300}, lambda n: 0 < n < 10),
        ({"max-age": "1m"}, lambda n: 0 < n < 10),
        ({"max-age": "1h"}, lambda n: n == 10),
        # A policy with a key streams do not take does not apply to a stream at all.
        ({"max-age": "1m", "message-ttl": 1000}, lambda n: n == 10),
    ],
)
def test_policies_set_the_same_limits(
    frozen: ThreadedBroker, definition: dict[str, Any], left: Any
) -> None:
    connection = stream_on(frozen, {"x-stream-max-segment-size-bytes": 200})
    publish(connection, [b"%d" % i + b"." * 60 for i in range(10)])
    frozen.advance(120)
    frozen.set_policy("/", "limits", "^s$", definition, apply_to="queues")
    assert left(len(offsets_from_first(frozen.url, "s")))
    applied = next(q.policy for q in frozen.admin.queues("/") if q.name == "s")
    assert (applied is not None) == ("message-ttl" not in definition)
    connection.close()


@pytest.mark.parametrize(
    ("definition", "complaint"),
    [
        ({"max-age": "7d"}, '<<"7d">> is not a valid max age'),
        ({"max-age": "0s"}, '<<"0s">> is not a valid max age'),
        # RabbitMQ crashes (a stack trace instead of a text) on these two:
        ({"max-age": 7}, "7 is not a valid max age"),
        ({"max-age": "abc"}, '<<"abc">> is not a valid max age'),
        ({"stream-max-segment-size-bytes": -1}, "-1 is not a valid segment size"),
        ({"stream-max-segment-size-bytes": "a"}, '<<"a">> is not a valid segment size'),
        ({"stream-max-segment-size-bytes": 1.5}, "1.5 is not a valid segment size"),
        ({"stream-max-segment-size-bytes": 3000000001}, "3000000001 is not a valid segment size"),
    ],
)
def test_stream_policy_keys_get_rabbitmqs_texts(definition: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match="^" + complaint.replace(".", r"\.") + "$"):
        validate_policy(Policy("/", "p", ".*", "queues", 0, definition))
    for good in ({"max-age": "1Y"}, {"stream-max-segment-size-bytes": 0}):
        validate_policy(Policy("/", "p", ".*", "queues", 0, good))


# -- restarts ------------------------------------------------------------------------------------


def test_a_restart_keeps_the_log_and_its_offsets(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = stream_on(broker, {"x-stream-max-segment-size-bytes": 1000})
        publish(connection, [b"m%d" % i for i in range(100)])
        connection.close()
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = stream_on(broker, {"x-stream-max-segment-size-bytes": 1000})
        assert offsets_from_first(broker.url, "s", 100) == [(i, b"m%d" % i) for i in range(100)]
        publish(connection, [b"after"])
        assert offsets_from_first(broker.url, "s", 101)[-1] == (100, b"after")
        last = consume(connection.channel(), "s", {"x-stream-offset": "last"}, count=1)
        assert [(d.offset, d.body) for d in last] == [(100, b"after")]
        connection.channel().queue_delete("s")
        connection.close()
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare("s", passive=True)
        connection.close()
    assert list((tmp_path / "streams").iterdir()) == []  # its files went with it


@pytest.fixture
def crash_rounds(request: pytest.FixtureRequest) -> int:
    """Half the durability test's rounds: each starts a broker process (soak with more)."""
    return (int(request.config.getoption("--crash-rounds")) + 1) // 2


def read_everything(url: str, at_least: int) -> list[bytes]:
    """From the first offset: at least `at_least` messages, then whatever follows them."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        got = consume(channel, "s", {"x-stream-offset": "first"}, count=at_least)
        more = consume(channel, "s", {"x-stream-offset": len(got)}, wait=0.3)
        assert [d.offset for d in got + more] == list(range(len(got) + len(more)))
        return [d.body for d in got + more]
    finally:
        connection.close()


def publish_until_killed(url: str, confirmed: list[bytes]) -> None:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        for n in range(1_000_000):
            body = b"%d" % n + b"." * (n % 300)
            channel.basic_publish("", "s", body)  # returns once confirmed
            confirmed.append(body)
    except (AMQPError, OSError):
        return  # the broker died under us, as intended


def test_kill_9_never_loses_a_confirmed_message(tmp_path: Path, crash_rounds: int) -> None:
    """Publish with confirms into a stream with small segments, kill -9 the broker at a random
    moment, restart: every confirmed message is there, in order, at the offset it had."""
    arguments = {**STREAM, "x-stream-max-segment-size-bytes": 4000}
    expected: list[bytes] = []  # offset i holds expected[i]
    for round_ in range(crash_rounds + 1):
        broker = BrokerProcess(tmp_path)
        try:
            connection = pika.BlockingConnection(pika.URLParameters(broker.url))
            connection.channel().queue_declare("s", durable=True, arguments=arguments)
            connection.close()
            recovered = read_everything(broker.url, len(expected)) if expected else []
            assert recovered[: len(expected)] == expected, f"round {round_}"
            if round_ == crash_rounds:
                return
            expected = recovered  # a message written but not yet confirmed may be there too
            confirmed: list[bytes] = []
            publisher = threading.Thread(target=publish_until_killed, args=(broker.url, confirmed))
            publisher.start()
            time.sleep(0.2 + 0.2 * (round_ % 3))
        finally:
            broker.kill()
        publisher.join()
        assert confirmed, "nothing was confirmed before the kill"
        expected += confirmed
