"""/api/aliveness-test and /api/health/checks: is the broker able to do its job?"""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import Call, Route, json_response
from amqp_lite.management.overview import NODE_NAME
from amqp_lite.wire import Properties
from vhosts import Message

ALIVENESS_QUEUE = "aliveness-test"


def aliveness(call: Call) -> Any:
    """As RabbitMQ's: declare a queue, publish to it, get the message back."""
    vhost = call.admin.node.vhost(call.vhost())
    queue = vhost.declare_queue(ALIVENESS_QUEUE, None)

    vhost.publish(vhost.exchanges[""], Message("", ALIVENESS_QUEUE, Properties(), b"test_message"))
    entry = queue.get(no_ack=True)
    if entry is None or entry.message.body != b"test_message":
        return json_response(
            500, {"status": "failed", "reason": "the test message did not come back"}
        )
    return {"status": "ok"}


def _alarms(call: Call) -> Any:
    alarms = sorted(call.admin.node.alarms)
    if not alarms:
        return {"status": "ok"}
    return json_response(
        503,
        {
            "status": "failed",
            "reason": "resource alarm(s) in effect in the cluster",
            "alarms": [{"node": NODE_NAME, "resource": resource} for resource in alarms],
        },
    )


def alarms(call: Call) -> Any:
    call.require_monitor()
    return _alarms(call)


def local_alarms(call: Call) -> Any:
    call.require_monitor()
    return _alarms(call)


def virtual_hosts(call: Call) -> Any:
    call.require_monitor()
    return {"status": "ok"}  # every vhost runs while the broker does


def port_listener(call: Call) -> Any:
    call.require_monitor()
    port = call.params["port"]
    listening = {str(p) for p in _ports(call)}
    if port in listening:
        return {"status": "ok", "port": int(port)}
    return json_response(
        503,
        {
            "status": "failed",
            "reason": "No active listener",
            "missing": int(port) if port.isdigit() else port,
            "ports": sorted(int(p) for p in listening),
        },
    )


def protocol_listener(call: Call) -> Any:
    call.require_monitor()
    protocol = call.params["protocol"]
    if protocol in ("amqp", "amqp091", "amqp0-9-1", "http", "management"):
        return {"status": "ok", "protocol": protocol}
    return json_response(
        503,
        {
            "status": "failed",
            "reason": "No active listener",
            "missing": protocol,
            "protocols": ["amqp", "http"],
        },
    )


def _ports(call: Call) -> list[int]:
    ports = []
    if call.admin.server is not None:
        ports.append(call.admin.server.port)
    if call.listening is not None:
        ports.append(call.listening[1])
    return ports


ROUTES = [
    Route("/api/aliveness-test/{vhost}", {"GET": aliveness}),
    Route("/api/health/checks/alarms", {"GET": alarms}),
    Route("/api/health/checks/local-alarms", {"GET": local_alarms}),
    Route("/api/health/checks/virtual-hosts", {"GET": virtual_hosts}),
    Route("/api/health/checks/port-listener/{port}", {"GET": port_listener}),
    Route("/api/health/checks/protocol-listener/{protocol}", {"GET": protocol_listener}),
]
