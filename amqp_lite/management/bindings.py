"""/api/bindings: list, create and delete bindings between exchanges and queues or exchanges."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from amqp_lite.management.app import (
    Call,
    Created,
    Route,
    bad_request,
    declare_error,
    exchange_name,
    not_found,
)
from amqp_lite.management.paging import listing
from vhosts.errors import BrokerError
from vhosts.inventory import BindingInfo

_KINDS = {"q": "queue", "e": "exchange"}


def properties_key(routing_key: str, arguments: dict[str, Any]) -> str:
    """What names one binding in a path, as RabbitMQ makes it: the quoted routing key ("~" for
    an empty one), and a digest of the arguments when there are any."""
    key = quote(routing_key, safe="") or "~"
    if not arguments:
        return key
    digest = hashlib.sha1(json.dumps(arguments, sort_keys=True, default=str).encode()).digest()
    return f"{quote(routing_key, safe='')}~{digest[:6].hex()}"


def binding_json(b: BindingInfo) -> dict[str, Any]:
    return {
        "source": b.source,
        "vhost": b.vhost,
        "destination": b.destination,
        "destination_type": b.destination_type,
        "routing_key": b.routing_key,
        "arguments": b.arguments,
        "properties_key": properties_key(b.routing_key, b.arguments),
    }


def bindings(call: Call) -> Any:
    found = [b for v in call.visible_vhosts() for b in call.admin.bindings(v)]
    return listing([binding_json(b) for b in found], call.query)


def vhost_bindings(call: Call) -> Any:
    return listing([binding_json(b) for b in call.admin.bindings(call.vhost())], call.query)


def _between(call: Call) -> list[BindingInfo]:
    vhost = call.vhost()
    source = exchange_name(call.params["source"])
    kind = _KINDS[call.params["kind"]] if call.params.get("kind") in _KINDS else None
    if kind is None:
        raise not_found()
    destination = call.params["destination"]
    domain = call.admin.node.vhosts[vhost]
    table = domain.queues if kind == "queue" else domain.exchanges
    if source not in domain.exchanges or destination not in table:
        raise not_found()
    return [
        b
        for b in call.admin.bindings(vhost)
        if b.source == source and b.destination_type == kind and b.destination == destination
    ]


def between(call: Call) -> list[dict[str, Any]]:
    return [binding_json(b) for b in _between(call)]


def create(call: Call) -> Created:
    _between(call)  # both ends exist
    vhost_name = call.vhost()
    body = call.body()
    key = body.get("routing_key", "")
    arguments = body.get("arguments") or {}
    if not isinstance(key, str) or not isinstance(arguments, dict):
        raise bad_request("routing_key must be a string and arguments an object")
    vhost = call.admin.node.vhost(vhost_name)
    source = vhost.exchanges[exchange_name(call.params["source"])]
    destination_name = call.params["destination"]
    kind = _KINDS[call.params["kind"]]
    call.check("write", kind, vhost_name, destination_name)
    call.check("read", "exchange", vhost_name, source.name)
    destination = (
        vhost.queues[destination_name] if kind == "queue" else vhost.exchanges[destination_name]
    )
    try:
        vhost.bind(source, destination, key, arguments)
    except BrokerError as error:
        raise declare_error(error) from None
    return Created(location=properties_key(key, arguments))


def _one(call: Call) -> BindingInfo:
    wanted = call.params["props"]
    for b in _between(call):
        if properties_key(b.routing_key, b.arguments) == quote(wanted, safe="") or (
            properties_key(b.routing_key, b.arguments) == wanted
        ):
            return b
    raise not_found()


def one(call: Call) -> dict[str, Any]:
    return binding_json(_one(call))


def delete(call: Call) -> None:
    b = _one(call)
    vhost = call.admin.node.vhost(b.vhost)
    call.check("write", b.destination_type, b.vhost, b.destination)
    call.check("read", "exchange", b.vhost, b.source)
    source = vhost.exchanges[b.source]
    destination = (
        vhost.queues[b.destination]
        if b.destination_type == "queue"
        else vhost.exchanges[b.destination]
    )
    vhost.unbind(source, destination, b.routing_key, b.arguments)


ROUTES = [
    Route("/api/bindings", {"GET": bindings}),
    Route("/api/bindings/{vhost}", {"GET": vhost_bindings}),
    Route(
        "/api/bindings/{vhost}/e/{source}/{kind}/{destination}", {"GET": between, "POST": create}
    ),
    Route(
        "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
        {"GET": one, "DELETE": delete},
    ),
]
