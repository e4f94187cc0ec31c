"""Publisher confirms for one channel.

A confirm (basic.ack, or basic.nack for a publish a full queue refused) goes out once the
publish is routed and, if it stored anything, once the store has written it. Acks go out in
tag order, so a confirm that waits for the disk holds back the ones after it; so does a reply
waiting for the disk (see `channel_output`), which the publish must not overtake.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from amqp_lite.channel_output import StoreProgress
from amqp_lite.wire import methods
from amqp_lite.wire.methods import Method
from vhosts.counters import MessageCounts


class Replies(Protocol):
    @property
    def waiting(self) -> bool:
        """A reply on the channel waits for the store."""
        ...


class Confirms:
    """Confirm tags of one channel and how far acks have gone out.

    `send` writes one method on the channel; `pending` tells the connection this channel has
    confirms to flush (it flushes once per read, so a burst of publishes gets one ack).
    """

    def __init__(
        self,
        send: Callable[[Method], None],
        store: StoreProgress | None,
        replies: Replies,
        *,
        pending: Callable[[], None],
    ) -> None:
        self._send = send
        self._store = store
        self._replies = replies
        self._pending = pending
        self.active = False  # confirm.select was seen
        self._nacks: set[int] = set()  # publishes refused by a full queue (reject-publish)
        self._publish_seq = 0  # publishes in confirm mode, which is also the last one's tag
        self._refused = 0  # of those, refused
        self._confirmed_upto = 0  # every tag up to here may be acked
        self._acks_sent_upto = 0
        # (tag, store operation) for publishes whose confirm waits for the store's fsync.
        self._awaiting_disk: deque[tuple[int, int]] = deque()

    @property
    def unconfirmed(self) -> int:
        """Publishes whose ack or nack has not gone out yet."""
        return self._publish_seq - self._acks_sent_upto

    def add_counts(self, counts: MessageCounts) -> None:
        """message_stats: publishes in confirm mode (received_confirm), and those confirmed
        with an ack (confirm), whether or not it has gone out yet."""
        counts.received_confirm += self._publish_seq
        counts.confirm += self._publish_seq - self._refused

    def published(self, *, refused: bool, stored: bool) -> None:
        """One more publish in confirm mode; `stored` if it went to the store."""
        self._publish_seq += 1
        if refused:  # a full queue with x-overflow reject-publish: the publisher hears no
            self._nacks.add(self._publish_seq)
            self._refused += 1
        store = self._store
        if store is not None and (stored or self._replies.waiting):
            self._awaiting_disk.append((self._publish_seq, store.last_op))
        elif self._awaiting_disk:  # acks go out in order: wait behind the stored ones
            self._awaiting_disk.append((self._publish_seq, 0))
        else:
            self._confirmed_upto = self._publish_seq
        self._pending()

    def flush(self) -> bool:
        """Send one basic.ack covering every publish confirmed since the last flush.

        Returns True while some confirms still wait for the store.
        """
        waiting, store = self._awaiting_disk, self._store
        if waiting and store is not None:  # only ever filled when there is a store
            durable = store.durable_upto
            while waiting and waiting[0][1] <= durable:
                self._confirmed_upto = waiting.popleft()[0]
        upto = self._confirmed_upto
        if upto > self._acks_sent_upto:
            if self._nacks:
                self._send_nacks_upto(upto)
            if upto > self._acks_sent_upto:
                self._send_ack(upto)
        return bool(waiting)

    def _send_ack(self, upto: int) -> None:
        multiple = upto - self._acks_sent_upto > 1
        self._acks_sent_upto = upto
        self._send(methods.BasicAck(delivery_tag=upto, multiple=multiple))

    def _send_nacks_upto(self, upto: int) -> None:
        """Refused publishes get a nack each; the confirmed ones around them, acks."""
        for tag in sorted(t for t in self._nacks if t <= upto):
            self._nacks.discard(tag)
            if tag - 1 > self._acks_sent_upto:
                self._send_ack(tag - 1)
            self._acks_sent_upto = tag
            self._send(methods.BasicNack(delivery_tag=tag, multiple=False, requeue=False))
