"""A stream queue (vhosts.stream_queue) against a simple model, driven by Hypothesis in random
order: publish (with or without a filter value, time passing), write the log, consumers that
start from first, last, next, an offset or a time (some with a filter) and get credit in dribs
and drabs, retention limits changing, and the timers that carry a dispatch on when its read
budget ran out.

The model is the log written plainly: every message ever published, by offset. After every step:
each consumer got the messages of the log in order from where it started, each one exactly as
published, skipping only what its filter excludes or what retention removed before it got
there; a consumer with credit and nothing left to wait for has everything there is for it; and
retention only ever removes a prefix of the log.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import vhosts.stream_queue as stream_queue
from amqp_lite.storage import CODEC
from amqp_lite.wire import Properties
from tests.conftest import examples
from vhosts.clock import Clock
from vhosts.message import Message
from vhosts.queue import Queue, QueueEntry
from vhosts.queue_settings import QueueSettings
from vhosts.stream_queue import StreamQueue
from vhosts.stream_storage import StreamStorage
from vhosts.timers import Timers

T0 = 1_700_000_000.0
FILTERS = ("red", "blue")


class Host:
    def __init__(self, directory: Path) -> None:
        self.clock = Clock(frozen_at=T0)
        self.timers = Timers()
        self.streams = StreamStorage(directory, CODEC)

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        raise AssertionError("streams do not dead-letter")

    def dead_letter_confirmed(
        self, queue: Queue, entry: QueueEntry, reason: str, settled: set[str]
    ) -> bool:
        raise AssertionError("streams do not dead-letter")

    def queue_expired(self, queue: Queue) -> None:
        raise AssertionError("streams do not expire")


class FakeConsumer:
    no_ack = False
    exclusive = False
    priority = 0
    prefetch = 1
    unacked = 0

    def __init__(self, tag: str, arguments: dict[str, Any]) -> None:
        self.tag = tag
        self.arguments = arguments
        self.credit = 0
        self.delivered: list[tuple[int, bytes, Any]] = []  # offset, body, headers

    def has_credit(self) -> bool:
        return self.credit > 0

    def deliver(self, entry: QueueEntry) -> None:
        assert self.credit > 0
        self.credit -= 1
        message = entry.message
        self.delivered.append((entry.seq, message.body, message.properties.headers))

    def queue_deleted(self) -> None:
        raise AssertionError("the stream is never deleted here")


class Watch:
    """What the model expects of one consumer: where its next delivery may come from."""

    def __init__(self, consumer: FakeConsumer, start: int, wanted: frozenset[str] | None) -> None:
        self.consumer = consumer
        self.next = start  # every offset before this one was delivered or rightly skipped
        self.checked = 0  # deliveries already checked
        self.wanted = wanted  # the filter's values, or None for every message


class StreamMachine(RuleBasedStateMachine):
    watches = Bundle("watches")

    @initialize(budget=st.integers(1, 2000), read_ahead=st.integers(1, 2000))
    def start(self, budget: int, read_ahead: int) -> None:
        self.saved = (stream_queue.DISPATCH_BUDGET, stream_queue.READ_AHEAD)
        stream_queue.DISPATCH_BUDGET, stream_queue.READ_AHEAD = budget, read_ahead
        self.directory = Path(tempfile.mkdtemp(prefix="stream-model-"))
        self.host = Host(self.directory)
        settings_ = QueueSettings(max_segment_size=300)
        self.queue = StreamQueue("/", "s", durable=True, settings=settings_, host=self.host)
        self.published: list[tuple[bytes, str | None, float]] = []  # by offset
        self.committed = 0
        self.chunk = 0  # where the newest written chunk starts
        self.first = 0  # the oldest offset kept, as far as the model has seen
        self.removed_below = 0  # offsets below this were removed when a consumer skipped them
        self.watch_list: list[Watch] = []
        self.tags = 0

    def teardown(self) -> None:
        stream_queue.DISPATCH_BUDGET, stream_queue.READ_AHEAD = self.saved
        self.queue.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def now(self) -> float:
        return self.host.clock.now()

    # -- publishing and writing ------------------------------------------------------------------

    @rule(
        size=st.integers(0, 120),
        colour=st.sampled_from([*FILTERS, None]),
        elapsed=st.integers(0, 5),
    )
    def publish(self, size: int, colour: str | None, elapsed: int) -> None:
        self.host.clock.advance(elapsed)
        body = b"%d:" % len(self.published) + b"." * size
        headers = {"x-stream-filter-value": colour} if colour is not None else None
        properties = Properties(headers=headers)
        message = Message("", "s", properties, body, CODEC.encode_properties(properties))
        entry = self.queue.enqueue(message)
        assert entry is not None and entry.seq == len(self.published)
        self.published.append((body, colour, self.now()))

    @rule()
    def write(self) -> None:
        """The server's write cycle: what was appended is committed, and readers move on."""
        pending = len(self.published) - self.committed
        self.host.streams.flush()
        if pending:
            self.chunk = self.committed
        self.committed = len(self.published)

    @rule()
    def next_round(self) -> None:
        """The server's stream task carries on the dispatches that ran out of read budget."""
        self.host.streams.run_resumes()

    @rule(elapsed=st.integers(0, 30))
    def time_passes(self, elapsed: int) -> None:
        """Timers fire: retention of old segments."""
        self.host.clock.advance(elapsed)
        self.host.timers.run_due(self.now())

    @rule(
        max_bytes=st.none() | st.integers(0, 3000),
        max_age=st.none() | st.integers(1, 60),
    )
    def retention(self, max_bytes: int | None, max_age: int | None) -> None:
        """A policy changed the limits."""
        self.queue.apply_settings(
            QueueSettings(
                max_length_bytes=max_bytes,
                max_age=None if max_age is None else max_age * 1000,
                max_segment_size=300,
            )
        )

    # -- consumers ---------------------------------------------------------------------------

    @rule(target=watches, data=st.data())
    def add_consumer(self, data: st.DataObject) -> Watch:
        kind = data.draw(st.sampled_from(["first", "last", "next", "offset", "time", None]))
        arguments: dict[str, Any] = {}
        end, first = self.committed, self.queue.log.first_offset
        if kind == "first":
            start = first
        elif kind == "last":
            start = max(self.chunk, first) if end > first else end
        elif kind in ("next", None):
            start = end
        elif kind == "offset":
            offset = data.draw(st.integers(-2, len(self.published) + 3))
            kind, start = offset, max(offset, first)
        else:
            moment = data.draw(st.integers(int(T0) - 2, int(self.now()) + 2))
            kind = Timestamp(moment)
            later = [o for o in range(first, end) if self.published[o][2] >= moment]
            start = later[0] if later else end
        if kind is not None:
            arguments["x-stream-offset"] = kind
        wanted = data.draw(st.none() | st.frozensets(st.sampled_from(FILTERS), max_size=2))
        if wanted is not None:
            arguments["x-stream-filter"] = sorted(wanted)
        self.tags += 1
        consumer = FakeConsumer(f"c{self.tags}", arguments)
        self.queue.validate_consume_arguments(arguments)
        self.queue.check_consumable(exclusive=False, no_ack=False, prefetch=1, global_prefetch=0)
        self.queue.add_consumer(consumer)
        watch = Watch(consumer, start, wanted)
        self.watch_list.append(watch)
        return watch

    @rule(watch=watches, credit=st.integers(1, 20))
    def give_credit(self, watch: Watch, credit: int) -> None:
        """Acks came back (or the socket drained): the consumer may take more."""
        if watch in self.watch_list:
            watch.consumer.credit += credit
            self.queue.dispatch()

    @rule(watch=watches)
    def cancel(self, watch: Watch) -> None:
        if watch in self.watch_list:
            self.watch_list.remove(watch)
            self.queue.remove_consumer(watch.consumer)

    # -- what must hold ----------------------------------------------------------------------

    @invariant()
    def retention_only_removes_a_prefix(self) -> None:
        log = self.queue.log
        assert log.first_offset >= self.first
        self.first = log.first_offset
        assert log.next_offset == len(self.published)
        assert self.queue.message_count == len(self.published) - log.first_offset

    @invariant()
    def each_reader_sees_the_log_in_order_from_its_offset(self) -> None:
        """...and one with credit and nothing left to wait for has all there is for it."""
        first = self.queue.log.first_offset  # what retention removed is below this
        for watch in self.watch_list:
            for offset, body, headers in watch.consumer.delivered[watch.checked :]:
                assert offset >= watch.next
                for skipped in range(watch.next, offset):  # filtered, or gone before it came
                    assert skipped < first or not self._wanted(watch, skipped), skipped
                assert body == self.published[offset][0]
                assert headers["x-stream-offset"] == offset
                assert self._wanted(watch, offset)
                watch.next = offset + 1
            watch.checked = len(watch.consumer.delivered)
        if self.host.streams.has_resumes:
            return  # a dispatch that ran out of budget is still to carry on
        for watch in self.watch_list:
            if watch.consumer.credit:
                owed = [
                    o
                    for o in range(max(watch.next, first), self.committed)
                    if self._wanted(watch, o)
                ]
                assert not owed, (watch.consumer.tag, owed[:5])

    def _wanted(self, watch: Watch, offset: int) -> bool:
        if watch.wanted is None:
            return True
        colour = self.published[offset][1]
        return colour in watch.wanted if colour is not None else False


class Timestamp(int):
    """An AMQP timestamp beyond what the model needs as a datetime: whole seconds."""

    amqp_type = "T"


TestStreamMachine = StreamMachine.TestCase
TestStreamMachine.settings = settings(max_examples=examples(150), stateful_step_count=50)
