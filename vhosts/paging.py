"""Paging: how much memory a node's classic queues may fill with ready messages, and where the
rest go (page files, `vhosts.page_files`).

A classic queue keeps its ready messages in memory while their footprint fits the room it was
granted. Room comes from the node's `MemoryBudget` in steps (`GRANT`), up to the per-queue
limit, and while the node-wide limit allows. A queue that cannot get more pages: new messages
go to disk, a page at a time, while the oldest stay in memory to be delivered first and pages
are read back as the head reaches them (`vhosts.paged_fifo`). Once nothing of it waits on disk
and there is room again, it keeps its messages in memory as before.

A footprint is an estimate, counted without walking any message: the bodies' bytes plus
`MESSAGE_OVERHEAD` per message (the entry, the message object, its encoded properties and its
position). Room is taken back lazily: when the node's budget runs out, the queues holding more
than their footprint needs give the difference back (looked at once every so many refusals,
as looking costs a call per queue).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from vhosts.page_files import SEGMENT_SIZE, PageArea

MiB = 1024 * 1024
DEFAULT_NODE_BUDGET = 256 * MiB  # all classic queues of a node together
DEFAULT_QUEUE_BUDGET = 64 * MiB  # one classic queue
GRANT = 64 * 1024  # room is granted in steps of this: thousands of queues share a budget
# A page's records take about an eighth of the per-queue budget, within these bounds: so a
# page being filled never holds more than a small part of what the budget allows.
MAX_PAGE_BYTES = 128 * 1024
MIN_PAGE_BYTES = 4 * 1024
# What a ready message takes in memory besides its body, measured with tracemalloc: entry (88),
# message (104), position (32), encoded properties (33 and up), the deque's slot, allocator
# rounding. A message's decoded properties are dropped once it is queued.
MESSAGE_OVERHEAD = 320


class Holder(Protocol):
    """A queue as the budget sees it."""

    def memory_footprint(self) -> int:
        """Bytes its ready messages take in memory now (an estimate)."""
        ...

    def allowance_reduced(self, allowance: int) -> None:
        """Part of its room was taken back: it has `allowance` now."""
        ...


class MemoryBudget:
    def __init__(self, node_limit: int, queue_limit: int) -> None:
        self.node_limit = node_limit
        self.queue_limit = queue_limit
        self.granted = 0  # in all
        self._holders: dict[Holder, int] = {}
        self._refused = 0  # asks the node's limit refused since room was last taken back

    def grant(self, holder: Holder, footprint: int, queue_limit: int | None = None) -> int:
        """Room for `holder`, whose ready messages take `footprint`: at least a step more than
        that if the limits allow (`queue_limit`: this queue's own, when it has one); otherwise
        what it can have, which may be less than it uses."""
        limit = self.queue_limit if queue_limit is None else queue_limit
        held = self._holders.get(holder, 0)
        wanted = min(_steps(footprint + GRANT), limit)
        if wanted <= held:
            return held
        if self.granted + wanted - held > self.node_limit:
            # Looking at every queue costs as much as that many asks: amortised over them.
            self._refused += 1
            if self._refused > len(self._holders) >> 4:
                self._refused = 0
                self._reclaim(holder)
        more = min(wanted - held, self.node_limit - self.granted)
        if more <= 0:
            return held
        self._holders[holder] = held + more
        self.granted += more
        return held + more

    def release(self, holder: Holder) -> None:
        """The queue is gone, and its room with it."""
        self.granted -= self._holders.pop(holder, 0)

    def held_by(self, holder: Holder) -> int:
        return self._holders.get(holder, 0)

    def _reclaim(self, asking: Holder) -> None:
        """Take back what other queues hold beyond a step over their footprint."""
        for holder, held in list(self._holders.items()):
            if holder is asking:
                continue
            keep = _steps(holder.memory_footprint() + GRANT)
            if keep < held:
                self._holders[holder] = keep
                self.granted -= held - keep
                holder.allowance_reduced(keep)


def _steps(size: int) -> int:
    return -(-size // GRANT) * GRANT


class Paging:
    """A node's paging: its memory budget, its page files, and how messages become bytes."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        encode_properties: Callable[[Any], bytes],
        decode_properties: Callable[[bytes], Any],
        node_budget: int = DEFAULT_NODE_BUDGET,
        queue_budget: int = DEFAULT_QUEUE_BUDGET,
        segment_size: int = SEGMENT_SIZE,
        page_bytes: int | None = None,
    ) -> None:
        """`directory`: where page files go (emptied now); None for a temporary one.
        `page_bytes`: the size of a page, by default from the per-queue budget."""
        if node_budget < 0 or queue_budget < 0:
            raise ValueError("a memory budget cannot be negative")
        self.area = PageArea(directory, segment_size=segment_size)
        self.budget = MemoryBudget(node_budget, queue_budget)
        self.encode_properties = encode_properties
        self.decode_properties = decode_properties
        if page_bytes is None:
            page_bytes = min(max(queue_budget // 8, MIN_PAGE_BYTES), MAX_PAGE_BYTES)
        self.page_bytes = page_bytes

    def close(self) -> None:
        self.area.close()
