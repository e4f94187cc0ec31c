"""Beyond RabbitMQ 3.10, over pika: stream filtering (as RabbitMQ 3.13 names it, matching
exactly) and server-side offset tracking (LavinMQ's x-stream-automatic-offset-tracking)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

import vhosts.stream_queue as stream_queue
from amqp_lite import ThreadedBroker, run_in_thread
from tests.stream_helpers import STREAM, collect, consume

TRACKED = {"x-stream-automatic-offset-tracking": True}


@pytest.fixture
def channel(broker: ThreadedBroker) -> Iterator[BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    opened = connection.channel()
    opened.queue_declare("s", durable=True, arguments=STREAM)
    yield opened
    connection.close()


def publish(channel: BlockingChannel, items: list[tuple[bytes, Any]]) -> None:
    """(body, filter value or None) in order, confirmed."""
    channel.confirm_delivery()
    for body, value in items:
        headers = {"x-stream-filter-value": value} if value is not None else None
        channel.basic_publish("", "s", body, pika.BasicProperties(headers=headers))


COLOURED = [
    (b"r0", "red"),
    (b"b1", "blue"),
    (b"n2", None),
    (b"r3", "red"),
    (b"g4", "green"),
    (b"n5", None),
    (b"x6", b"red"),  # a binary value is the same text
]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, [b"r0", b"b1", b"n2", b"r3", b"g4", b"n5", b"x6"]),
        ({"x-stream-filter": "red"}, [b"r0", b"r3", b"x6"]),
        ({"x-stream-filter": ["red", "blue"]}, [b"r0", b"b1", b"r3", b"x6"]),
        (
            {"x-stream-filter": "red", "x-stream-match-unfiltered": True},
            [b"r0", b"n2", b"r3", b"n5", b"x6"],
        ),
        ({"x-stream-filter": "purple"}, []),
        ({"x-stream-filter": [], "x-stream-match-unfiltered": True}, [b"n2", b"n5"]),
        # As RabbitMQ 3.13 reads them: elements that are not strings are ignored, a filter
        # that is neither a string nor a list filters nothing, and only true matches unfiltered.
        ({"x-stream-filter": ["red", 5]}, [b"r0", b"r3", b"x6"]),
        ({"x-stream-filter": 5}, [b"r0", b"b1", b"n2", b"r3", b"g4", b"n5", b"x6"]),
        ({"x-stream-filter": "red", "x-stream-match-unfiltered": "true"}, [b"r0", b"r3", b"x6"]),
    ],
)
def test_a_filter_delivers_the_messages_with_its_values(
    channel: BlockingChannel, arguments: dict[str, Any], expected: list[bytes]
) -> None:
    publish(channel, COLOURED)
    got = consume(channel, "s", {"x-stream-offset": "first", **arguments}, wait=0.3)
    assert [d.body for d in got] == expected
    assert [d.offset for d in got] == [int(b[1:]) for b in expected]  # their own offsets


def test_filtered_out_messages_cost_no_credit(channel: BlockingChannel) -> None:
    publish(channel, [(b"%d" % i, "rare" if i % 500 == 499 else "common") for i in range(2000)])
    got = consume(
        channel,
        "s",
        {"x-stream-offset": "first", "x-stream-filter": "rare"},
        prefetch=1,
        count=4,
    )
    assert [d.offset for d in got] == [499, 999, 1499, 1999]


def test_a_filtering_consumer_gets_new_matching_messages_as_they_come(
    channel: BlockingChannel,
) -> None:
    channel.basic_qos(prefetch_count=10)
    got: list[bytes] = []
    channel.basic_consume(
        "s", lambda ch, m, p, b: got.append(b), arguments={"x-stream-filter": "blue"}
    )
    publish(channel, COLOURED)
    collect(channel.connection, got, 1)
    assert got == [b"b1"]


# -- offset tracking -----------------------------------------------------------------------------


def read(
    url: str, tag: str, arguments: dict[str, Any], count: int, *, ack: int | None = None
) -> list[int]:
    """Consume `count` as consumer `tag`, ack the first `ack` of them (all by default), then
    go away (channel and connection closed, unacked ones left unacked)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    got = consume(channel, "s", arguments, count=count, ack=False, tag=tag)
    for delivery in got[: count if ack is None else ack]:
        channel.basic_ack(delivery.tag)
    connection.close()
    return [d.offset for d in got]


@pytest.fixture
def twenty(channel: BlockingChannel) -> str:
    publish(channel, [(b"%d" % i, None) for i in range(20)])
    return "s"


def test_a_tracked_consumer_resumes_after_its_last_ack(broker: ThreadedBroker, twenty: str) -> None:
    first = {"x-stream-offset": "first", **TRACKED}
    assert read(broker.url, "reader", first, 5) == [0, 1, 2, 3, 4]
    # Back with the same name: where it left off; x-stream-offset only counts the first time.
    assert read(broker.url, "reader", first, 3, ack=1) == [5, 6, 7]
    # 5 was acked, 6 and 7 were not: they come again.
    assert read(broker.url, "reader", {"x-stream-offset": "last", **TRACKED}, 2) == [6, 7]
    # Another name has a place of its own; an untracked consumer of the same name starts anew.
    assert read(broker.url, "other", first, 1) == [0]
    assert read(broker.url, "reader", {"x-stream-offset": "first"}, 1) == [0]
    assert read(broker.url, "reader", {"x-stream-offset": 3, **TRACKED}, 1) == [8]


def test_tracking_takes_the_string_true(broker: ThreadedBroker, twenty: str) -> None:
    arguments = {"x-stream-offset": 10, "x-stream-automatic-offset-tracking": "true"}
    assert read(broker.url, "named", arguments, 2) == [10, 11]
    assert read(broker.url, "named", arguments, 1) == [12]


def test_a_tracked_offset_survives_a_restart(tmp_path: Path) -> None:
    for round_ in range(3):
        with run_in_thread(data_dir=tmp_path) as broker:
            connection = pika.BlockingConnection(pika.URLParameters(broker.url))
            channel = connection.channel()
            channel.queue_declare("s", durable=True, arguments=STREAM)
            if round_ == 0:
                publish(channel, [(b"%d" % i, None) for i in range(10)])
            connection.close()
            got = read(broker.url, "reader", {"x-stream-offset": "first", **TRACKED}, 3)
            assert got == [3 * round_, 3 * round_ + 1, 3 * round_ + 2]


def test_a_filtered_tracked_consumer_resumes_past_what_it_skipped(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    publish(channel, COLOURED)
    arguments = {"x-stream-offset": "first", "x-stream-filter": "red", **TRACKED}
    assert read(broker.url, "reds", arguments, 2) == [0, 3]
    assert read(broker.url, "reds", arguments, 1) == [6]


def test_a_stream_remembers_a_bounded_number_of_names(
    broker: ThreadedBroker, twenty: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients choose the names: the one updated longest ago is forgotten past the limit."""
    monkeypatch.setattr(stream_queue, "MAX_TRACKED", 2)
    first = {"x-stream-offset": "first", **TRACKED}
    for name in ("a", "b", "c"):
        assert read(broker.url, name, first, 1) == [0]
    assert read(broker.url, "a", first, 1) == [0]  # forgotten: starts afresh
    assert read(broker.url, "c", first, 1) == [1]
