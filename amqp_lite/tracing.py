"""The firehose tracer, as RabbitMQ has it (`rabbitmqctl trace_on`).

While a vhost's `tracing` is on, every message a channel in it publishes is copied to the
vhost's `amq.rabbitmq.trace` topic exchange with routing key `publish.<exchange>`, and every
message delivered to a consumer or taken with basic.get with `deliver.<queue>`. The copy has
the original body and, in its `headers` property alone, RabbitMQ 3.10.8's description of the
event: exchange_name, routing_keys, properties, node, then for a publish vhost, connection,
channel, user, routed_queues, and for a delivery redelivered, vhost, connection, channel, user.

When tracing is off, a channel pays one attribute check per publish and per delivery; the
tracer itself only runs once tracing is on.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from amqp_lite.wire import Properties
from amqp_lite.wire.spec import PROPERTIES
from exchanges.walk import sender_selected
from vhosts import Message, QueueEntry, VirtualHost
from vhosts.exchange import DEFAULT_EXCHANGE, TRACE_EXCHANGE

# RabbitMQ lists a message's properties last field first (it builds the table by prepending).
_PROPERTY_ORDER = tuple(reversed([p.attr for p in PROPERTIES]))


# What a trace names as the connection of a message the management API publishes or gets
# (RabbitMQ names the process of its internal connection, which has no counterpart here).
MANAGEMENT_CONNECTION = "management API"


def management_tracer(vhost: VirtualHost, user: str, node: str) -> ChannelTracer:
    """The tracer of what the management API publishes and gets, on its channel 1."""
    return ChannelTracer(vhost, connection=MANAGEMENT_CONNECTION, channel=1, user=user, node=node)


class Named(Protocol):
    """A queue, or the pseudo-queue a direct reply-to reply reaches."""

    @property
    def name(self) -> str: ...


class ChannelTracer:
    """Traces what one channel publishes and what is delivered on it."""

    __slots__ = ("_channel", "_connection", "_node", "_user", "vhost")

    def __init__(
        self, vhost: VirtualHost, *, connection: str, channel: int, user: str, node: str
    ) -> None:
        self.vhost = vhost
        self._connection = connection
        self._channel = channel
        self._user = user
        self._node = node

    def published(self, message: Message, queues: Collection[Named]) -> None:
        """`message` was routed to `queues` and is about to be enqueued there."""
        if self._unheard():
            return
        if message.exchange == DEFAULT_EXCHANGE:
            # RabbitMQ's default exchange names a queue for each routing key before looking
            # the queues up, so its trace lists those names, queues or not.
            names = set(message_routing_keys(message))
        else:
            names = {queue.name for queue in queues}
        routed = sorted(names, key=_utf8)
        self._trace(
            "publish",
            message.exchange,
            message,
            {
                "vhost": self.vhost.name,
                "connection": self._connection,
                "channel": self._channel,
                "user": self._user,
                "routed_queues": routed,
            },
        )

    def delivered(self, entry: QueueEntry, message: Message) -> None:
        """`entry` went out on this channel (basic.deliver or basic.get-ok) as `message`: what
        its queue sent, which may say more than the stored message (x-delivery-count)."""
        if message.exchange == TRACE_EXCHANGE:
            return  # a trace message is never traced again, or the firehose would feed itself
        if self._unheard():
            return
        self._trace(
            "deliver",
            entry.queue.name,
            message,
            {
                "redelivered": 1 if entry.redelivered else 0,
                "vhost": self.vhost.name,
                "connection": self._connection,
                "channel": self._channel,
                "user": self._user,
            },
        )

    def _unheard(self) -> bool:
        """Nothing would receive a copy: no binding, no alternate exchange. The copy is then
        counted as published to the trace exchange, and not made."""
        exchange = self.vhost.exchanges[TRACE_EXCHANGE]
        if len(exchange.router) or exchange.alternate_exchange:
            return False
        exchange.publish_in += 1
        exchange.unrouted += 1
        return True

    def _trace(self, event: str, name: str, message: Message, details: dict[str, Any]) -> None:
        vhost = self.vhost
        headers = {
            "exchange_name": message.exchange,
            "routing_keys": message_routing_keys(message),
            "properties": properties_table(message.properties),
            "node": self._node,
            **details,
        }
        copy = Message(TRACE_EXCHANGE, f"{event}.{name}", Properties(headers=headers), message.body)
        vhost.publish(vhost.exchanges[TRACE_EXCHANGE], copy)


def message_routing_keys(message: Message) -> list[str]:
    """The keys a message was published with, as RabbitMQ keeps them: the routing key, then
    the CC header's, then the BCC header's (gone from the headers by now)."""
    headers = message.properties.headers
    cc = sender_selected(headers, "CC") if headers else []
    return [message.routing_key, *cc, *message.bcc]


def properties_table(properties: Any) -> dict[str, Any]:
    """The properties that are set, as a field table: integers, text, and the headers table."""
    table = {}
    for name in _PROPERTY_ORDER:
        value = getattr(properties, name)
        if value is not None:
            table[name] = value
    return table


def _utf8(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")
