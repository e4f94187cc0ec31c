"""A queue (vhosts.queue.Queue) against a simple model, driven by Hypothesis in random order:
publish (with or without a per-message TTL), deliver to a consumer as it gets credit, basic.get,
ack, reject with or without requeue, requeue several at once, time passing, and length limits
in each overflow mode. Some queues page (a memory budget of a few messages, pages of a few
messages, segment files of a few pages), with the page files' reads and writes done at random
moments, so the same model holds whatever is on disk.

The model is RabbitMQ's semantics written plainly: ready messages in publish order, a requeued
message back at its original place, expiry at the head only (a head that is due goes at once,
as RabbitMQ's TTL timer does), x-max-length dropping the head or refusing the publish. After
every step no message is lost or duplicated: each is in exactly one of ready, unacked, acked,
dead-lettered (with its reason) or refused.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from amqp_lite.storage import CODEC
from amqp_lite.wire import Properties
from amqp_lite.wire.properties import encode_properties
from tests.conftest import examples
from vhosts.classic_queue import ClassicQueue
from vhosts.clock import Clock
from vhosts.message import Message
from vhosts.paged_fifo import READ_AHEAD_PAGES, RECORD_OVERHEAD
from vhosts.paging import MESSAGE_OVERHEAD, Paging
from vhosts.queue import Queue, QueueEntry
from vhosts.queue_settings import OVERFLOW_MODES, QueueSettings
from vhosts.timers import Timers


class Host:
    """The queue's vhost: a frozen clock, timers the test runs, dead letters recorded, and
    paging when given a memory budget."""

    def __init__(self, memory_budget: int | None = None) -> None:
        self.clock = Clock(frozen_at=1000.0)
        self.timers = Timers()
        self.dead: list[tuple[int, str]] = []  # (message number, reason), in order
        self.paging: Paging | None = None
        if memory_budget is not None:
            self.paging = Paging(
                encode_properties=CODEC.encode_properties,
                decode_properties=CODEC.decode_properties,
                queue_budget=memory_budget,
                page_bytes=3 * (RECORD_OVERHEAD + 2),  # about three messages a page
                segment_size=400,  # a few pages a segment file
            )

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        self.dead.extend((_number(entry), reason) for entry in entries)

    def queue_expired(self, queue: Queue) -> None:
        raise AssertionError("no x-expires here")


PROPERTIES = Properties()
ENCODED_PROPERTIES = encode_properties(PROPERTIES)


class FakeConsumer:
    """A consumer that takes as many messages as it was given credit for."""

    tag = "consumer"
    no_ack = False
    exclusive = False
    priority = 0
    prefetch = 0
    unacked = 0
    arguments: dict[str, Any] = {}

    def __init__(self) -> None:
        self.credit = 0
        self.delivered: list[QueueEntry] = []

    def has_credit(self) -> bool:
        return self.credit > 0

    def deliver(self, entry: QueueEntry) -> None:
        assert self.credit > 0
        self.credit -= 1
        self.delivered.append(entry)

    def queue_deleted(self) -> None:
        raise AssertionError("the queue is never deleted here")


def _number(entry: QueueEntry) -> int:
    return int(entry.message.body)


class Expected:
    """A message as the model sees it."""

    def __init__(self, number: int, seq: int, expires_at: float | None) -> None:
        self.number = number
        self.seq = seq  # its place in the queue, kept across requeues
        self.expires_at = expires_at
        self.redelivered = False


class QueueModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.host = Host()
        self.consumer = FakeConsumer()
        self.published = 0
        self.next_seq = 0
        self.credit = 0  # the consumer's, as the model counts it
        # The model's own bookkeeping, one place per message.
        self.ready: list[Expected] = []  # in queue order (by seq)
        self.unacked: dict[int, Expected] = {}
        self.acked: set[int] = set()
        self.dead: list[tuple[int, str]] = []
        self.refused: set[int] = set()
        self.entries: dict[int, QueueEntry] = {}  # unacked entries, by message number
        self.queue: Queue

    @initialize(
        max_length=st.none() | st.integers(0, 4),
        overflow=st.sampled_from(OVERFLOW_MODES),
        queue_ttl=st.none() | st.integers(0, 3000),
        memory_budget=st.none() | st.sampled_from([0, MESSAGE_OVERHEAD * 2]),
    )
    def make_queue(
        self,
        max_length: int | None,
        overflow: str,
        queue_ttl: int | None,
        memory_budget: int | None,
    ) -> None:
        self.host = Host(memory_budget)
        self.settings = QueueSettings(
            max_length=max_length,
            overflow=overflow,
            message_ttl=queue_ttl,
            dead_letter_exchange="dlx",  # so that every dead letter reaches the host
        )
        self.queue = ClassicQueue("/", "q", settings=self.settings, host=self.host)
        self.queue.add_consumer(self.consumer)

    # -- the model's rules -------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.host.clock.now()

    def _expired(self, expected: Expected) -> bool:
        return expected.expires_at is not None and expected.expires_at <= self.now

    def _deliver_expected(self) -> None:
        """The consumer takes ready messages from the head while it has credit; a message
        that expired on the way is dead-lettered instead."""
        while self.ready and self.credit:
            head = self.ready.pop(0)
            if self._expired(head):
                self.dead.append((head.number, "expired"))
            else:
                self.unacked[head.number] = head
                self.credit -= 1

    def _drop_head_expected(self) -> None:
        max_length = self.settings.max_length
        if self.settings.overflow == "drop-head" and max_length is not None:
            while len(self.ready) > max_length:
                self.dead.append((self.ready.pop(0).number, "maxlen"))

    def _expire_heads_expected(self) -> None:
        while self.ready and self._expired(self.ready[0]):
            self.dead.append((self.ready.pop(0).number, "expired"))

    def _settle(self) -> None:
        """What the server does right after each step: fire the timers that are due."""
        self.host.timers.run_due(self.now)
        self._expire_heads_expected()
        self._collect_deliveries()

    def _collect_deliveries(self) -> None:
        for entry in self.consumer.delivered:
            number = _number(entry)
            assert number in self.unacked, f"message {number} delivered unexpectedly"
            assert entry.redelivered == self.unacked[number].redelivered
            assert number not in self.entries, f"message {number} delivered twice"
            self.entries[number] = entry
        self.consumer.delivered.clear()
        assert set(self.entries) == set(self.unacked)

    # -- rules -------------------------------------------------------------------------------------

    @rule(ttl=st.none() | st.integers(0, 3000))
    def publish(self, ttl: int | None) -> None:
        number = self.published
        self.published += 1
        message = Message("", "q", PROPERTIES, b"%d" % number, ENCODED_PROPERTIES)
        message.ttl = ttl
        max_length = self.settings.max_length
        overflow = self.settings.overflow
        if overflow != "drop-head" and max_length is not None and len(self.ready) >= max_length:
            assert self.queue.enqueue(message) is None
            if overflow == "reject-publish-dlx":
                self.dead.append((number, "maxlen"))
            else:
                self.refused.add(number)
        else:
            assert self.queue.enqueue(message) is not None
            ttls = [t for t in (ttl, self.settings.message_ttl) if t is not None]
            expires_at = self.now + min(ttls) / 1000 if ttls else None
            expected = Expected(number, self.next_seq, expires_at)
            self.next_seq += 1
            if self.credit:  # straight to the waiting consumer, whatever its TTL (even 0)
                assert not self.ready
                self.unacked[number] = expected
                self.credit -= 1
            else:
                self.ready.append(expected)
                self._drop_head_expected()
        self._settle()

    @rule(credit=st.integers(1, 3))
    def grant_credit(self, credit: int) -> None:
        """An ack or a basic.qos gave the consumer room: the queue delivers again."""
        self.consumer.credit += credit
        self.credit += credit
        self.queue.dispatch()
        self._deliver_expected()
        self._settle()

    @rule()
    def basic_get(self) -> None:
        self._expire_heads_expected()
        entry = self.queue.get(no_ack=False)
        if not self.ready:
            assert entry is None
        else:
            head = self.ready.pop(0)
            assert entry is not None and _number(entry) == head.number
            assert entry.redelivered == head.redelivered
            self.unacked[head.number] = head
            self.entries[head.number] = entry
        self._settle()

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(sorted(self.unacked)))
        self.queue.ack(self.entries.pop(number))
        del self.unacked[number]
        self.acked.add(number)
        self._settle()

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def ack_several(self, data: st.DataObject) -> None:
        """A multiple ack: several at once."""
        numbers = data.draw(
            st.lists(st.sampled_from(sorted(self.unacked)), min_size=1, unique=True)
        )
        self.queue.ack_all([self.entries.pop(number) for number in numbers])
        for number in numbers:
            del self.unacked[number]
            self.acked.add(number)
        self._settle()

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def reject_without_requeue(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(sorted(self.unacked)))
        self.queue.discard(self.entries.pop(number))
        del self.unacked[number]
        self.dead.append((number, "rejected"))
        self._settle()

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        """basic.reject/nack with requeue, or a closing channel: one or several at once."""
        numbers = data.draw(
            st.lists(st.sampled_from(sorted(self.unacked)), min_size=1, unique=True)
        )
        self.queue.requeue([self.entries.pop(number) for number in numbers])
        for number in numbers:
            expected = self.unacked.pop(number)
            expected.redelivered = True
            self.ready.append(expected)
        self.ready.sort(key=lambda expected: expected.seq)  # back to their places
        self._drop_head_expected()
        self._deliver_expected()
        self._settle()

    @precondition(lambda self: self.host.paging is not None)
    @rule()
    def page_files_written_and_read(self) -> None:
        """The page area's driver runs a cycle: pages read ahead join the queue's head."""
        assert self.host.paging is not None
        self.host.paging.area.flush()
        self._settle()

    @rule(seconds=st.sampled_from([0.001, 0.5, 1.0, 2.5, 10.0]))
    def time_passes(self, seconds: float) -> None:
        self.host.clock.advance(seconds)
        self._settle()

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def the_queue_holds_what_the_model_says_in_order(self) -> None:
        actual = [_number(entry) for entry in self.queue.ready]
        assert actual == [expected.number for expected in self.ready]
        assert [entry.redelivered for entry in self.queue.ready] == [
            expected.redelivered for expected in self.ready
        ]
        assert self.queue.message_count == len(self.ready)
        assert self.queue.ready_bytes == sum(len(b"%d" % e.number) for e in self.ready)

    @invariant()
    def unacked_messages_and_acks_are_counted(self) -> None:
        queue = self.queue
        assert queue.unacked_count == len(self.unacked)
        assert queue.unacked_bytes == sum(len(b"%d" % number) for number in self.unacked)
        assert queue.counts.ack == len(self.acked)

    @invariant()
    def paged_messages_are_counted_and_memory_stays_bounded(self) -> None:
        queue = self.queue
        assert isinstance(queue, ClassicQueue)
        in_memory = len(queue.ready) - queue.paged_count
        assert queue.paged_count >= 0 and in_memory >= 0
        if self.host.paging is not None:
            # What the budget holds, requeued messages (they were in memory), two pages' worth
            # and the pages read ahead of them, a page being filled: no more.
            requeued = sum(expected.redelivered for expected in self.ready)
            assert in_memory <= 2 + requeued + (2 + READ_AHEAD_PAGES) * 4 + 4

    def teardown(self) -> None:
        if self.host.paging is not None:
            self.host.paging.close()

    @invariant()
    def dead_letters_are_the_models(self) -> None:
        assert self.host.dead == self.dead

    @invariant()
    def no_message_is_lost_or_duplicated(self) -> None:
        places: list[Any] = [
            [expected.number for expected in self.ready],
            list(self.unacked),
            list(self.acked),
            [number for number, _reason in self.dead],
            list(self.refused),
        ]
        everything = [number for place in places for number in place]
        assert sorted(everything) == list(range(self.published))

    @invariant()
    def no_expired_message_waits_at_the_head(self) -> None:
        if self.ready:
            assert not self._expired(self.ready[0])

    @invariant()
    def a_consumer_with_credit_leaves_nothing_ready(self) -> None:
        assert self.consumer.credit == self.credit
        if self.credit:
            assert not self.ready


QueueModel.TestCase.settings = settings(
    max_examples=examples(300), stateful_step_count=40, deadline=None
)
test_queue_against_the_model = QueueModel.TestCase
