"""A consumer as a channel keeps it: a queue's view of one basic.consume."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vhosts import Message, Queue, QueueEntry

if TYPE_CHECKING:
    from amqp_lite.channel import Channel


class ChannelConsumer:
    """Implements `vhosts.Consumer`: credit comes from prefetch, channel flow and socket backlog."""

    __slots__ = (
        "channel",
        "exclusive",
        "no_ack",
        "prefetch",
        "priority",
        "queue",
        "tag",
        "unacked",
    )

    def __init__(
        self,
        channel: Channel,
        queue: Queue | ReplyQueue,
        tag: str,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        priority: int = 0,
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.tag = tag
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # 0: no per-consumer limit
        self.priority = priority  # x-priority
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


class ReplyQueue:
    """Direct reply-to: stands where a queue would for the channel's reply consumer.

    A reply published to the default exchange with this name as routing key is delivered at
    once, unacknowledged and regardless of flow control, as RabbitMQ does; nothing is stored.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name = "amq.rabbitmq.reply-to." + os.urandom(12).hex()
        self.consumer: ChannelConsumer | None = None

    def __repr__(self) -> str:
        return f"<ReplyQueue {self.name!r}>"

    def enqueue(self, message: Message) -> bool:
        if self.consumer is not None:
            self.channel.deliver_reply(self.consumer.tag, message)
        return True  # taken: a reply is never refused as full

    # What a channel asks of its consumers' queues.
    def dispatch(self) -> None:
        pass

    def remove_consumer(self, consumer: ChannelConsumer) -> bool:
        self.consumer = None
        self.channel.reply_consumer_gone(self)
        return False
