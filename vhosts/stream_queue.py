"""Stream queues: an append-only log on disk that any number of consumers read independently.

A stream keeps every message it is given in its segment log (`vhosts.segment_log`), numbered
by offset; an ack removes nothing, and retention (x-max-length-bytes, x-max-age,
x-stream-max-segment-size-bytes, or the policy keys of the same names) removes whole segments
from the head. Each consumer reads from the offset its x-stream-offset names (first, last,
next, a number, a timestamp or an interval like "1h") through a cursor of its own, with
basic.qos credit, and each delivery carries its x-stream-offset header, which is written into
the message's properties as it is appended. Nothing of the log is held in memory: a consumer
reads a bounded buffer at a time, and one dispatch reads at most DISPATCH_BUDGET bytes before it
lets the event loop run (the server's stream task carries it on).

Beyond RabbitMQ 3.10, as RabbitMQ 3.13 and LavinMQ offer them over AMQP 0-9-1:
  * filtering: a message published with the header x-stream-filter-value reaches a consumer
    whose x-stream-filter (a string or a list of strings) names that value; messages without
    one reach it only with x-stream-match-unfiltered true. Matching is exact.
  * offset tracking: a consumer with x-stream-automatic-offset-tracking true and a consumer tag
    of its own choosing resumes where it left off (after its last acked message) when it comes
    back with the same tag, after a reconnect or a restart.
"""

from __future__ import annotations

import datetime
import struct
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from exchanges.erlang_text import term, type_name
from exchanges.values import epoch_seconds, octets
from vhosts.dead_letter import Long
from vhosts.errors import InternalError, NotImplementedFeature, PreconditionFailed
from vhosts.message import Message, evolve
from vhosts.queue import (
    Consumer,
    Queue,
    QueueEntry,
    QueueHost,
    StoredEntry,
    refuse_unless_durable,
)
from vhosts.queue_settings import MAX_SEGMENT_SIZE, QueueSettings, invalid_argument, max_age_ms
from vhosts.segment_log import DEFAULT_SEGMENT_SIZE, Cursor, Record
from vhosts.stream_storage import StreamStorage

DISPATCH_BUDGET = 1 << 20  # log bytes one dispatch reads before it yields to the event loop
READ_AHEAD = 64 * 1024  # log bytes a consumer reads at a time into its buffer
OFFSET_HEADER = "x-stream-offset"
FILTER_HEADER = "x-stream-filter-value"
TRACKING_ARGUMENT = "x-stream-automatic-offset-tracking"
SERVER_TAG_PREFIX = "amq.ctag-"
MAX_TRACKED = 10_000  # consumer names a stream keeps offsets for: clients choose them

# A message in the log: exchange, routing key, filter value and properties with their lengths,
# then the body.
_RECORD = struct.Struct("<BBHI")


class StreamHost(QueueHost, Protocol):
    """What a stream needs of its vhost beyond what any queue does: where logs are kept."""

    streams: StreamStorage


class StreamEntry(QueueEntry):
    """A delivery from a stream: its offset is its `seq`; the reader it was read by settles."""

    __slots__ = ("reader",)

    def __init__(self, message: Message, queue: StreamQueue, offset: int, reader: Reader) -> None:
        # QueueEntry's fields set here, not through its __init__: one of these per delivery.
        self.message = message
        self.queue = queue
        self.seq = offset
        self.redelivered = self.stored = False
        self.expires_at = None
        self.priority = 0
        self.reader = reader


class StreamQueue(Queue):
    type_name = "stream"
    rabbit_module = "rabbit_stream_queue"
    declare_arguments = (
        "x-max-length-bytes",
        "x-queue-type",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-initial-cluster-size",
        "x-queue-leader-locator",
    )
    consume_arguments = ("x-stream-offset",)
    # A policy with any other queue key does not apply to a stream at all, as in RabbitMQ.
    unsupported_policies = frozenset(
        {
            "message-ttl",
            "expires",
            "max-length",
            "overflow",
            "dead-letter-exchange",
            "dead-letter-routing-key",
            "queue-mode",
            "queue-version",
            "queue-master-locator",
            "ha-mode",
            "ha-params",
            "ha-sync-mode",
            "ha-sync-batch-size",
            "ha-promote-on-shutdown",
            "ha-promote-on-failure",
            "max-in-memory-length",
            "max-in-memory-bytes",
            "delivery-limit",
            "dead-letter-strategy",
        }
    )
    server_named = False
    host: StreamHost

    # -- declaring -----------------------------------------------------------------------------

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
    def check_declaration(cls, arguments: Mapping[str, Any], description: str) -> None:
        size = arguments.get("x-stream-max-segment-size-bytes")
        if isinstance(size, int) and size > MAX_SEGMENT_SIZE:
            raise PreconditionFailed("Exceeded max value for x-stream-max-segment-size-bytes")

    @classmethod
    def resolve_settings(
        cls, arguments: Mapping[str, Any], policy: Mapping[str, Any] | None
    ) -> QueueSettings:
        """As RabbitMQ: the smaller of argument and policy, for each of the three limits."""
        policy = policy or {}

        def smallest(*values: Any) -> int | None:
            given = [v for v in values if v is not None]
            return min(given) if given else None

        def age(value: Any) -> int | None:
            return max_age_ms(value) if isinstance(value, str) else None

        return QueueSettings(
            max_length_bytes=smallest(
                arguments.get("x-max-length-bytes"), policy.get("max-length-bytes")
            ),
            max_age=smallest(age(arguments.get("x-max-age")), age(policy.get("max-age"))),
            max_segment_size=smallest(
                arguments.get("x-stream-max-segment-size-bytes"),
                policy.get("stream-max-segment-size-bytes"),
            ),
        )

    def __init__(self, vhost_name: str, name: str, **options: Any) -> None:
        super().__init__(vhost_name, name, **options)
        streams = getattr(self.host, "streams", None)
        if not isinstance(streams, StreamStorage):
            raise InternalError("a stream queue needs its vhost's stream storage")
        self._streams = streams
        if Message.decode_properties is None and streams.codec is not None:
            Message.decode_properties = streams.codec.decode_properties  # deliveries' lazily
        settings = self.settings
        self.log = streams.open(
            vhost_name,
            name,
            max_segment_size=_segment_size(settings),
            max_bytes=settings.max_length_bytes,
            max_age_ms=settings.max_age,
        )
        self.log.on_committed = self._committed
        self._tracked = streams.tracked_offsets(self.log)  # consumer name -> where to resume
        self._readers: dict[Consumer, Reader] = {}
        self._retention_timer_at: int | None = None
        self._schedule_retention()

    # -- counts --------------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Messages in the stream, those still being written included (a confirmed publish
        counts at once, even where confirms do not wait for the disk). Delivered ones are
        still there, so a stream counts none as unacknowledged."""
        return len(self.log)

    # -- settings ------------------------------------------------------------------------------

    def apply_settings(self, settings: QueueSettings) -> None:
        self.settings = settings
        self.log.set_retention(
            max_bytes=settings.max_length_bytes,
            max_age_ms=settings.max_age,
            max_segment_size=_segment_size(settings),
        )
        self.log.enforce_retention(self._now_ms())
        self._schedule_retention()

    def _now_ms(self) -> int:
        return int(self.host.clock.now() * 1000)

    def _schedule_retention(self) -> None:
        """Age retention happens when segments roll; a stream nobody writes to any more has
        its old segments removed by a timer when they pass their age."""
        due = self.log.oldest_expiry()
        if due is None or (
            self._retention_timer_at is not None and self._retention_timer_at <= due
        ):
            return
        self._retention_timer_at = due
        self.host.timers.schedule(due / 1000, self._retention_timer)

    def _retention_timer(self, now: float) -> None:
        self._retention_timer_at = None
        if self.deleted:
            return
        self.log.enforce_retention(int(now * 1000))
        self._schedule_retention()

    # -- messages in ---------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        log = self.log
        offset = log.next_offset
        record = self._record(message, offset)
        log.append(record, self._now_ms())
        self._streams.count_unwritten(len(record))
        message.logged = True
        self.counts.publish += 1
        if self.settings.max_age is not None:
            self._schedule_retention()
        return QueueEntry(message, self, offset)

    def _record(self, message: Message, offset: int) -> bytes:
        """The message as the log keeps it, its x-stream-offset header written in (last, as
        RabbitMQ adds it, and a long: signed 64-bit)."""
        codec = self._streams.codec
        if codec is None:
            raise InternalError("stream queues need a codec for message properties")
        headers = message.properties.headers or {}
        raw, encoded = message.encoded_properties, None
        if raw is not None and codec.with_long_header is not None:
            encoded = codec.with_long_header(raw, OFFSET_HEADER, offset)
        if encoded is None:  # no wire form to splice into, or the publisher set the header
            stamped = {k: v for k, v in headers.items() if k != OFFSET_HEADER}
            stamped[OFFSET_HEADER] = Long(offset)
            encoded = codec.encode_properties(evolve(message.properties, headers=stamped))
        filter_value = headers.get(FILTER_HEADER)
        value = octets(filter_value) if isinstance(filter_value, str) else b""
        if isinstance(filter_value, bytes):
            value = filter_value
        exchange, routing_key = octets(message.exchange), octets(message.routing_key)
        head = _RECORD.pack(len(exchange), len(routing_key), len(value), len(encoded))
        return b"".join((head, exchange, routing_key, value, encoded, message.body))

    def restore(self, stored: Iterable[StoredEntry]) -> None:
        """Nothing of a stream is in the store: its log recovered itself when it was opened."""

    # -- messages out --------------------------------------------------------------------------

    def _committed(self) -> None:
        """The log wrote a batch: readers waiting at the end have more to read."""
        if self._readers:
            self.dispatch()

    def dispatch(self, fresh: QueueEntry | None = None) -> None:
        """Deliver to each consumer with credit from its own place in the log, reading at most
        DISPATCH_BUDGET bytes; the rest is delivered once the event loop has run (see
        `StreamStorage.resume_soon`)."""
        if self._dispatching or self.deleted:
            return
        self._dispatching = True
        budget = DISPATCH_BUDGET
        try:
            consumers = self.consumers
            for _ in range(len(consumers)):
                consumer = consumers[0]
                consumers.rotate(-1)  # whoever the budget stops at goes first next time
                budget = self._readers[consumer].deliver(consumer, budget)
                if budget <= 0:
                    self._resume_soon()
                    break
        finally:
            self._dispatching = False

    def _resume_soon(self) -> None:
        self._streams.resume_soon(self.dispatch)

    def get(self, *, no_ack: bool) -> QueueEntry | None:
        raise NotImplementedFeature(f"basic.get not supported by stream queues {self.describe()}")

    # -- settling ------------------------------------------------------------------------------

    def ack(self, entry: QueueEntry) -> None:
        """Nothing leaves the log; the consumer's credit comes back and a tracked consumer's
        place moves on."""
        self.counts.ack += 1
        if isinstance(entry, StreamEntry):
            entry.reader.settled(entry.seq)

    def discard(self, entry: QueueEntry) -> None:
        raise NotImplementedFeature(
            f"basic.nack and basic.reject not supported by stream queues {self.describe()}"
        )

    def requeue(self, entries: Iterable[QueueEntry], *, channel_closed: bool = False) -> None:
        """A channel that goes leaves its deliveries unsettled: nothing to put back. A nack or
        reject with requeue, or basic.recover, is refused as RabbitMQ refuses them."""
        if not channel_closed:
            raise NotImplementedFeature(
                f"basic.nack and basic.reject not supported by stream queues {self.describe()}"
            )

    def purge(self) -> int:
        raise NotImplementedFeature(f"queue.purge not supported by stream queues {self.describe()}")

    def delete(self) -> int:
        """The stream's log goes with it. RabbitMQ answers with a count of 0."""
        self.deleted = True
        self._readers.clear()
        self._streams.remove(self.log)
        if self.store is not None:
            self.store.delete_queue(self.vhost_name, self.name)
        return 0

    def check_deletable(self, *, if_unused: bool, if_empty: bool) -> None:
        """RabbitMQ 3.10 deletes a stream whatever if-unused and if-empty say."""

    # -- consumers -----------------------------------------------------------------------------

    def validate_consume_arguments(self, arguments: Mapping[str, Any]) -> int:
        """x-stream-offset first, with RabbitMQ's text; then what other types take is refused
        (x-priority among them). A stream's consumers have no priority."""
        self._start_offset(arguments)
        super().validate_consume_arguments(arguments)
        return 0

    def _start_offset(self, arguments: Mapping[str, Any]) -> OffsetSpec:
        if OFFSET_HEADER not in arguments:
            return ("next", 0)
        value = arguments[OFFSET_HEADER]
        spec = parse_offset(value, self._now_ms())
        if spec is None:
            raise invalid_argument(
                OFFSET_HEADER,
                self.describe(),
                f"{{invalid_stream_offset_arg,{{{type_name(value)},{term(value)}}}}}",
            )
        return spec

    def check_consumable(
        self, *, exclusive: bool, no_ack: bool, prefetch: int, global_prefetch: int
    ) -> None:
        if not prefetch:
            raise PreconditionFailed(f"consumer prefetch count is not set for '{self.describe()}'")
        if no_ack:
            raise NotImplementedFeature(
                f"automatic acknowledgement not supported by stream queues {self.describe()}"
            )
        if global_prefetch:
            raise NotImplementedFeature(f"{self.describe()} does not support global qos")
        super().check_consumable(
            exclusive=exclusive, no_ack=no_ack, prefetch=prefetch, global_prefetch=global_prefetch
        )

    def add_consumer(self, consumer: Consumer) -> None:
        arguments = consumer.arguments
        name = _tracking_name(consumer)
        kind, value = self._start_offset(arguments)
        if name is not None and name in self._tracked:
            kind, value = "offset", self._tracked[name]
        log = self.log
        if kind == "first":
            cursor = log.cursor_first()
        elif kind == "last":
            cursor = log.cursor_last()
        elif kind == "offset":
            cursor = log.cursor_at(value)
        elif kind == "timestamp":
            cursor = log.cursor_at_time(value)
        else:
            cursor = log.cursor_next()
        self._readers[consumer] = Reader(self, cursor, _filter_of(arguments), name)
        super().add_consumer(consumer)

    def remove_consumer(self, consumer: Consumer) -> bool:
        reader = self._readers.pop(consumer, None)
        if reader is not None:
            reader.track()
        return super().remove_consumer(consumer)

    def track(self, name: str, offset: int) -> None:
        """Where the consumer called `name` resumes; kept with the log's next write. A stream
        remembers MAX_TRACKED names at most, forgetting the one updated longest ago."""
        tracked = self._tracked
        if tracked.get(name) == offset:
            return
        tracked.pop(name, None)  # the most recently updated last
        tracked[name] = offset
        while len(tracked) > MAX_TRACKED:
            del tracked[next(iter(tracked))]
        self._streams.save_offsets(self.log, tracked)


OffsetSpec = tuple[str, int]  # ("first" | "last" | "next" | "offset" | "timestamp", value)


def parse_offset(value: Any, now_ms: int) -> OffsetSpec | None:
    """What x-stream-offset asks for, or None when RabbitMQ refuses (or crashes on) it.

    A name, an offset (any integer: below the first is the first), an AMQP timestamp (seconds),
    or an interval as x-max-age has it, counted back from now.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape") if value in _NAMES else value
    if isinstance(value, str):
        if value in ("first", "last", "next"):
            return (value, 0)
        age = max_age_ms(value)
        return None if age is None else ("timestamp", now_ms - age)
    if isinstance(value, datetime.datetime):
        return ("timestamp", epoch_seconds(value) * 1000)
    if getattr(value, "amqp_type", "") == "T":  # a timestamp past what datetime holds
        return ("timestamp", int(value) * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return ("offset", value)
    return None


_NAMES = (b"first", b"last", b"next")


class Reader:
    """One consumer's place in a stream: a cursor in the log, records read ahead of delivery,
    its filter, and (when tracked) what it delivered and has not had acked yet."""

    __slots__ = ("buffer", "cursor", "filter", "name", "queue", "unacked")

    def __init__(
        self,
        queue: StreamQueue,
        cursor: Cursor,
        filter: tuple[frozenset[bytes], bool] | None,
        name: str | None,
    ) -> None:
        self.queue = queue
        self.cursor = cursor
        self.buffer: deque[Record] = deque()
        self.filter = filter  # (values, match unfiltered), or None: every message
        self.name = name  # tracked under this name, or None
        self.unacked: deque[int] | None = deque() if name is not None else None

    def deliver(self, consumer: Consumer, budget: int) -> int:
        """Deliver while the consumer has credit; returns what is left of the read budget."""
        queue = self.queue
        log = queue.log
        buffer = self.buffer
        counts = queue.counts
        filter = self.filter
        unacked = self.unacked
        while consumer.has_credit():
            if not buffer:
                if budget <= 0:
                    return budget
                records = log.read(self.cursor, READ_AHEAD)
                if not records:
                    return budget
                budget -= sum(len(record[2]) for record in records) + 24 * len(records)
                buffer.extend(records)
            offset, _timestamp, payload = buffer.popleft()
            message, value = decode_record(payload)
            if filter is not None and not _matches(filter, value):
                continue
            counts.deliver += 1
            if unacked is not None:
                unacked.append(offset)
            consumer.deliver(StreamEntry(message, queue, offset, self))
        return budget

    def next_offset(self) -> int:
        """The first offset not yet delivered."""
        return self.buffer[0][0] if self.buffer else self.cursor.offset

    def settled(self, offset: int) -> None:
        """An ack: a tracked consumer resumes after the oldest delivery still unacked."""
        unacked = self.unacked
        if unacked is None:
            return
        if unacked and unacked[0] == offset:
            unacked.popleft()
        else:
            try:
                unacked.remove(offset)
            except ValueError:
                return
        self.track()

    def track(self) -> None:
        if self.name is not None and self.unacked is not None:
            resume = self.unacked[0] if self.unacked else self.next_offset()
            self.queue.track(self.name, resume)


def decode_record(payload: bytes | memoryview) -> tuple[Message, bytes]:
    """The message a log record holds, and its filter value (b"" for none)."""
    exchange_size, key_size, value_size, properties_size = _RECORD.unpack_from(payload)
    at = _RECORD.size
    exchange = str(payload[at : at + exchange_size], "utf-8", "surrogateescape")
    at += exchange_size
    routing_key = str(payload[at : at + key_size], "utf-8", "surrogateescape")
    at += key_size
    value = bytes(payload[at : at + value_size])
    at += value_size
    properties = bytes(payload[at : at + properties_size])
    body = bytes(payload[at + properties_size :])
    return Message(exchange, routing_key, None, body, properties), value


def _matches(filter: tuple[frozenset[bytes], bool], value: bytes) -> bool:
    values, match_unfiltered = filter
    return value in values if value else match_unfiltered


def _filter_of(arguments: Mapping[str, Any]) -> tuple[frozenset[bytes], bool] | None:
    """x-stream-filter and x-stream-match-unfiltered, as RabbitMQ 3.13 reads them: a string or
    a list of them (other elements are ignored); without a filter, every message goes."""
    given = arguments.get("x-stream-filter")
    if isinstance(given, str | bytes):
        given = [given]
    if not isinstance(given, list | tuple):
        return None
    values = frozenset(
        octets(v) if isinstance(v, str) else bytes(v) for v in given if isinstance(v, str | bytes)
    )
    return values, arguments.get("x-stream-match-unfiltered") is True


def _tracking_name(consumer: Consumer) -> str | None:
    """The name a consumer's offset is tracked under: its tag, if it asked to be tracked and
    chose the tag itself (one the server made up is never seen again)."""
    wanted = consumer.arguments.get(TRACKING_ARGUMENT)
    if not (wanted is True or wanted == "true") or consumer.tag.startswith(SERVER_TAG_PREFIX):
        return None
    return consumer.tag


def _segment_size(settings: QueueSettings) -> int:
    size = settings.max_segment_size
    return DEFAULT_SEGMENT_SIZE if size is None else max(size, 1)
