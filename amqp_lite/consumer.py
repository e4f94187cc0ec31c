"""A consumer as a channel keeps it: a queue's view of one basic.consume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vhosts import Queue, QueueEntry

if TYPE_CHECKING:
    from amqp_lite.channel import Channel


class ChannelConsumer:
    """Implements `vhosts.Consumer`: credit comes from prefetch, channel flow and socket backlog."""

    __slots__ = ("channel", "exclusive", "no_ack", "prefetch", "queue", "tag", "unacked")

    def __init__(
        self,
        channel: Channel,
        queue: Queue,
        tag: str,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.tag = tag
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # 0: no per-consumer limit
        self.unacked = 0

    def __repr__(self) -> str:
        return f"<ChannelConsumer {self.tag!r} on {self.queue.name!r}>"

    def has_credit(self) -> bool:
        if self.no_ack:
            return self.channel.can_deliver_unlimited()
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        return self.channel.can_deliver()

    def deliver(self, entry: QueueEntry) -> None:
        self.channel.deliver(self, entry)

    def queue_deleted(self) -> None:
        self.channel.consumer_lost(self)


class Delivery:
    """A message delivered on a channel and not yet settled (acked, rejected or requeued)."""

    __slots__ = ("consumer", "entry", "tag")

    def __init__(self, tag: int, entry: QueueEntry, consumer: ChannelConsumer | None) -> None:
        self.tag = tag
        self.entry = entry
        self.consumer = consumer  # None for basic.get
