"""message_stats and their rates, sampled as RabbitMQ samples them.

The message path only bumps integers (`vhosts.counters.MessageCounts` on channels and queues,
`publish_in`/`publish_out` on exchanges, byte counts on connections). Every `INTERVAL` seconds
(RabbitMQ's collect_statistics_interval, 5 s) a sample reads them all; each `*_details.rate`
is the change between the last two samples divided by the time between them, on the broker's
clock, so a test that advances the clock sees rates without waiting. Counts of channels that
closed are kept per vhost (the node's and vhosts' totals go on counting after them), which the
node-wide events tell us.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vhosts.counters import MessageCounts

if TYPE_CHECKING:
    from amqp_lite.admin import Admin
    from amqp_lite.channel import Channel
    from amqp_lite.connection import ServerConnection

INTERVAL = 5.0  # seconds between samples, RabbitMQ's default

# RabbitMQ's churn_rates: how many of these events happened since start.
CHURN = (
    "connection_created",
    "connection_closed",
    "channel_created",
    "channel_closed",
    "queue_created",
    "queue_deleted",
)

Key = Any  # ("node",), ("vhost", name), or a live queue, exchange, channel or connection


class Stats:
    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        self.node = admin.node
        self.retired: defaultdict[str, MessageCounts] = defaultdict(MessageCounts)
        self.retired_bytes: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.churn = dict.fromkeys(CHURN, 0)
        self._sampled_at: float | None = None
        self._samples: dict[Key, dict[str, float]] = {}
        self._rates: dict[Key, dict[str, float]] = {}
        events = self.node.events
        self._unsubscribe: list[Callable[[], None]] = [
            events.channel_closed.subscribe(self._channel_closed),
            events.connection_closed.subscribe(self._connection_closed),
            events.vhost_deleted.subscribe(lambda vhost: self._forget_vhost(vhost.name)),
        ]
        for name in CHURN:
            self._unsubscribe.append(getattr(events, name).subscribe(self._churned(name)))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # -- counts ----------------------------------------------------------------------------------

    def channels(self) -> Iterator[tuple[ServerConnection, Channel]]:
        server = self.admin.server
        if server is None:
            return
        for connection in list(server.connections):
            if connection.vhost is not None:
                for channel in list(connection.channels.values()):
                    yield connection, channel

    def vhost_counts(self, vhost: str) -> MessageCounts:
        counts = MessageCounts()
        if vhost in self.retired:
            counts.add(self.retired[vhost])
        for connection, channel in self.channels():
            if connection.vhost is not None and connection.vhost.name == vhost:
                counts.add(channel.counts)
        return counts

    def node_counts(self) -> MessageCounts:
        counts = MessageCounts.total(self.retired.values())
        for _, channel in self.channels():
            counts.add(channel.counts)
        return counts

    def vhost_bytes(self, vhost: str) -> tuple[int, int]:
        received, sent = self.retired_bytes.get(vhost, [0, 0])
        server = self.admin.server
        for connection in server.connections if server is not None else ():
            if connection.vhost is not None and connection.vhost.name == vhost:
                received += connection.recv_oct
                sent += connection.send_oct
        return received, sent

    def _channel_closed(self, channel: Channel) -> None:
        self.retired[channel.vhost_name].add(channel.counts)

    def _connection_closed(self, connection: ServerConnection) -> None:
        if connection.vhost is not None:
            totals = self.retired_bytes[connection.vhost.name]
            totals[0] += connection.recv_oct
            totals[1] += connection.send_oct

    def _forget_vhost(self, name: str) -> None:
        self.retired.pop(name, None)
        self.retired_bytes.pop(name, None)

    def _churned(self, name: str) -> Callable[..., None]:
        def count(*_: Any) -> None:
            self.churn[name] += 1

        return count

    # -- sampling --------------------------------------------------------------------------------

    def sample(self, now: float) -> None:
        """Read every counter; rates are the change since the previous sample."""
        if self._sampled_at is not None and now <= self._sampled_at:
            return  # a frozen clock: nothing to divide by
        samples = dict(self._observe())
        if self._sampled_at is not None:
            elapsed = now - self._sampled_at
            previous = self._samples
            self._rates = {
                key: {
                    name: (value - before.get(name, value)) / elapsed
                    for name, value in values.items()
                }
                for key, values in samples.items()
                if (before := previous.get(key)) is not None
            }
        self._samples = samples
        self._sampled_at = now

    def rate(self, key: Key, name: str) -> float:
        rates = self._rates.get(key)
        return round(rates.get(name, 0.0), 1) if rates is not None else 0.0

    def _observe(self) -> Iterator[tuple[Key, dict[str, float]]]:
        node = self.node
        all_ready = all_unacked = 0
        for vhost in node.vhosts.values():
            ready = unacked = 0
            for queue in vhost.queues.values():
                counts: dict[str, float] = dict(queue.counts.values())
                counts["messages_ready"] = queue.message_count
                counts["messages_unacknowledged"] = queue.unacked_count
                counts["messages"] = queue.message_count + queue.unacked_count
                ready += queue.message_count
                unacked += queue.unacked_count
                yield queue, counts
            for exchange in vhost.exchanges.values():
                yield (
                    exchange,
                    {"publish_in": exchange.publish_in, "publish_out": exchange.publish_out},
                )
            values: dict[str, float] = dict(self.vhost_counts(vhost.name).values())
            values.update(messages_ready=ready, messages_unacknowledged=unacked)
            values["messages"] = ready + unacked
            values["recv_oct"], values["send_oct"] = self.vhost_bytes(vhost.name)
            all_ready += ready
            all_unacked += unacked
            yield ("vhost", vhost.name), values
        values = dict(self.node_counts().values())
        values.update(self.churn)
        values.update(messages_ready=all_ready, messages_unacknowledged=all_unacked)
        values["messages"] = all_ready + all_unacked
        yield ("node",), values
        for _connection, channel in self.channels():
            yield channel, dict(channel.counts.values())
        server = self.admin.server
        for connection in server.connections if server is not None else ():
            yield connection, {"recv_oct": connection.recv_oct, "send_oct": connection.send_oct}


def with_rates(
    stats: Stats, key: Key, values: dict[str, int], names: tuple[str, ...]
) -> dict[str, Any]:
    """RabbitMQ's shape: each count, then `<name>_details: {"rate": r}` beside it."""
    shaped: dict[str, Any] = {}
    for name in names:
        shaped[name] = values.get(name, 0)
        shaped[f"{name}_details"] = {"rate": stats.rate(key, name)}
    return shaped


# The message_stats each kind of object shows, as RabbitMQ 3.10.8 shows them.
QUEUE_STATS = (
    "ack",
    "deliver",
    "deliver_get",
    "deliver_no_ack",
    "get",
    "get_empty",
    "get_no_ack",
    "publish",
    "redeliver",
)
CHANNEL_STATS = (
    "ack",
    "confirm",
    "deliver",
    "deliver_get",
    "deliver_no_ack",
    "drop_unroutable",
    "get",
    "get_empty",
    "get_no_ack",
    "publish",
    "redeliver",
    "return_unroutable",
)
EXCHANGE_STATS = ("publish_in", "publish_out")


def message_stats(
    stats: Stats, key: Key, counts: MessageCounts, names: tuple[str, ...]
) -> dict[str, Any]:
    values = counts.values()
    values["deliver_get"] = (
        values["deliver"] + values["deliver_no_ack"] + values["get"] + values["get_no_ack"]
    )
    shaped = with_rates(stats, key, values, names)
    # deliver_get's rate is the sum of its parts' rates.
    if "deliver_get" in names:
        shaped["deliver_get_details"] = {
            "rate": round(
                sum(stats.rate(key, n) for n in ("deliver", "deliver_no_ack", "get", "get_no_ack")),
                1,
            )
        }
    return shaped
