"""Endpoints beyond RabbitMQ's, for the dashboard's learner pages, under /api/amqp-lite/.

- GET  /api/amqp-lite/topology/{vhost}: one vhost's exchanges, queues and bindings in one
  snapshot, with the links that decide where a message goes next: each exchange's effective
  alternate exchange and each queue's dead-letter exchange and key, whether an argument or a
  policy set them (RabbitMQ's exchange JSON names the policy but not what it sets).
- POST /api/amqp-lite/explain/{vhost}/{exchange}: where a message with this routing key and
  these headers would go, and why, without publishing it. The answer is the broker's own
  routing walk, recorded hop by hop and binding by binding (`vhosts.route_explain`).

Both need what RabbitMQ's listing of the vhost's bindings needs: a management user with access
to the vhost. Bindings are named by RabbitMQ's `properties_key` in both, so a verdict names the
very binding the topology lists.
"""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import Call, Route, bad_request, exchange_name
from amqp_lite.management.bindings import binding_json, properties_key
from exchanges.trace import Hop, KeyTrial, RouteKey, RouteTrace, render
from vhosts import Exchange, Queue
from vhosts.errors import PreconditionFailed
from vhosts.route_explain import explain_route

_EXPLAIN_FIELDS = {"routing_key", "headers"}


def exchange_node(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": exchange.arguments,
        "builtin": exchange.is_system,
        "alternate_exchange": exchange.alternate_exchange,
    }


def queue_node(queue: Queue) -> dict[str, Any]:
    settings = queue.settings
    ready, unacked = queue.message_count, queue.unacked_count
    return {
        "name": queue.name,
        "type": queue.arguments.get("x-queue-type", "classic"),
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive_owner is not None,
        "arguments": queue.arguments,
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
        "consumers": queue.consumer_count,
        "dead_letter_exchange": settings.dead_letter_exchange,
        "dead_letter_routing_key": settings.dead_letter_routing_key,
    }


def topology(call: Call) -> dict[str, Any]:
    name = call.vhost()
    vhost = call.admin.node.vhosts[name]
    return {
        "vhost": name,
        "exchanges": [exchange_node(vhost.exchanges[e]) for e in sorted(vhost.exchanges)],
        "queues": [queue_node(vhost.queues[q]) for q in sorted(vhost.queues)],
        "bindings": [binding_json(b) for b in call.admin.bindings(name)],
    }


def explain(call: Call) -> dict[str, Any]:
    vhost = call.vhost()
    body = call.body()
    unknown = sorted(set(body) - _EXPLAIN_FIELDS)
    if unknown:
        raise bad_request(f"unknown fields: {', '.join(unknown)}")
    routing_key = body.get("routing_key", "")
    headers = body.get("headers")
    if not isinstance(routing_key, str):
        raise bad_request("routing_key must be a string")
    if headers is not None and not isinstance(headers, dict):
        raise bad_request("headers must be an object")
    headers = headers or None
    domain = call.admin.node.vhosts[vhost]
    try:
        trace = explain_route(domain, exchange_name(call.params["exchange"]), routing_key, headers)
    except PreconditionFailed as error:
        raise bad_request(error.text) from None
    return trace_json(vhost, trace)


def trace_json(vhost: str, trace: RouteTrace) -> dict[str, Any]:
    return {
        "vhost": vhost,
        "exchange": trace.exchange,
        "routing_key": trace.routing_key,
        "headers": trace.headers or {},
        "keys": [_key(k) for k in trace.keys],
        "hops": [_hop(h) for h in trace.hops],
        "queues": list(trace.queues),
        "routed": trace.routed,
        "text": render(trace),
    }


def _key(key: RouteKey) -> dict[str, str]:
    return {"key": key.key, "origin": key.origin}


def _hop(hop: Hop) -> dict[str, Any]:
    return {
        "exchange": hop.exchange,
        "type": hop.type_name,
        "reached": {
            "how": hop.reached.how,
            "via": hop.reached.via,
            "binding_keys": list(hop.reached.binding_keys),
        },
        "held_ms": hop.held_ms,
        "trials": [_trial(hop, t) for t in hop.trials],
        "untried_keys": [_key(k) for k in hop.untried],
        "matched": [{"type": t.kind, "name": t.name} for t in hop.matched],
        "alternate_exchange": hop.alternate_exchange,
        "used_alternate": hop.used_alternate,
        "handoffs": [
            {
                "destination_type": h.target.kind,
                "destination": h.target.name,
                "outcome": h.outcome,
                "alternate": h.alternate,
                "after_hold": h.after_hold,
                "hop": h.hop,
            }
            for h in hop.handoffs
        ],
    }


def _trial(hop: Hop, trial: KeyTrial) -> dict[str, Any]:
    return {
        "key": _key(trial.key),
        "bindings": [
            {
                "source": hop.exchange,
                "destination_type": checked.target.kind,
                "destination": checked.target.name,
                "routing_key": checked.verdict.binding_key,
                "arguments": checked.verdict.arguments,
                "properties_key": properties_key(
                    checked.verdict.binding_key, checked.verdict.arguments
                ),
                "matched": checked.verdict.matched,
                "reason": checked.verdict.reason,
                "captures": [list(c) for c in checked.verdict.captures],
            }
            for checked in trial.verdicts
        ],
        "routed": [{"type": t.kind, "name": t.name} for t in trial.routed],
    }


ROUTES = [
    Route("/api/amqp-lite/topology/{vhost}", {"GET": topology}),
    Route("/api/amqp-lite/explain/{vhost}/{exchange}", {"POST": explain}),
]
