"""/api/connections, /api/channels and /api/consumers: who is connected and doing what.

Users tagged monitoring or administrator see everyone's; the others see their own.
"""

from __future__ import annotations

from typing import Any

from amqp_lite.admin import DEFAULT_CLOSE_REASON, ChannelInfo, ConnectionInfo, ConsumerInfo
from amqp_lite.management.app import Call, Route, not_authorised, not_found
from amqp_lite.management.overview import NODE_NAME
from amqp_lite.management.paging import listing
from amqp_lite.management.stats import CHANNEL_STATS, message_stats, with_rates

_BYTES = ("recv_oct", "send_oct")


def connection_json(call: Call, info: ConnectionInfo) -> dict[str, Any]:
    connection = info.connection
    values = {"recv_oct": connection.recv_oct, "send_oct": connection.send_oct}
    return {
        "name": info.name,
        "node": NODE_NAME,
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "state": info.state,
        "user": info.user,
        "user_who_performed_action": info.user,
        "vhost": info.vhost,
        "host": info.host,
        "port": info.port,
        "peer_host": info.peer_host,
        "peer_port": info.peer_port,
        "ssl": False,
        "peer_cert_issuer": "",
        "peer_cert_subject": "",
        "peer_cert_validity": "",
        "ssl_cipher": "",
        "ssl_hash": "",
        "ssl_key_exchange": "",
        "ssl_protocol": "",
        "auth_mechanism": info.auth_mechanism,
        "channels": info.channels,
        "channel_max": info.channel_max,
        "frame_max": info.frame_max,
        "timeout": info.heartbeat,
        "client_properties": info.client_properties,
        "user_provided_name": info.client_properties.get("connection_name"),
        "connected_at": int(info.connected_at * 1000),
        "recv_cnt": connection.recv_cnt,
        "send_cnt": connection.send_cnt,
        "send_pend": 0,
        **with_rates(call.stats, connection, values, _BYTES),
    }


def _visible(call: Call, user: str, vhost: str) -> bool:
    return call.is_monitor or (user == call.user.name and call.user.may_enter(vhost))


def connections(call: Call) -> Any:
    found = [c for c in call.admin.connections() if _visible(call, c.user, c.vhost)]
    return listing([connection_json(call, c) for c in found], call.query)


def vhost_connections(call: Call) -> Any:
    vhost = call.vhost()
    found = [
        c for c in call.admin.connections() if c.vhost == vhost and _visible(call, c.user, c.vhost)
    ]
    return listing([connection_json(call, c) for c in found], call.query)


def _connection(call: Call) -> ConnectionInfo:
    for info in call.admin.connections():
        if info.name == call.params["name"]:
            if not _visible(call, info.user, info.vhost):
                raise not_authorised("User not authorised to access object")
            return info
    raise not_found()


def connection(call: Call) -> Any:
    return connection_json(call, _connection(call))


def close_connection(call: Call) -> None:
    """Close it with 320 CONNECTION_FORCED and the X-Reason header's text, as RabbitMQ does."""
    info = _connection(call)
    if not call.is_admin and info.user != call.user.name:
        raise not_authorised("User not authorised to access object")
    reason = call.request.headers.get("x-reason") or DEFAULT_CLOSE_REASON
    call.admin.close_connection(info.name, reason)


def channel_json(
    call: Call, info: ChannelInfo, connection: ConnectionInfo | None
) -> dict[str, Any]:
    channel = _live_channel(connection, info.number) if connection is not None else None
    shaped: dict[str, Any] = {
        "name": info.name,
        "node": NODE_NAME,
        "number": info.number,
        "user": info.user,
        "user_who_performed_action": info.user,
        "vhost": info.vhost,
        "state": info.state,
        "consumer_count": info.consumers,
        "messages_unacknowledged": info.messages_unacknowledged,
        "messages_unconfirmed": 0,
        "messages_uncommitted": 0,
        "acks_uncommitted": 0,
        "pending_raft_commands": 0,
        "prefetch_count": info.prefetch_count,
        "global_prefetch_count": info.global_prefetch_count,
        "confirm": info.confirm,
        "transactional": info.transactional,
        "idle_since": None,
        "connection_details": {
            "name": info.connection,
            "peer_host": connection.peer_host if connection is not None else "",
            "peer_port": connection.peer_port if connection is not None else 0,
        },
    }
    if channel is not None:
        shaped["message_stats"] = message_stats(call.stats, channel, channel.counts, CHANNEL_STATS)
    return shaped


def _live_channel(connection: ConnectionInfo, number: int) -> Any:
    return connection.connection.channels.get(number)


def _channels(
    call: Call, vhost: str | None = None, connection_name: str | None = None
) -> list[dict[str, Any]]:
    by_name = {c.name: c for c in call.admin.connections()}
    return [
        channel_json(call, info, by_name.get(info.connection))
        for info in call.admin.channels()
        if _visible(call, info.user, info.vhost)
        and (vhost is None or info.vhost == vhost)
        and (connection_name is None or info.connection == connection_name)
    ]


def channels(call: Call) -> Any:
    return listing(_channels(call), call.query)


def vhost_channels(call: Call) -> Any:
    return listing(_channels(call, vhost=call.vhost()), call.query)


def connection_channels(call: Call) -> Any:
    return listing(_channels(call, connection_name=_connection(call).name), call.query)


def channel(call: Call) -> Any:
    found = [c for c in _channels(call) if c["name"] == call.params["name"]]
    if not found:
        raise not_found()
    return found[0]


def consumer_json(info: ConsumerInfo, connection: ConnectionInfo | None = None) -> dict[str, Any]:
    peer_host, peer_port, number, user = "", 0, 0, ""
    if connection is not None:
        peer_host, peer_port, user = connection.peer_host, connection.peer_port, connection.user
    number = int(info.channel.rsplit("(", 1)[-1].rstrip(")") or 0)
    return {
        "consumer_tag": info.consumer_tag,
        "queue": {"name": info.queue, "vhost": info.vhost},
        "channel_details": {
            "name": info.channel,
            "number": number,
            "connection_name": info.connection,
            "peer_host": peer_host,
            "peer_port": peer_port,
            "user": user,
            "node": NODE_NAME,
        },
        "ack_required": info.ack_required,
        "exclusive": info.exclusive,
        "prefetch_count": info.prefetch_count,
        "arguments": info.arguments,
        "active": True,
        "activity_status": "up",
    }


def _consumers(call: Call, vhost: str | None) -> list[dict[str, Any]]:
    by_name = {c.name: c for c in call.admin.connections()}
    return [
        consumer_json(info, by_name.get(info.connection))
        for info in call.admin.consumers(vhost)
        if call.user.may_enter(info.vhost)
    ]


def consumers(call: Call) -> Any:
    return listing(_consumers(call, None), call.query)


def vhost_consumers(call: Call) -> Any:
    return listing(_consumers(call, call.vhost()), call.query)


ROUTES = [
    Route("/api/connections", {"GET": connections}),
    Route("/api/connections/{name}", {"GET": connection, "DELETE": close_connection}),
    Route("/api/connections/{name}/channels", {"GET": connection_channels}),
    Route("/api/vhosts/{vhost}/connections", {"GET": vhost_connections}),
    Route("/api/vhosts/{vhost}/channels", {"GET": vhost_channels}),
    Route("/api/channels", {"GET": channels}),
    Route("/api/channels/{name}", {"GET": channel}),
    Route("/api/consumers", {"GET": consumers}),
    Route("/api/consumers/{vhost}", {"GET": vhost_consumers}),
]
