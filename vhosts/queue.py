"""A queue: ready messages in order, the consumers they go to, and the rules of who may use it."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from vhosts.errors import AccessRefused, PreconditionFailed, ResourceLocked
from vhosts.message import Message, QueueEntry


class Consumer(Protocol):
    """What a queue needs of a consumer; the protocol layer's channel implements it."""

    tag: str
    no_ack: bool
    exclusive: bool

    def has_credit(self) -> bool:
        """May this consumer take one more message now (prefetch, a slow socket)?"""
        ...

    def deliver(self, entry: QueueEntry) -> None:
        """Take `entry`, already removed from the ready list."""
        ...

    def queue_deleted(self) -> None:
        """The queue is gone; the consumer with it."""
        ...


class Queue:
    """Ready messages in FIFO order, dispatched round-robin to consumers that have credit.

    Delivered-but-unacked entries are held by the channel that received them; it hands them back
    through `ack`, `requeue` or `discard`.
    """

    def __init__(
        self,
        vhost_name: str,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.vhost_name = vhost_name
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        self.ready: deque[QueueEntry] = deque()
        self.consumers: deque[Consumer] = deque()
        self.unacked_count = 0
        self.deleted = False
        self._next_seq = 0
        self._dispatching = False
        self._had_consumer = False

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} consumers={len(self.consumers)}>"

    @property
    def message_count(self) -> int:
        return len(self.ready)

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost_name}'"

    # -- access --------------------------------------------------------------------------------

    def check_exclusive_access(self, owner: object) -> None:
        if self.exclusive_owner is not None and self.exclusive_owner is not owner:
            raise self.locked_error()

    def locked_error(self) -> ResourceLocked:
        return ResourceLocked(
            f"cannot obtain exclusive access to locked {self.describe()}. It could be "
            "originally declared on another connection or the exclusive property value "
            "does not match that of the original declaration."
        )

    # -- messages in -----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry:
        entry = QueueEntry(message, self, self._next_seq)
        self._next_seq += 1
        self.ready.append(entry)
        if self.consumers:
            self.dispatch()
        return entry

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Put delivered entries back at their original places, marked redelivered."""
        returning = sorted(entries, key=_by_seq)
        if not returning:
            return
        self.unacked_count -= len(returning)
        if self.deleted:
            return
        for entry in returning:
            entry.redelivered = True
        ready = self.ready
        if not ready or returning[-1].seq < ready[0].seq:
            ready.extendleft(reversed(returning))  # the usual case: all older than what waits
        else:
            self.ready = deque(_merge_by_seq(returning, ready))
        if self.consumers:
            self.dispatch()

    # -- messages out ----------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Hand ready messages to consumers with credit, round-robin, until one side runs out."""
        if self._dispatching:
            return  # a delivery that triggers another dispatch is served by the outer loop
        self._dispatching = True
        try:
            ready, consumers = self.ready, self.consumers
            while ready and consumers:
                for _ in range(len(consumers)):
                    consumer = consumers[0]
                    consumers.rotate(-1)
                    if consumer.has_credit():
                        break
                else:
                    return
                entry = ready.popleft()
                if not consumer.no_ack:
                    self.unacked_count += 1
                consumer.deliver(entry)
        finally:
            self._dispatching = False

    def get(self, *, no_ack: bool) -> QueueEntry | None:
        if not self.ready:
            return None
        entry = self.ready.popleft()
        if not no_ack:
            self.unacked_count += 1
        return entry

    def ack(self, entry: QueueEntry) -> None:
        self.unacked_count -= 1

    def discard(self, entry: QueueEntry) -> None:
        """Rejected without requeue: gone (dead-lettering hooks in here)."""
        self.unacked_count -= 1

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        return count

    # -- consumers -------------------------------------------------------------------------------

    def check_consumable(self, *, exclusive: bool) -> None:
        if self.consumers and (exclusive or self.consumers[0].exclusive):
            raise AccessRefused(f"{self.describe()} in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        """Call `check_consumable` first; this one only adds and starts delivering."""
        self.consumers.append(consumer)
        self._had_consumer = True
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> bool:
        """Returns True when the queue should now be auto-deleted."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return False
        return self.auto_delete and self._had_consumer and not self.consumers

    def check_deletable(self, *, if_unused: bool, if_empty: bool) -> None:
        if if_unused and self.consumers:
            raise PreconditionFailed(f"{self.describe()} in use")
        if if_empty and self.ready:
            raise PreconditionFailed(f"{self.describe()} not empty")


def _by_seq(entry: QueueEntry) -> int:
    return entry.seq


def _merge_by_seq(a: list[QueueEntry], b: Iterable[QueueEntry]) -> Iterable[QueueEntry]:
    return heapq.merge(a, b, key=_by_seq)
