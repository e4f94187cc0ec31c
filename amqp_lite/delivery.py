"""What a channel sends with content, and what it is owed for it.

`Deliveries` numbers deliveries, keeps the ones still waiting for a settlement (the unacked
ledger), decides whether the channel may deliver more (prefetch, channel.flow, a client that is
slow to read) and writes basic.deliver, basic.get-ok and basic.return with their content.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol, cast

from amqp_lite.tracing import ChannelTracer
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_deliver, encode_delivery
from amqp_lite.wire.methods import Method
from amqp_lite.wire.properties import encode_properties
from vhosts import Message, QueueEntry
from vhosts.counters import MessageCounts
from vhosts.errors import PreconditionFailed


class Output(Protocol):
    """Where the channel's frames go (a `ChannelOutput`)."""

    frame_max: int

    def send(self, data: bytes) -> None: ...

    def has_room(self) -> bool:
        """False while the client is slow to read, or a reply waits for the store."""
        ...


class Credited(Protocol):
    """A consumer as its deliveries see it; `unacked` counts against its own prefetch."""

    tag: str
    no_ack: bool
    unacked: int


class Delivery:
    """A message delivered on a channel and not yet settled (acked, rejected or requeued)."""

    __slots__ = ("consumer", "entry", "tag")

    def __init__(self, tag: int, entry: QueueEntry, consumer: Credited | None) -> None:
        self.tag = tag
        self.entry = entry
        self.consumer = consumer  # None for basic.get


class Deliveries:
    def __init__(self, output: Output, channel: int, tracer: ChannelTracer) -> None:
        self._output = output
        self._channel = channel
        self._tracer = tracer  # the firehose, used while the vhost's tracing is on
        self._vhost = tracer.vhost
        self.unacked: OrderedDict[int, Delivery] = OrderedDict()
        self.next_tag = 1
        self.consumer_prefetch = 0  # basic.qos global=false: applies to consumers made after it
        self.channel_prefetch = 0  # basic.qos global=true: one limit over the whole channel
        # What that limit counts: consumer deliveries still unsettled. As in RabbitMQ, messages
        # taken with basic.get do not count.
        self.consumed_unacked = 0
        self.flow_active = True  # channel.flow from the client
        self.closing = False  # the channel is going: deliver nothing more
        # The channel's message_stats for the management API, as counted on the way; all but
        # `deliver`, which the delivery tags tell (see `counted`).
        self.counts = MessageCounts()
        # (next tag, clock time) noted at consumer-timeout checks: see amqp_lite.consumer_timeout.
        self.timeout_marks: list[tuple[int, float]] = []

    # -- credit ----------------------------------------------------------------------------------

    def can_deliver(self) -> bool:
        if self.channel_prefetch and self.consumed_unacked >= self.channel_prefetch:
            return False
        return (
            self.flow_active and not self.closing and self._output.has_room()
        )  # can_deliver_unlimited, inlined

    def can_deliver_unlimited(self) -> bool:
        return self.flow_active and not self.closing and self._output.has_room()

    def counted(self) -> MessageCounts:
        """`counts`, with `deliver`: each delivery tag given out is one delivery to a consumer
        that acks, unless it was counted as something else (no-ack, basic.get)."""
        counts = self.counts.copy()
        counts.deliver = self.next_tag - 1 - counts.deliver_no_ack - counts.get - counts.get_no_ack
        return counts

    # -- sending ---------------------------------------------------------------------------------

    def deliver(self, consumer: Credited, entry: QueueEntry) -> None:
        redelivered = entry.redelivered
        # A queue type may say more on redelivery (a quorum queue's x-delivery-count).
        message = entry.queue.outgoing(entry) if redelivered else entry.message
        if self._vhost.tracing:
            # Before the tag is taken: the trace may be delivered on this channel too.
            self._tracer.delivered(entry, message)
        tag = self.next_tag
        self.next_tag = tag + 1
        if consumer.no_ack:
            self.counts.deliver_no_ack += 1
        else:  # counted by its tag
            self.unacked[tag] = Delivery(tag, entry, consumer)
            consumer.unacked += 1
            self.consumed_unacked += 1
        if redelivered:
            self.counts.redeliver += 1
        self._send_deliver(consumer.tag, tag, redelivered, message)

    def deliver_reply(self, consumer_tag: str, message: Message) -> None:
        """A direct reply-to reply: RabbitMQ 3.10 gives it the next delivery tag without using
        it up (nothing is acked for a reply)."""
        self._send_deliver(consumer_tag, self.next_tag, False, message)

    def get_ok(self, entry: QueueEntry, *, no_ack: bool, message_count: int) -> None:
        """basic.get-ok of `entry`, unacked unless `no_ack`."""
        message = entry.queue.outgoing(entry, got=True)
        if self._vhost.tracing:
            self._tracer.delivered(entry, message)
        tag = self.next_tag
        self.next_tag = tag + 1
        counts = self.counts
        if no_ack:
            counts.get_no_ack += 1
        else:
            counts.get += 1
            self.unacked[tag] = Delivery(tag, entry, None)
        if entry.redelivered:
            counts.redeliver += 1
        reply = methods.BasicGetOk(
            delivery_tag=tag,
            redelivered=entry.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
            message_count=message_count,
        )
        self._send_with_content(reply, message)

    def send_return(self, code: int, text: str, message: Message) -> None:
        method = methods.BasicReturn(
            reply_code=code,
            reply_text=text,
            exchange=message.exchange,
            routing_key=message.routing_key,
        )
        self._send_with_content(method, message)

    def _send_deliver(
        self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message
    ) -> None:
        raw = message.encoded_properties
        if raw is None:
            raw = _encoded_properties(message)
        output = self._output
        output.send(
            encode_deliver(
                self._channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                message.exchange,
                message.routing_key,
                raw,
                message.body,
                output.frame_max,
            )
        )

    def _send_with_content(self, method: Method, message: Message) -> None:
        """The method, then the message's header and body."""
        output = self._output
        output.send(
            encode_delivery(
                self._channel, method, _encoded_properties(message), message.body, output.frame_max
            )
        )

    # -- the unacked ledger ----------------------------------------------------------------------

    def take(self, delivery_tag: int, multiple: bool) -> list[Delivery]:
        """Remove what a basic.ack, nack or reject names from the ledger."""
        unacked = self.unacked
        if multiple:
            if delivery_tag == 0:  # "everything so far"
                return self.take_all()
            if delivery_tag not in unacked:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
            # The ledger is in tag order: what is named is the head, up to and with that tag.
            taken = []
            popitem = unacked.popitem
            while True:
                tag, delivery = popitem(last=False)
                taken.append(delivery)
                if tag == delivery_tag:
                    return taken
        settled = unacked.pop(delivery_tag, None)
        if settled is None:
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
        return [settled]

    def take_all(self) -> list[Delivery]:
        taken = list(self.unacked.values())
        self.unacked.clear()
        return taken

    def restore(self, deliveries: list[Delivery]) -> None:
        """Settlements that never happened (a rolled-back transaction): unacked again, in tag
        order."""
        if not deliveries:
            return
        restored = dict(self.unacked)
        for delivery in deliveries:
            restored[delivery.tag] = delivery
        self.unacked = OrderedDict(sorted(restored.items()))

    def settled(self, deliveries: Iterable[Delivery]) -> None:
        """`deliveries` left the ledger for good: their consumers' credit comes back."""
        consumed = 0
        for delivery in deliveries:
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                consumed += 1
        self.consumed_unacked -= consumed


def _encoded_properties(message: Message) -> bytes:
    raw = message.encoded_properties
    if raw is None:
        # The broker's messages carry the codec's Properties.
        properties = cast(Properties, message.properties)
        raw = message.encoded_properties = encode_properties(properties)
    return raw
