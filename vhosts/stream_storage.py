"""Where stream queues keep their logs, and the group commit that writes them all at once.

A node has one `StreamStorage`: a directory (`streams/` in the data directory, or a temporary
one when the broker keeps nothing) with one directory per stream, holding its segment log
(`vhosts.segment_log`) and a small file naming the stream it belongs to. A stream deleted and
declared again gets a new directory, so the old one can be removed at leisure.

Like the store, it is driven from outside: `take_batch` gathers every log's pending records
(and the directories to make or remove), `write_batch` writes them in a worker thread, and
`batch_written` commits them, after which readers see them. The server writes the store's batch
and this one in the same cycle, and a stream publish records a mark in the store, so a confirm
that waits for the store's fsync waits for the log's too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vhosts.segment_log import DEFAULT_SEGMENT_SIZE, Batch, SegmentLog

if TYPE_CHECKING:
    from vhosts.store import Codec

STREAMS_DIRECTORY = "streams"  # in a data directory, beside the store
LABEL_FILE = "stream.json"  # in each stream's directory: which stream it is
OFFSETS_FILE = "offsets.json"  # and where its tracked consumers resume
REMOVED_SUFFIX = ".removed"


class StreamStorage:
    def __init__(
        self, directory: str | os.PathLike[str] | None = None, codec: Codec | None = None
    ) -> None:
        """`directory` None: a temporary directory, made when the first stream is, and removed
        with everything in it on `close` (or when the storage is garbage). `codec` turns message
        properties into bytes and back, as the store's does; streams need one."""
        self._directory = Path(directory) if directory is not None else None
        self.codec = codec
        self._temporary: weakref.finalize[..., StreamStorage] | None = None
        # Wakes whoever drives the writes when something lands in an empty batch.
        self.on_pending: Callable[[], None] = _ignore
        # Called when a log gets its first record of a batch: the node records a mark in its
        # store, so that confirms and replies waiting for the store wait for this batch too.
        self.mark: Callable[[], object] = _ignore
        # Told the size of each record appended: the node counts it as the store's own content
        # waiting for the disk, so that publishers faster than the disk are paused.
        self.count_unwritten: Callable[[int], object] = _ignore_size
        # Dispatches that stopped at their read budget, to carry on once the event loop has
        # run; `on_resume` wakes whoever runs them (the server's stream task).
        self.on_resume: Callable[[], None] = _ignore
        self._resumes: dict[Callable[[], None], None] = {}
        self._pending: dict[SegmentLog, None] = {}  # logs with something to write, in order
        self._new: dict[SegmentLog, tuple[str, str]] = {}  # directories to make, and labels
        self._removed: list[SegmentLog] = []  # logs of deleted streams: directories to remove
        self._offsets: dict[SegmentLog, dict[str, int]] = {}  # tracked offsets to write
        self._found: dict[tuple[str, str], Path] | None = None  # by recovery, not yet claimed

    @property
    def directory(self) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="amqp-lite-streams-"))
            self._temporary = weakref.finalize(
                self, shutil.rmtree, self._directory, ignore_errors=True
            )
        return self._directory

    @property
    def has_pending(self) -> bool:
        return bool(self._pending or self._new or self._removed or self._offsets)

    # -- opening and removing ------------------------------------------------------------------

    def open(
        self,
        vhost: str,
        name: str,
        *,
        max_segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_bytes: int | None = None,
        max_age_ms: int | None = None,
    ) -> SegmentLog:
        """The log of stream `name` in `vhost`, with these limits (see `SegmentLog`):
        recovered if the storage holds one (a restart), else a new, empty one."""
        found = self._recovered().pop((vhost, name), None)
        directory = found or self.directory / f"{time.time_ns():016x}-{os.urandom(4).hex()}"
        log = SegmentLog(
            directory, max_segment_size=max_segment_size, max_bytes=max_bytes, max_age_ms=max_age_ms
        )
        if found is None:  # its directory is made with the next batch
            self._wake()
            self._new[log] = (vhost, name)
        log.on_pending = lambda: self._log_pending(log)
        return log

    def remove(self, log: SegmentLog) -> None:
        """The stream is deleted: its directory goes with the next batch."""
        log.on_pending = _ignore
        log.close_readers()
        self._pending.pop(log, None)
        self._offsets.pop(log, None)
        if self._new.pop(log, None) is not None:
            return  # never written: nothing on disk to remove
        self._wake()
        self._removed.append(log)

    def tracked_offsets(self, log: SegmentLog) -> dict[str, int]:
        """Where the stream's tracked consumers resume, by name, as last saved."""
        try:
            saved = json.loads((log.directory / OFFSETS_FILE).read_bytes())
        except (OSError, ValueError):  # none yet, or a save cut short: start afresh
            return {}
        if not isinstance(saved, dict):
            return {}
        return {k: v for k, v in saved.items() if isinstance(v, int) and not isinstance(v, bool)}

    def save_offsets(self, log: SegmentLog, offsets: Mapping[str, int]) -> None:
        """Keep the stream's tracked offsets with the next batch."""
        self._wake()
        self._offsets[log] = dict(offsets)

    def forget_unclaimed(self) -> None:
        """Recovery is over: directories of streams the node no longer has are removed."""
        found = self._recovered()
        for directory in found.values():
            shutil.rmtree(directory, ignore_errors=True)
        found.clear()

    def _recovered(self) -> dict[tuple[str, str], Path]:
        """What a previous run left: each stream's newest directory, by (vhost, name)."""
        if self._found is None:
            self._found = {}
            if self._directory is not None and self._directory.is_dir():
                self._found = _scan(self._directory)
        return self._found

    def _log_pending(self, log: SegmentLog) -> None:
        self._wake()
        if log not in self._pending:
            self._pending[log] = None
            self.mark()

    def _wake(self) -> None:
        if not self.has_pending:
            self.on_pending()

    # -- reading in rounds ---------------------------------------------------------------------

    def resume_soon(self, resume: Callable[[], None]) -> None:
        """Call `resume` in the next round (a dispatch that read its budget's worth)."""
        if not self._resumes:
            self.on_resume()
        self._resumes[resume] = None

    @property
    def has_resumes(self) -> bool:
        return bool(self._resumes)

    def run_resumes(self) -> None:
        """One round: what asked before it; what asks during it waits for the next."""
        resumes, self._resumes = self._resumes, {}
        for resume in resumes:
            resume()

    # -- writing (a worker thread; one batch at a time) ----------------------------------------

    def take_batch(self) -> StreamBatch:
        batch = StreamBatch(
            [(log, log.take_batch()) for log in self._pending],
            list(self._new.items()),
            self._removed,
            list(self._offsets.items()),
        )
        self._pending, self._new, self._removed, self._offsets = {}, {}, [], {}
        return batch

    def write_batch(self, batch: StreamBatch) -> None:
        """Make new streams' directories, write every log, remove deleted streams' directories."""
        if batch.created:
            root = self.directory
            for log, (vhost, name) in batch.created:
                log.directory.mkdir(parents=True, exist_ok=True)
                label = json.dumps({"vhost": vhost, "queue": name}).encode()
                _write_synced(log.directory / LABEL_FILE, label)  # without it, it is not found
                _fsync_directory(log.directory)
            _fsync_directory(root)
        for log, log_batch in batch.logs:
            log.write_batch(log_batch)
        for log, offsets in batch.offsets:
            if log.directory.is_dir():  # not yet if the stream never had a message
                staged = log.directory / (OFFSETS_FILE + ".new")
                staged.write_bytes(json.dumps(offsets).encode())
                os.replace(staged, log.directory / OFFSETS_FILE)
        for log in batch.removed:
            log.close()
            gone = log.directory.with_name(log.directory.name + REMOVED_SUFFIX)
            if log.directory.exists():  # not on a second attempt
                os.replace(log.directory, gone)  # gone at once, even if the removal stops
            shutil.rmtree(gone, ignore_errors=True)

    def batch_written(self, batch: StreamBatch) -> None:
        for log, log_batch in batch.logs:
            log.batch_written(log_batch)

    def flush(self) -> None:
        """Write everything pending now, in this thread (tests, shutdown)."""
        batch = self.take_batch()
        self.write_batch(batch)
        self.batch_written(batch)

    def close(self) -> None:
        """After a last `flush`: a temporary directory is removed with its streams."""
        if self._temporary is not None:
            self._temporary()


class StreamBatch:
    """One cycle's writes: each log's batch, directories to make, logs to remove, and the
    tracked offsets to keep."""

    __slots__ = ("created", "logs", "offsets", "removed")

    def __init__(
        self,
        logs: list[tuple[SegmentLog, Batch]],
        created: list[tuple[SegmentLog, tuple[str, str]]],
        removed: list[SegmentLog],
        offsets: list[tuple[SegmentLog, dict[str, int]]],
    ) -> None:
        self.logs = logs
        self.created = created
        self.removed = removed
        self.offsets = offsets


def _scan(root: Path) -> dict[tuple[str, str], Path]:
    """The stream directories under `root` by stream; older ones of the same stream (a stream
    deleted and declared again before its directory went) and half-removed ones are removed."""
    found: dict[tuple[str, str], Path] = {}
    for directory in sorted(_directories(root)):  # names start with their creation time
        try:
            label = json.loads((directory / LABEL_FILE).read_bytes())
            key = (label["vhost"], label["queue"])
        except (OSError, ValueError, KeyError, TypeError):
            key = None
        if key is None or directory.name.endswith(REMOVED_SUFFIX):
            shutil.rmtree(directory, ignore_errors=True)
            continue
        older = found.get(key)
        if older is not None:
            shutil.rmtree(older, ignore_errors=True)
        found[key] = directory
    return found


def _directories(root: Path) -> Iterator[Path]:
    return (path for path in root.iterdir() if path.is_dir())


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ignore() -> None:
    pass


def _ignore_size(size: int) -> None:
    pass
