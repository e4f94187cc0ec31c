"""The segment log on its own: appends, batches, lookups, retention, recovery after crashes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.conftest import examples
from vhosts import segment_log
from vhosts.segment_log import HEADER, SEGMENT_MAGIC, Cursor, LogError, Record, SegmentLog

T0 = 1_700_000_000_000  # ms


def read_all(log: SegmentLog, cursor: Cursor | None = None) -> list[Record]:
    cursor = cursor if cursor is not None else log.cursor_first()
    records: list[Record] = []
    while True:
        more = log.read(cursor, 4096)
        if not more:
            return records
        records += more


def filled(directory: Path, count: int, size: int = 50, **options: int) -> SegmentLog:
    log = SegmentLog(directory, **options)
    for i in range(count):
        log.append(b"%d" % i + b"." * (size - len(b"%d" % i)), T0 + i * 1000)
        if i % 7 == 6:
            log.flush()
    log.flush()
    return log


def test_records_are_committed_only_once_written(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path)
    assert log.append(b"a", T0) == 0
    assert log.append(b"b", T0) == 1
    cursor = log.cursor_first()
    assert log.read(cursor) == []  # pending: not on disk yet
    batch = log.take_batch()
    log.append(b"c", T0)  # while the batch is being written, appends go on
    log.write_batch(batch)
    assert log.read(cursor) == []
    log.batch_written(batch)
    assert log.read(cursor) == [(0, T0, b"a"), (1, T0, b"b")]
    log.flush()
    assert log.read(cursor) == [(2, T0, b"c")]
    assert log.read(cursor) == []


def test_a_restart_keeps_what_was_written_and_numbers_on(tmp_path: Path) -> None:
    log = filled(tmp_path, 100, max_segment_size=1000)
    assert len(log.segments) > 5
    log.append(b"never written", T0)
    log.close()
    log = SegmentLog(tmp_path, max_segment_size=1000)
    records = read_all(log)
    assert [offset for offset, _, _ in records] == list(range(100))
    assert records[42][1:] == (T0 + 42_000, b"42" + b"." * 48)
    assert log.append(b"next", T0) == 100


def test_lookups_by_offset_and_time_use_the_index(tmp_path: Path) -> None:
    log = filled(tmp_path, 500, max_segment_size=4000, index_interval=300)
    for offset in (0, 1, 57, 58, 59, 250, 499):
        cursor = log.cursor_at(offset)
        assert log.read(cursor, 1)[0][0] == offset
    for offset in (-5, 500, 1000):
        cursor = log.cursor_at(offset)
        assert cursor.offset == max(offset, 0)
    # Times: each record was made a second after the one before.
    assert log.read(log.cursor_at_time(T0 + 250_000), 1)[0][0] == 250
    assert log.read(log.cursor_at_time(T0 + 250_001), 1)[0][0] == 251
    assert log.read(log.cursor_at_time(0), 1)[0][0] == 0
    assert log.cursor_at_time(T0 + 10_000_000).offset == 500  # none that late: next


def test_last_is_the_newest_chunk(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path)
    assert log.cursor_last().offset == 0  # empty: next
    for body in (b"a", b"b", b"c"):
        log.append(body, T0)
    log.flush()
    log.append(b"d", T0)
    log.append(b"e", T0)
    assert [r[2] for r in read_all(log, log.cursor_last())] == [b"a", b"b", b"c"]
    log.flush()
    assert [r[2] for r in read_all(log, log.cursor_last())] == [b"d", b"e"]
    log.close()
    log = SegmentLog(tmp_path)
    assert [r[2] for r in read_all(log, log.cursor_last())] == [b"d", b"e"]


def test_a_record_bigger_than_a_read_is_read_whole(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path)
    big = os.urandom(300_000)
    log.append(b"small", T0)
    log.append(big, T0)
    log.append(b"after", T0)
    log.flush()
    cursor = log.cursor_first()
    assert [r[2] for r in log.read(cursor, 10)] == [b"small"]
    assert [r[2] for r in log.read(cursor, 10)] == [big]
    assert [r[2] for r in log.read(cursor, 10)] == [b"after"]


def test_retention_by_size_removes_whole_segments_from_the_head(tmp_path: Path) -> None:
    log = filled(tmp_path, 200, max_segment_size=1000, max_bytes=3000)
    record = HEADER.size + 50
    assert log.bytes <= 3000 or len(log.segments) == 1
    assert log.bytes > 3000 - 1000  # no more went than needed
    kept = read_all(log)
    assert kept[-1][0] == 199
    assert kept[0][0] == log.first_offset > 0
    assert len(kept) * record == log.bytes
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 * len(log.segments)  # the dropped segments' files are gone


def test_retention_by_age_waits_for_the_newest_record_of_a_segment(tmp_path: Path) -> None:
    log = filled(tmp_path, 100, max_segment_size=1000, max_age_ms=30_000)
    # Records are a second apart: segments older than 30 s went as new ones started...
    assert log.first_offset > 40
    # ...and the rest go when asked at a later time (the stream's timer does that).
    newest = T0 + 99_000
    log.enforce_retention(newest)
    assert log.segments[0].last_timestamp is not None
    assert log.segments[0].last_timestamp >= newest - 30_000
    expiry = log.oldest_expiry()
    assert expiry == log.segments[0].last_timestamp + 30_001
    assert log.enforce_retention(expiry - 1) == 0
    assert log.enforce_retention(expiry) > 0
    assert log.enforce_retention(T0 + 10**9) > 0
    assert len(log.segments) == 1  # never the segment being written
    log.flush()
    assert log.first_offset == log.segments[0].first_offset
    assert [r[0] for r in read_all(log)][-1] == 99


def test_a_reader_behind_retention_moves_on_to_the_oldest_record(tmp_path: Path) -> None:
    log = filled(tmp_path, 20, max_segment_size=500)
    cursor = log.cursor_first()
    assert log.read(cursor, 1)[0][0] == 0
    log.set_retention(max_bytes=600, max_age_ms=None, max_segment_size=500)
    log.enforce_retention(T0)
    log.flush()
    assert log.first_offset > 1
    assert log.read(cursor, 1)[0][0] == log.first_offset


@pytest.mark.parametrize("fail_at", [0, 1, 2, 5])
def test_a_batch_whose_write_failed_is_written_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """A full disk: the write stops part of the way; the batch is tried again later."""
    log = filled(tmp_path, 10, max_segment_size=400)
    for i in range(10, 30):
        log.append(b"%d" % i + b"." * 40, T0)
    batch = log.take_batch()
    assert len(batch.writes) > 1  # it goes on into new segments
    writes = 0

    def fails_part_way(fd: int, data: bytes | bytearray) -> None:
        nonlocal writes
        writes += 1
        if writes > fail_at:
            os.write(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")
        os.write(fd, bytes(data))

    monkeypatch.setattr(segment_log, "_write_all", fails_part_way)
    with pytest.raises(OSError):
        log.write_batch(batch)
    monkeypatch.undo()
    log.append(b"meanwhile", T0)
    log.write_batch(batch)
    log.batch_written(batch)
    log.flush()
    log.close()
    records = read_all(SegmentLog(tmp_path, max_segment_size=400))
    assert [offset for offset, _, _ in records] == list(range(31))
    assert records[-1][2] == b"meanwhile"


def test_a_torn_tail_is_cut_off_at_the_last_whole_record(tmp_path: Path) -> None:
    log = filled(tmp_path, 30, max_segment_size=100_000)
    log.close()
    path = next(tmp_path.glob("*.seg"))
    whole = path.stat().st_size
    with open(path, "r+b") as file:
        file.truncate(whole - 10)  # the last record lost its end
    log = SegmentLog(tmp_path)
    assert [r[0] for r in read_all(log)] == list(range(29))
    assert path.stat().st_size == whole - (HEADER.size + 50)
    assert log.append(b"again", T0) == 29


def test_a_damaged_record_ends_the_log_there(tmp_path: Path) -> None:
    log = filled(tmp_path, 30, max_segment_size=1000)
    log.close()
    segments = sorted(tmp_path.glob("*.seg"))
    second = segments[1]
    with open(second, "r+b") as file:
        file.seek(len(SEGMENT_MAGIC) + HEADER.size + 2)
        file.write(b"X")  # a flipped byte in the segment's first payload
    log = SegmentLog(tmp_path)
    assert [r[0] for r in read_all(log)] == list(range(int(second.stem)))
    assert sorted(tmp_path.glob("*.seg")) == segments[:1]  # it had nothing whole: gone


def test_a_lost_index_is_rebuilt(tmp_path: Path) -> None:
    log = filled(tmp_path, 300, max_segment_size=100_000, index_interval=200)
    log.close()
    index = next(tmp_path.glob("*.idx"))
    size = index.stat().st_size
    index.write_bytes(index.read_bytes()[: size // 3] + b"\x00" * 7)
    log = SegmentLog(tmp_path, index_interval=200)
    assert index.stat().st_size == size
    assert log.read(log.cursor_at(250), 1)[0][0] == 250


def test_a_file_that_is_not_a_segment_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{0:020d}.seg").write_bytes(b"something else entirely")
    with pytest.raises(LogError, match="is not a segment"):
        SegmentLog(tmp_path)


def test_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    """Only segment metadata stays in memory: a reader reads through bounded buffers."""
    log = filled(tmp_path, 2000, size=200, max_segment_size=10**9)
    assert len(log.segments) == 1
    cursor = log.cursor_first()
    assert sum(len(r[2]) + HEADER.size for r in log.read(cursor, 8192)) <= 8192 + 300


# -- a model of the log ------------------------------------------------------------------------


class LogMachine(RuleBasedStateMachine):
    """Whatever is appended, flushed, dropped by retention, torn by a crash or read: readers see
    the log in order from their offset, and retention only ever removes a prefix."""

    @initialize(
        segment_size=st.integers(100, 2000),
        index_interval=st.integers(1, 500),
    )
    def start(self, segment_size: int, index_interval: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="segment-log-test-"))
        self.options = {"max_segment_size": segment_size, "index_interval": index_interval}
        self.log = SegmentLog(self.directory, **self.options)
        self.now = T0
        self.records: list[tuple[int, int, bytes]] = []  # committed, from offset 0
        self.pending: list[tuple[int, int, bytes]] = []
        self.first = 0  # the oldest offset kept: only ever goes up
        self.chunk = 0  # where the newest committed chunk starts
        self.chunk_exact = True  # False after a restart: recovery may place it later
        self.cursors: list[tuple[int, Cursor]] = []  # (next offset expected, cursor)

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(payload=st.binary(max_size=300), elapsed=st.integers(0, 3000))
    def append(self, payload: bytes, elapsed: int) -> None:
        self.now += elapsed
        offset = self.log.append(payload, self.now)
        assert offset == len(self.records) + len(self.pending)
        self.pending.append((offset, self.now, payload))

    @rule()
    def flush(self) -> None:
        self.log.flush()
        self._committed(self.pending)

    def _committed(self, records: list[tuple[int, int, bytes]]) -> None:
        if records:
            self.chunk, self.chunk_exact = records[0][0], True
        self.records += records
        self.pending = self.pending[len(records) :]

    @rule(
        max_bytes=st.none() | st.integers(0, 5000),
        max_age=st.none() | st.integers(0, 20_000),
    )
    def retention(self, max_bytes: int | None, max_age: int | None) -> None:
        self.log.set_retention(
            max_bytes=max_bytes, max_age_ms=max_age, max_segment_size=self.log.max_segment_size
        )
        self.log.enforce_retention(self.now)
        if max_bytes is not None:
            assert self.log.bytes <= max_bytes or len(self.log.segments) == 1
        if max_age is not None:
            for segment in self.log.segments[:-1]:
                assert segment.last_timestamp is not None
                assert segment.last_timestamp >= self.now - max_age

    @rule()
    def restart(self) -> None:
        """A stop without flushing: what was pending is lost, nothing else."""
        self.log.close()
        self._reopen()

    def _reopen(self) -> None:
        self.log = SegmentLog(self.directory, **self.options)
        self.pending = []
        self.chunk_exact = False
        self.cursors = []
        # Segments retention dropped since the last write are still there: they come back.
        assert self.log.first_offset <= self.first
        self.first = self.log.first_offset

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def crash_while_writing(self, data: st.DataObject) -> None:
        """kill -9 in the middle of a batch: its files hold any part of what it wrote, and the
        deletions that come after the writes did not happen."""
        batch = self.log.take_batch()
        written = [w for w in batch.writes if w.data]
        if written:
            batch.deletions = []
        self.log.write_batch(batch)
        if written:
            torn = data.draw(st.sampled_from(written))
            keep = data.draw(st.integers(0, len(torn.data)))
            path = torn.segment.path
            with open(path, "r+b") as file:
                file.truncate(path.stat().st_size - len(torn.data) + keep)
            for later in written[written.index(torn) + 1 :]:
                later.segment.path.unlink(missing_ok=True)
        self.log.close()
        pending = self.pending
        self._reopen()
        survivors = self.log.next_offset - len(self.records)
        assert 0 <= survivors <= len(pending)  # a prefix of the torn batch, maybe empty
        if survivors:
            self.records += pending[:survivors]
            self.chunk = pending[0][0]

    @rule(data=st.data())
    def open_cursor(self, data: st.DataObject) -> None:
        end = len(self.records)
        kind = data.draw(st.sampled_from(["first", "last", "next", "offset", "time"]))
        if kind == "first":
            cursor, expected = self.log.cursor_first(), self.first
        elif kind == "next":
            cursor, expected = self.log.cursor_next(), end
        elif kind == "last":
            cursor = self.log.cursor_last()
            if end <= self.first:
                expected = end
            elif self.chunk_exact:
                expected = max(self.chunk, self.first)
            else:
                assert max(self.chunk, self.first) <= cursor.offset < end
                expected = cursor.offset
        elif kind == "offset":
            offset = data.draw(st.integers(-2, end + 3))
            cursor, expected = self.log.cursor_at(offset), max(offset, self.first)
        else:
            moment = data.draw(st.integers(T0 - 10, self.now + 10))
            cursor = self.log.cursor_at_time(moment)
            kept = self.records[self.first :]
            expected = next((r[0] for r in kept if r[1] >= moment), end)
        self.cursors.append((expected, cursor))

    @precondition(lambda self: self.cursors)
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.cursors) - 1))
        expected, cursor = self.cursors[index]
        got = self.log.read(cursor, data.draw(st.integers(1, 3000)))
        expected = max(expected, self.first)  # retention moved it on
        assert got == self.records[expected : expected + len(got)]
        if expected < len(self.records):
            assert got  # something is there to read: a read returns at least one record
        self.cursors[index] = (expected + len(got), cursor)

    @invariant()
    def retention_only_removes_a_prefix(self) -> None:
        first = self.log.first_offset
        assert first >= self.first
        self.first = first
        assert self.log.next_offset == len(self.records) + len(self.pending)
        assert self.log.committed_offset == len(self.records)
        assert len(self.log) == self.log.next_offset - first

    @invariant()
    def what_is_kept_reads_back_whole(self) -> None:
        assume(len(self.records) - self.first < 200)  # keep the check cheap
        kept = read_all(self.log)
        assert kept == self.records[self.first :]


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=examples(60), stateful_step_count=40)
