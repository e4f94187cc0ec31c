"""A queue: the interface every queue type offers, and the FIFO behaviour types share.

`Queue` is the base of one class per queue type (`vhosts.queue_types` is the registry that picks
one by `x-queue-type`). What the rest of the broker does with a queue goes through the methods
below, never through `isinstance`:

  declare     class attributes and classmethods say what the type is: its name, the arguments
              it takes (and so those it refuses), which policy keys keep a policy off it, whether
              it may be server-named, which property flags it refuses, how its settings follow
              from arguments and policy
  publish     enqueue(message) -> entry, or None when the queue refuses the message (full)
  deliver     dispatch() to consumers with credit; get(no_ack); outgoing(entry) is the message
              a delivery carries (a type may add headers, as quorum queues do)
  settle      ack(entry) (and ack_all(entries), a multiple ack: ack of each), discard(entry)
              (rejected: dead-lettered where configured) and
              requeue(entries, channel_closed=...) (nack/reject/recover, or the channel went)
  consumers   validate_consume_arguments, check_consumable, add_consumer, remove_consumer
  purge       purge() -> count; delete() when the queue goes
  counts      message_count, consumer_count, unacked_count, ready_bytes, unacked_bytes, counts,
              paged_count, paged_bytes (ready messages waiting on disk)
  store       what a type keeps in the durable store, and restore(stored) at start-up
  time        expiry of messages (TTL at the head) and of the queue itself (x-expires)

The base class implements a FIFO ready list with TTL at the head, length limits, dead-lettering
and round-robin dispatch by consumer priority; a type keeps what fits and overrides the rest.
Delivered-but-unacked entries are held by the channel that received them; it hands them back
through `ack`, `requeue` or `discard`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from vhosts.clock import Clock
from vhosts.counters import MessageCounts
from vhosts.errors import AccessRefused, PreconditionFailed, ResourceLocked
from vhosts.message import Message
from vhosts.queue_settings import (
    DEFAULT_SETTINGS,
    QueueSettings,
    check_consume_arguments,
    resolve_queue_settings,
)
from vhosts.timers import Timer, Timers

if TYPE_CHECKING:
    from vhosts.paging import Paging
    from vhosts.store import Store


class QueueEntry:
    """One message in one queue: ready, or delivered and waiting for its ack."""

    __slots__ = ("expires_at", "message", "priority", "queue", "redelivered", "seq", "stored")

    def __init__(
        self,
        message: Message,
        queue: Queue,
        seq: int,
        redelivered: bool = False,
        stored: bool = False,
        expires_at: float | None = None,
        priority: int = 0,
    ) -> None:
        self.message = message
        self.queue = queue
        self.seq = seq  # position in the queue; a requeued entry goes back to it
        self.redelivered = redelivered
        self.stored = stored  # in the durable store until settled
        # Clock time after which it is never delivered (queue TTL or the message's expiration);
        # kept across requeues, as RabbitMQ keeps it.
        self.expires_at = expires_at
        self.priority = priority  # within the queue's x-max-priority; 0 for ordinary queues


class ReadyList(Protocol):
    """What a queue's ready list offers: the few deque operations the base class uses."""

    def append(self, entry: QueueEntry, /) -> None: ...

    def popleft(self) -> QueueEntry: ...

    def clear(self) -> None: ...

    def __getitem__(self, index: int, /) -> QueueEntry: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[QueueEntry]: ...


class StoredEntry(NamedTuple):
    """A queue entry as the store gave it back at start-up (see `Queue.restore`)."""

    seq: int
    message: Message
    delivered: int  # how often it was delivered before (a flag for classic queues)
    expires_at: float | None


class Consumer(Protocol):
    """What a queue needs of a consumer; the protocol layer's channel implements it."""

    tag: str
    no_ack: bool
    exclusive: bool
    priority: int  # x-priority: higher goes first while it has credit
    prefetch: int  # basic.qos prefetch-count it was made with (0: no limit)
    unacked: int  # its deliveries not yet settled
    arguments: Mapping[str, Any]  # its basic.consume arguments

    def has_credit(self) -> bool:
        """May this consumer take one more message now (prefetch, a slow socket)?"""
        ...

    def deliver(self, entry: QueueEntry) -> None:
        """Take `entry`, already removed from the ready list."""
        ...

    def queue_deleted(self) -> None:
        """The queue is gone; the consumer with it."""
        ...


class QueueHost(Protocol):
    """What a queue needs from its vhost: the time, timers, and where dead letters go."""

    clock: Clock
    timers: Timers
    paging: Paging | None  # where a classic queue's ready messages go past its memory budget

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        """Republish `entries` (already out of the ready list) through the queue's DLX."""
        ...

    def dead_letter_confirmed(
        self, queue: Queue, entry: QueueEntry, reason: str, settled: set[str]
    ) -> bool:
        """Offer the dead letter of `entry` to the target queues not in `settled`; True once
        every target took it (at-least-once dead-lettering)."""
        ...

    def queue_expired(self, queue: Queue) -> None:
        """The queue was unused for its x-expires: delete it."""
        ...


class _Detached:
    """The host of a queue made on its own (unit tests): wall time, and dead letters vanish."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.timers = Timers()
        self.paging: Paging | None = None

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        pass

    def dead_letter_confirmed(
        self, queue: Queue, entry: QueueEntry, reason: str, settled: set[str]
    ) -> bool:
        return True

    def queue_expired(self, queue: Queue) -> None:
        pass


class Queue:
    """Ready messages in FIFO order, dispatched round-robin to consumers that have credit."""

    # -- what the type is (read by vhosts.queue_types) -------------------------------------------

    type_name: ClassVar[str] = ""  # the x-queue-type that picks it
    rabbit_module: ClassVar[str] = ""  # RabbitMQ's module for the type, which some texts name
    # The x- arguments the type takes, in RabbitMQ's order: the order their checks run in and a
    # redeclare compares them in. Arguments other types take are refused.
    declare_arguments: ClassVar[tuple[str, ...]] = ()
    consume_arguments: ClassVar[tuple[str, ...]] = ()  # the same, for basic.consume
    # Policy keys the type cannot take: a policy holding any of them does not apply to it.
    unsupported_policies: ClassVar[frozenset[str]] = frozenset()
    server_named: ClassVar[bool] = False  # may queue.declare with an empty name make one?
    # Does the store keep every message, or (False) only persistent ones?
    keeps_every_message: ClassVar[bool] = False
    # The prefetch of a consumer made without one (0: no limit).
    default_prefetch: ClassVar[int] = 0

    @classmethod
    def compatible(cls, *, durable: bool, exclusive: bool, auto_delete: bool) -> bool:
        """May a vhost's default queue type make a queue with these flags of this type?"""
        return True

    @classmethod
    def check_properties(
        cls, *, durable: bool, exclusive: bool, auto_delete: bool, description: str
    ) -> None:
        """Refuse (PreconditionFailed) the declare flags the type cannot have."""

    @classmethod
    def check_declaration(cls, arguments: Mapping[str, Any], description: str) -> None:
        """Refuse what the type refuses after the arguments and flags passed (a stream's
        segment size over RabbitMQ's ceiling, say)."""

    @classmethod
    def resolve_settings(
        cls, arguments: Mapping[str, Any], policy: Mapping[str, Any] | None
    ) -> QueueSettings:
        """The settings its arguments and the policy that applies give it."""
        return resolve_queue_settings(arguments, policy)

    @classmethod
    def variant(cls, settings: QueueSettings) -> type[Queue]:
        """The class to make for these settings (a classic queue with priorities, say)."""
        return cls

    def __init__(
        self,
        vhost_name: str,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        store: Store | None = None,
        settings: QueueSettings = DEFAULT_SETTINGS,
        host: QueueHost | None = None,
    ) -> None:
        self.vhost_name = vhost_name
        # Only a durable queue has a store; the type decides which messages go into it.
        self.store = store
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        self.host: QueueHost = host or _Detached()
        self.settings = settings
        self.ready = self._new_ready()
        self.ready_bytes = 0  # body bytes of ready messages, for x-max-length-bytes
        self.unacked_count = 0  # delivered or got, and not yet acked, rejected or requeued
        self.unacked_bytes = 0
        self.counts = MessageCounts()  # what went in and out, for the management API's rates
        self.consumers: deque[Consumer] = deque()
        # Consumers by x-priority, highest first, once any consumer has a priority other than 0.
        self._consumer_groups: list[tuple[int, deque[Consumer]]] | None = None
        self.deleted = False
        self._next_seq = 0
        self._dispatching = False
        self._expiry_timer: Timer | None = None  # fires when the head's message expires
        self._last_used = self.host.clock.now()  # for x-expires
        self._idle_timer: Timer | None = None  # looks whether x-expires is up
        self._schedule_idle_check()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} ready={len(self.ready)} "
            f"consumers={len(self.consumers)}>"
        )

    def _new_ready(self) -> ReadyList:
        """The ready list: a deque, or anything that offers the same few operations."""
        return deque()

    @property
    def message_count(self) -> int:
        return len(self.ready)

    @property
    def paged_count(self) -> int:
        """Ready messages waiting on disk rather than in memory (a classic queue's paging)."""
        return 0

    @property
    def paged_bytes(self) -> int:
        """Their bodies' bytes."""
        return 0

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost_name}'"

    # -- access --------------------------------------------------------------------------------

    def check_exclusive_access(self, owner: object) -> None:
        if self.exclusive_owner is not None and self.exclusive_owner is not owner:
            raise self.locked_error()

    def locked_error(self) -> ResourceLocked:
        return ResourceLocked(
            f"cannot obtain exclusive access to locked {self.describe()}. It could be "
            "originally declared on another connection or the exclusive property value "
            "does not match that of the original declaration."
        )

    # -- settings --------------------------------------------------------------------------------

    def apply_settings(self, settings: QueueSettings) -> None:
        """A policy changed: new limits hold at once, new TTLs for messages from now on.

        The ready list keeps its shape: like RabbitMQ, priorities come from the declaration.
        RabbitMQ applies the new limits before the new overflow mode, so the queue trims itself
        to them only if it dropped heads until now, whatever mode the change brings.
        """
        overflow_until_now = self.settings.overflow
        self.settings = settings
        self._drop_head_over_limit(overflow_until_now)
        self._schedule_idle_check()

    # -- messages in -----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        """Add a published (or dead-lettered) message; None when the queue refuses it as full."""
        settings = self.settings
        if settings.limited and settings.overflow != "drop-head" and self._would_overflow(message):
            self._refuse(message)
            return None
        entry = self._new_entry(message)
        self.counts.publish += 1
        if self.store is not None and (self.keeps_every_message or message.persistent):
            self._persist(entry)
        self.ready.append(entry)
        self.ready_bytes += len(message.body)
        if self.consumers:
            self.dispatch(fresh=entry)
        if settings.limited:
            self._drop_head_over_limit()
        if entry.expires_at is not None:
            self._expire_head()  # TTL 0 and nobody took it: gone at once, as in RabbitMQ
        return entry

    def _new_entry(self, message: Message) -> QueueEntry:
        entry = QueueEntry(message, self, self._next_seq)
        self._next_seq += 1
        ttl = self.settings.message_ttl
        if message.ttl is not None and (ttl is None or message.ttl < ttl):
            ttl = message.ttl
        if ttl is not None:
            entry.expires_at = self.host.clock.now() + ttl / 1000
        return entry

    def _would_overflow(self, message: Message) -> bool:
        max_length, max_bytes = self.settings.max_length, self.settings.max_length_bytes
        return (max_length is not None and len(self.ready) + 1 > max_length) or (
            max_bytes is not None and self.ready_bytes + len(message.body) > max_bytes
        )

    def _refuse(self, message: Message) -> None:
        """reject-publish: the publisher gets a nack; with -dlx the message is dead-lettered."""
        if self.settings.overflow == "reject-publish-dlx":
            self.host.dead_letter(self, [QueueEntry(message, self, -1)], "maxlen")

    def _drop_head_over_limit(self, overflow: str | None = None) -> None:
        settings = self.settings
        max_length, max_bytes = settings.max_length, settings.max_length_bytes
        if (overflow or settings.overflow) != "drop-head" or (
            max_length is None and max_bytes is None
        ):
            return
        dropped = []
        ready = self.ready
        while ready and (
            (max_length is not None and len(ready) > max_length)
            or (max_bytes is not None and self.ready_bytes > max_bytes)
        ):
            entry = ready.popleft()
            self.ready_bytes -= len(entry.message.body)
            dropped.append(entry)
        if dropped:
            self._dead_letter(dropped, "maxlen")
            self._expire_head()  # a new head, perhaps already past its time

    def _persist(self, entry: QueueEntry) -> None:
        store = self.store
        assert store is not None
        message_id = entry.message.keep_in(store)
        entry.stored = True
        store.enqueue(self.vhost_name, self.name, entry.seq, message_id, entry.expires_at)

    def _unpersist(self, entry: QueueEntry) -> None:
        """The entry is settled for good: forget it, and its content once no queue holds it.

        A deleted queue's rows went with it, and its positions may be a new queue's now (a queue
        declared again under the same name numbers from 0): only the content is let go then.
        """
        store = self.store
        assert store is not None
        entry.stored = False
        if not self.deleted:
            store.dequeue(self.vhost_name, self.name, entry.seq)
        entry.message.let_go(store)

    def restore(self, stored: Iterable[StoredEntry]) -> None:
        """Put back what the store kept, in the store's order (start-up only)."""
        ready = self.ready
        for seq, message, delivered, expires_at in stored:
            entry = self._restored_entry(message, seq, delivered, expires_at)
            ready.append(entry)
            self.ready_bytes += len(message.body)
            self._next_seq = max(self._next_seq, seq + 1)
        self._schedule_expiry()

    def _restored_entry(
        self, message: Message, seq: int, delivered: int, expires_at: float | None
    ) -> QueueEntry:
        return QueueEntry(message, self, seq, bool(delivered), True, expires_at)

    def requeue(self, entries: Iterable[QueueEntry], *, channel_closed: bool = False) -> None:
        """Delivered entries come back: a nack or reject with requeue, basic.recover, or (with
        `channel_closed`) the channel that held them went away."""
        raise NotImplementedError

    # -- messages out ----------------------------------------------------------------------------

    def dispatch(self, fresh: QueueEntry | None = None) -> None:
        """Hand ready messages to consumers with credit until one side runs out.

        Round-robin among consumers of the highest priority that have credit; with a single
        active consumer, only the first one registered. `fresh` is a message being published:
        like RabbitMQ, one that goes straight to a waiting consumer is never too old (TTL 0).
        """
        if self._dispatching:
            return  # a delivery that triggers another dispatch is served by the outer loop
        self._dispatching = True
        expired: list[QueueEntry] = []
        now = None
        taken = False
        # Deliveries to be acked, counted here and added to the queue's counts once at the end.
        acked = acked_bytes = 0
        try:
            ready = self.ready
            while ready:
                consumer = self._consumer_with_credit()
                if consumer is None:
                    break
                entry = ready.popleft()
                taken = True
                size = len(entry.message.body)
                self.ready_bytes -= size
                if entry.expires_at is not None and entry is not fresh:
                    if now is None:
                        now = self.host.clock.now()
                    if entry.expires_at <= now:
                        expired.append(entry)
                        continue
                if consumer.no_ack:
                    self.counts.deliver_no_ack += 1
                else:
                    acked += 1
                    acked_bytes += size
                if entry.redelivered:
                    self.counts.redeliver += 1
                if entry.stored:
                    self._taken(entry, consumer.no_ack)
                consumer.deliver(entry)
        finally:
            self._dispatching = False
            if acked:
                self.counts.deliver += acked
                self.unacked_count += acked
                self.unacked_bytes += acked_bytes
        if expired:
            self._dead_letter(expired, "expired")
        if taken:
            self._expire_head()

    def _consumer_with_credit(self) -> Consumer | None:
        consumers = self.consumers
        if not consumers:
            return None
        if self.settings.single_active_consumer:
            active = consumers[0]  # the others wait their turn, in the order they came
            return active if active.has_credit() else None
        groups = self._consumer_groups
        for group in (consumers,) if groups is None else (g for _, g in groups):
            for _ in range(len(group)):
                consumer = group[0]
                group.rotate(-1)
                if consumer.has_credit():
                    return consumer
        return None

    def get(self, *, no_ack: bool) -> QueueEntry | None:
        self._used()
        ready = self.ready
        if ready and ready[0].expires_at is not None:
            self.expire_due(self.host.clock.now())
        if not ready:
            self.counts.get_empty += 1
            return None
        entry = ready.popleft()
        self.ready_bytes -= len(entry.message.body)
        counts = self.counts
        if no_ack:
            counts.get_no_ack += 1
        else:
            counts.get += 1
            self.unacked_count += 1
            self.unacked_bytes += len(entry.message.body)
        if entry.redelivered:
            counts.redeliver += 1
        if entry.stored:
            self._taken(entry, no_ack)
        self._expire_head()
        return entry

    def outgoing(self, entry: QueueEntry, *, got: bool = False) -> Message:
        """The message a delivery of `entry` carries (`got`: by basic.get). The channel asks
        only for redeliveries and gets; a first delivery carries `entry.message` as it is."""
        return entry.message

    def _taken(self, entry: QueueEntry, no_ack: bool) -> None:
        """A stored entry left the ready list: settled already (no-ack), or now delivered."""
        if no_ack:
            self._unpersist(entry)
        elif not entry.redelivered:
            # So that after a restart it comes back with redelivered set, as RabbitMQ does.
            store = self.store
            assert store is not None
            store.mark_delivered(self.vhost_name, self.name, entry.seq)

    def ack(self, entry: QueueEntry) -> None:
        self.unacked_count -= 1
        self.unacked_bytes -= len(entry.message.body)
        self.counts.ack += 1
        if entry.stored:
            self._unpersist(entry)

    def ack_all(self, entries: list[QueueEntry]) -> None:
        """`ack` of each entry (a multiple ack), with the counts added once. A type whose
        `ack` does more gets its own `ack` called for each."""
        if type(self).ack is not Queue.ack:
            for entry in entries:
                self.ack(entry)
            return
        size = 0
        for entry in entries:
            size += len(entry.message.body)
            if entry.stored:
                self._unpersist(entry)
        count = len(entries)
        self.unacked_count -= count
        self.unacked_bytes -= size
        self.counts.ack += count

    def discard(self, entry: QueueEntry) -> None:
        """Rejected without requeue: dead-lettered when the queue has a dead-letter exchange.

        Not once the queue is deleted: as in RabbitMQ, its dead-lettering went with it.
        """
        self.unacked_count -= 1
        self.unacked_bytes -= len(entry.message.body)
        if self.deleted:
            self._forget([entry])
        else:
            self._dead_letter([entry], "rejected")

    def _forget(self, entries: Iterable[QueueEntry]) -> None:
        for entry in entries:
            if entry.stored:
                self._unpersist(entry)

    def _dead_letter(self, entries: list[QueueEntry], reason: str) -> None:
        # Republished first, forgotten after: a crash in between keeps a copy, never none.
        if self.settings.dead_letter_exchange is not None:
            self.host.dead_letter(self, entries, reason)
        for entry in entries:
            if entry.stored:
                self._unpersist(entry)

    def purge(self) -> int:
        count = len(self.ready)
        if self.store is not None:  # delivered entries stay stored: their acks are still to come
            for entry in self.ready:
                if entry.stored:
                    self._unpersist(entry)
        self.ready.clear()
        self.ready_bytes = 0
        return count

    def delete(self) -> int:
        """The vhost removed the queue: its ready messages and its stored rows go, and what it
        delivered is settled as nothing from now on. Returns how many ready messages went."""
        self.deleted = True
        count = self.purge()
        if self.store is not None:
            self.store.delete_queue(self.vhost_name, self.name)
        # Its timers hold the queue (a long TTL or x-expires would keep it for hours): let go.
        for timer in (self._expiry_timer, self._idle_timer):
            if timer is not None:
                self.host.timers.cancel(timer)
        self._expiry_timer = self._idle_timer = None
        return count

    # -- time ------------------------------------------------------------------------------------

    def expire_due(self, now: float) -> None:
        """Drop (and dead-letter) expired messages at the head: RabbitMQ expires only there."""
        expired = self._pop_expired(now)
        if expired:
            self.ready_bytes -= sum(len(entry.message.body) for entry in expired)
            self._dead_letter(expired, "expired")

    def _pop_expired(self, now: float) -> list[QueueEntry]:
        return pop_expired(self.ready, now)

    def _head_deadlines(self) -> list[float]:
        """When the message(s) at the head expire, where messages expire (a priority queue has
        a head per priority)."""
        ready = self.ready
        if ready and (expires_at := ready[0].expires_at) is not None:
            return [expires_at]
        return []

    def _expire_head(self) -> None:
        """The head changed (a fetch, a requeue, a publish): RabbitMQ drops what is past its time
        there at once, and waits for the new head's time."""
        if self._head_deadlines():
            self.expire_due(self.host.clock.now())
            self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        """Make sure a timer fires when the earliest head message expires."""
        deadlines = self._head_deadlines()
        if not deadlines:
            return
        when = min(deadlines)
        timer = self._expiry_timer
        if timer is not None:
            if timer.when <= when:
                return  # it fires first, and looks again then
            self.host.timers.cancel(timer)
        self._expiry_timer = self.host.timers.schedule(when, self._on_expiry_timer)

    def _on_expiry_timer(self, now: float) -> None:
        self._expiry_timer = None
        self.expire_due(now)
        self._schedule_expiry()

    def touch(self, *, passive: bool = False) -> None:
        """The queue was declared again (`passive`: only looked up): x-expires starts over."""
        self._used()

    def _used(self) -> None:
        """The queue was used (a basic.get, its last consumer went): x-expires starts over."""
        if self.settings.expires is not None:
            self._last_used = self.host.clock.now()
            self._schedule_idle_check()

    def _schedule_idle_check(self) -> None:
        expires = self.settings.expires
        if expires is None or self.consumers or self._idle_timer is not None:
            return
        self._idle_timer = self.host.timers.schedule(
            self._last_used + expires / 1000, self._idle_check
        )

    def _idle_check(self, now: float) -> None:
        self._idle_timer = None
        expires = self.settings.expires
        if self.deleted or expires is None or self.consumers:
            return
        if now >= self._last_used + expires / 1000:
            self.host.queue_expired(self)
        else:
            self._schedule_idle_check()  # used meanwhile: look again when its new time comes

    # -- consumers -------------------------------------------------------------------------------

    def validate_consume_arguments(self, arguments: Mapping[str, Any]) -> int:
        """Check a basic.consume's arguments as RabbitMQ does for this type; returns the
        consumer's priority (x-priority, 0 when not given)."""
        check_consume_arguments(
            arguments,
            accepted=self.consume_arguments,
            queue_description=self.describe(),
            type_module=self.rabbit_module,
        )
        priority = arguments.get("x-priority", 0)
        return priority if _is_int(priority) else 0

    def check_consumable(
        self, *, exclusive: bool, no_ack: bool, prefetch: int, global_prefetch: int
    ) -> None:
        """May a consumer with these terms start (after its arguments passed)? `prefetch` and
        `global_prefetch` are its channel's basic.qos limits, 0 for none."""
        if self.consumers and (exclusive or self.consumers[0].exclusive):
            raise AccessRefused(f"{self.describe()} in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        """Call `check_consumable` first; this one only adds and starts delivering."""
        self.consumers.append(consumer)
        if self._consumer_groups is not None or consumer.priority:
            self._regroup()
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> bool:
        """Returns True when the queue should now be auto-deleted: its last consumer went."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return False
        if self._consumer_groups is not None:
            self._regroup()
        if not self.consumers:
            self._used()
        # With a single active consumer the next in line is active now, but like RabbitMQ 3.10
        # the queue does not run for it here: what waits goes once something stirs the queue (a
        # publish, a requeue, a new consumer, a channel going). A client that closes its channel
        # cancels first, and this keeps its requeued messages ahead of the rest.
        return self.auto_delete and not self.consumers

    def _regroup(self) -> None:
        groups: dict[int, deque[Consumer]] = {}
        for consumer in self.consumers:
            groups.setdefault(consumer.priority, deque()).append(consumer)
        if set(groups) <= {0}:
            self._consumer_groups = None
        else:
            self._consumer_groups = sorted(groups.items(), key=lambda item: -item[0])

    def check_deletable(self, *, if_unused: bool, if_empty: bool) -> None:
        if if_unused and self.consumers:
            raise PreconditionFailed(f"{self.describe()} in use")
        if if_empty and self.ready:
            raise PreconditionFailed(f"{self.describe()} not empty")


def refuse_unless_durable(
    *, durable: bool, exclusive: bool, auto_delete: bool, description: str
) -> None:
    """The flags RabbitMQ refuses a quorum queue or a stream, in its order of checks."""
    for refused, name in ((auto_delete, "auto-delete"), (exclusive, "exclusive-owner")):
        if refused:
            raise PreconditionFailed(f"invalid property '{name}' for {description}")
    if not durable:
        raise PreconditionFailed(f"invalid property 'non-durable' for {description}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pop_expired(fifo: ReadyList | deque[QueueEntry], now: float) -> list[QueueEntry]:
    """Expired entries at the head of a FIFO (anything with [0] and popleft)."""
    expired = []
    while fifo and fifo[0].expires_at is not None and fifo[0].expires_at <= now:
        expired.append(fifo.popleft())
    return expired
