"""consumer_timeout: a channel whose oldest delivery stays unacknowledged too long is closed.

As RabbitMQ does it: once a tick (RabbitMQ's channel_tick_interval, 60 s) each channel's oldest
unacknowledged delivery is looked at, and if it has waited longer than the timeout the channel
is closed with 406 and its deliveries go back to their queues. The timeout is the node's
(`--consumer-timeout`, 30 minutes by default), or the queue's own: its `x-consumer-timeout`
argument or its policy's `consumer-timeout` key (the smaller when it has both), as RabbitMQ 3.12
has them (3.10.8 has only the node's).

Nothing is done per message: deliveries carry no time. At each tick a channel with unacked
deliveries notes its next delivery tag and the time ("marks"); a delivery was made before the
first mark whose tag is above its own, so it has waited at least since then. That makes a
timeout fire at most a tick later than RabbitMQ's, which stamps each delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from amqp_lite.channel import Channel
from amqp_lite.connection import ServerConnection, State
from vhosts import Node, Queue
from vhosts.errors import PreconditionFailed

log = logging.getLogger("amqp_lite.consumer_timeout")

CHECK_INTERVAL = 60.0  # seconds between looks, RabbitMQ's channel_tick_interval
MAX_MARKS = 64  # per channel; beyond, the oldest marks merge into later ones (later timeouts)


class ConsumerTimeouts:
    """Looks at every open channel of `connections` once a tick, on the node's clock."""

    def __init__(
        self,
        node: Node,
        connections: Collection[ServerConnection],
        timeout_ms: int | None,
        *,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self.node = node
        self.connections = connections
        self.timeout_ms = timeout_ms  # the node's; None: only queues' own timeouts apply
        self.interval = interval
        self._running = False

    def start(self) -> None:
        if not self._running:
            self._running = True
            self.node.timers.schedule(self.node.clock.now() + self.interval, self.tick)

    def stop(self) -> None:
        self._running = False

    def tick(self, now: float) -> None:
        if not self._running:
            return
        for connection in list(self.connections):
            if connection.state is not State.OPEN:
                continue
            for channel in list(connection.channels.values()):
                try:
                    self._check(connection, channel, now)
                except Exception:  # one channel's trouble must not stop the others' checks
                    log.exception("internal error checking a channel's consumer timeout")
        self.node.timers.schedule(now + self.interval, self.tick)

    def _check(self, connection: ServerConnection, channel: Channel, now: float) -> None:
        deliveries = channel.deliveries
        marks = deliveries.timeout_marks
        if not deliveries.unacked or deliveries.closing:
            marks.clear()
            return
        if not marks or marks[-1][0] != deliveries.next_tag:
            marks.append((deliveries.next_tag, now))
            if len(marks) > MAX_MARKS:
                del marks[1]
        oldest_tag, oldest = next(iter(deliveries.unacked.items()))
        while marks[0][0] <= oldest_tag:  # marks from before it was delivered: of no more use
            del marks[0]
        waited_since = marks[0][1]
        timeout_ms = self._timeout_of(oldest.entry.queue)
        if timeout_ms is None or (now - waited_since) * 1000 <= timeout_ms:
            return
        consumer = oldest.consumer.tag if oldest.consumer is not None else "basic.get"
        log.warning(
            "connection %s, channel %d: delivery %d (consumer %s) not acknowledged within "
            "%d ms, the consumer timeout; closing the channel",
            connection.name,
            channel.number,
            oldest_tag,
            consumer,
            timeout_ms,
        )
        error = PreconditionFailed(
            f"delivery acknowledgement on channel {channel.number} timed out. Timeout value "
            f"used: {timeout_ms} ms. This timeout value can be configured, see consumers doc "
            "guide to learn more"
        )
        connection.close_channel(channel, error)

    def _timeout_of(self, queue: Queue) -> int | None:
        """The queue's own timeout if it has one (argument or policy), else the node's."""
        vhost = self.node.vhosts.get(queue.vhost_name)
        if vhost is None or vhost.queues.get(queue.name) is not queue:  # deleted since
            return self.timeout_ms
        policy = vhost.policy_for("queue", queue.name)
        candidates = [
            value
            for value in (
                queue.arguments.get("x-consumer-timeout"),
                policy.definition.get("consumer-timeout") if policy is not None else None,
            )
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ]
        return min(candidates) if candidates else self.timeout_ms
