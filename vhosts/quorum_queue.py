"""Quorum queues, as RabbitMQ 3.10.8 runs them on one node (every rule checked there).

RabbitMQ keeps a quorum queue in a Raft log; what a client sees of that on one node:

* Declaring: durable only (auto-delete, exclusive and non-durable are refused, in that order),
  never server-named; its own arguments, and a policy with a key it cannot take keeps off it.
  The policy's overflow and expires win over the arguments (for classic queues the argument
  does), and x-overflow reject-publish-dlx acts as drop-head.
* Every message is kept in the store whatever its delivery_mode, so a confirm means on disk.
* Two lists: `returns`, served first, and `messages`. A channel that goes puts what it held at
  the back of `returns`; a nack or reject with requeue, or basic.recover, puts it at the back
  of `messages`, unless a delivery limit is set (to any value), when it goes to `returns` too.
* Each return counts: a redelivery carries `x-delivery-count` (basic.get carries it always),
  and once the count passes x-delivery-limit (or the policy's delivery-limit, the smaller) the
  message is dead-lettered with reason `delivery_limit`, or dropped.
* x-dead-letter-strategy at-least-once (with overflow reject-publish, else at-most-once): a
  dead letter stays in the queue, counted against its limits, until every queue its DLX routes
  it to took it; what found no queue, or a full one, is offered again every 180 s.
* Overflow reject-publish: the publish that goes past the limit is taken, then publishes are
  refused until the queue is back to 80% of it (the dead letters it holds count).
* Message TTL at the head; TTL 0 lets a waiting consumer take the message, as in RabbitMQ.
* Consumers: x-priority as in classic queues; with a single active consumer the next one takes
  over as soon as the active one cancels; an exclusive consume is not enforced; a channel with
  a global prefetch may not consume (540), and a consumer without a prefetch gets at most 2000
  unacked messages. queue.delete with if-unused or if-empty is refused (540).
* x-expires counts from the last redeclare, basic.get, or consumer or unacked message going;
  a passive declare does not count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from vhosts.dead_letter import REASONS, Long
from vhosts.errors import NotImplementedFeature
from vhosts.message import Message, evolve
from vhosts.queue import Queue, QueueEntry, StoredEntry, refuse_unless_durable
from vhosts.queue_settings import QueueSettings

# How often dead letters that found no taker (at-least-once) are offered again, in seconds:
# RabbitMQ's dead_letter_worker_publisher_confirm_timeout.
DEAD_LETTER_RETRY = 180.0
# The unacked messages of a consumer without a prefetch, at most (RabbitMQ's, for Raft).
UNLIMITED_PREFETCH = 2000
SOFT_LIMIT = 0.8  # reject-publish takes publishes again at this share of the limit

# Positions in the store: messages from 0 up, returns and held dead letters each in a range of
# their own below 0, so that the store's order (by position) is the queue's order.
RETURNS_BASE = -(1 << 61)
DEAD_LETTERS_BASE = -(1 << 62)


class QuorumEntry(QueueEntry):
    __slots__ = ("delivery_count",)

    def __init__(self, message: Message, queue: Queue, seq: int, delivery_count: int = 0) -> None:
        super().__init__(message, queue, seq, delivery_count > 0)
        self.delivery_count = delivery_count  # returns so far: x-delivery-count


class QuorumReady:
    """Returned messages, served first, then the rest in publish order."""

    def __init__(self) -> None:
        self.returns: deque[QueueEntry] = deque()
        self.messages: deque[QueueEntry] = deque()

    def append(self, entry: QueueEntry) -> None:
        self.messages.append(entry)

    def append_returned(self, entry: QueueEntry) -> None:
        self.returns.append(entry)

    def popleft(self) -> QueueEntry:
        return self.returns.popleft() if self.returns else self.messages.popleft()

    def clear(self) -> None:
        self.returns.clear()
        self.messages.clear()

    def __getitem__(self, index: int) -> QueueEntry:
        if index != 0:
            raise IndexError(index)
        return self.returns[0] if self.returns else self.messages[0]

    def __len__(self) -> int:
        return len(self.returns) + len(self.messages)

    def __iter__(self) -> Iterator[QueueEntry]:
        yield from self.returns
        yield from self.messages


class _HeldDeadLetter(NamedTuple):
    entry: QuorumEntry
    reason: str
    settled: set[str]  # the target queues that took it already


class QuorumQueue(Queue):
    type_name = "quorum"
    rabbit_module = "rabbit_quorum_queue"
    declare_arguments = (
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-dead-letter-strategy",
        "x-expires",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-in-memory-length",  # taken; everything is in memory here anyway
        "x-max-in-memory-bytes",
        "x-overflow",
        "x-single-active-consumer",
        "x-queue-type",
        "x-quorum-initial-group-size",  # taken; one node is the group
        "x-delivery-limit",
        "x-message-ttl",
        "x-queue-leader-locator",  # taken; this node leads
    )
    consume_arguments = ("x-priority", "x-credit")
    unsupported_policies = frozenset(
        {
            "max-priority",
            "queue-mode",
            "single-active-consumer",
            "ha-mode",
            "ha-params",
            "ha-sync-mode",
            "ha-promote-on-shutdown",
            "ha-promote-on-failure",
            "queue-master-locator",
            "max-age",
            "stream-max-segment-size-bytes",
            "initial-cluster-size",
        }
    )
    server_named = False
    keeps_every_message = True
    default_prefetch = UNLIMITED_PREFETCH

    @classmethod
    def compatible(cls, *, durable: bool, exclusive: bool, auto_delete: bool) -> bool:
        return durable and not exclusive and not auto_delete

    @classmethod
    def check_properties(
        cls, *, durable: bool, exclusive: bool, auto_delete: bool, description: str
    ) -> None:
        refuse_unless_durable(
            durable=durable, exclusive=exclusive, auto_delete=auto_delete, description=description
        )

    @classmethod
    def resolve_settings(
        cls, arguments: Mapping[str, Any], policy: Mapping[str, Any] | None
    ) -> QueueSettings:
        policy = policy or {}

        def lookup(argument: str, key: str, resolve: Any) -> Any:
            value, policy_value = arguments.get(argument), policy.get(key)
            if value is None or policy_value is None:
                return policy_value if value is None else value
            return resolve(policy_value, value)

        def smallest(policy_value: Any, value: Any) -> Any:
            return _erlang_min(policy_value, value)

        def policy_first(policy_value: Any, _value: Any) -> Any:
            return policy_value

        def argument_first(_policy_value: Any, value: Any) -> Any:
            return value

        overflow = lookup("x-overflow", "overflow", policy_first)
        if overflow not in ("drop-head", "reject-publish"):
            overflow = "drop-head"  # reject-publish-dlx too: RabbitMQ logs it and drops heads
        exchange = lookup("x-dead-letter-exchange", "dead-letter-exchange", argument_first)
        strategy = lookup("x-dead-letter-strategy", "dead-letter-strategy", argument_first)
        if strategy != "at-least-once" or overflow != "reject-publish":
            strategy = "at-most-once"  # what RabbitMQ falls back to, with a warning
        return QueueSettings(
            message_ttl=_number(lookup("x-message-ttl", "message-ttl", smallest)),
            expires=_number(lookup("x-expires", "expires", policy_first)),
            dead_letter_exchange=exchange,
            dead_letter_routing_key=(
                lookup("x-dead-letter-routing-key", "dead-letter-routing-key", argument_first)
                if exchange is not None
                else None
            ),
            max_length=_number(lookup("x-max-length", "max-length", smallest)),
            max_length_bytes=_number(lookup("x-max-length-bytes", "max-length-bytes", smallest)),
            overflow=overflow,
            single_active_consumer=arguments.get("x-single-active-consumer") is True,
            delivery_limit=lookup("x-delivery-limit", "delivery-limit", smallest),
            dead_letter_strategy=strategy,
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocked = False  # reject-publish: over the limit, refusing publishes
        self._held: list[_HeldDeadLetter] = []  # at-least-once dead letters not yet taken
        self._held_bytes = 0
        self._retry_at: float | None = None
        self._next_return = 0
        self._next_held = 0

    def _new_ready(self) -> QuorumReady:
        return QuorumReady()

    @property
    def _lists(self) -> QuorumReady:
        ready: QuorumReady = self.ready  # type: ignore[assignment]
        return ready

    @property
    def dead_letter_count(self) -> int:
        """Dead letters held until their targets take them (at-least-once)."""
        return len(self._held)

    # -- messages in -----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        if self._blocked:
            return None  # the publisher hears a nack
        entry = self._new_entry(message)
        self.counts.publish += 1
        if self.store is not None:
            self._persist(entry)
        self.ready.append(entry)
        self.ready_bytes += len(message.body)
        if self.consumers:
            self.dispatch(fresh=entry)
        if self.settings.limited:
            self._enforce_limit()
        if entry.expires_at is not None:
            self._expire_head()
        return entry

    def _new_entry(self, message: Message) -> QueueEntry:
        entry = QuorumEntry(message, self, self._next_seq)
        self._next_seq += 1
        ttl = self.settings.message_ttl
        if message.ttl is not None and (ttl is None or message.ttl < ttl):
            ttl = message.ttl
        if ttl is not None:
            # TTL 0: gone unless taken within the millisecond, as RabbitMQ has it.
            entry.expires_at = self.host.clock.now() + max(ttl, 1) / 1000
        return entry

    def _over_limit(self) -> bool:
        settings = self.settings
        max_length, max_bytes = settings.max_length, settings.max_length_bytes
        return (max_length is not None and len(self.ready) + len(self._held) > max_length) or (
            max_bytes is not None and self.ready_bytes + self._held_bytes > max_bytes
        )

    def _below_soft_limit(self) -> bool:
        settings = self.settings
        max_length, max_bytes = settings.max_length, settings.max_length_bytes
        return (
            max_length is None or len(self.ready) + len(self._held) <= int(max_length * SOFT_LIMIT)
        ) and (
            max_bytes is None or self.ready_bytes + self._held_bytes <= int(max_bytes * SOFT_LIMIT)
        )

    def _enforce_limit(self) -> None:
        if self.settings.overflow == "reject-publish":
            if self._over_limit():
                self._blocked = True
        else:
            self._drop_head_over_limit()

    def _unblock_if_below(self) -> None:
        if self._blocked and (
            self.settings.overflow != "reject-publish" or self._below_soft_limit()
        ):
            self._blocked = False

    def apply_settings(self, settings: QueueSettings) -> None:
        super().apply_settings(settings)
        if self._held and not self._holds_dead_letters():
            held, self._held, self._held_bytes = self._held, [], 0
            for entry, reason, _settled in held:  # no longer at-least-once: at most once now
                super()._dead_letter([entry], reason)
        if settings.limited:
            self._enforce_limit()
        self._unblock_if_below()

    # -- the store -------------------------------------------------------------------------------

    def restore(self, stored: Iterable[StoredEntry]) -> None:
        """What the store kept: held dead letters, returned messages, then the rest."""
        lists = self._lists
        for seq, message, delivered, expires_at in stored:
            entry = QuorumEntry(message, self, seq)
            entry.stored, entry.expires_at = True, expires_at
            if seq < RETURNS_BASE:  # a held dead letter: the column holds its reason
                self._next_held = max(self._next_held, seq - DEAD_LETTERS_BASE + 1)
                self._hold(entry, REASONS[delivered] if 0 <= delivered < len(REASONS) else "")
                continue
            entry.delivery_count, entry.redelivered = delivered, delivered > 0
            if seq < 0:
                self._next_return = max(self._next_return, seq - RETURNS_BASE + 1)
                lists.append_returned(entry)
            else:
                self._next_seq = max(self._next_seq, seq + 1)
                lists.append(entry)
            self.ready_bytes += len(message.body)
        self._schedule_expiry()
        if self._held:  # offered again once the node is up, as RabbitMQ's worker does
            self._schedule_retry(self.host.clock.now())

    def _move(self, entry: QuorumEntry, seq: int, delivered: int) -> None:
        """A stored entry takes a new position (returned, or held as a dead letter)."""
        old, entry.seq = entry.seq, seq
        store = self.store
        if entry.stored and store is not None and not self.deleted:
            message_id = entry.message.store_id
            assert message_id is not None
            store.dequeue(self.vhost_name, self.name, old)
            store.enqueue(self.vhost_name, self.name, seq, message_id, entry.expires_at, delivered)

    # -- messages out ----------------------------------------------------------------------------

    def dispatch(self, fresh: QueueEntry | None = None) -> None:
        super().dispatch(fresh)
        if self._blocked:
            self._unblock_if_below()

    def get(self, *, no_ack: bool) -> QueueEntry | None:
        entry = super().get(no_ack=no_ack)
        if self._blocked:
            self._unblock_if_below()
        return entry

    def _taken(self, entry: QueueEntry, no_ack: bool) -> None:
        if no_ack:
            self._unpersist(entry)
            return
        # After a restart it comes back as returned once more, as RabbitMQ returns what a
        # consumer that went had taken.
        store = self.store
        assert store is not None and isinstance(entry, QuorumEntry)
        store.mark_delivered(self.vhost_name, self.name, entry.seq, entry.delivery_count + 1)

    def outgoing(self, entry: QueueEntry, *, got: bool = False) -> Message:
        """A redelivery carries x-delivery-count, and so does every basic.get."""
        assert isinstance(entry, QuorumEntry)
        message = entry.message
        properties = message.properties
        headers = dict(properties.headers or {})
        headers["x-delivery-count"] = Long(entry.delivery_count)
        # RabbitMQ sets the header with its sorting setter: the table leaves sorted by key.
        copy = Message(
            message.exchange,
            message.routing_key,
            evolve(properties, headers=dict(sorted(headers.items()))),
            message.body,
        )
        return copy

    # -- settling --------------------------------------------------------------------------------

    def ack(self, entry: QueueEntry) -> None:
        super().ack(entry)
        self._maybe_idle()

    def requeue(self, entries: Iterable[QueueEntry], *, channel_closed: bool = False) -> None:
        """Returned messages go to the back of `returns` when their channel went or a delivery
        limit is set, else to the back of the queue; each return counts."""
        returning = list(entries)
        self.unacked_count -= len(returning)
        self.unacked_bytes -= sum(len(entry.message.body) for entry in returning)
        if self.deleted:  # nowhere to go back to: as if acked
            self._forget(returning)
            return
        limit = self.settings.delivery_limit
        to_front = channel_closed or limit is not None
        past_limit: list[QueueEntry] = []
        lists = self._lists
        for entry in returning:
            assert isinstance(entry, QuorumEntry)
            entry.delivery_count += 1
            entry.redelivered = True
            if _erlang_greater(entry.delivery_count, limit):
                past_limit.append(entry)
                continue
            if to_front:
                self._move(entry, RETURNS_BASE + self._next_return, entry.delivery_count)
                self._next_return += 1
                lists.append_returned(entry)
            else:
                self._move(entry, self._next_seq, entry.delivery_count)
                self._next_seq += 1
                lists.append(entry)
            self.ready_bytes += len(entry.message.body)
        if past_limit:
            self._dead_letter(past_limit, "delivery_limit")
        if self.settings.limited:
            self._enforce_limit()
        self._expire_head()
        if self.consumers:
            self.dispatch()
        self._maybe_idle()

    def discard(self, entry: QueueEntry) -> None:
        super().discard(entry)
        self._maybe_idle()

    def _dead_letter(self, entries: list[QueueEntry], reason: str) -> None:
        if not self._holds_dead_letters():
            super()._dead_letter(entries, reason)
            return
        for entry in entries:
            assert isinstance(entry, QuorumEntry)
            settled: set[str] = set()
            if self.host.dead_letter_confirmed(self, entry, reason, settled):
                self._forget([entry])
                continue
            self._move(entry, DEAD_LETTERS_BASE + self._next_held, REASONS.index(reason))
            self._next_held += 1
            self._hold(entry, reason, settled)
            self._schedule_retry(self.host.clock.now() + DEAD_LETTER_RETRY)

    def _holds_dead_letters(self) -> bool:
        settings = self.settings
        return (
            settings.dead_letter_strategy == "at-least-once"
            and settings.dead_letter_exchange is not None
        )

    def _hold(self, entry: QuorumEntry, reason: str, settled: set[str] | None = None) -> None:
        self._held.append(_HeldDeadLetter(entry, reason, settled or set()))
        self._held_bytes += len(entry.message.body)

    def _schedule_retry(self, when: float) -> None:
        if self._retry_at is None or when < self._retry_at:
            self._retry_at = when
            self.host.timers.schedule(when, self._retry_dead_letters)

    def _retry_dead_letters(self, now: float) -> None:
        if self._retry_at is None or now < self._retry_at:
            return  # a later retry was scheduled meanwhile, or this one is stale
        self._retry_at = None
        if self.deleted or not self._held:
            return
        kept: list[_HeldDeadLetter] = []
        for held in self._held:
            if self.host.dead_letter_confirmed(self, held.entry, held.reason, held.settled):
                self._held_bytes -= len(held.entry.message.body)
                self._forget([held.entry])
            else:
                kept.append(held)
        self._held = kept
        if kept:
            self._schedule_retry(now + DEAD_LETTER_RETRY)
        self._unblock_if_below()

    # -- purge, delete ---------------------------------------------------------------------------

    def purge(self) -> int:
        count = super().purge()
        self._unblock_if_below()
        return count

    def delete(self) -> int:
        count = super().delete()
        held, self._held, self._held_bytes = self._held, [], 0
        self._forget(dead_letter.entry for dead_letter in held)
        return count

    def expire_due(self, now: float) -> None:
        super().expire_due(now)
        if self._blocked:
            self._unblock_if_below()

    def check_deletable(self, *, if_unused: bool, if_empty: bool) -> None:
        for flag, name in ((if_unused, "if-unused"), (if_empty, "if-empty")):
            if flag:
                raise NotImplementedFeature(
                    f"cannot delete {self.describe()}. queue.delete operations with {name} "
                    "flag set are not supported by quorum queues"
                )

    # -- consumers and x-expires -----------------------------------------------------------------

    def check_consumable(
        self, *, exclusive: bool, no_ack: bool, prefetch: int, global_prefetch: int
    ) -> None:
        # RabbitMQ 3.10 does not enforce an exclusive consume on a quorum queue.
        if global_prefetch:
            raise NotImplementedFeature(f"{self.describe()} does not support global qos")

    def remove_consumer(self, consumer: Any) -> bool:
        active = bool(self.consumers) and self.consumers[0] is consumer
        gone = super().remove_consumer(consumer)
        if active and self.settings.single_active_consumer and self.consumers:
            self.dispatch()  # the next in line is active at once
        return gone

    def touch(self, *, passive: bool = False) -> None:
        """A passive declare does not count as use for a quorum queue's x-expires."""
        if not passive:
            self._used()

    def _maybe_idle(self) -> None:
        """Unacked messages keep a quorum queue in use; the last one going is its last use."""
        if self.settings.expires is not None and not self.unacked_count and not self.consumers:
            self._used()

    def _idle_check(self, now: float) -> None:
        if self.unacked_count:
            self._idle_timer = None
            return  # in use; the last settlement starts the clock again
        super()._idle_check(now)


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _erlang_min(a: Any, b: Any) -> Any:
    """Erlang's min/2 across types: any number is smaller than any other term (text, atoms)."""
    if _is_number(a) and _is_number(b):
        return min(a, b)
    return a if _is_number(a) else b


def _erlang_greater(count: int, limit: Any) -> bool:
    """`count > limit` as Erlang compares: a number is never greater than a non-number, so an
    x-delivery-limit that is text means no limit (RabbitMQ takes any value there)."""
    return _is_number(limit) and count > limit
