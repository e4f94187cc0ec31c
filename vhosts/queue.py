"""A queue: ready messages in order, the consumers they go to, and the rules of who may use it."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from vhosts.errors import AccessRefused, PreconditionFailed, ResourceLocked
from vhosts.message import Message, QueueEntry

if TYPE_CHECKING:
    from vhosts.store import Store


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
        store: Store | None = None,
    ) -> None:
        self.vhost_name = vhost_name
        # Only a durable queue has a store, and only persistent messages go into it.
        self.store = store
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        self.ready: deque[QueueEntry] = deque()
        self.consumers: deque[Consumer] = deque()
        self.deleted = False
        self._next_seq = 0
        self._dispatching = False

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
        if self.store is not None and message.persistent:
            self._persist(entry)
        self.ready.append(entry)
        if self.consumers:
            self.dispatch()
        return entry

    def _persist(self, entry: QueueEntry) -> None:
        store, message = self.store, entry.message
        assert store is not None
        if message.store_id is None:
            if message.encoded_properties is None:
                message.encoded_properties = store.codec.encode_properties(message.properties)
            message.store_id = store.save_message(
                message.exchange, message.routing_key, message.encoded_properties, message.body
            )
        message.store_refs += 1
        entry.stored = True
        store.enqueue(self.vhost_name, self.name, entry.seq, message.store_id)

    def _unpersist(self, entry: QueueEntry) -> None:
        """The entry is settled for good: forget it, and its content once no queue holds it."""
        store, message = self.store, entry.message
        assert store is not None and message.store_id is not None
        entry.stored = False
        store.dequeue(self.vhost_name, self.name, entry.seq)
        message.store_refs -= 1
        if not message.store_refs:
            store.delete_message(message.store_id)

    def _mark_delivered(self, entry: QueueEntry) -> None:
        # So that after a restart it comes back with redelivered set, as RabbitMQ does.
        self.store.mark_delivered(self.vhost_name, self.name, entry.seq)  # type: ignore[union-attr]

    def restore(self, entries: list[QueueEntry]) -> None:
        """Put back entries recovered from the store, in their order (start-up only)."""
        if entries:
            self.ready.extend(entries)
            self._next_seq = max(self._next_seq, entries[-1].seq + 1)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Put delivered entries back at their original places, marked redelivered."""
        returning = sorted(entries, key=_by_seq)
        if not returning:
            return
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
                if entry.stored:
                    self._taken(entry, consumer.no_ack)
                consumer.deliver(entry)
        finally:
            self._dispatching = False

    def get(self, *, no_ack: bool) -> QueueEntry | None:
        if not self.ready:
            return None
        entry = self.ready.popleft()
        if entry.stored:
            self._taken(entry, no_ack)
        return entry

    def _taken(self, entry: QueueEntry, no_ack: bool) -> None:
        """A stored entry left the ready list: settled already (no-ack), or now delivered."""
        if no_ack:
            self._unpersist(entry)
        elif not entry.redelivered:
            self._mark_delivered(entry)

    def ack(self, entry: QueueEntry) -> None:
        if entry.stored:
            self._unpersist(entry)

    def discard(self, entry: QueueEntry) -> None:
        """Rejected without requeue: gone (dead-lettering hooks in here)."""
        self.ack(entry)

    def purge(self) -> int:
        count = len(self.ready)
        if self.store is not None:  # delivered entries stay stored: their acks are still to come
            for entry in self.ready:
                if entry.stored:
                    self._unpersist(entry)
        self.ready.clear()
        return count

    # -- consumers -------------------------------------------------------------------------------

    def check_consumable(self, *, exclusive: bool) -> None:
        if self.consumers and (exclusive or self.consumers[0].exclusive):
            raise AccessRefused(f"{self.describe()} in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        """Call `check_consumable` first; this one only adds and starts delivering."""
        self.consumers.append(consumer)
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> bool:
        """Returns True when the queue should now be auto-deleted: its last consumer went."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return False
        return self.auto_delete and not self.consumers

    def check_deletable(self, *, if_unused: bool, if_empty: bool) -> None:
        if if_unused and self.consumers:
            raise PreconditionFailed(f"{self.describe()} in use")
        if if_empty and self.ready:
            raise PreconditionFailed(f"{self.describe()} not empty")


def _by_seq(entry: QueueEntry) -> int:
    return entry.seq


def _merge_by_seq(a: list[QueueEntry], b: Iterable[QueueEntry]) -> Iterable[QueueEntry]:
    return heapq.merge(a, b, key=_by_seq)
