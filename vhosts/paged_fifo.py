"""A FIFO of ready queue entries whose middle can wait on disk: what a paging queue holds.

`PagedFifo` keeps the oldest entries in memory (`head`, a deque, where deliveries come from),
then pages on disk, then the newest entries in memory (`tail`) until there are enough of them to
make a page. Every entry of the head is older than every paged one, and those than the tail's,
so the order is the queue's. While `paging` is off and nothing waits on disk, new entries join
the head, as in a plain deque.

Reading back: when the head is down to two pages' worth, the next few pages are read ahead in
the page area's worker thread, all in one cycle, and join the head as they come back, in order.
If the head is needed before that (a delivery, a basic.get, an expiry or a length limit at the
head), the page is read at once: one bounded read. Requeued entries go back into the head at
their places (they are older than anything paged).

A FIFO offers the operations a queue uses on its ready list (append, popleft, [0], len, clear)
plus what paging needs: `put_back`, `pop_expired`, `head_deadline`, and what a purge must let
go of (`in_memory`, `paged_stored`). Iterating reads every page: for tests and inspection only.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator

from vhosts.page_files import PageFile, PageRef
from vhosts.page_records import EncodedPage, EncodeProperties, decode_page, encode_page
from vhosts.queue import Queue, QueueEntry, pop_expired

PAGE_ENTRIES = 2048  # a page is cut once it has this many entries, or its `page_bytes`
READ_AHEAD_PAGES = 4  # pages asked for at once, when the head is down to two pages' worth
RECORD_OVERHEAD = 64  # a record's bytes besides its body, roughly (header, names, properties)


class Pager:
    """What the paged FIFOs of one queue share: the queue, its page file, how to encode
    properties, and whom to tell when a FIFO has nothing left on disk (the queue, which may
    then go back to memory)."""

    def __init__(
        self,
        queue: Queue,
        file: PageFile,
        encode_properties: EncodeProperties,
        on_drained: Callable[[PagedFifo], None],
        page_bytes: int,
    ) -> None:
        self.queue = queue
        self.file = file
        self.encode_properties = encode_properties
        self.page_bytes = page_bytes  # a page is cut once its records pass this size
        self.on_drained = on_drained

    def paged_id(self, entry: QueueEntry) -> int:
        store = self.queue.store
        assert store is not None  # an entry is stored only in a queue with a store
        return entry.message.paged_out(store)


class Page:
    """A page on disk (or about to be): what the queue needs to know without reading it."""

    __slots__ = ("body_bytes", "count", "data", "expires_at", "gone", "reading", "ref", "stored")

    def __init__(self, ref: PageRef, encoded: EncodedPage) -> None:
        self.ref = ref
        self.count = encoded.count
        self.body_bytes = encoded.body_bytes
        self.expires_at = encoded.expires_at
        self.stored = encoded.stored
        self.reading = False  # a read-ahead is under way
        self.data: bytes | None = None  # read ahead, waiting for the pages before it
        self.gone = False  # its entries joined the head, or went with a purge


class PagedFifo:
    def __init__(self, pager: Pager, head: deque[QueueEntry] | None = None) -> None:
        self.head: deque[QueueEntry] = head if head is not None else deque()
        self.pages: deque[Page] = deque()
        self.tail: list[QueueEntry] = []
        self.paging = True  # new entries go to the tail (and on to disk) rather than the head
        self.paged_count = 0  # entries in pages
        self.paged_bytes = 0  # their bodies' bytes
        self._tail_size = 0  # what the tail's records would take, roughly
        self._pager = pager

    def __repr__(self) -> str:
        return (
            f"<PagedFifo head={len(self.head)} paged={self.paged_count} in {len(self.pages)} "
            f"pages tail={len(self.tail)}>"
        )

    # -- the ready-list operations ---------------------------------------------------------------

    def append(self, entry: QueueEntry) -> None:
        if not (self.paging or self.pages or self.tail):
            self.head.append(entry)
            return
        tail = self.tail
        tail.append(entry)
        self._tail_size += len(entry.message.body) + RECORD_OVERHEAD
        if self._tail_size >= self._pager.page_bytes or len(tail) >= PAGE_ENTRIES:
            self._cut()

    def popleft(self) -> QueueEntry:
        head = self.head
        if not head:
            self._refill()
        entry = head.popleft()
        pages = self.pages
        if pages and len(head) < pages[0].count << 1:  # less than two pages' worth left
            self._read_ahead()
        return entry

    def __getitem__(self, index: int) -> QueueEntry:
        if index != 0:
            raise IndexError(index)
        if not self.head:
            self._refill()
        return self.head[0]

    def __len__(self) -> int:
        return len(self.head) + self.paged_count + len(self.tail)

    def __bool__(self) -> bool:
        return bool(self.head or self.pages or self.tail)

    def __iter__(self) -> Iterator[QueueEntry]:
        """Every entry in order; pages are read and decoded afresh (not kept)."""
        yield from self.head
        for page in list(self.pages):
            yield from decode_page(self._pager.file.read_now(page.ref), self._pager.queue)
        yield from self.tail

    def clear(self) -> None:
        """Everything goes (the caller let go of what the store holds: see `paged_stored`)."""
        file = self._pager.file
        for page in self.pages:
            page.gone = True
            page.data = None
            file.release(page.ref)
        self.pages.clear()
        self.paged_count = self.paged_bytes = 0
        self.head.clear()
        self.tail.clear()
        self._tail_size = 0
        self._pager.on_drained(self)

    # -- what paging adds ------------------------------------------------------------------------

    def put_back(self, returning: list[QueueEntry]) -> None:
        """Requeued entries (sorted by seq) return to their places: all are older than anything
        paged, since deliveries come from the head."""
        put_back(self.head, returning)

    def pop_expired(self, now: float) -> list[QueueEntry]:
        """Expired entries at the head, reading pages as the head reaches them."""
        expired: list[QueueEntry] = []
        head = self.head
        while True:
            expired += pop_expired(head, now)
            if head:
                return expired
            deadline = self.head_deadline()
            if deadline is None or deadline > now:
                return expired
            self._refill()

    def head_deadline(self) -> float | None:
        """When the entry at the head expires (None: never, or the FIFO is empty), read or not."""
        if self.head:
            return self.head[0].expires_at
        if self.pages:
            return self.pages[0].expires_at
        if self.tail:
            return self.tail[0].expires_at
        return None

    def in_memory(self) -> Iterator[QueueEntry]:
        yield from self.head
        yield from self.tail

    @property
    def in_memory_count(self) -> int:
        return len(self.head) + len(self.tail)

    def paged_stored(self) -> Iterator[tuple[int, int]]:
        """(seq, paged id) of each paged entry the store holds (see Message.paged_out)."""
        for page in self.pages:
            stored = page.stored
            if stored is not None:
                for index in range(0, len(stored), 2):
                    yield stored[index], stored[index + 1]

    # -- moving pages ----------------------------------------------------------------------------

    def _cut(self) -> None:
        """The tail becomes a page."""
        pager = self._pager
        encoded = encode_page(self.tail, pager.encode_properties, pager.paged_id)
        page = Page(pager.file.write(encoded.data), encoded)
        self.pages.append(page)
        self.paged_count += page.count
        self.paged_bytes += page.body_bytes
        self.tail = []
        self._tail_size = 0

    def _refill(self) -> None:
        """The head is empty: the next page joins it now (read here if need be), or the tail."""
        if self.pages:
            page = self.pages[0]
            data = page.data
            if data is None:
                data = self._pager.file.read_now(page.ref)
            self._splice(page, data)
        elif self.tail:
            self.head.extend(self.tail)
            self.tail = []
            self._tail_size = 0
            self._pager.on_drained(self)
        else:
            raise IndexError("pop from an empty queue")

    def _read_ahead(self) -> None:
        """Ask for the next few pages, all in the driver's next cycle."""
        file = self._pager.file
        for page in itertools.islice(self.pages, READ_AHEAD_PAGES):
            if page.reading or page.data is not None:
                continue
            if page.ref.data is not None:  # not written yet: no reading needed
                page.data = page.ref.data
                continue
            page.reading = True
            file.read_later(page.ref, functools.partial(self._arrived, page))
        self._splice_read()

    def _arrived(self, page: Page, data: bytes | None) -> None:
        page.reading = False
        if data is not None and not page.gone:  # else it was read at once, or purged
            page.data = data
            self._splice_read()

    def _splice_read(self) -> None:
        """Pages read ahead join the head once every page before them has."""
        pages = self.pages
        while pages and pages[0].data is not None:
            page = pages[0]
            assert page.data is not None
            self._splice(page, page.data)

    def _splice(self, page: Page, data: bytes) -> None:
        pager = self._pager
        self.head.extend(decode_page(data, pager.queue))
        self.pages.popleft()
        self.paged_count -= page.count
        self.paged_bytes -= page.body_bytes
        page.gone = True
        page.data = None
        pager.file.release(page.ref)
        if not self.pages and not self.tail:
            pager.on_drained(self)


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
