"""/api/exchanges: list, declare, delete, their bindings, and publishing a message."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from amqp_lite.management.app import (
    Call,
    Created,
    Route,
    bad_request,
    declare_error,
    exchange_name,
    flag,
    not_found,
)
from amqp_lite.management.bindings import binding_json
from amqp_lite.management.paging import listing
from amqp_lite.management.stats import EXCHANGE_STATS, with_rates
from amqp_lite.tracing import management_tracer
from amqp_lite.wire import Properties
from amqp_lite.wire.properties import encode_properties
from vhosts import Exchange, Message
from vhosts.errors import BrokerError

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


def exchange_json(call: Call, exchange: Exchange, *, details: bool = False) -> dict[str, Any]:
    vhost = call.admin.node.vhosts[exchange.vhost_name]
    policy = vhost.policy_for("exchange", exchange.name) if exchange.name else None
    values = {"publish_in": exchange.publish_in, "publish_out": exchange.publish_out}
    shaped: dict[str, Any] = {
        "name": exchange.name,
        "vhost": exchange.vhost_name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": exchange.arguments,
        "user_who_performed_action": "rmq-internal" if exchange.is_system else "",
        "message_stats": with_rates(call.stats, exchange, values, EXCHANGE_STATS),
    }
    if policy is not None:
        shaped["policy"] = policy.name
    if details:
        shaped["incoming"] = []
        shaped["outgoing"] = []
    return shaped


def properties_json(properties: Any) -> dict[str, Any]:
    """The properties a message has set, as RabbitMQ's management shows them."""
    shaped = {}
    for name in _PROPERTY_NAMES:
        value = getattr(properties, name, None)
        if value is not None:
            shaped[name] = value
    return shaped


def exchanges(call: Call) -> Any:
    found = [e for v in call.visible_vhosts() for e in _sorted(call, v)]
    return listing([exchange_json(call, e) for e in found], call.query)


def vhost_exchanges(call: Call) -> Any:
    return listing([exchange_json(call, e) for e in _sorted(call, call.vhost())], call.query)


def _sorted(call: Call, vhost: str) -> list[Exchange]:
    table = call.admin.node.vhosts[vhost].exchanges
    return [table[name] for name in sorted(table)]


def _exchange(call: Call) -> Exchange:
    name = exchange_name(call.params["name"])
    exchange = call.admin.node.vhosts[call.vhost()].exchanges.get(name)
    if exchange is None:
        raise not_found()
    return exchange


def exchange(call: Call) -> Any:
    return exchange_json(call, _exchange(call), details=True)


def put_exchange(call: Call) -> Created:
    vhost_name, name = call.vhost(), call.params["name"]
    body = call.body()
    type_name = body.get("type", "direct")
    flags = {key: flag(body, key, False) for key in ("durable", "auto_delete", "internal")}
    arguments = body.get("arguments") or {}
    if not isinstance(type_name, str) or not isinstance(arguments, dict):
        raise bad_request("type must be a string and arguments an object")
    call.check("configure", "exchange", vhost_name, name)
    vhost = call.admin.node.vhost(vhost_name)
    existed = name in vhost.exchanges
    try:
        vhost.declare_exchange(name, type_name, arguments=arguments, **flags)
    except BrokerError as error:
        raise declare_error(error) from None
    return Created(not existed)


def delete_exchange(call: Call) -> None:
    vhost_name, name = call.vhost(), call.params["name"]
    if name not in call.admin.node.vhosts[vhost_name].exchanges:
        raise not_found()
    call.check("configure", "exchange", vhost_name, name)
    try:
        call.admin.node.vhost(vhost_name).delete_exchange(
            name, if_unused=call.query.get("if-unused") == "true"
        )
    except BrokerError as error:
        raise declare_error(error) from None


def publish(call: Call) -> dict[str, Any]:
    """Publish one message, as the management UI's form does: {"routed": true|false}."""
    target = _exchange(call)
    body = call.body()
    missing = [
        k for k in ("properties", "routing_key", "payload", "payload_encoding") if k not in body
    ]
    if missing:
        raise bad_request("[" + ",".join(f"{{key_missing,{k}}}" for k in missing) + "]")
    call.check("write", "exchange", target.vhost_name, target.name)
    payload, encoding = body["payload"], body["payload_encoding"]
    if not isinstance(payload, str) or encoding not in ("string", "base64"):
        raise bad_request("payload must be a string, payload_encoding string or base64")
    try:
        content = (
            payload.encode() if encoding == "string" else base64.b64decode(payload, validate=True)
        )
    except binascii.Error:
        raise bad_request("payload is not base64") from None
    given = body["properties"]
    if not isinstance(given, dict) or set(given) - set(_PROPERTY_NAMES):
        raise bad_request(
            f"unknown properties: {sorted(set(given) - set(_PROPERTY_NAMES))}"
            if isinstance(given, dict)
            else "properties must be an object"
        )
    try:
        properties = Properties(**given)
        raw = encode_properties(properties)
    except (TypeError, ValueError, OverflowError) as error:
        raise bad_request(f"bad properties: {error}") from None
    routing_key = body["routing_key"]
    if not isinstance(routing_key, str):
        raise bad_request("routing_key must be a string")
    message = Message(target.name, routing_key, properties, content, raw)
    vhost = call.admin.node.vhost(target.vhost_name)
    try:
        trace = None
        if vhost.tracing:
            node = call.admin.node.cluster_name
            trace = management_tracer(vhost, call.user.name, node).published
        queues, _ = vhost.publish(target, message, trace)
    except BrokerError as error:
        raise bad_request(error.text) from None
    return {"routed": bool(queues)}


def _bindings(call: Call, side: str) -> Any:
    target = _exchange(call)
    found = [
        b
        for b in call.admin.bindings(target.vhost_name)
        if (
            b.source == target.name
            if side == "source"
            else b.destination_type == "exchange" and b.destination == target.name
        )
    ]
    return [binding_json(b) for b in found]


def source_bindings(call: Call) -> Any:
    return _bindings(call, "source")


def destination_bindings(call: Call) -> Any:
    return _bindings(call, "destination")


ROUTES = [
    Route("/api/exchanges", {"GET": exchanges}),
    Route("/api/exchanges/{vhost}", {"GET": vhost_exchanges}),
    Route(
        "/api/exchanges/{vhost}/{name}",
        {"GET": exchange, "PUT": put_exchange, "DELETE": delete_exchange},
    ),
    Route("/api/exchanges/{vhost}/{name}/publish", {"POST": publish}),
    Route("/api/exchanges/{vhost}/{name}/bindings/source", {"GET": source_bindings}),
    Route("/api/exchanges/{vhost}/{name}/bindings/destination", {"GET": destination_bindings}),
]
