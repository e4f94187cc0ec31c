"""Settling deliveries: basic.ack, basic.nack, basic.reject and basic.recover.

The deliveries a client names leave the channel's ledger and go back to their queues: acked,
requeued, or discarded (dead-lettered where the queue says so). In a transaction the
settlement is held until tx.commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from amqp_lite.delivery import Deliveries, Delivery
from amqp_lite.errors import NotImplementedFeature
from amqp_lite.transaction import Transaction
from amqp_lite.wire import methods
from amqp_lite.wire.methods import Method
from vhosts import Queue, QueueEntry


class Settlements:
    def __init__(
        self,
        deliveries: Deliveries,
        transaction: Transaction,
        *,
        send: Callable[[Method], None],
        credit_returned: Callable[[], None],
    ) -> None:
        self._deliveries = deliveries
        self._transaction = transaction
        self._send = send
        self._credit_returned = credit_returned  # consumers may have room again

    def basic_ack(self, method: methods.BasicAck) -> None:
        self._settle("ack", self._deliveries.take(method.delivery_tag, method.multiple))

    def basic_nack(self, method: methods.BasicNack) -> None:
        outcome = "requeue" if method.requeue else "discard"
        self._settle(outcome, self._deliveries.take(method.delivery_tag, method.multiple))

    def basic_reject(self, method: methods.BasicReject) -> None:
        outcome = "requeue" if method.requeue else "discard"
        self._settle(outcome, self._deliveries.take(method.delivery_tag, False))

    def basic_recover(self, method: methods.BasicRecover | methods.BasicRecoverAsync) -> None:
        if not method.requeue:
            raise NotImplementedFeature("requeue=false")
        self.requeue_all()
        if isinstance(method, methods.BasicRecover):
            self._send(methods.BasicRecoverOk())

    def requeue_all(self, *, channel_closed: bool = False) -> None:
        """basic.recover, or (`channel_closed`) the channel went with deliveries unsettled."""
        settled = self._deliveries.take_all()
        if settled:
            self.apply("requeue", settled, channel_closed=channel_closed)

    def _settle(self, outcome: str, settled: list[Delivery]) -> None:
        if self._transaction.active:
            self._transaction.hold_settlement(outcome, settled)
            return
        self.apply(outcome, settled)

    def apply(self, outcome: str, settled: list[Delivery], *, channel_closed: bool = False) -> None:
        self._deliveries.settled(settled)
        if outcome == "requeue":
            for queue, entries in _by_queue(settled).items():
                queue.requeue(entries, channel_closed=channel_closed)
        elif outcome == "ack":
            self._deliveries.counts.ack += len(settled)
            if len(settled) == 1:
                entry = settled[0].entry
                entry.queue.ack(entry)
            else:  # a multiple ack: each queue's in one call, in the order they came
                for queue, entries in _runs_by_queue(settled):
                    queue.ack_all(entries)
        else:
            for delivery in settled:
                delivery.entry.queue.discard(delivery.entry)
        self._credit_returned()


def _runs_by_queue(settled: Iterable[Delivery]) -> Iterator[tuple[Queue, list[QueueEntry]]]:
    """The entries of `settled` in runs from one queue each, in their order."""
    queue: Queue | None = None
    run: list[QueueEntry] = []
    for delivery in settled:
        entry = delivery.entry
        if entry.queue is not queue:
            if queue is not None:
                yield queue, run
            queue, run = entry.queue, []
        run.append(entry)
    if queue is not None:
        yield queue, run


def _by_queue(settled: Iterable[Delivery]) -> dict[Queue, list[QueueEntry]]:
    grouped: dict[Queue, list[QueueEntry]] = {}
    for delivery in settled:
        grouped.setdefault(delivery.entry.queue, []).append(delivery.entry)
    return grouped
