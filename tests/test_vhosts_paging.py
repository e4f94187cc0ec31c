"""The parts of paging on their own: the memory budget, page files, and the page record codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from amqp_lite.storage import CODEC
from amqp_lite.wire import Properties
from amqp_lite.wire.properties import encode_properties
from vhosts.message import Message
from vhosts.page_files import SUFFIX, PageArea
from vhosts.page_records import decode_page, encode_page
from vhosts.paging import GRANT, MESSAGE_OVERHEAD, MIN_PAGE_BYTES, MemoryBudget, Paging
from vhosts.queue import Queue, QueueEntry


class Holder:
    def __init__(self, footprint: int = 0) -> None:
        self.footprint = footprint
        self.allowance: int | None = None

    def memory_footprint(self) -> int:
        return self.footprint

    def allowance_reduced(self, allowance: int) -> None:
        self.allowance = allowance


def test_room_is_granted_in_steps_up_to_the_queue_limit() -> None:
    budget = MemoryBudget(node_limit=100 * GRANT, queue_limit=3 * GRANT)
    queue = Holder()
    assert budget.grant(queue, 0) == GRANT
    assert budget.grant(queue, GRANT + 1) == 3 * GRANT  # at least a step over the footprint
    assert budget.grant(queue, 3 * GRANT + 1) == 3 * GRANT  # the queue's limit: it pages
    assert budget.grant(queue, 10, queue_limit=0) == 3 * GRANT  # never less than it holds
    assert budget.granted == 3 * GRANT
    budget.release(queue)
    assert budget.granted == 0


def test_the_node_limit_takes_back_room_a_queue_no_longer_uses() -> None:
    budget = MemoryBudget(node_limit=4 * GRANT, queue_limit=4 * GRANT)
    first, second = Holder(), Holder()
    assert budget.grant(first, 3 * GRANT) == 4 * GRANT
    first.footprint = 3 * GRANT
    assert budget.grant(second, 0) == 0  # the node's budget is spent, and first uses it
    first.footprint = 0  # its messages went
    assert budget.grant(second, 0) == GRANT
    assert first.allowance == GRANT == budget.held_by(first)  # a step over what it uses
    assert budget.granted == 2 * GRANT


def test_a_page_is_an_eighth_of_the_queue_budget_within_bounds() -> None:
    def page(queue_budget: int) -> int:
        paging = Paging(
            encode_properties=CODEC.encode_properties,
            decode_properties=CODEC.decode_properties,
            queue_budget=queue_budget,
        )
        paging.close()
        return paging.page_bytes

    assert page(0) == MIN_PAGE_BYTES
    assert page(8 * 64 * 1024) == 64 * 1024
    assert page(1 << 30) == 128 * 1024


def test_page_files_are_written_read_and_removed_with_their_last_page(tmp_path: Path) -> None:
    leftover = tmp_path / f"00000001-000001{SUFFIX}"
    leftover.write_bytes(b"from a previous run")
    area = PageArea(tmp_path, segment_size=10)
    assert not leftover.exists()  # emptied at start: nothing in it is ever read again
    file = area.open()
    first, second, third = (file.write(bytes([n]) * 8) for n in (1, 2, 3))
    assert first.segment is second.segment is not third.segment  # a segment past 10 bytes
    assert file.read_now(first) == bytes([1]) * 8  # still in memory
    area.flush()
    assert first.data is None and area.pages_written == 3
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
    assert file.read_now(second) == bytes([2]) * 8  # from the file
    got: list[bytes | None] = []
    file.read_later(third, got.append)
    assert got == []
    area.flush()
    assert got == [bytes([3]) * 8]
    file.release(first)
    area.flush()
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2  # second still lives in that segment
    file.release(second)
    file.release(third)
    area.flush()
    assert list(tmp_path.glob(f"*{SUFFIX}")) == []
    file.write(b"more")
    area.flush()
    area.close()
    assert list(tmp_path.iterdir()) == []


def test_a_page_not_yet_written_need_not_be(tmp_path: Path) -> None:
    area = PageArea(tmp_path)
    file = area.open()
    page = file.write(b"short-lived")
    file.release(page)
    area.flush()
    assert area.pages_written == 0
    assert list(tmp_path.iterdir()) == []


def test_a_page_that_cannot_be_written_stays_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    area = PageArea(blocker / "pages")
    file = area.open()
    page = file.write(b"kept")
    work = area.take_work()
    area.do_work(work)
    area.work_done(work)
    assert work.errors
    assert file.read_now(page) == b"kept"


def test_a_temporary_area_goes_on_close() -> None:
    area = PageArea()
    area.open().write(b"x")
    area.flush()
    directory = area.directory
    assert list(directory.iterdir())
    area.close()
    assert not directory.exists()


def test_the_memory_estimate_is_near_a_queued_message_s_real_cost() -> None:
    """What MESSAGE_OVERHEAD claims (besides the body), against the objects a queued message
    has: its entry, the message, its position, its encoded properties."""
    import sys

    message = Message("", "q", None, b"", encode_properties(Properties()))
    entry = QueueEntry(message, Queue("/", "q"), 123_456)
    objects = (entry, message, entry.seq, message.encoded_properties)
    size = sum(sys.getsizeof(thing) for thing in objects) + 8  # and the deque's slot
    assert size <= MESSAGE_OVERHEAD <= 2 * size


names = st.text(max_size=20) | st.binary(max_size=20).map(
    lambda octets: octets.decode("utf-8", "surrogateescape")
)


@given(
    st.lists(
        st.tuples(
            names,  # exchange
            names,  # routing key
            st.binary(max_size=50),  # body
            st.none() | st.floats(allow_nan=False, allow_infinity=False),  # expires_at
            st.booleans(),  # redelivered
            st.integers(0, 255),  # priority
            st.lists(names, max_size=3),  # BCC keys
            st.integers(-(2**40), 2**40),  # paged id, 0: not stored
            st.sampled_from([None, "text/plain"]),  # content type
        ),
        min_size=1,
        max_size=20,
    )
)
def test_entries_come_back_from_a_page_as_they_went(records: list[tuple[Any, ...]]) -> None:
    queue = Queue("/", "q")
    entries = []
    ids: dict[int, int] = {}
    Message.decode_properties = CODEC.decode_properties
    for seq, (
        exchange,
        key,
        body,
        expires,
        redelivered,
        priority,
        bcc,
        paged_id,
        kind,
    ) in enumerate(records):
        message = Message(exchange, key, Properties(content_type=kind), body)
        message.bcc = tuple(bcc)
        entry = QueueEntry(message, queue, seq, redelivered, paged_id != 0, expires, priority)
        ids[seq] = paged_id
        entries.append(entry)
    encoded = encode_page(entries, CODEC.encode_properties, lambda entry: ids[entry.seq])
    assert encoded.count == len(entries)
    assert encoded.body_bytes == sum(len(entry.message.body) for entry in entries)
    assert encoded.expires_at == entries[0].expires_at
    stored = [(seq, ids[seq]) for seq in ids if ids[seq]]
    pairs = encoded.stored or []
    assert list(zip(pairs[::2], pairs[1::2], strict=True)) == stored
    back = decode_page(encoded.data, queue)
    for before, after in zip(entries, back, strict=True):
        assert after.queue is queue
        assert (after.seq, after.redelivered, after.stored, after.priority) == (
            before.seq,
            before.redelivered,
            before.stored,
            before.priority,
        )
        assert after.expires_at == before.expires_at
        old, new = before.message, after.message
        assert (new.exchange, new.routing_key, new.body, new.bcc) == (
            old.exchange,
            old.routing_key,
            old.body,
            old.bcc,
        )
        assert new.properties.content_type == old.properties.content_type
        paged_id = ids[before.seq]
        if paged_id:
            assert new.store_id == abs(paged_id)
            assert new.store_refs == (1 if paged_id > 0 else -1)


def test_taking_room_back_is_amortised_over_refused_asks() -> None:
    """Looking at every queue costs a call each: with many queues it is done once every so many
    refusals, not at each (a paging queue asks whenever its disk part drains)."""
    budget = MemoryBudget(node_limit=128 * GRANT, queue_limit=2 * GRANT)
    queues = [Holder(GRANT) for _ in range(64)]
    for queue in queues:
        assert budget.grant(queue, queue.footprint) == 2 * GRANT
    calls = 0

    def counted(self: Holder) -> int:
        nonlocal calls
        calls += 1
        return 0

    for queue in queues:
        queue.memory_footprint = counted.__get__(queue)  # type: ignore[method-assign]
    late = Holder()
    for _ in range(4):
        assert budget.grant(late, 0) == 0  # refused: nothing taken back yet
    assert calls == 0
    assert budget.grant(late, 0) == GRANT  # the fifth refusal looks, and finds room
    assert calls == 64
    assert budget.held_by(queues[0]) == GRANT
