"""Classic queues, RabbitMQ's original type, and their priority variant (x-max-priority).

A classic queue is the FIFO of `vhosts.queue.Queue`; a requeued message goes back to its
original place, and the store keeps only persistent messages. With x-max-priority the ready
list holds one FIFO per priority, highest first (`PriorityQueue`).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from typing import cast

from vhosts.message import Message
from vhosts.queue import Queue, QueueEntry, pop_expired
from vhosts.queue_settings import QueueSettings


class ClassicQueue(Queue):
    type_name = "classic"
    rabbit_module = "rabbit_classic_queue"
    declare_arguments = (
        "x-expires",
        "x-message-ttl",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-overflow",
        "x-queue-mode",
        "x-queue-version",
        "x-single-active-consumer",
        "x-queue-type",
        "x-queue-master-locator",
    )
    consume_arguments = ("x-cancel-on-ha-failover", "x-priority", "x-credit")
    unsupported_policies = frozenset(
        {
            "max-age",
            "stream-max-segment-size-bytes",
            "queue-leader-locator",
            "initial-cluster-size",
            "delivery-limit",
            "dead-letter-strategy",
        }
    )
    server_named = True

    @classmethod
    def variant(cls, settings: QueueSettings) -> type[Queue]:
        return PriorityQueue if settings.max_priority else cls

    def requeue(self, entries: Iterable[QueueEntry], *, channel_closed: bool = False) -> None:
        """Put delivered entries back at their original places, marked redelivered."""
        returning = sorted(entries, key=_by_seq)
        self.unacked_count -= len(returning)
        self.unacked_bytes -= sum(len(entry.message.body) for entry in returning)
        if self.deleted:  # nowhere to go back to: as if acked
            self._forget(returning)
            return
        if not returning:
            return
        for entry in returning:
            entry.redelivered = True
            self.ready_bytes += len(entry.message.body)
        self._put_back(returning)
        if self.settings.limited:  # RabbitMQ drops the head before delivering again
            self._drop_head_over_limit()
        self._expire_head()  # and what expired while it was out, before delivering again
        if self.consumers:
            self.dispatch()

    def _put_back(self, returning: list[QueueEntry]) -> None:
        put_back(cast("deque[QueueEntry]", self.ready), returning)


class PriorityQueue(ClassicQueue):
    """A classic queue declared with x-max-priority: higher priorities are delivered first.

    The priorities come from the declaration, so a policy never turns one queue into the other.
    """

    def _new_ready(self) -> PriorityReady:
        return PriorityReady()

    @property
    def _levels(self) -> PriorityReady:
        return cast(PriorityReady, self.ready)

    def _new_entry(self, message: Message) -> QueueEntry:
        entry = super()._new_entry(message)
        entry.priority = self._priority_of(message)
        return entry

    def _restored_entry(
        self, message: Message, seq: int, delivered: int, expires_at: float | None
    ) -> QueueEntry:
        entry = super()._restored_entry(message, seq, delivered, expires_at)
        entry.priority = self._priority_of(message)
        return entry

    def _priority_of(self, message: Message) -> int:
        return min(message.properties.priority or 0, self.settings.max_priority or 0)

    def _put_back(self, returning: list[QueueEntry]) -> None:
        self._levels.put_back(returning)

    def _pop_expired(self, now: float) -> list[QueueEntry]:
        return self._levels.pop_expired(now)

    def _head_deadlines(self) -> list[float]:
        heads = self._levels.heads()
        return [entry.expires_at for entry in heads if entry.expires_at is not None]


class PriorityReady:
    """The ready list of a priority queue: FIFO within each priority, highest priority first.

    Offers the few deque operations `Queue` uses (append, popleft, [0], len, iteration, clear).
    """

    def __init__(self) -> None:
        self._by_priority: dict[int, deque[QueueEntry]] = {}
        self._priorities: list[int] = []  # those with entries, ascending
        self._length = 0

    def heads(self) -> list[QueueEntry]:
        return [self._by_priority[p][0] for p in reversed(self._priorities)]

    def append(self, entry: QueueEntry) -> None:
        bucket = self._by_priority.get(entry.priority)
        if bucket is None:
            bucket = self._by_priority[entry.priority] = deque()
            bisect.insort(self._priorities, entry.priority)
        bucket.append(entry)
        self._length += 1

    def popleft(self) -> QueueEntry:
        if not self._priorities:
            raise IndexError("pop from an empty queue")
        top = self._priorities[-1]
        bucket = self._by_priority[top]
        entry = bucket.popleft()
        if not bucket:
            del self._by_priority[top]
            self._priorities.pop()
        self._length -= 1
        return entry

    def put_back(self, entries: list[QueueEntry]) -> None:
        """Requeued entries (sorted by seq) return to their places within their priorities."""
        by_priority: dict[int, list[QueueEntry]] = {}
        for entry in entries:
            by_priority.setdefault(entry.priority, []).append(entry)
        for priority, returning in by_priority.items():
            bucket = self._by_priority.get(priority)
            if bucket is None:
                bisect.insort(self._priorities, priority)
                bucket = deque()
                self._by_priority[priority] = bucket
            put_back(bucket, returning)
        self._length += len(entries)

    def pop_expired(self, now: float) -> list[QueueEntry]:
        """Expired entries at the head of each priority's FIFO."""
        expired: list[QueueEntry] = []
        for priority in list(self._priorities):
            bucket = self._by_priority[priority]
            expired += pop_expired(bucket, now)
            if not bucket:
                del self._by_priority[priority]
                self._priorities.remove(priority)
        self._length -= len(expired)
        return expired

    def clear(self) -> None:
        self._by_priority.clear()
        self._priorities.clear()
        self._length = 0

    def __getitem__(self, index: int) -> QueueEntry:
        if index != 0 or not self._priorities:
            raise IndexError(index)
        return self._by_priority[self._priorities[-1]][0]

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[QueueEntry]:
        for priority in reversed(self._priorities):
            yield from self._by_priority[priority]


def _by_seq(entry: QueueEntry) -> int:
    return entry.seq


def put_back(ready: deque[QueueEntry], returning: list[QueueEntry]) -> None:
    """Merge requeued entries (sorted by seq) into a FIFO by their original positions."""
    if not ready or returning[-1].seq < ready[0].seq:
        ready.extendleft(reversed(returning))  # the usual case: all older than what waits
        return
    merged = list(heapq.merge(returning, ready, key=_by_seq))
    ready.clear()
    ready.extend(merged)
