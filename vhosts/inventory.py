"""What a node holds, as snapshots with their counts: the listings of the admin surface.

Each listing returns frozen records taken at the moment of the call, so a caller in another
thread (the threaded broker, a test) can keep and read them while the broker moves on. The
order is RabbitMQ's listing order: by vhost, then by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from vhosts.exchange import DEFAULT_EXCHANGE, Exchange
from vhosts.node import Node
from vhosts.policies import Policy
from vhosts.queue import Queue
from vhosts.vhost import VirtualHost


@attrs.frozen
class VhostInfo:
    name: str
    queues: int
    exchanges: int
    messages_ready: int
    messages_unacknowledged: int


@attrs.frozen
class UserInfo:
    name: str
    tags: tuple[str, ...]
    password_hash: str  # "" for a user without a password
    hashing_algorithm: str


@attrs.frozen
class PermissionInfo:
    user: str
    vhost: str
    configure: str
    write: str
    read: str


@attrs.frozen
class TopicPermissionInfo:
    user: str
    vhost: str
    exchange: str
    write: str
    read: str


@attrs.frozen
class ExchangeInfo:
    vhost: str
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]
    policy: Policy | None


@attrs.frozen
class QueueInfo:
    vhost: str
    name: str
    durable: bool
    auto_delete: bool
    exclusive: bool
    owner: object | None  # the protocol connection of an exclusive queue
    arguments: dict[str, Any]
    policy: Policy | None
    messages_ready: int
    messages_unacknowledged: int
    message_bytes_ready: int
    consumers: int
    type: str = "classic"  # its x-queue-type

    @property
    def messages(self) -> int:
        return self.messages_ready + self.messages_unacknowledged


@attrs.frozen
class BindingInfo:
    vhost: str
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str
    arguments: dict[str, Any]


def vhost_info(vhost: VirtualHost) -> VhostInfo:
    queues = vhost.queues.values()
    return VhostInfo(
        vhost.name,
        queues=len(queues),
        exchanges=len(vhost.exchanges),
        messages_ready=sum(q.message_count for q in queues),
        messages_unacknowledged=sum(q.unacked_count for q in queues),
    )


def vhosts(node: Node) -> list[VhostInfo]:
    return [vhost_info(node.vhosts[name]) for name in sorted(node.vhosts)]


def users(node: Node) -> list[UserInfo]:
    return [
        UserInfo(u.name, tuple(u.tags), u.password_hash, u.hashing_algorithm)
        for u in sorted(node.users, key=lambda u: u.name)
    ]


def permissions(
    node: Node, *, vhost: str | None = None, user: str | None = None
) -> list[PermissionInfo]:
    found = [
        PermissionInfo(u.name, v, p.configure, p.write, p.read)
        for u in node.users
        for v, p in u.permissions.items()
        if (vhost is None or v == vhost) and (user is None or u.name == user)
    ]
    return sorted(found, key=lambda p: (p.vhost, p.user))


def topic_permissions(
    node: Node, *, vhost: str | None = None, user: str | None = None
) -> list[TopicPermissionInfo]:
    found = [
        TopicPermissionInfo(u.name, v, exchange, p.write, p.read)
        for u in node.users
        for v, by_exchange in u.topic_permissions.items()
        for exchange, p in by_exchange.items()
        if (vhost is None or v == vhost) and (user is None or u.name == user)
    ]
    return sorted(found, key=lambda p: (p.vhost, p.user, p.exchange))


def policies(node: Node, vhost: str | None = None) -> list[Policy]:
    found = []
    for v in _vhosts(node, vhost):
        if v.policies is not None:
            found += sorted(v.policies, key=lambda p: p.name)
    return found


def exchange_info(vhost: VirtualHost, exchange: Exchange) -> ExchangeInfo:
    return ExchangeInfo(
        vhost.name,
        exchange.name,
        exchange.type_name,
        exchange.durable,
        exchange.auto_delete,
        exchange.internal,
        dict(exchange.arguments),
        vhost.policy_for("exchange", exchange.name) if exchange.name else None,
    )


def exchanges(node: Node, vhost: str | None = None) -> list[ExchangeInfo]:
    return [
        exchange_info(v, v.exchanges[name])
        for v in _vhosts(node, vhost)
        for name in sorted(v.exchanges)
    ]


def queue_info(vhost: VirtualHost, queue: Queue) -> QueueInfo:
    return QueueInfo(
        vhost.name,
        queue.name,
        queue.durable,
        queue.auto_delete,
        queue.exclusive_owner is not None,
        queue.exclusive_owner,
        dict(queue.arguments),
        vhost.policy_for("queue", queue.name),
        queue.message_count,
        queue.unacked_count,
        queue.ready_bytes,
        queue.consumer_count,
        queue.type_name,
    )


def queues(node: Node, vhost: str | None = None) -> list[QueueInfo]:
    return [
        queue_info(v, v.queues[name]) for v in _vhosts(node, vhost) for name in sorted(v.queues)
    ]


def bindings(node: Node, vhost: str | None = None) -> list[BindingInfo]:
    """Every binding, with the default exchange's implicit one to each queue, as RabbitMQ lists
    them: the default exchange's first, then by source, destination and routing key."""
    found = []
    for v in _vhosts(node, vhost):
        found += [
            BindingInfo(v.name, DEFAULT_EXCHANGE, name, "queue", name, {})
            for name in sorted(v.queues)
        ]
        found += sorted(_explicit_bindings(v), key=_binding_order)
    return found


def _explicit_bindings(vhost: VirtualHost) -> Iterator[BindingInfo]:
    for exchange in vhost.exchanges.values():
        if exchange.name == DEFAULT_EXCHANGE:
            continue
        for destination, key, arguments in exchange.router.bindings():
            assert isinstance(destination, (Queue, Exchange))
            kind = "queue" if isinstance(destination, Queue) else "exchange"
            yield BindingInfo(
                vhost.name, exchange.name, destination.name, kind, key, dict(arguments)
            )


def _binding_order(b: BindingInfo) -> tuple[str, str, str, str]:
    return (b.source, b.destination_type, b.destination, b.routing_key)


def _vhosts(node: Node, name: str | None) -> list[VirtualHost]:
    if name is not None:
        return [node.vhost(name)]
    return [node.vhosts[n] for n in sorted(node.vhosts)]
