"""Paging over the wire: with a memory budget of nothing, every classic queue keeps almost all of
its ready messages in page files (pages of 4 KiB, sixty-odd small messages each), and clients
see exactly what they see of a queue held in memory: order, requeue to the original place, TTL
at the head, dead-lettering, length limits, priorities, purge, delete and restarts.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError

from amqp_lite import Clock, ThreadedBroker, run_in_thread
from vhosts.page_files import PAGES_DIRECTORY, SUFFIX
from vhosts.store import STORE_FILE

PERSISTENT = pika.BasicProperties(delivery_mode=2)
COUNT = 300  # five pages or so
DEAD = "dead"
TO_DEAD = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DEAD}


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread(
        queue_memory_budget=0, management=True, clock=Clock(frozen_at=1_700_000_000.0)
    ) as broker:
        yield broker


@pytest.fixture
def channel(broker: ThreadedBroker, request: pytest.FixtureRequest) -> Iterator[BlockingChannel]:
    url = broker.add_vhost(request.node.name)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(DEAD)
    yield channel
    connection.close()
    broker.delete_vhost(request.node.name)


def bodies(count: int = COUNT, start: int = 0) -> list[bytes]:
    return [b"m%04d" % n for n in range(start, start + count)]


def publish(
    channel: BlockingChannel,
    queue: str,
    messages: list[bytes],
    properties: pika.BasicProperties | None = None,
) -> None:
    for body in messages:
        channel.basic_publish("", queue, body, properties)


def drain(channel: BlockingChannel, queue: str) -> list[bytes]:
    return [body for body, _redelivered in drain_flagged(channel, queue)]


def drain_flagged(channel: BlockingChannel, queue: str) -> list[tuple[bytes, bool]]:
    got = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((body, method.redelivered))


def count(channel: BlockingChannel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def queue_of(broker: ThreadedBroker, channel: BlockingChannel, name: str) -> Any:
    vhost = channel.connection._impl.params.virtual_host
    return broker.call(lambda: broker.node.vhosts[vhost].queues[name])


def paged(broker: ThreadedBroker, channel: BlockingChannel, name: str) -> int:
    count(channel, name)  # a round trip first: the broker has taken every publish sent before
    queue = queue_of(broker, channel, name)
    return broker.call(lambda: queue.paged_count)


def until(broker: ThreadedBroker, done: Callable[[], bool]) -> None:
    """Wait for the page files' worker (it writes and reads in a thread of its own)."""
    deadline = time.monotonic() + 10
    while not broker.call(done):
        assert time.monotonic() < deadline, "the page files' worker never got there"
        time.sleep(0.002)


def page_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def test_a_backlog_waits_on_disk_and_comes_back_in_order(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("backlog")
    publish(channel, "backlog", bodies())
    assert count(channel, "backlog") == COUNT
    queue = queue_of(broker, channel, "backlog")
    assert broker.call(lambda: queue.paged_count) > COUNT - 100  # a page or so in memory
    area = broker.node.paging.area
    until(broker, lambda: not area.has_pending)  # the pages are written
    assert page_files(area.directory)
    received = []

    def on_message(ch: BlockingChannel, method: Any, _properties: Any, body: bytes) -> None:
        received.append((body, method.redelivered))
        ch.basic_ack(method.delivery_tag)

    channel.basic_qos(prefetch_count=50)
    tag = channel.basic_consume("backlog", on_message)
    while len(received) < COUNT:
        channel.connection.process_data_events(time_limit=1)
    channel.basic_cancel(tag)
    assert received == [(body, False) for body in bodies()]
    assert broker.call(lambda: (queue.message_count, queue.paged_count)) == (0, 0)
    until(broker, lambda: not area.has_pending)  # each page file went with its last page
    assert not page_files(area.directory)


def test_requeued_messages_go_back_to_their_places(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    many = 3 * COUNT  # more than the pages read ahead
    channel.queue_declare("requeue")
    publish(channel, "requeue", bodies(many))
    taken = [channel.basic_get("requeue")[0] for _ in range(120)]  # past the first pages
    for method in reversed(taken[::3]):  # every third, last first
        channel.basic_nack(method.delivery_tag, requeue=True)
    for method in taken[1::3]:
        channel.basic_ack(method.delivery_tag)
    channel.basic_reject(taken[2].delivery_tag, requeue=True)
    assert paged(broker, channel, "requeue") > 0
    expected = [(body, True) for n, body in enumerate(bodies(120)) if n % 3 == 0 or n == 2]
    expected += [(body, False) for body in bodies(many - 120, start=120)]
    # What is still held goes back when the channel closes, to its place too.
    held = [method for n, method in enumerate(taken) if n % 3 == 2 and n != 2]
    assert drain_flagged(channel, "requeue") == expected
    publish(channel, "requeue", bodies(many, start=many))
    channel.close()
    channel = channel.connection.channel()
    flagged = drain_flagged(channel, "requeue")
    assert flagged[: len(held)] == [(b"m%04d" % (3 * n + 2), True) for n in range(1, 40)]
    assert flagged[len(held) :] == [(body, False) for body in bodies(many, start=many)]


def test_ttl_expires_paged_messages_at_the_head_and_dead_letters_them(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("ttl", arguments={"x-message-ttl": 60_000, **TO_DEAD})
    publish(channel, "ttl", bodies())
    assert paged(broker, channel, "ttl") > 0
    broker.advance(59)
    assert count(channel, "ttl") == COUNT
    broker.advance(2)
    assert count(channel, "ttl") == 0
    assert drain(channel, DEAD) == bodies()


def test_a_message_without_ttl_at_the_head_holds_back_the_expired_behind_it(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    """As RabbitMQ: messages expire only at the head, however far behind they wait."""
    channel.queue_declare("head", arguments=TO_DEAD)
    publish(channel, "head", [b"first"])
    publish(channel, "head", bodies(), pika.BasicProperties(expiration="1000"))
    publish(channel, "head", [b"last"])
    count(channel, "head")  # in, before the clock moves
    broker.advance(5)
    assert count(channel, "head") == COUNT + 2
    assert channel.basic_get("head", auto_ack=True)[2] == b"first"
    assert drain(channel, "head") == [b"last"]
    assert drain(channel, DEAD) == bodies()


def test_length_limits_count_paged_messages(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    many = 3 * COUNT  # the limits keep more than the pages read ahead
    channel.queue_declare("drop", arguments={"x-max-length": 700, **TO_DEAD})
    publish(channel, "drop", bodies(many))
    assert count(channel, "drop") == 700
    assert paged(broker, channel, "drop") > 0
    assert drain(channel, "drop") == bodies(many)[-700:]
    assert drain(channel, DEAD) == bodies(many)[:-700]

    channel.queue_declare("bytes", arguments={"x-max-length-bytes": 5 * 650, **TO_DEAD})
    publish(channel, "bytes", bodies(many))
    assert paged(broker, channel, "bytes") > 0
    assert drain(channel, "bytes") == bodies(many)[-650:]
    assert drain(channel, DEAD) == bodies(many)[:-650]

    channel.confirm_delivery()
    channel.queue_declare("refuse", arguments={"x-max-length": 200, "x-overflow": "reject-publish"})
    outcomes = []
    for body in bodies():
        try:
            channel.basic_publish("", "refuse", body)
            outcomes.append("ack")
        except NackError:
            outcomes.append("nack")
    assert outcomes == ["ack"] * 200 + ["nack"] * 100
    assert paged(broker, channel, "refuse") > 0
    assert drain(channel, "refuse") == bodies(200)


def test_priorities_hold_when_each_priority_pages(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("priority", arguments={"x-max-priority": 3})
    for n, body in enumerate(bodies()):
        channel.basic_publish("", "priority", body, pika.BasicProperties(priority=n % 4))
    assert paged(broker, channel, "priority") > 0
    taken = [channel.basic_get("priority")[0] for _ in range(10)]
    channel.basic_nack(taken[-1].delivery_tag, multiple=True, requeue=True)
    expected = [body for p in (3, 2, 1, 0) for n, body in enumerate(bodies()) if n % 4 == p]
    assert drain(channel, "priority") == expected


def test_rejected_paged_messages_are_dead_lettered(
    broker: ThreadedBroker, channel: BlockingChannel
) -> None:
    channel.queue_declare("reject", arguments=TO_DEAD)
    publish(channel, "reject", bodies())
    for _ in range(COUNT):
        method = channel.basic_get("reject")[0]
        channel.basic_reject(method.delivery_tag, requeue=False)
    assert count(channel, "reject") == 0
    dead = []
    while True:
        method, properties, body = channel.basic_get(DEAD, auto_ack=True)
        if method is None:
            break
        dead.append((body, properties.headers["x-death"][0]["reason"]))
    assert dead == [(body, "rejected") for body in bodies()]


def test_the_management_api_counts_what_is_paged_out(
    broker: ThreadedBroker, channel: BlockingChannel, request: pytest.FixtureRequest
) -> None:
    channel.queue_declare("shown")
    publish(channel, "shown", bodies())
    count(channel, "shown")  # a round trip: every publish is in
    assert broker.management_url is not None
    address = f"{broker.management_url}api/queues/{request.node.name}/shown"
    ask = urllib.request.Request(address, headers={"Authorization": "Basic " + _guest()})
    with urllib.request.urlopen(ask) as response:
        shown = json.load(response)
    assert shown["messages"] == COUNT
    assert 0 < shown["messages_paged_out"] < COUNT
    assert shown["messages_ram"] == COUNT - shown["messages_paged_out"]
    assert shown["message_bytes_paged_out"] == 5 * shown["messages_paged_out"]


def _guest() -> str:
    return b64encode(b"guest:guest").decode()


def test_a_restart_brings_back_paged_persistent_messages_and_nothing_else(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path, queue_memory_budget=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("fan", "fanout", durable=True)
        for queue in ("kept", "twin"):
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, "fan")
        for body in bodies():
            channel.basic_publish("fan", "", body, PERSISTENT)
            channel.basic_publish("fan", "", body.upper())  # transient: gone on restart
        assert paged(broker, channel, "kept") > 0
        for _ in range(10):  # five of each: delivered, not acked
            channel.basic_get("kept")
        drain(channel, "twin")  # its copies of the shared content are let go
        connection.close()

    with run_in_thread(data_dir=tmp_path, queue_memory_budget=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        assert paged(broker, channel, "kept") > 0  # it paged again as it came back
        flagged = drain_flagged(channel, "kept")
        assert flagged == [(body, n < 5) for n, body in enumerate(bodies())]
        assert drain(channel, "twin") == []
        connection.close()
    assert stored_contents(tmp_path) == 0  # nothing left behind in the store
    assert not page_files(tmp_path / PAGES_DIRECTORY)


def test_purging_and_deleting_a_paged_queue_let_go_of_its_stored_messages(
    tmp_path: Path,
) -> None:
    with run_in_thread(data_dir=tmp_path, queue_memory_budget=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("fan", "fanout", durable=True)
        for queue in ("purged", "deleted", "other"):
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, "fan")
        for body in bodies():
            channel.basic_publish("fan", "", body, PERSISTENT)
        assert paged(broker, channel, "purged") > 0
        assert channel.queue_purge("purged").method.message_count == COUNT
        assert channel.queue_delete("deleted").method.message_count == COUNT
        connection.close()
    assert stored_contents(tmp_path) == COUNT  # "other" still holds them

    with run_in_thread(data_dir=tmp_path, queue_memory_budget=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        assert drain(channel, "purged") == []
        assert drain(channel, "other") == bodies()
        connection.close()
    assert stored_contents(tmp_path) == 0


def stored_contents(data_dir: Path) -> int:
    """Message contents the (stopped) broker's store still holds."""
    db = sqlite3.connect(data_dir / STORE_FILE)
    try:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def test_memory_budgets_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        run_in_thread(queue_memory_budget=-1).__enter__()


def test_a_lazy_queue_pages_from_the_first_message_whatever_the_budget() -> None:
    """x-queue-mode lazy, or the queue-mode policy key, as RabbitMQ's lazy queues."""
    with run_in_thread() as broker:  # the default budget: 64 MiB a queue
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("lazy", arguments={"x-queue-mode": "lazy"})
        channel.queue_declare("eager")
        channel.queue_declare("lazy-by-policy")
        broker.set_policy("/", "lazy", "^lazy-by-policy$", {"queue-mode": "lazy"})
        for queue in ("lazy", "eager", "lazy-by-policy"):
            publish(channel, queue, bodies(2000))  # a page is 128 KiB here
        assert paged(broker, channel, "lazy") > 1000
        assert paged(broker, channel, "lazy-by-policy") > 1000
        assert paged(broker, channel, "eager") == 0
        assert consume_all(channel, "lazy", 2000) == bodies(2000)
        connection.close()


def consume_all(channel: BlockingChannel, queue: str, expected: int) -> list[bytes]:
    """What a no-ack consumer receives, faster than a basic.get each."""
    received: list[bytes] = []
    tag = channel.basic_consume(queue, lambda *message: received.append(message[3]), True)
    while len(received) < expected:
        channel.connection.process_data_events(time_limit=1)
    channel.basic_cancel(tag)
    return received
