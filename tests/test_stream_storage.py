"""Where stream logs live: a directory per stream, found again after a restart, gone with it."""

from __future__ import annotations

from pathlib import Path

from vhosts.stream_storage import StreamStorage

T0 = 1_700_000_000_000


def bodies(storage: StreamStorage, vhost: str, name: str) -> list[bytes]:
    log = storage.open(vhost, name)
    return [payload for _, _, payload in log.read(log.cursor_first(), 1 << 20)]


def test_a_stream_is_found_again_by_its_vhost_and_name(tmp_path: Path) -> None:
    storage = StreamStorage(tmp_path)
    marks: list[int] = []
    storage.mark = lambda: marks.append(1)
    one, other = storage.open("/", "events"), storage.open("shop", "events")
    one.append(b"a", T0)
    one.append(b"b", T0)  # the same batch: one mark
    other.append(b"c", T0)
    assert len(marks) == 2
    storage.flush()
    one.close()
    other.close()

    again = StreamStorage(tmp_path)
    assert bodies(again, "/", "events") == [b"a", b"b"]
    assert bodies(again, "shop", "events") == [b"c"]
    assert bodies(again, "/", "new") == []


def test_a_deleted_stream_declared_again_starts_empty(tmp_path: Path) -> None:
    storage = StreamStorage(tmp_path)
    log = storage.open("/", "s")
    log.append(b"old", T0)
    storage.flush()
    storage.remove(log)
    fresh = storage.open("/", "s")  # before the removal was written
    fresh.append(b"new", T0)
    storage.flush()
    assert [p for _, _, p in fresh.read(fresh.cursor_first())] == [b"new"]
    assert len(list(tmp_path.iterdir())) == 1
    fresh.close()
    assert bodies(StreamStorage(tmp_path), "/", "s") == [b"new"]


def test_what_no_stream_claims_is_removed_after_recovery(tmp_path: Path) -> None:
    storage = StreamStorage(tmp_path)
    for name in ("kept", "gone"):
        storage.open("/", name).append(name.encode(), T0)
    storage.flush()
    again = StreamStorage(tmp_path)
    again.open("/", "kept")
    again.forget_unclaimed()
    assert len(list(tmp_path.iterdir())) == 1


def test_without_a_directory_streams_live_in_a_temporary_one_until_closed() -> None:
    storage = StreamStorage()
    log = storage.open("/", "s")
    log.append(b"x", T0)
    storage.flush()
    directory = storage.directory
    assert directory.is_dir()
    log.close()
    storage.close()
    assert not directory.exists()
