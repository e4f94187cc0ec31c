"""An append-only log on disk: records numbered by offset, kept in segment files (stream queues).

A log is a directory of segment files, each named after the offset of its first record
(`00000000000000000000.seg`), with an index file beside it (`.idx`). A record is a header
(payload length, CRC-32, offset, timestamp in ms) and an opaque payload. Appending is
synchronous and cheap: records gather in a pending batch. Whoever drives the log takes the
batch (`take_batch`), writes it in a worker thread (`write_batch`: one write per file, one
fsync) and reports it written (`batch_written`); only then are the records committed, which is
when readers see them and a publisher's confirm may go. Records taken in one batch form a
*chunk*, as in RabbitMQ: offset `last` starts at the last chunk. `flush` does all three at once.

The index holds an entry (offset, position, timestamp) for the first record of each segment
and then at most every INDEX_INTERVAL bytes, so finding an offset or a timestamp is a binary
search of the index file and a short scan. Nothing of the index or the records stays in
memory: readers read through a `Cursor` with bounded `pread`s, so the log's memory does not
grow with its length (one `Segment` of metadata per segment file).

Retention removes whole segments from the head, never the one being written: over
`max_bytes` in all, or when a segment's newest record is older than `max_age_ms`. A new
segment starts when the one being written would pass `max_segment_size`.

Recovery trusts nothing it can check cheaply: each segment's index is read back and the
records after its last good entry are scanned, verifying each one's CRC and offset. The first
bad or torn record (a crash in the middle of a write) ends the log: the file is truncated
there and any later segment removed. What was confirmed was fsynced, so it is never lost.
"""

from __future__ import annotations

import bisect
import os
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

SEGMENT_SUFFIX = ".seg"
INDEX_SUFFIX = ".idx"
SEGMENT_MAGIC = b"AMQLSEG1"  # a segment file starts with this; its records follow
HEADER = struct.Struct("<IIQq")  # length (top bit: first of its chunk), crc32, offset, ts ms
INDEX_ENTRY = struct.Struct("<QQq")  # offset, position in the segment, timestamp ms
CHUNK_START = 0x8000_0000
LENGTH_MASK = 0x7FFF_FFFF
MAX_PAYLOAD = LENGTH_MASK
INDEX_INTERVAL = 64 * 1024  # index entries are at most this many segment bytes apart
READ_SIZE = 128 * 1024  # bytes one read asks for (a bigger record is read whole)
DEFAULT_SEGMENT_SIZE = 500_000_000  # RabbitMQ's default x-stream-max-segment-size-bytes
OPEN_FILES = 8  # segment files a log keeps open for its readers

# offset, timestamp (ms), payload: a view into the buffer it was read in (copy what you keep)
Record = tuple[int, int, memoryview]


class LogError(Exception):
    """The log's directory holds something that is not a log this code wrote."""


class Segment:
    """One segment file, as metadata: where it starts and ends, and when its records were made."""

    __slots__ = (
        "committed_size",
        "first_offset",
        "first_timestamp",
        "index_entries",
        "last_indexed_position",
        "last_timestamp",
        "next_offset",
        "path",
        "size",
    )

    def __init__(self, directory: Path, first_offset: int) -> None:
        self.first_offset = first_offset
        self.next_offset = first_offset  # offset of the record that would come next
        self.size = len(SEGMENT_MAGIC)  # bytes, pending records included
        self.committed_size = 0  # bytes on disk that readers may read (0: no file yet)
        self.first_timestamp: int | None = None
        self.last_timestamp: int | None = None
        self.index_entries = 0  # committed entries in the index file
        self.last_indexed_position: int | None = None  # None: index the next record
        self.path = directory / f"{first_offset:020d}{SEGMENT_SUFFIX}"

    @property
    def index_path(self) -> Path:
        return self.path.with_suffix(INDEX_SUFFIX)

    @property
    def record_bytes(self) -> int:
        return self.size - len(SEGMENT_MAGIC)

    def __repr__(self) -> str:
        return f"<Segment {self.first_offset}..{self.next_offset} {self.size} bytes>"


class _Write:
    """What one batch adds to one segment file."""

    __slots__ = (
        "create",
        "data",
        "end_size",
        "index",
        "index_count",
        "index_start",
        "segment",
        "start_size",
    )

    def __init__(self, segment: Segment, create: bool) -> None:
        self.segment = segment
        self.create = create  # the file does not exist yet
        self.data = bytearray()
        self.index = bytearray()
        self.index_count = 0
        self.start_size = segment.size  # where the data goes in the file
        self.index_start = 0  # entries in the index before this batch's (set when taken)
        self.end_size = segment.size


class Batch:
    """Records taken from a log to be written together (one chunk), and files to delete."""

    __slots__ = ("attempted", "chunk_offset", "deletions", "end_offset", "writes")

    def __init__(self) -> None:
        self.writes: list[_Write] = []
        self.deletions: list[Path] = []
        self.chunk_offset = -1  # first offset of the chunk (-1: no records)
        self.end_offset = -1  # offset after the chunk's last record
        self.attempted = False  # a write of it failed: what it wrote is cut off before again

    def __bool__(self) -> bool:
        return bool(self.writes or self.deletions)


class Cursor:
    """A reader's place in the log: the offset it reads next and where that record is."""

    __slots__ = ("offset", "position", "segment")

    def __init__(self, offset: int, segment: Segment | None, position: int) -> None:
        self.offset = offset
        self.segment = segment  # None: not located yet (the log was empty, or it moved on)
        self.position = position

    def __repr__(self) -> str:
        return f"<Cursor at {self.offset}>"


class SegmentLog:
    """One stream's log. Not thread-safe, except that `write_batch` may run in another thread
    while this one appends, reads and takes nothing."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_bytes: int | None = None,
        max_age_ms: int | None = None,
        index_interval: int = INDEX_INTERVAL,
    ) -> None:
        self.directory = Path(directory)
        self.index_interval = index_interval
        self.max_segment_size = max_segment_size
        self.max_bytes = max_bytes
        self.max_age_ms = max_age_ms
        # Called when the first record or deletion lands in an empty batch (the driver wakes).
        self.on_pending: Callable[[], None] = _ignore
        # Called once a batch is committed: readers may have more to read.
        self.on_committed: Callable[[], None] = _ignore
        self.segments: list[Segment] = []
        self.bytes = 0  # record bytes in all segments, pending ones included
        self.committed_offset = 0  # records below this offset are on disk
        self.last_chunk_offset = 0  # first offset of the newest committed chunk
        self._last_timestamp = 0
        self._recovered_chunk = 0  # where the last chunk found on disk starts
        self._pending = Batch()
        self._read_files: OrderedDict[int, int] = OrderedDict()  # first offset -> fd
        self._write_files: tuple[Segment, int, int] | None = None  # the worker's own fds
        self.closed = False
        if self.directory.is_dir():  # else it is made with the first segment
            self._recover()

    # -- what it holds -----------------------------------------------------------------------

    @property
    def first_offset(self) -> int:
        """The oldest offset still kept."""
        return self.segments[0].first_offset if self.segments else self.committed_offset

    @property
    def next_offset(self) -> int:
        """The offset the next record appended will get."""
        return self.segments[-1].next_offset if self.segments else self.committed_offset

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def __len__(self) -> int:
        """Records kept, pending ones included."""
        return self.next_offset - self.first_offset

    def __repr__(self) -> str:
        return f"<SegmentLog {self.directory.name} {self.first_offset}..{self.next_offset}>"

    # -- appending (synchronous, cheap) --------------------------------------------------------

    def append(self, payload: bytes, timestamp: int) -> int:
        """Add one record; returns its offset. `timestamp` is ms since the epoch (a clock going
        back is taken as standing still, so timestamps never decrease along the log)."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a record holds at most {MAX_PAYLOAD} bytes")
        if timestamp < self._last_timestamp:
            timestamp = self._last_timestamp
        self._last_timestamp = timestamp
        batch = self._pending
        if not batch:
            self.on_pending()
        size = HEADER.size + len(payload)
        segment = self.segments[-1] if self.segments else None
        if segment is None or (
            segment.next_offset > segment.first_offset
            and segment.size + size > self.max_segment_size
        ):
            segment = self._start_segment()
        write = batch.writes[-1] if batch.writes else None
        if write is None or write.segment is not segment:
            write = _Write(segment, create=segment.committed_size == 0)
            batch.writes.append(write)
        offset = segment.next_offset
        flags = 0
        if batch.chunk_offset < 0:
            batch.chunk_offset = offset
            flags = CHUNK_START
        position = segment.size
        last_indexed = segment.last_indexed_position
        if last_indexed is None or position - last_indexed >= self.index_interval:
            write.index += INDEX_ENTRY.pack(offset, position, timestamp)
            write.index_count += 1
            segment.last_indexed_position = position
        tail = struct.pack("<Qq", offset, timestamp)
        crc = zlib.crc32(payload, zlib.crc32(tail))
        write.data += HEADER.pack(len(payload) | flags, crc, offset, timestamp)
        write.data += payload
        segment.size += size
        write.end_size = segment.size
        segment.next_offset = offset + 1
        if segment.first_timestamp is None:
            segment.first_timestamp = timestamp
        segment.last_timestamp = timestamp
        self.bytes += size
        batch.end_offset = offset + 1
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            self.enforce_retention(timestamp)
        return offset

    def _start_segment(self) -> Segment:
        segment = Segment(self.directory, self.next_offset)
        self.segments.append(segment)
        if len(self.segments) > 1:  # a segment closed: what retention removes changed
            self.enforce_retention(self._last_timestamp)
        return segment

    # -- retention ---------------------------------------------------------------------------

    def set_retention(
        self, *, max_bytes: int | None, max_age_ms: int | None, max_segment_size: int
    ) -> None:
        """New limits (a policy changed); applied at once, with the next append's time."""
        self.max_bytes, self.max_age_ms = max_bytes, max_age_ms
        self.max_segment_size = max_segment_size

    def enforce_retention(self, now_ms: int) -> int:
        """Remove the oldest segments the limits no longer keep; returns how many records went.

        Never the segment being written, so retention can leave more than the limits allow.
        """
        segments = self.segments
        dropped = 0
        while len(segments) > 1:
            oldest = segments[0]
            too_big = self.max_bytes is not None and self.bytes > self.max_bytes
            too_old = (
                self.max_age_ms is not None
                and oldest.last_timestamp is not None
                and oldest.last_timestamp < now_ms - self.max_age_ms
            )
            if not (too_big or too_old):
                break
            segments.pop(0)
            self.bytes -= oldest.record_bytes
            dropped += oldest.next_offset - oldest.first_offset
            self._drop(oldest)
        return dropped

    def oldest_expiry(self) -> int | None:
        """When (ms) age retention would next remove a segment, if it ever will."""
        if self.max_age_ms is None or len(self.segments) < 2:
            return None
        last = self.segments[0].last_timestamp
        return None if last is None else last + self.max_age_ms + 1

    def _drop(self, segment: Segment) -> None:
        fd = self._read_files.pop(segment.first_offset, None)
        if fd is not None:
            os.close(fd)
        if not self._pending:
            self.on_pending()
        pending = self._pending
        for write in pending.writes:
            if write.segment is segment:  # never written: nothing to delete but the plan
                pending.writes.remove(write)
                if write.create:
                    return
                break
        pending.deletions += [segment.path, segment.index_path]

    # -- writing (a worker thread; one batch at a time) --------------------------------------

    def take_batch(self) -> Batch:
        """What was appended (and dropped) since the last take."""
        batch, self._pending = self._pending, Batch()
        for write in batch.writes:  # the batch before is written: what exists is known
            write.create = write.segment.committed_size == 0
            write.index_start = write.segment.index_entries
        return batch

    def write_batch(self, batch: Batch) -> None:
        """Write and fsync the batch's records, then delete what retention dropped.

        Touches only the batch and this log's write descriptors, so it may run in a worker
        thread while the log's own thread appends. A batch whose write failed (a full disk) may
        be written again: what the failed attempt wrote is cut off first.
        """
        if batch.attempted:
            self._undo(batch)
        batch.attempted = True
        created = False
        for write in batch.writes:
            segment_fd, index_fd = self._write_descriptors(write)
            created = created or write.create
            _write_all(segment_fd, write.data)
            if write.index:
                _write_all(index_fd, write.index)
        if self._write_files is not None and batch.writes:
            os.fdatasync(self._write_files[1])  # a segment finished before was synced then
        if created:
            _fsync_directory(self.directory)
        for path in batch.deletions:
            path.unlink(missing_ok=True)

    def _undo(self, batch: Batch) -> None:
        """Cut the files back to where they were before `batch` was first written."""
        if self._write_files is not None:
            os.close(self._write_files[1])
            os.close(self._write_files[2])
            self._write_files = None
        for write in batch.writes:
            segment = write.segment
            if write.create:  # made again from nothing
                for path in (segment.path, segment.index_path):
                    path.unlink(missing_ok=True)
                continue
            os.truncate(segment.path, write.start_size)
            os.truncate(segment.index_path, write.index_start * INDEX_ENTRY.size)

    def _write_descriptors(self, write: _Write) -> tuple[int, int]:
        current = self._write_files
        if current is not None and current[0] is write.segment:
            return current[1], current[2]
        if current is not None:  # that segment is complete: the next one takes over
            os.fdatasync(current[1])
            os.close(current[1])
            os.close(current[2])
            self._write_files = None
        segment = write.segment
        if write.create:
            self.directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        segment_fd = os.open(segment.path, flags, 0o644)
        if write.create:
            os.ftruncate(segment_fd, 0)  # a file left by a crash before its first record
            _write_all(segment_fd, SEGMENT_MAGIC)
        index_fd = os.open(segment.index_path, flags, 0o644)
        if write.create:
            os.ftruncate(index_fd, 0)
        self._write_files = (segment, segment_fd, index_fd)
        return segment_fd, index_fd

    def batch_written(self, batch: Batch) -> None:
        """The batch is on disk: its records are committed and readable."""
        for write in batch.writes:
            segment = write.segment
            segment.committed_size = write.end_size
            segment.index_entries += write.index_count
        if batch.chunk_offset >= 0:
            self.committed_offset = batch.end_offset
            self.last_chunk_offset = batch.chunk_offset
            self.on_committed()

    def flush(self) -> None:
        """Write everything pending now, in this thread."""
        batch = self.take_batch()
        if batch:
            self.write_batch(batch)
            self.batch_written(batch)

    # -- reading -----------------------------------------------------------------------------

    def cursor_at(self, offset: int) -> Cursor:
        """A cursor at `offset`: clamped to the oldest record kept; past the end it waits there
        for that offset to be written."""
        offset = max(offset, self.first_offset)
        segment = self._segment_for(offset)
        if segment is None or offset >= self.committed_offset:
            return Cursor(offset, None, 0)
        return self._locate(segment, offset=offset)

    def cursor_first(self) -> Cursor:
        return self.cursor_at(self.first_offset)

    def cursor_next(self) -> Cursor:
        """At the next record to be committed: only what comes from now on."""
        return Cursor(self.committed_offset, None, 0)

    def cursor_last(self) -> Cursor:
        """At the newest committed chunk (RabbitMQ's `last`), or `next` when there is none."""
        if self.committed_offset <= self.first_offset:
            return self.cursor_next()
        return self.cursor_at(max(self.last_chunk_offset, self.first_offset))

    def cursor_at_time(self, timestamp: int) -> Cursor:
        """At the first committed record made at `timestamp` (ms) or later; `next` if none."""
        segments = [s for s in self.segments if s.committed_size > len(SEGMENT_MAGIC)]
        index = bisect.bisect_left(
            [s.last_timestamp if s.last_timestamp is not None else -1 for s in segments],
            timestamp,
        )
        if index == len(segments):
            return self.cursor_next()
        return self._locate(segments[index], timestamp=timestamp)

    def read(self, cursor: Cursor, max_bytes: int = READ_SIZE) -> list[Record]:
        """Committed records from the cursor on, about `max_bytes` of them at most (but at
        least one), moving the cursor past them. A cursor left behind by retention jumps to the
        oldest record kept."""
        records: list[Record] = []
        taken = 0
        while taken < max_bytes and cursor.offset < self.committed_offset:
            if cursor.offset < self.first_offset or cursor.segment is None:
                located = self.cursor_at(cursor.offset)
                if located.segment is None:
                    break
                cursor.offset, cursor.segment = located.offset, located.segment
                cursor.position = located.position
            segment = cursor.segment
            assert segment is not None
            if cursor.position >= segment.committed_size:
                following = self._segment_after(segment)
                if following is None or following.committed_size == 0:
                    break
                cursor.segment, cursor.position = following, len(SEGMENT_MAGIC)
                continue
            fd = self._read_fd(segment)
            want = min(max_bytes - taken, segment.committed_size - cursor.position)
            data = os.pread(fd, max(want, HEADER.size), cursor.position)
            got = _parse(data, records, cursor, self.committed_offset)
            if not got:  # one record bigger than what was read: read exactly it
                length = HEADER.unpack_from(data)[0] & LENGTH_MASK
                data = os.pread(fd, HEADER.size + length, cursor.position)
                got = _parse(data, records, cursor, self.committed_offset)
                if not got:
                    raise LogError(f"{segment.path}: unreadable record at {cursor.position}")
            taken += got
        return records

    def _segment_for(self, offset: int) -> Segment | None:
        segments = self.segments
        index = bisect.bisect_right([s.first_offset for s in segments], offset) - 1
        return segments[index] if index >= 0 else None

    def _segment_after(self, segment: Segment) -> Segment | None:
        segments = self.segments
        for i, candidate in enumerate(segments):
            if candidate is segment:
                return segments[i + 1] if i + 1 < len(segments) else None
            if candidate.first_offset > segment.first_offset:
                return candidate  # the segment itself was dropped meanwhile
        return None

    def _locate(
        self, segment: Segment, *, offset: int | None = None, timestamp: int | None = None
    ) -> Cursor:
        """The cursor at the first record of `segment` at `offset`, or made at `timestamp` or
        later: a binary search of its index for the last entry before it, then a scan."""
        if timestamp is not None:
            target, index_field, header_field = timestamp, 2, 3
        else:
            assert offset is not None
            target, index_field, header_field = offset, 0, 2
        position, first = len(SEGMENT_MAGIC), segment.first_offset
        index_fd = os.open(segment.index_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            low, high = 0, segment.index_entries
            while low < high:
                middle = (low + high) // 2
                entry = INDEX_ENTRY.unpack(
                    os.pread(index_fd, INDEX_ENTRY.size, middle * INDEX_ENTRY.size)
                )
                # An entry at the very offset sought will do; for a time, only one before it.
                if entry[index_field] < target or (offset is not None and entry[0] == offset):
                    first, position = entry[0], entry[1]
                    low = middle + 1
                else:
                    high = middle
        finally:
            os.close(index_fd)
        # Scan on from there, reading headers only (payloads are skipped over).
        fd = self._read_fd(segment)
        buffer, buffer_start = b"", position
        while position < segment.committed_size:
            at = position - buffer_start
            if at + HEADER.size > len(buffer):
                size = min(READ_SIZE, segment.committed_size - position)
                buffer, buffer_start, at = os.pread(fd, size, position), position, 0
            header = HEADER.unpack_from(buffer, at)
            if header[header_field] >= target:
                return Cursor(header[2], segment, position)
            position += HEADER.size + (header[0] & LENGTH_MASK)
            first = header[2] + 1
        return Cursor(first, segment, position)

    def _read_fd(self, segment: Segment) -> int:
        files = self._read_files
        fd = files.get(segment.first_offset)
        if fd is not None:
            files.move_to_end(segment.first_offset)
            return fd
        fd = os.open(segment.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        files[segment.first_offset] = fd
        if len(files) > OPEN_FILES:
            os.close(files.popitem(last=False)[1])
        return fd

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Let go of the files (write what is pending first with `flush` to keep it)."""
        self.close_readers()
        if self._write_files is not None:
            os.close(self._write_files[1])
            os.close(self._write_files[2])
            self._write_files = None
        self.closed = True

    def close_readers(self) -> None:
        """Close the files readers use (this thread's); a batch being written is unaffected."""
        for fd in self._read_files.values():
            os.close(fd)
        self._read_files.clear()

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self) -> None:
        starts = sorted(_segment_starts(self.directory))
        for number, first_offset in enumerate(starts):
            segment = Segment(self.directory, first_offset)
            in_line = not self.segments or first_offset == self.segments[-1].next_offset
            clean = in_line and self._recover_segment(segment)
            if in_line and segment.committed_size and (clean or segment.next_offset > first_offset):
                self._adopt(segment)
                if clean and (segment.next_offset > first_offset or number + 1 == len(starts)):
                    continue
            else:
                _remove_segment_files(self.directory, first_offset)
            # The log ends here: a segment torn or out of line, or an empty one followed by
            # more. What comes after can only be the rest of an interrupted write.
            for later in starts[number + 1 :]:
                _remove_segment_files(self.directory, later)
            break
        if self.segments:
            self.committed_offset = self.segments[-1].next_offset
            self.last_chunk_offset = self._recovered_chunk
            self._last_timestamp = max(
                (s.last_timestamp for s in self.segments if s.last_timestamp is not None),
                default=0,
            )

    def _adopt(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.bytes += segment.record_bytes

    def _recover_segment(self, segment: Segment) -> bool:
        """Read back one segment's index and scan what follows its last good entry; False when
        the segment had to be cut short (its tail was torn or damaged)."""
        path = segment.path
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            file_size = os.fstat(fd).st_size
            if file_size < len(SEGMENT_MAGIC):
                os.ftruncate(fd, 0)
                segment.committed_size = 0
                return False
            if os.pread(fd, len(SEGMENT_MAGIC), 0) != SEGMENT_MAGIC:
                raise LogError(f"{path} is not a segment of an amqp-lite stream")
            entries = _read_index(segment.index_path, file_size)
            # The last entry must point at a good record; otherwise step back.
            while entries:
                entry_offset, entry_position, _ = entries[-1]
                record = _record_at(fd, entry_position, file_size)
                if record is not None and record[0] == entry_offset:
                    break
                entries.pop()
            position, offset = len(SEGMENT_MAGIC), segment.first_offset
            if entries:
                offset, position, _ = entries[-1]
            first = _record_at(fd, len(SEGMENT_MAGIC), file_size)
            if first is not None:
                segment.first_timestamp = first[1]
            new_entries = bytearray()
            last_indexed = entries[-1][1] if entries else None
            # The newest chunk starts at the last record marked so; if the scan meets none,
            # where it began is a record boundary near enough to the end.
            scan_start, chunk = offset, None
            clean = True
            while position < file_size:
                record = _record_at(fd, position, file_size)
                if record is None or record[0] != offset:
                    clean = False
                    break
                record_offset, record_time, size, chunk_start = record
                if chunk_start:
                    chunk = record_offset
                if last_indexed is None or position - last_indexed >= self.index_interval:
                    new_entries += INDEX_ENTRY.pack(record_offset, position, record_time)
                    last_indexed = position
                segment.last_timestamp = record_time
                position += size
                offset += 1
            if offset > scan_start:
                self._recovered_chunk = scan_start if chunk is None else chunk
            if not clean:
                os.ftruncate(fd, position)
                os.fsync(fd)
            if segment.last_timestamp is None and entries:
                segment.last_timestamp = entries[-1][2]
            self._rewrite_index(segment, entries, new_entries)
            segment.index_entries = len(entries) + len(new_entries) // INDEX_ENTRY.size
            segment.last_indexed_position = last_indexed
            segment.next_offset = offset
            segment.size = segment.committed_size = position
            if segment.first_timestamp is None:
                segment.first_timestamp = segment.last_timestamp
            return clean
        finally:
            os.close(fd)

    @staticmethod
    def _rewrite_index(
        segment: Segment, kept: list[tuple[int, int, int]], added: bytearray
    ) -> None:
        """Cut the index file after its good entries and add the ones the scan found."""
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(segment.index_path, flags, 0o644)
        try:
            os.ftruncate(fd, len(kept) * INDEX_ENTRY.size)
            if added:
                os.pwrite(fd, bytes(added), len(kept) * INDEX_ENTRY.size)
        finally:
            os.close(fd)


def _parse(data: bytes, records: list[Record], cursor: Cursor, committed: int) -> int:
    """Append the whole records at the start of `data` to `records`; returns bytes used."""
    view = memoryview(data)
    unpack = HEADER.unpack_from
    used, end = 0, len(data)
    offset = cursor.offset
    while used + HEADER.size <= end and offset < committed:
        length, _crc, record_offset, timestamp = unpack(data, used)
        length &= LENGTH_MASK
        stop = used + HEADER.size + length
        if stop > end:
            break
        records.append((record_offset, timestamp, view[used + HEADER.size : stop]))
        used = stop
        offset = record_offset + 1
    cursor.offset = offset
    cursor.position += used
    return used


def _record_at(fd: int, position: int, file_size: int) -> tuple[int, int, int, bool] | None:
    """(offset, timestamp, size, first of its chunk) of the whole, undamaged record at
    `position`, else None."""
    if position + HEADER.size > file_size:
        return None
    header = os.pread(fd, HEADER.size, position)
    flagged_length, crc, offset, timestamp = HEADER.unpack(header)
    length = flagged_length & LENGTH_MASK
    if position + HEADER.size + length > file_size:
        return None
    payload = os.pread(fd, length, position + HEADER.size)
    if zlib.crc32(payload, zlib.crc32(header[8:])) != crc:
        return None
    return offset, timestamp, HEADER.size + length, bool(flagged_length & CHUNK_START)


def _read_index(path: Path, segment_size: int) -> list[tuple[int, int, int]]:
    """The index entries that make sense (increasing, inside the segment), up to the first that
    does not. The index is rebuilt from the segment where it falls short, so it is not fsynced.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries: list[tuple[int, int, int]] = []
    usable = len(data) - len(data) % INDEX_ENTRY.size
    for entry in INDEX_ENTRY.iter_unpack(data[:usable]):
        offset, position, _ = entry
        if position >= segment_size or position < len(SEGMENT_MAGIC):
            break
        if entries and (offset <= entries[-1][0] or position <= entries[-1][1]):
            break
        entries.append(entry)
    return entries


def _segment_starts(directory: Path) -> Iterator[int]:
    for path in directory.iterdir():
        if path.suffix == SEGMENT_SUFFIX and path.stem.isdigit():
            yield int(path.stem)
        elif path.suffix == INDEX_SUFFIX and not path.with_suffix(SEGMENT_SUFFIX).exists():
            path.unlink()  # its segment is gone (retention got as far as one of the two)


def _remove_segment_files(directory: Path, first_offset: int) -> None:
    for suffix in (SEGMENT_SUFFIX, INDEX_SUFFIX):
        (directory / f"{first_offset:020d}{suffix}").unlink(missing_ok=True)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ignore() -> None:
    pass
