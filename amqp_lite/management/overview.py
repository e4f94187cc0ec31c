"""/api/overview, /api/whoami, /api/nodes, /api/cluster-name, /api/extensions."""

from __future__ import annotations

import os
import platform
import resource
import socket
import time
from typing import Any

from amqp_lite.management.app import Call, Route, not_found
from amqp_lite.management.stats import CHANNEL_STATS, CHURN, message_stats, with_rates
from amqp_lite.version import __version__
from exchanges import ROUTERS

# The node's name, in RabbitMQ's name@host form; the same the AMQP server properties give as
# cluster_name for an unnamed node.
NODE_NAME = f"amqp-lite@{socket.gethostname().split('.')[0]}"
# The version clients and tools are told, as the AMQP server properties tell it.
RABBITMQ_VERSION = "3.10.8"
_STARTED = time.monotonic()

_EXCHANGE_TYPE_TEXT = {
    "direct": "AMQP direct exchange, as per the AMQP specification",
    "fanout": "AMQP fanout exchange, as per the AMQP specification",
    "headers": "AMQP headers exchange, as per the AMQP specification",
    "topic": "AMQP topic exchange, as per the AMQP specification",
    "x-consistent-hash": "Consistent Hashing Exchange",
    "x-delayed-message": "Delayed Message Exchange.",
}


def exchange_types() -> list[dict[str, Any]]:
    names = sorted({*ROUTERS, "x-delayed-message"})
    return [
        {"name": n, "description": _EXCHANGE_TYPE_TEXT.get(n, n), "enabled": True} for n in names
    ]


def listeners(call: Call) -> list[dict[str, Any]]:
    server = call.admin.server
    found = []
    if server is not None:
        found.append(
            {
                "node": NODE_NAME,
                "protocol": "amqp",
                "ip_address": server.host,
                "port": server.port,
                "socket_opts": {},
            }
        )
    if call.listening is not None:
        host, port = call.listening
        found.append(
            {
                "node": NODE_NAME,
                "protocol": "http",
                "ip_address": host,
                "port": port,
                "socket_opts": {},
            }
        )
    return found


def overview(call: Call) -> dict[str, Any]:
    stats, admin = call.stats, call.admin
    node = ("node",)
    visible = set(call.visible_vhosts()) if not call.is_monitor else set(admin.node.vhosts)
    queues = [q for v in visible for q in admin.node.vhosts[v].queues.values()]
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    totals = {
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    }
    connections = [
        c
        for c in admin.connections()
        if c.vhost in visible and (call.is_monitor or c.user == call.user.name)
    ]
    channels = [
        c
        for c in admin.channels()
        if c.vhost in visible and (call.is_monitor or c.user == call.user.name)
    ]
    return {
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "sample_retention_policies": {
            "global": [600, 3600, 28800, 86400],
            "basic": [600, 3600],
            "detailed": [600],
        },
        "exchange_types": exchange_types(),
        "product_version": __version__,
        "product_name": "amqp-lite",
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": NODE_NAME,
        "erlang_version": platform.python_version(),
        "erlang_full_version": f"{platform.python_implementation()} {platform.python_version()}",
        "release_series_support_status": "supported",
        "disable_stats": False,
        "enable_queue_totals": False,
        "message_stats": message_stats(stats, node, stats.node_counts(), CHANNEL_STATS),
        "churn_rates": with_rates(stats, node, stats.churn, CHURN),
        "queue_totals": with_rates(stats, node, totals, tuple(totals)),
        "object_totals": {
            "channels": len(channels),
            "connections": len(connections),
            "consumers": sum(q.consumer_count for q in queues),
            "exchanges": sum(len(admin.node.vhosts[v].exchanges) for v in visible),
            "queues": len(queues),
        },
        "statistics_db_event_queue": 0,
        "node": NODE_NAME,
        "listeners": listeners(call),
        "contexts": [],
    }


def whoami(call: Call) -> dict[str, Any]:
    return {"name": call.user.name, "tags": list(call.user.tags)}


def _node(call: Call) -> dict[str, Any]:
    stats = call.stats
    figures = call.admin.resources()
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    server = call.admin.server
    return {
        "name": NODE_NAME,
        "type": "disc",
        "running": True,
        "os_pid": str(os.getpid()),
        "uptime": int((time.monotonic() - _STARTED) * 1000),
        "processors": os.cpu_count() or 1,
        "rates_mode": "basic",
        "mem_used": figures.mem_used,
        "mem_limit": figures.mem_limit,
        "mem_alarm": figures.mem_alarm,
        "disk_free": figures.disk_free,
        "disk_free_limit": figures.disk_free_limit,
        "disk_free_alarm": figures.disk_free_alarm,
        "fd_used": len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0,
        "fd_total": fd_limit,
        "sockets_used": len(server.connections) if server is not None else 0,
        "sockets_total": fd_limit,
        "proc_used": 0,
        "proc_total": 0,
        "partitions": [],
        "cluster_links": [],
        "exchange_types": exchange_types(),
        "auth_mechanisms": [
            {
                "name": "PLAIN",
                "description": "SASL PLAIN authentication mechanism",
                "enabled": True,
            },
            {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": True},
        ],
        "applications": [{"name": "amqp_lite", "description": "amqp-lite", "version": __version__}],
        "enabled_plugins": ["rabbitmq_management"],
        "contexts": [],
        "log_files": [],
        "config_files": [],
        "db_dir": "",
        "net_ticktime": 60,
        **with_rates(stats, ("node",), stats.churn, CHURN),
    }


def nodes(call: Call) -> list[dict[str, Any]]:
    call.require_monitor()
    return [_node(call)]


def node(call: Call) -> dict[str, Any]:
    call.require_monitor()
    if call.params["node"] != NODE_NAME:
        raise not_found()
    return _node(call)


def cluster_name(call: Call) -> dict[str, Any]:
    return {"name": NODE_NAME}


def extensions(call: Call) -> list[Any]:
    return []


ROUTES = [
    Route("/api/overview", {"GET": overview}),
    Route("/api/whoami", {"GET": whoami}),
    Route("/api/nodes", {"GET": nodes}),
    Route("/api/nodes/{node}", {"GET": node}),
    Route("/api/cluster-name", {"GET": cluster_name}),
    Route("/api/extensions", {"GET": extensions}),
]
