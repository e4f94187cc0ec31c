"""/api/definitions: export the topology, or import one through the one definitions loader."""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import Call, Created, Route, bad_request
from amqp_lite.management.overview import RABBITMQ_VERSION
from amqp_lite.version import __version__

_PER_VHOST = (
    "permissions",
    "topic_permissions",
    "parameters",
    "policies",
    "queues",
    "exchanges",
    "bindings",
)


def export(call: Call) -> dict[str, Any]:
    call.require_admin()
    definitions = call.admin.export_definitions()
    return {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "product_name": "amqp-lite",
        "product_version": __version__,
        **definitions,
    }


def export_vhost(call: Call) -> dict[str, Any]:
    call.require_admin()
    vhost = call.vhost()
    definitions = call.admin.export_definitions()
    shaped: dict[str, Any] = {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
    }
    for key in _PER_VHOST:
        shaped[key] = [
            {k: v for k, v in item.items() if k != "vhost"}
            for item in definitions.get(key, [])
            if item.get("vhost") == vhost and key != "permissions"
        ]
    del shaped["permissions"]
    return shaped


def upload(call: Call) -> Created:
    """Apply an uploaded definitions document: all of it, or nothing, with the reason."""
    call.require_admin()
    from vhosts.definitions import DefinitionsError, parse

    try:
        text = call.request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("not_json") from None
    try:
        call.admin.load_definitions(parse(text, "<upload>"))
    except DefinitionsError as error:
        raise bad_request(str(error)) from None
    return Created(created=False)


ROUTES = [
    Route("/api/definitions", {"GET": export, "POST": upload}),
    Route("/api/definitions/{vhost}", {"GET": export_vhost}),
]
