"""A quorum queue (vhosts.quorum_queue.QuorumQueue) against a simple model, driven by Hypothesis
in random order: publish, deliver to a consumer as it gets credit, basic.get, ack, reject
without requeue, requeue one or several (by a nack, or by a channel that closes), with or
without a delivery limit, and length limits dropping the head or refusing publishes.

The model is RabbitMQ 3.10.8's rules written plainly: two lists, returns served before the
rest; a channel that closes returns to the back of returns, a nack to the back of the queue
unless a delivery limit is set; every return counts, and past the limit the message is
dead-lettered; reject-publish takes the publish that goes past the limit, then refuses until
the queue is back to 80% of it. After every step nothing is lost or duplicated (each message is
in exactly one of ready, unacked, acked, dead-lettered or refused) and each message's delivery
count, and the x-delivery-count its next delivery carries, is the number of times it came back.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from amqp_lite.wire import Properties
from tests.conftest import examples
from vhosts.clock import Clock
from vhosts.message import Message
from vhosts.queue import Queue, QueueEntry
from vhosts.quorum_queue import QuorumEntry, QuorumQueue
from vhosts.timers import Timers


class Host:
    """The queue's vhost: a frozen clock, and dead letters recorded (at most once)."""

    def __init__(self) -> None:
        self.clock = Clock(frozen_at=1000.0)
        self.timers = Timers()
        self.dead: list[tuple[int, str]] = []

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        self.dead.extend((_number(entry), reason) for entry in entries)

    def dead_letter_confirmed(
        self, queue: Queue, entry: QueueEntry, reason: str, settled: set[str]
    ) -> bool:
        raise AssertionError("at-most-once here")

    def queue_expired(self, queue: Queue) -> None:
        raise AssertionError("no x-expires here")


class FakeConsumer:
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


def _count(entry: QueueEntry) -> int:
    assert isinstance(entry, QuorumEntry)
    return entry.delivery_count


class QuorumModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.host = Host()
        self.consumer = FakeConsumer()
        self.published = 0
        self.credit = 0
        self.returns: list[int] = []  # served first
        self.messages: list[int] = []
        self.counts: dict[int, int] = {}  # returns so far, per message
        self.unacked: list[int] = []  # in delivery order
        self.acked: set[int] = set()
        self.dead: list[tuple[int, str]] = []
        self.refused: set[int] = set()
        self.blocked = False
        self.entries: dict[int, QueueEntry] = {}
        self.queue: QuorumQueue

    @initialize(
        limit=st.none() | st.integers(0, 3) | st.just("a"),
        max_length=st.none() | st.integers(0, 5),
        overflow=st.sampled_from(["drop-head", "reject-publish", "reject-publish-dlx"]),
    )
    def make_queue(self, limit: Any, max_length: int | None, overflow: str) -> None:
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "dlx",  # so that every dead letter reaches the host
            "x-overflow": overflow,
        }
        if limit is not None:
            arguments["x-delivery-limit"] = limit
        if max_length is not None:
            arguments["x-max-length"] = max_length
        self.limit, self.max_length = limit, max_length
        self.reject = overflow == "reject-publish"  # -dlx drops heads, as RabbitMQ 3.10 does
        settings = QuorumQueue.resolve_settings(arguments, None)
        self.queue = QuorumQueue("/", "q", arguments=arguments, settings=settings, host=self.host)
        self.queue.add_consumer(self.consumer)

    # -- the model ---------------------------------------------------------------------------------

    @property
    def ready(self) -> list[int]:
        return self.returns + self.messages

    def _take_head(self) -> int:
        return self.returns.pop(0) if self.returns else self.messages.pop(0)

    def _deliver_expected(self) -> None:
        while self.credit and self.ready:
            self.unacked.append(self._take_head())
            self.credit -= 1
        self._unblock_expected()

    def _enforce_limit_expected(self) -> None:
        if self.max_length is None:
            return
        if self.reject:
            if len(self.ready) > self.max_length:
                self.blocked = True
            return
        while len(self.ready) > self.max_length:
            self.dead.append((self._take_head(), "maxlen"))

    def _unblock_expected(self) -> None:
        max_length = self.max_length
        if self.blocked and max_length is not None and len(self.ready) <= int(max_length * 0.8):
            self.blocked = False

    def _collect_deliveries(self) -> None:
        for entry in self.consumer.delivered:
            number = _number(entry)
            assert number in self.unacked and number not in self.entries
            self.entries[number] = entry
        self.consumer.delivered.clear()
        assert list(self.entries) == [n for n in self.unacked if n in self.entries]
        assert set(self.entries) == set(self.unacked)

    def _past_limit(self, count: int) -> bool:
        return isinstance(self.limit, int) and count > self.limit

    # -- rules -------------------------------------------------------------------------------------

    @rule()
    def publish(self) -> None:
        number = self.published
        self.published += 1
        message = Message("", "q", Properties(), b"%d" % number)
        entry = self.queue.enqueue(message)
        if self.blocked:
            assert entry is None
            self.refused.add(number)
        else:
            assert entry is not None
            self.counts[number] = 0
            self.messages.append(number)
            self._deliver_expected()
            self._enforce_limit_expected()
        self._collect_deliveries()

    @rule(credit=st.integers(1, 3))
    def grant_credit(self, credit: int) -> None:
        self.consumer.credit += credit
        self.credit += credit
        self.queue.dispatch()
        self._deliver_expected()
        self._collect_deliveries()

    @rule(no_ack=st.booleans())
    def basic_get(self, no_ack: bool) -> None:
        entry = self.queue.get(no_ack=no_ack)
        if not self.ready:
            assert entry is None
            return
        head = self._take_head()
        assert entry is not None and _number(entry) == head
        # basic.get carries x-delivery-count always, from 0.
        assert self.queue.outgoing(entry, got=True).headers == {
            "x-delivery-count": self.counts[head]
        }
        if no_ack:
            self.acked.add(head)
        else:
            self.unacked.append(head)
            self.entries[head] = entry
        self._unblock_expected()

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self.unacked))
        self.queue.ack(self.entries.pop(number))
        self.unacked.remove(number)
        self.acked.add(number)

    @precondition(lambda self: self.unacked)
    @rule(data=st.data())
    def reject_without_requeue(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self.unacked))
        self.queue.discard(self.entries.pop(number))
        self.unacked.remove(number)
        self.dead.append((number, "rejected"))

    @precondition(lambda self: self.unacked)
    @rule(data=st.data(), channel_closed=st.booleans())
    def requeue(self, data: st.DataObject, channel_closed: bool) -> None:
        """A nack (one or several, in delivery order) or a channel that closes."""
        chosen = set(data.draw(st.lists(st.sampled_from(self.unacked), min_size=1, unique=True)))
        numbers = [n for n in self.unacked if n in chosen]
        self.queue.requeue([self.entries.pop(n) for n in numbers], channel_closed=channel_closed)
        to_front = channel_closed or self.limit is not None
        for number in numbers:
            self.unacked.remove(number)
            self.counts[number] += 1
            if self._past_limit(self.counts[number]):
                self.dead.append((number, "delivery_limit"))
            else:
                (self.returns if to_front else self.messages).append(number)
        self._enforce_limit_expected()
        self._deliver_expected()
        self._collect_deliveries()

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def the_queue_holds_what_the_model_says_in_order(self) -> None:
        assert [_number(entry) for entry in self.queue.ready] == self.ready
        assert self.queue.message_count == len(self.ready)
        assert self.queue.unacked_count == len(self.unacked)

    @invariant()
    def delivery_counts_are_the_returns_so_far(self) -> None:
        for entry in [*self.queue.ready, *self.entries.values()]:
            number = _number(entry)
            assert _count(entry) == self.counts[number]
            assert entry.redelivered == (self.counts[number] > 0)
            headers = self.queue.outgoing(entry).headers
            assert headers == {"x-delivery-count": self.counts[number]}

    @invariant()
    def dead_letters_are_the_models(self) -> None:
        assert self.host.dead == self.dead

    @invariant()
    def no_message_is_lost_or_duplicated(self) -> None:
        places = [
            self.ready,
            self.unacked,
            list(self.acked),
            [number for number, _reason in self.dead],
            list(self.refused),
        ]
        everything = [number for place in places for number in place]
        assert sorted(everything) == list(range(self.published))

    @invariant()
    def a_consumer_with_credit_leaves_nothing_ready(self) -> None:
        assert self.consumer.credit == self.credit
        if self.credit:
            assert not self.ready


QuorumModel.TestCase.settings = settings(
    max_examples=examples(150), stateful_step_count=40, deadline=None
)
test_quorum_queue_against_the_model = QuorumModel.TestCase
