"""Page files: where classic queues keep the messages their memory budget has no room for.

Nothing here is durable. Page files are written without fsync and never read after a restart:
the area is emptied when a node opens it (persistent messages come back from the store, which
keeps them whether they were paged or not). It lives in `pages/` beside the store, or in a
temporary directory when the broker keeps nothing on disk.

A queue that pages gets a `PageFile`: an append-only run of segment files. Whole pages (runs
of encoded messages, a hundred kilobytes or so) are appended to it and read back once, in the
order they were written, then released; a segment file goes as soon as no page in it is live.

Like the store, the area is driven from outside, so the event loop never waits for the disk:
writing a page or asking for one to be read only records the work, and `on_pending` wakes the
driver, which takes it (`take_work`), does it in a worker thread (`do_work`) and hands it back
(`work_done`); each page read then goes to the callback that asked for it. Until its write is
done a page's bytes stay in memory (`PageRef.data`), where a reader finds them. `read_now`
reads one page in the caller's thread, for the moment a page is needed before its read-ahead is
back; `flush` runs a whole cycle in the caller's thread (tests, shutdown).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

PAGES_DIRECTORY = "pages"  # in a data directory, beside the store
SEGMENT_SIZE = 64 * 1024 * 1024  # a segment file takes no more pages past this size
SUFFIX = ".page"

ReadCallback = Callable[[bytes | None], None]  # None: the read failed


class PageRef:
    """Where one page is: its segment file, offset and length; its bytes until written."""

    __slots__ = ("data", "length", "offset", "segment")

    def __init__(self, segment: _Segment, offset: int, data: bytes) -> None:
        self.segment = segment
        self.offset = offset
        self.length = len(data)
        self.data: bytes | None = data  # None once it is on disk


class _Segment:
    __slots__ = ("live", "path", "size")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0  # bytes appended so far
        self.live = 0  # pages written to it and not yet released


class PageWork:
    """One cycle of the driver: page writes, then reads, then segment removals."""

    __slots__ = ("directory", "errors", "reads", "removals", "results", "writes")

    def __init__(
        self,
        writes: list[PageRef],
        reads: list[tuple[PageRef, ReadCallback]],
        removals: list[Path],
    ) -> None:
        self.writes = writes
        self.reads = reads
        self.removals = removals
        self.directory: Path | None = None  # to make first, when there are writes
        self.results: list[bytes | None] = []  # one per read, by do_work
        self.errors: list[OSError] = []  # what failed, for the driver to report
        # Writes that failed keep their bytes in memory: the page is then read from there.

    def __bool__(self) -> bool:
        return bool(self.writes or self.reads or self.removals)


class PageArea:
    """A node's page files: one `PageFile` per paging queue, written and read by one driver."""

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, segment_size: int = SEGMENT_SIZE
    ) -> None:
        """`directory` None: a temporary one, made when the first page is written and removed
        on `close` (or when the area is garbage). A given directory is emptied now."""
        self._directory = Path(directory) if directory is not None else None
        if self._directory is not None:
            _empty(self._directory)
        self._temporary: weakref.finalize[..., PageArea] | None = None
        self.segment_size = segment_size
        self.on_pending: Callable[[], None] = _ignore  # wakes the driver
        self._files = 0  # page files opened so far: each one's number
        self._writes: dict[PageRef, None] = {}  # in the order they were made
        self._reads: list[tuple[PageRef, ReadCallback]] = []
        self._removals: list[Path] = []
        self.pages_written = 0
        self.pages_read_ahead = 0  # read in the driver's thread
        self.pages_read_now = 0  # read in the caller's thread, by `read_now`

    @property
    def directory(self) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="amqp-lite-pages-"))
            self._temporary = weakref.finalize(
                self, shutil.rmtree, self._directory, ignore_errors=True
            )
        return self._directory

    def open(self) -> PageFile:
        """A new, empty page file (for a queue that starts paging)."""
        self._files += 1
        return PageFile(self, self._files)

    @property
    def has_pending(self) -> bool:
        return bool(self._writes or self._reads or self._removals)

    def _wake(self) -> None:
        if not self.has_pending:
            self.on_pending()

    # -- the driver's cycle ----------------------------------------------------------------------

    def take_work(self) -> PageWork:
        work = PageWork(list(self._writes), self._reads, self._removals)
        if work.writes:
            work.directory = self.directory
        self._writes, self._reads, self._removals = {}, [], []
        return work

    @staticmethod
    def do_work(work: PageWork) -> None:
        """Write, read and remove, in a worker thread; touches nothing but files and `work`."""
        written: list[PageRef] = []
        descriptors: dict[Path, int] = {}
        if work.directory is not None:
            try:
                work.directory.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                work.errors.append(error)
        try:
            for ref in work.writes:
                data = ref.data
                if data is None:
                    continue
                try:
                    fd = descriptors.get(ref.segment.path)
                    if fd is None:
                        fd = descriptors[ref.segment.path] = os.open(
                            ref.segment.path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600
                        )
                    os.pwrite(fd, data, ref.offset)
                except OSError as error:
                    work.errors.append(error)
                else:
                    written.append(ref)
        finally:
            for fd in descriptors.values():
                os.close(fd)
        work.writes = written
        for ref, _callback in work.reads:
            try:
                work.results.append(_read(ref))
            except OSError as error:
                work.errors.append(error)
                work.results.append(None)
        for path in work.removals:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                work.errors.append(error)

    def work_done(self, work: PageWork) -> None:
        """Back in the owner's thread: written pages drop their bytes, reads reach their
        callbacks."""
        for ref in work.writes:
            ref.data = None
        self.pages_written += len(work.writes)
        self.pages_read_ahead += len(work.reads)
        for (_ref, callback), data in zip(work.reads, work.results, strict=True):
            callback(data)

    def flush(self) -> None:
        """Run a whole cycle now, in this thread."""
        work = self.take_work()
        self.do_work(work)
        self.work_done(work)

    def close(self) -> None:
        """The node is stopping: every page file goes (nothing in them is kept)."""
        self._writes, self._reads, self._removals = {}, [], []
        if self._temporary is not None:
            self._temporary()
        elif self._directory is not None:
            _empty(self._directory)


class PageFile:
    """One queue's pages, in segment files numbered in the order they were started."""

    def __init__(self, area: PageArea, number: int) -> None:
        self._area = area
        self._number = number
        self._segments = 0
        self._current: _Segment | None = None  # where the next page goes

    def write(self, data: bytes) -> PageRef:
        """Append a page; its bytes stay in `ref.data` until the driver has written them."""
        area = self._area
        segment = self._current
        if segment is None or segment.size >= area.segment_size:
            self._segments += 1
            name = f"{self._number:08x}-{self._segments:06x}{SUFFIX}"
            segment = self._current = _Segment(area.directory / name)
        ref = PageRef(segment, segment.size, data)
        segment.size += len(data)
        segment.live += 1
        area._wake()
        area._writes[ref] = None
        return ref

    def read_later(self, ref: PageRef, callback: ReadCallback) -> None:
        """Read a written page in the driver's thread, then call `callback` with its bytes."""
        area = self._area
        area._wake()
        area._reads.append((ref, callback))

    def read_now(self, ref: PageRef) -> bytes:
        """The page's bytes, read in this thread if they are no longer in memory."""
        data = ref.data
        if data is None:
            data = _read(ref)
            self._area.pages_read_now += 1
        return data

    def release(self, ref: PageRef) -> None:
        """The page was read back (or its messages went): its segment may go with it."""
        area = self._area
        area._writes.pop(ref, None)  # not written yet: now it need not be
        ref.data = None
        segment = ref.segment
        segment.live -= 1
        if not segment.live:
            if segment is self._current:
                self._current = None  # start the next page in a new file
            area._wake()
            area._removals.append(segment.path)


def _read(ref: PageRef) -> bytes:
    fd = os.open(ref.segment.path, os.O_RDONLY | _CLOEXEC)
    try:
        data = os.pread(fd, ref.length, ref.offset)
    finally:
        os.close(fd)
    if len(data) != ref.length:
        raise OSError(f"{ref.segment.path}: short read at {ref.offset}")
    return data


def _empty(directory: Path) -> None:
    """Remove the page files a previous run left (they are never read again)."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.suffix == SUFFIX:
            path.unlink(missing_ok=True)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _ignore() -> None:
    pass
