"""A consumer as a channel keeps it: a queue's view of one basic.consume."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from vhosts import Message, Queue, QueueEntry


class DeliveryCredit(Protocol):
    """What a consumer needs of its channel's deliveries."""

    def can_deliver(self) -> bool:
        """Within the channel's prefetch, flow and output limits."""
        ...

    def can_deliver_unlimited(self) -> bool:
        """Within the channel's flow and output limits (for no-ack consumers)."""
        ...

    def deliver(self, consumer: ChannelConsumer, entry: QueueEntry) -> None: ...

    def deliver_reply(self, consumer_tag: str, message: Message) -> None: ...


class ConsumerOwner(Protocol):
    """The channel's list of consumers, told when one goes away from the queue's side."""

    def consumer_lost(self, consumer: ChannelConsumer) -> None: ...

    def reply_consumer_gone(self, reply_queue: ReplyQueue) -> None: ...


class ChannelConsumer:
    """Implements `vhosts.Consumer`: credit comes from prefetch, channel flow and socket backlog."""

    __slots__ = (
        "arguments",
        "credit_limit",
        "deliveries",
        "exclusive",
        "no_ack",
        "owner",
        "prefetch",
        "priority",
        "queue",
        "tag",
        "unacked",
    )

    def __init__(
        self,
        deliveries: DeliveryCredit,
        owner: ConsumerOwner,
        queue: Queue | ReplyQueue,
        tag: str,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        priority: int = 0,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.owner = owner
        self.queue = queue
        self.tag = tag
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # basic.qos prefetch-count when it was made; 0: no limit
        # What has_credit holds it to: its prefetch, or its queue type's default without one.
        self.credit_limit = prefetch or queue.default_prefetch
        self.priority = priority  # x-priority
        self.arguments: Mapping[str, Any] = arguments or {}  # its basic.consume arguments
        self.unacked = 0

    def __repr__(self) -> str:
        return f"<ChannelConsumer {self.tag!r} on {self.queue.name!r}>"

    def has_credit(self) -> bool:
        if self.no_ack:
            return self.deliveries.can_deliver_unlimited()
        if self.credit_limit and self.unacked >= self.credit_limit:
            return False
        return self.deliveries.can_deliver()

    def deliver(self, entry: QueueEntry) -> None:
        self.deliveries.deliver(self, entry)

    def queue_deleted(self) -> None:
        self.owner.consumer_lost(self)


class ReplyQueue:
    """Direct reply-to: stands where a queue would for the channel's reply consumer.

    A reply published to the default exchange with this name as routing key is delivered at
    once, unacknowledged and regardless of flow control, as RabbitMQ does; nothing is stored.
    """

    default_prefetch = 0  # a reply consumer is never limited

    def __init__(self, deliveries: DeliveryCredit, owner: ConsumerOwner) -> None:
        self.deliveries = deliveries
        self.owner = owner
        self.name = "amq.rabbitmq.reply-to." + os.urandom(12).hex()
        self.consumer: ChannelConsumer | None = None

    def __repr__(self) -> str:
        return f"<ReplyQueue {self.name!r}>"

    def enqueue(self, message: Message) -> bool:
        if self.consumer is not None:
            self.deliveries.deliver_reply(self.consumer.tag, message)
        return True  # taken: a reply is never refused as full

    # What a channel asks of its consumers' queues.
    def dispatch(self) -> None:
        pass

    def remove_consumer(self, consumer: ChannelConsumer) -> bool:
        self.consumer = None
        self.owner.reply_consumer_gone(self)
        return False
