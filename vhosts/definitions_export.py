"""A node's topology as a RabbitMQ definitions file, the shape `rabbitmqctl export_definitions`
writes, so that `rabbitmqctl import_definitions` (or the management UI) on a RabbitMQ node, or
`amqp-lite serve --definitions`, rebuilds it: vhosts, users with their password hashes,
permissions and topic permissions, policies, exchanges, queues and bindings, and the limits of
vhosts and users.

As RabbitMQ's export: the default and amq.* exchanges, exclusive queues (they die with their
connection) and the default exchange's implicit bindings are left out; transient exchanges and
queues are in. Unlike it, a binding to an exclusive queue is left out too, since its queue is not
there to bind to when the file is loaded, and internal exchanges are in, with an "internal"
key (which RabbitMQ's import reads but its export leaves out), so that no route is lost.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from exchanges.values import octets
from vhosts.exchange import DEFAULT_EXCHANGE, Exchange
from vhosts.node import DEFAULT_VHOST, Node
from vhosts.queue import Queue
from vhosts.vhost import VirtualHost


def export_definitions(node: Node) -> dict[str, Any]:
    """The node's definitions as JSON-ready data, each list in a stable order."""
    vhosts = sorted(node.vhosts.values(), key=lambda v: v.name)
    users = sorted(node.users, key=lambda u: u.name)
    return {
        "users": [
            {
                "name": user.name,
                "password_hash": user.password_hash,
                "hashing_algorithm": user.hashing_algorithm,
                "tags": list(user.tags),
                "limits": dict(user.limits),
            }
            for user in users
        ],
        "vhosts": [_vhost(vhost) for vhost in vhosts],
        "permissions": [
            {
                "user": user.name,
                "vhost": vhost,
                "configure": permission.configure,
                "write": permission.write,
                "read": permission.read,
            }
            for user in users
            for vhost, permission in sorted(user.permissions.items())
            if vhost in node.vhosts
        ],
        "topic_permissions": [
            {
                "user": user.name,
                "vhost": vhost,
                "exchange": exchange,
                "write": permission.write,
                "read": permission.read,
            }
            for user in users
            for vhost, by_exchange in sorted(user.topic_permissions.items())
            if vhost in node.vhosts
            for exchange, permission in sorted(by_exchange.items())
        ],
        "parameters": [
            {
                "value": dict(vhost.limits),
                "vhost": vhost.name,
                "component": "vhost-limits",
                "name": "limits",
            }
            for vhost in vhosts
            if vhost.limits
        ],
        "global_parameters": [],
        "policies": [policy for vhost in vhosts for policy in _policies(vhost)],
        "queues": [_queue(vhost.name, q) for vhost in vhosts for q in _exported_queues(vhost)],
        "exchanges": [
            _exchange(vhost.name, x) for vhost in vhosts for x in _exported_exchanges(vhost)
        ],
        "bindings": [binding for vhost in vhosts for binding in _bindings(vhost)],
    }


def _vhost(vhost: VirtualHost) -> dict[str, Any]:
    description = "Default virtual host" if vhost.name == DEFAULT_VHOST else ""
    metadata: dict[str, Any] = {"description": description, "tags": []}
    if vhost.default_queue_type is not None:  # RabbitMQ writes it only when set
        metadata = {"default_queue_type": vhost.default_queue_type, **metadata}
    limits = [[name, value] for name, value in vhost.limits.items()]  # as RabbitMQ writes them
    return {"name": vhost.name, "limits": limits, "metadata": metadata}


def _policies(vhost: VirtualHost) -> Iterator[dict[str, Any]]:
    for policy in sorted(vhost.policies or (), key=lambda p: p.name):
        yield {
            "vhost": vhost.name,
            "name": policy.name,
            "pattern": policy.pattern,
            "apply-to": policy.apply_to,
            "definition": _json(policy.definition),
            "priority": policy.priority,
        }


def _exported_queues(vhost: VirtualHost) -> list[Queue]:
    queues = (q for q in vhost.queues.values() if q.exclusive_owner is None)
    return sorted(queues, key=lambda q: q.name)


def _exported_exchanges(vhost: VirtualHost) -> list[Exchange]:
    return sorted((x for x in vhost.exchanges.values() if not x.is_system), key=lambda x: x.name)


def _queue(vhost: str, queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "vhost": vhost,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "type": queue.type_name,
        "arguments": _json(queue.arguments),
    }


def _exchange(vhost: str, exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "vhost": vhost,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": _json(exchange.arguments),
    }


def _bindings(vhost: VirtualHost) -> Iterator[dict[str, Any]]:
    found = []
    for source in vhost.exchanges.values():
        if source.name == DEFAULT_EXCHANGE:
            continue  # every queue's binding by its name: implicit, never exported
        for destination, key, arguments in source.router.bindings():
            if isinstance(destination, Exchange):
                kind = "exchange"
            elif isinstance(destination, Queue) and destination.exclusive_owner is None:
                kind = "queue"
            else:
                continue
            found.append((source.name, kind, destination.name, key, _json(arguments)))
    for source_name, kind, destination_name, key, arguments in sorted(found, key=lambda b: b[:4]):
        yield {
            "source": source_name,
            "vhost": vhost.name,
            "destination": destination_name,
            "destination_type": kind,
            "routing_key": key,
            "arguments": arguments,
        }


def _json(value: Any) -> Any:
    """An AMQP field value as JSON, converted the way RabbitMQ's export converts it."""
    if isinstance(value, Mapping):
        return {_json(str(k)): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, str):
        if value.isascii():
            return value
        # Octets that are not UTF-8 came off the wire as surrogate escapes: a binary to RabbitMQ.
        value = octets(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "Not UTF-8, base64 is: " + base64.b64encode(raw).decode("ascii")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return int(moment.timestamp())
    if value is None:
        return "undefined"  # RabbitMQ's export writes a void value so
    return value
