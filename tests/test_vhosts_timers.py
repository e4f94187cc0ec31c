"""The timer heap: cancelled timers let go of what they hold, and the heap stays bounded."""

from __future__ import annotations

import gc
import weakref

import pika

from amqp_lite import run_in_thread
from vhosts import Message, VirtualHost
from vhosts.clock import Clock
from vhosts.timers import Timers


def test_a_cancelled_timer_does_not_fire_and_lets_go_at_once() -> None:
    timers = Timers()
    fired: list[float] = []
    kept = timers.schedule(5.0, fired.append)
    dropped = timers.schedule(1.0, lambda now: fired.append(-now))
    timers.cancel(dropped)
    timers.cancel(dropped)  # twice is harmless
    assert not dropped.pending and dropped.callback is None
    assert len(timers) == 1
    assert timers.next_deadline() == 5.0  # the cancelled one at the top is skipped
    assert timers.run_due(10.0) == 1
    assert fired == [10.0] and not kept.pending
    timers.cancel(kept)  # after firing: nothing to do
    assert len(timers) == 0 and timers.heap_size == 0


def test_the_heap_stays_bounded_when_timers_are_cancelled_faster_than_they_come_due() -> None:
    timers = Timers()
    live = [timers.schedule(3600.0, lambda now: None) for _ in range(10)]
    for n in range(10_000):
        timers.cancel(timers.schedule(7200.0 + n, lambda now: None))
        assert timers.heap_size <= 2 * len(live) + 64
    assert len(timers) == len(live)


def test_deleted_queues_leave_no_timers_and_are_freed() -> None:
    """x-expires and a long TTL each keep a timer; deleting the queue must drop both, so 200k
    declare/delete cycles do not pile up half a gigabyte of dead queues until their deadlines."""
    vhost = VirtualHost("/", clock=Clock(frozen_at=1_000_000.0))
    refs = []
    for n in range(2_000):
        queue = vhost.declare_queue(
            f"q{n}", None, arguments={"x-expires": 3_600_000, "x-message-ttl": 3_600_000}
        )
        queue.enqueue(Message("", queue.name, None, b"m"))  # its expiry timer
        refs.append(weakref.ref(queue))
        vhost.delete_queue(queue.name, None)
        del queue
    assert vhost.timers.heap_size <= 64 * 2
    assert len(vhost.timers) == 0
    gc.collect()
    assert not [ref for ref in refs if ref() is not None]


def test_declare_and_delete_over_the_wire_leaves_the_timer_heap_as_it_was() -> None:
    with run_in_thread() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        before = broker.call(lambda: broker.node.timers.heap_size)
        for n in range(300):
            channel.queue_declare(f"brief-{n}", arguments={"x-expires": 86_400_000})
            channel.basic_publish(
                "", f"brief-{n}", b"m", pika.BasicProperties(expiration="86400000")
            )
            channel.queue_delete(f"brief-{n}")
        after = broker.call(lambda: broker.node.timers.heap_size)
        connection.close()
    assert after - before <= 128  # cancelled ones wait for a compaction, never more
