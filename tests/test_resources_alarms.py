"""The memory and disk alarms: RabbitMQ's watermarks, read on the broker's clock.

The readings are the test's own (a dict it changes), and the clock moves by hand, so a broker
"over its watermark" costs no memory at all.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator

import pika
import pytest

from amqp_lite import Clock, ThreadedBroker, run_in_thread
from amqp_lite.resources import (
    DISK_CHECK_MAX_INTERVAL,
    DISK_CHECK_MIN_INTERVAL,
    MEMORY_CHECK_INTERVAL,
    DiskFreeLimit,
    MemoryWatermark,
    ResourceMonitor,
    available_memory,
    parse_information_unit,
    resident_memory,
)
from tests.conftest import FROZEN_AT
from tests.management_client import Api
from vhosts import Node

GB = 1_000_000_000


# -- the settings, as RabbitMQ reads them --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("300MB", 300_000_000),
        ("300mb", 300_000_000),
        ("512MiB", 512 * 2**20),
        ("512M", 512 * 2**20),
        ("2GB", 2 * GB),
        ("2gib", 2 * 2**30),
        ("64kB", 64_000),
        ("64k", 65536),
        (" 50MB ", 50_000_000),
    ],
)
def test_sizes_are_read_with_rabbitmqs_units(text: str, size: int) -> None:
    assert parse_information_unit(text) == size


@pytest.mark.parametrize("text", ["", "MB", "1.5GB", "-3MB", "3TB", "3 apples"])
def test_a_size_that_is_not_one_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_information_unit(text)


def test_a_memory_watermark_is_a_fraction_or_a_size() -> None:
    assert MemoryWatermark.parse("0.4") == MemoryWatermark(0.4, None)
    assert MemoryWatermark.parse(0.6).limit(1000) == 600
    assert MemoryWatermark.parse("1").limit(1000) == 1000
    assert MemoryWatermark.parse("300MB") == MemoryWatermark(None, 300_000_000)
    assert MemoryWatermark.parse("relative:1.5").limit(1000) == 1500  # RabbitMQ allows it
    assert MemoryWatermark.parse("absolute:2GiB") == MemoryWatermark(None, 2 * 2**30)
    # An absolute watermark above the memory there is means all of it, as in RabbitMQ.
    assert MemoryWatermark.parse("300MB").limit(100_000_000) == 100_000_000
    with pytest.raises(ValueError):
        MemoryWatermark.parse("lots")


def test_a_disk_free_limit_is_a_size_or_a_multiple_of_memory() -> None:
    assert DiskFreeLimit().limit(8 * GB) == 50_000_000  # RabbitMQ's default
    assert DiskFreeLimit.parse("2GB").limit(8 * GB) == 2 * GB
    assert DiskFreeLimit.parse("mem_relative:1.5").limit(8 * GB) == 12 * GB
    assert DiskFreeLimit.parse("relative:0.5").limit(8 * GB) == 4 * GB
    with pytest.raises(ValueError):
        DiskFreeLimit.parse("mem_relative:lots")


def test_the_real_readings_are_plausible() -> None:
    assert 1 << 20 < resident_memory() < available_memory()


# -- the monitor, on a node and a clock the test moves ---------------------------------------------


class Readings:
    """What the monitor will read next: bytes of memory used, bytes free on disk."""

    def __init__(self) -> None:
        self.memory = 100
        self.disk = 10 * GB

    def monitor(self, node: Node, **settings: object) -> ResourceMonitor:
        return ResourceMonitor(
            node,
            memory_used=lambda: self.memory,
            disk_free=lambda: self.disk,
            total_memory=1000,
            **settings,  # type: ignore[arg-type]
        )


def _advance(node: Node, seconds: float) -> None:
    node.clock.advance(seconds)
    node.timers.run_due(node.clock.now())


def test_the_memory_alarm_follows_the_reading_every_interval() -> None:
    node = Node(clock=Clock(frozen_at=0.0))
    readings = Readings()
    monitor = readings.monitor(node)  # 0.4 of 1000 bytes
    alarms: list[tuple[str, str]] = []
    node.events.alarm_set.subscribe(lambda resource: alarms.append(("set", resource)))
    node.events.alarm_cleared.subscribe(lambda resource: alarms.append(("cleared", resource)))
    monitor.start()
    assert monitor.memory_limit == 400 and monitor.memory_used == 100
    readings.memory = 401
    _advance(node, MEMORY_CHECK_INTERVAL - 0.1)
    assert not node.alarms  # not read again yet
    _advance(node, 0.1)
    assert set(node.alarms) == {"memory"} and alarms == [("set", "memory")]
    _advance(node, MEMORY_CHECK_INTERVAL)  # still over: nothing new
    readings.memory = 400  # at the watermark is not over it
    _advance(node, MEMORY_CHECK_INTERVAL)
    assert not node.alarms and alarms == [("set", "memory"), ("cleared", "memory")]
    monitor.stop()
    readings.memory = 10_000
    _advance(node, 10 * MEMORY_CHECK_INTERVAL)
    assert not node.alarms


def test_the_disk_is_read_more_often_the_nearer_it_is_to_its_limit() -> None:
    node = Node(clock=Clock(frozen_at=0.0))
    readings = Readings()
    monitor = readings.monitor(node, disk_free_limit=DiskFreeLimit.parse("1GB"))
    monitor.start()  # 9 GB above the limit: the next look in 10 s
    readings.disk = 1 * GB + 1
    _advance(node, DISK_CHECK_MAX_INTERVAL - 0.01)
    assert monitor.disk_free == 10 * GB
    _advance(node, 0.01)
    assert monitor.disk_free == 1 * GB + 1 and not node.alarms
    readings.disk = 1 * GB - 1  # a byte short of the limit
    _advance(node, DISK_CHECK_MIN_INTERVAL)  # so near the limit: looked again at once
    assert set(node.alarms) == {"disk"}
    readings.disk = 5 * GB
    _advance(node, DISK_CHECK_MAX_INTERVAL - 0.01)  # while in alarm, every 10 s
    assert node.alarms
    _advance(node, 0.01)
    assert not node.alarms


def test_another_source_keeps_its_alarm_when_free_space_recovers() -> None:
    """A failing write may raise the disk alarm too: the free-space reading clears only its own."""
    node = Node(clock=Clock(frozen_at=0.0))
    readings = Readings()
    monitor = readings.monitor(node)
    readings.disk = 1  # below 50MB
    monitor.start()
    node.set_alarm("disk", "write failed")
    readings.disk = 10 * GB
    _advance(node, DISK_CHECK_MAX_INTERVAL)
    assert set(node.alarms) == {"disk"}
    node.clear_alarm("disk", "write failed")
    assert not node.alarms


def test_a_reading_that_fails_is_logged_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node(clock=Clock(frozen_at=0.0))
    values: list[int | None] = [None, 500]

    def flaky() -> int:
        value = values.pop(0)
        if value is None:
            raise OSError("no /proc here")
        return value

    monitor = ResourceMonitor(node, memory_used=flaky, disk_free=lambda: GB, total_memory=1000)
    monitor.start()
    assert "cannot read the memory used" in caplog.text and not node.alarms
    _advance(node, MEMORY_CHECK_INTERVAL)
    assert set(node.alarms) == {"memory"}


# -- over the wire ---------------------------------------------------------------------------------


@pytest.fixture
def readings() -> Readings:
    return Readings()


@pytest.fixture
def watched(readings: Readings) -> Iterator[ThreadedBroker]:
    """A broker with 1 GB of memory, a 0.4 watermark, the test's readings and a frozen clock."""
    readings.memory = 100_000_000
    with run_in_thread(
        clock=Clock(frozen_at=FROZEN_AT),
        memory_used=lambda: readings.memory,
        disk_free=lambda: readings.disk,
        total_memory=GB,
        management=True,
        prometheus=True,
    ) as running:
        yield running


def _until(connection: pika.BlockingConnection, condition: Callable[[], bool]) -> None:
    """Let pika read until `condition` holds (what it waits for is the broker's reply)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the broker did not answer"
        connection.process_data_events(time_limit=0.05)


def test_publishing_beyond_the_watermark_blocks_publishers_and_loses_nothing(
    watched: ThreadedBroker, readings: Readings
) -> None:
    """pika hears connection.blocked and unblocked; the publishes made meanwhile wait in TCP,
    not in the broker, while a consumer keeps draining; every one arrives afterwards.

    Whether the publish that finds the alarm on gets in before reading stops depends on how
    its frames were cut into reads (RabbitMQ stops at its content header); this test does not
    depend on it."""
    params = pika.URLParameters(watched.url)
    publisher = pika.BlockingConnection(params)
    events: list[str] = []
    publisher.add_on_connection_blocked_callback(lambda _c, f: events.append(f.method.reason))
    publisher.add_on_connection_unblocked_callback(lambda _c, _f: events.append("unblocked"))
    confirming = publisher.channel()
    confirming.confirm_delivery()
    confirming.queue_declare("work")
    confirming.basic_publish("", "work", b"early")  # queued before the alarm
    publishing = publisher.channel()  # no confirms: a blocked publisher hears nothing back
    consumer = pika.BlockingConnection(params)
    consuming = consumer.channel()
    received: list[bytes] = []

    readings.memory = 500_000_000  # over 0.4 of 1 GB
    watched.advance(MEMORY_CHECK_INTERVAL)
    publishing.basic_publish("", "work", b"0")  # the publish that finds the alarm on
    _until(publisher, lambda: events == ["low on memory"])
    for n in range(1, 101):
        publishing.basic_publish("", "work", str(n).encode())
    consuming.basic_consume("work", lambda _ch, _m, _p, body: received.append(body), auto_ack=True)
    _until(consumer, lambda: received[:1] == [b"early"])  # consumers are not blocked
    assert watched.admin.queue("/", "work").messages == 0  # the rest is not read yet
    assert b"1" not in received

    readings.memory = 300_000_000
    watched.advance(MEMORY_CHECK_INTERVAL)
    _until(publisher, lambda: events == ["low on memory", "unblocked"])
    _until(consumer, lambda: len(received) == 102)
    assert received == [b"early"] + [str(n).encode() for n in range(101)]
    publisher.close()
    consumer.close()


def test_connections_are_listed_blocking_then_blocked_as_rabbitmq_lists_them(
    watched: ThreadedBroker, readings: Readings
) -> None:
    """During an alarm an open connection is "blocking" until it publishes, then "blocked"
    (RabbitMQ's connection states, in its management API and rabbitmqctl)."""
    api = Api(watched.management_url)

    def opened(name: str) -> pika.BlockingConnection:
        params = pika.URLParameters(watched.url)
        params.client_properties = {"connection_name": name}
        return pika.BlockingConnection(params)

    def states() -> dict[str, str]:
        listed = api.get("/api/connections")
        return {c["client_properties"]["connection_name"]: c["state"] for c in listed}

    publisher, consumer = opened("publisher"), opened("consumer")
    events: list[str] = []
    publisher.add_on_connection_blocked_callback(lambda _c, _f: events.append("blocked"))
    publisher.add_on_connection_unblocked_callback(lambda _c, _f: events.append("unblocked"))
    publishing = publisher.channel()
    publishing.queue_declare("work")
    assert states() == {"publisher": "running", "consumer": "running"}

    readings.memory = 500_000_000  # over 0.4 of 1 GB
    watched.advance(MEMORY_CHECK_INTERVAL)
    assert states() == {"publisher": "blocking", "consumer": "blocking"}
    publishing.basic_publish("", "work", b"x")
    _until(publisher, lambda: events == ["blocked"])
    assert states() == {"publisher": "blocked", "consumer": "blocking"}
    assert {c.state for c in watched.admin.connections()} == {"blocked", "blocking"}

    readings.memory = 300_000_000
    watched.advance(MEMORY_CHECK_INTERVAL)
    _until(publisher, lambda: events == ["blocked", "unblocked"])
    assert states() == {"publisher": "running", "consumer": "running"}
    publisher.close()
    consumer.close()


def test_the_node_reports_its_limits_and_alarms(
    watched: ThreadedBroker, readings: Readings
) -> None:
    api = Api(watched.management_url)
    node = api.get("/api/nodes")[0]
    memory = (node["mem_used"], node["mem_limit"], node["mem_alarm"])
    assert memory == (100_000_000, 400_000_000, False)
    assert (node["disk_free"], node["disk_free_limit"]) == (10 * GB, 50_000_000)
    assert node["disk_free_alarm"] is False
    readings.memory = 500_000_000
    readings.disk = 1_000_000
    watched.advance(DISK_CHECK_MAX_INTERVAL)
    node = api.get(f"/api/nodes/{node['name']}")
    assert (node["mem_used"], node["mem_alarm"]) == (500_000_000, True)
    assert (node["disk_free"], node["disk_free_alarm"]) == (1_000_000, True)
    failed = api.call("GET", "/api/health/checks/alarms")
    assert failed.status == 503
    assert sorted(a["resource"] for a in failed.body["alarms"]) == ["disk", "memory"]

    assert watched.prometheus_url is not None
    with urllib.request.urlopen(watched.prometheus_url, timeout=10) as response:
        text = response.read().decode()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert samples["rabbitmq_alarms_memory_used_watermark"] == "1"
    assert samples["rabbitmq_alarms_free_disk_space_watermark"] == "1"
    assert samples["rabbitmq_resident_memory_limit_bytes"] == str(4 * 10**8)
    assert samples["rabbitmq_disk_space_available_limit_bytes"] == "50000000"
    assert samples["rabbitmq_disk_space_available_bytes"] == "1000000"

    readings.memory = readings.disk = 300_000_000
    watched.advance(DISK_CHECK_MAX_INTERVAL)
    assert api.get("/api/health/checks/alarms") == {"status": "ok"}


def test_serve_takes_the_watermarks_from_the_command_line() -> None:
    from amqp_lite.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["serve", "--memory-high-watermark", "lots"])
    assert refused.value.code == 2
    with pytest.raises(SystemExit):
        main(["serve", "--disk-free-limit", "1.5"])
