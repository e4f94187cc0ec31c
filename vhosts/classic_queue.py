"""Classic queues, RabbitMQ's original type, and their priority variant (x-max-priority).

A classic queue is the FIFO of `vhosts.queue.Queue`; a requeued message goes back to its
original place, and the store keeps only persistent messages. With x-max-priority the ready
list holds one FIFO per priority, highest first (`PriorityQueue`).

Ready messages are kept in memory while the room the node's memory budget grants the queue
holds them (`vhosts.paging`); past that the queue pages: its ready list becomes a
`vhosts.paged_fifo.PagedFifo` (one per priority in a priority queue) whose newer messages wait
on disk, and it goes back to a plain deque once they are all read back and there is room. The
queue's counts, limits, order and expiry are those of all its ready messages, paged or not.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Iterator
from typing import cast

from vhosts.message import Message
from vhosts.paged_fifo import PagedFifo, Pager, put_back
from vhosts.paging import MESSAGE_OVERHEAD
from vhosts.queue import Queue, QueueEntry, StoredEntry, pop_expired
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

    # Enqueueing asks the node's memory budget for room once the ready messages' footprint
    # passes this; infinite while paging (the paged FIFO takes new messages then) or when the
    # queue has no budget to ask.
    _memory_check_at: float = 0.0
    _pager: Pager | None = None  # made when the queue first pages

    @classmethod
    def variant(cls, settings: QueueSettings) -> type[Queue]:
        return PriorityQueue if settings.max_priority else cls

    # -- memory --------------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        entry = Queue.enqueue(self, message)  # not super(): that costs as much again, per message
        if self.ready_bytes + len(self.ready) * MESSAGE_OVERHEAD > self._memory_check_at:
            self._outgrown()
        return entry

    def restore(self, stored: Iterable[StoredEntry]) -> None:
        """Put back what the store kept, paging as the budget says (start-up only)."""
        for seq, message, delivered, expires_at in stored:
            entry = self._restored_entry(message, seq, delivered, expires_at)
            self.ready.append(entry)
            self.ready_bytes += len(message.body)
            self._next_seq = max(self._next_seq, seq + 1)
            if self.ready_bytes + len(self.ready) * MESSAGE_OVERHEAD > self._memory_check_at:
                self._outgrown()
        self._schedule_expiry()

    @property
    def _paged(self) -> PagedFifo | PriorityReady | None:
        """The ready list when it may page (None: a plain deque)."""
        ready = self.ready
        return None if isinstance(ready, deque) else cast("PagedFifo | PriorityReady", ready)

    @property
    def paged_count(self) -> int:
        """Ready messages that wait on disk."""
        paged = self._paged
        return 0 if paged is None else paged.paged_count

    @property
    def paged_bytes(self) -> int:
        """Their bodies' bytes."""
        paged = self._paged
        return 0 if paged is None else paged.paged_bytes

    def memory_footprint(self) -> int:
        """What the ready messages in memory take, by the budget's estimate."""
        return (self.ready_bytes - self.paged_bytes) + (
            len(self.ready) - self.paged_count
        ) * MESSAGE_OVERHEAD

    @property
    def _own_limit(self) -> int | None:
        """A lazy queue (x-queue-mode, or the queue-mode policy key) keeps nothing in memory
        that it need not: as RabbitMQ's lazy queues, it pages from the first message."""
        return 0 if self.settings.lazy else None

    def apply_settings(self, settings: QueueSettings) -> None:
        super().apply_settings(settings)
        if self._memory_check_at != math.inf:
            self._memory_check_at = 0  # lazy or not now: the next message asks the budget

    def allowance_reduced(self, allowance: int) -> None:
        if self._memory_check_at != math.inf:
            self._memory_check_at = allowance

    def _outgrown(self) -> None:
        """The ready messages outgrew the queue's room: more room, or page."""
        paging = self.host.paging
        if paging is None:
            self._memory_check_at = math.inf  # nowhere to page to: memory it is
            return
        footprint = self.memory_footprint()
        allowance = paging.budget.grant(self, footprint, self._own_limit)
        if allowance > footprint:
            self._memory_check_at = allowance
            return
        self._memory_check_at = math.inf
        if self._pager is None:
            self._pager = Pager(
                self,
                paging.area.open(),
                paging.encode_properties,
                self._fifo_drained,
                paging.page_bytes,
            )
        self._start_paging(self._pager)

    def _start_paging(self, pager: Pager) -> None:
        ready = self.ready
        if isinstance(ready, deque):
            self.ready = PagedFifo(pager, cast("deque[QueueEntry]", ready))

    def _fifo_drained(self, fifo: PagedFifo) -> None:
        """Nothing of `fifo` waits on disk now: back to memory, if the budget has room."""
        paging = self.host.paging
        if self.deleted or paging is None:
            return
        footprint = self.memory_footprint()
        allowance = paging.budget.grant(self, footprint, self._own_limit)
        if allowance > footprint and self._stop_paging(fifo):
            self._memory_check_at = allowance

    def _stop_paging(self, fifo: PagedFifo) -> bool:
        """True when the queue no longer pages."""
        if fifo is not self.ready:
            return False
        # A delivery loop may still hold the FIFO: with paging off and nothing on disk it only
        # passes on to its head, which is the ready list again.
        fifo.paging = False
        self.ready = fifo.head
        return True

    # -- what paging changes ---------------------------------------------------------------------

    def purge(self) -> int:
        ready = self.ready
        count = len(ready)
        store = self.store
        if store is not None:  # delivered entries stay stored: their acks are still to come
            paged_ready = self._paged
            in_memory: Iterable[QueueEntry] = ready
            paged: Iterable[tuple[int, int]] = ()
            if paged_ready is not None:
                in_memory, paged = paged_ready.in_memory(), paged_ready.paged_stored()
            for entry in in_memory:
                if entry.stored:
                    self._unpersist(entry)
            for seq, paged_id in paged:
                if not self.deleted:
                    store.dequeue(self.vhost_name, self.name, seq)
                Message.let_go_paged(store, paged_id)
        ready.clear()
        self.ready_bytes = 0
        return count

    def delete(self) -> int:
        count = super().delete()
        if self.host.paging is not None:
            self.host.paging.budget.release(self)
        return count

    def _head_deadlines(self) -> list[float]:
        ready = self.ready
        if isinstance(ready, deque):
            deadline = ready[0].expires_at if ready else None
        else:
            deadline = cast(PagedFifo, ready).head_deadline()
        return [] if deadline is None else [deadline]

    def _pop_expired(self, now: float) -> list[QueueEntry]:
        ready = self.ready
        if isinstance(ready, deque):
            return pop_expired(ready, now)
        return cast(PagedFifo, ready).pop_expired(now)

    # -- settlement ------------------------------------------------------------------------------

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
        ready = self.ready
        if isinstance(ready, deque):
            put_back(cast("deque[QueueEntry]", ready), returning)
        else:
            cast(PagedFifo, ready).put_back(returning)


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
        return self._levels.head_deadlines()

    def _start_paging(self, pager: Pager) -> None:
        self._levels.start_paging(pager)

    def _stop_paging(self, fifo: PagedFifo) -> bool:
        return self._levels.stop_paging()


Level = deque[QueueEntry] | PagedFifo


class PriorityReady:
    """The ready list of a priority queue: FIFO within each priority, highest priority first.

    Offers the ready-list operations `Queue` uses (append, popleft, [0], len, clear). Each
    priority's FIFO is a deque, or a `PagedFifo` while the queue pages.
    """

    def __init__(self) -> None:
        self._by_priority: dict[int, Level] = {}
        self._priorities: list[int] = []  # those with entries, ascending
        self._length = 0
        self._pager: Pager | None = None  # while paging

    def start_paging(self, pager: Pager) -> None:
        self._pager = pager
        for priority, level in self._by_priority.items():
            self._by_priority[priority] = PagedFifo(pager, cast("deque[QueueEntry]", level))

    def stop_paging(self) -> bool:
        """Back to deques if no priority has anything on disk; True if so."""
        levels = [level for level in self._by_priority.values() if isinstance(level, PagedFifo)]
        if any(level.pages or level.tail for level in levels):
            return False
        self._pager = None
        for priority, level in list(self._by_priority.items()):
            if isinstance(level, PagedFifo):
                level.paging = False  # as ClassicQueue._stop_paging: it passes on to its head
                self._by_priority[priority] = level.head
        return True

    def _level(self, priority: int) -> Level:
        level = self._by_priority.get(priority)
        if level is None:
            pager = self._pager
            level = deque() if pager is None else PagedFifo(pager)
            self._by_priority[priority] = level
            bisect.insort(self._priorities, priority)
        return level

    def head_deadlines(self) -> list[float]:
        deadlines = []
        for level in self._by_priority.values():
            if isinstance(level, PagedFifo):
                deadline = level.head_deadline()
            else:
                deadline = level[0].expires_at
            if deadline is not None:
                deadlines.append(deadline)
        return deadlines

    def append(self, entry: QueueEntry) -> None:
        self._level(entry.priority).append(entry)
        self._length += 1

    def popleft(self) -> QueueEntry:
        if not self._priorities:
            raise IndexError("pop from an empty queue")
        top = self._priorities[-1]
        level = self._by_priority[top]
        entry = level.popleft()
        if not level:
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
            level = self._level(priority)
            if isinstance(level, PagedFifo):
                level.put_back(returning)
            else:
                put_back(level, returning)
        self._length += len(entries)

    def pop_expired(self, now: float) -> list[QueueEntry]:
        """Expired entries at the head of each priority's FIFO."""
        expired: list[QueueEntry] = []
        for priority in list(self._priorities):
            level = self._by_priority[priority]
            if isinstance(level, PagedFifo):
                expired += level.pop_expired(now)
            else:
                expired += pop_expired(level, now)
            if not level:
                del self._by_priority[priority]
                self._priorities.remove(priority)
        self._length -= len(expired)
        return expired

    @property
    def paged_count(self) -> int:
        levels = self._by_priority.values()
        return sum(level.paged_count for level in levels if isinstance(level, PagedFifo))

    @property
    def paged_bytes(self) -> int:
        levels = self._by_priority.values()
        return sum(level.paged_bytes for level in levels if isinstance(level, PagedFifo))

    def in_memory(self) -> Iterator[QueueEntry]:
        for level in self._by_priority.values():
            yield from level.in_memory() if isinstance(level, PagedFifo) else level

    def paged_stored(self) -> Iterator[tuple[int, int]]:
        for level in self._by_priority.values():
            if isinstance(level, PagedFifo):
                yield from level.paged_stored()

    def clear(self) -> None:
        levels = list(self._by_priority.values())
        self._by_priority.clear()
        self._priorities.clear()
        self._length = 0
        for level in levels:
            level.clear()  # a paged FIFO lets go of its pages

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
