"""Message counts: how many messages were published, delivered, acked... by a channel or queue.

Plain integer attributes, bumped where the thing happens (one add each on the message path);
nothing is timed or sampled here. The management API samples them to compute rates as
RabbitMQ's `message_stats` does, and names them as it does.
"""

from __future__ import annotations

from collections.abc import Iterable


class MessageCounts:
    """RabbitMQ's `message_stats` counters, for a channel, a queue, a vhost or the node."""

    __slots__ = (
        "ack",
        "confirm",
        "deliver",
        "deliver_no_ack",
        "drop_unroutable",
        "get",
        "get_empty",
        "get_no_ack",
        "publish",
        "received_confirm",
        "redeliver",
        "return_unroutable",
    )

    def __init__(self) -> None:
        self.publish = 0  # messages published (by a channel) or enqueued (in a queue)
        self.received_confirm = 0  # messages published on a channel in confirm mode
        self.confirm = 0  # publisher confirms sent
        self.return_unroutable = 0  # mandatory and routed nowhere: basic.return
        self.drop_unroutable = 0  # not mandatory and routed nowhere: dropped
        self.deliver = 0  # to a consumer that acks
        self.deliver_no_ack = 0  # to a consumer that does not
        self.get = 0  # basic.get, to be acked
        self.get_no_ack = 0
        self.get_empty = 0  # basic.get that found nothing
        self.ack = 0
        self.redeliver = 0  # delivered or got again after a requeue

    def copy(self) -> MessageCounts:
        copy = MessageCounts()
        copy.add(self)
        return copy

    def add(self, other: MessageCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def total(cls, counts: Iterable[MessageCounts]) -> MessageCounts:
        result = cls()
        for one in counts:
            result.add(one)
        return result
