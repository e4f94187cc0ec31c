"""The list_* verbs: which columns each takes (rabbitmqctl's info keys), read from the JSON the
management API gives for each object."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from amqp_lite.ctl.api import EX_USAGE, Api, CtlError, segment
from amqp_lite.ctl.output import Output

Column = Callable[[dict[str, Any]], Any]


def field(name: str, default: Any = "") -> Column:
    return lambda obj: obj.get(name, default)


def nested(outer: str, inner: str) -> Column:
    return lambda obj: (obj.get(outer) or {}).get(inner, "")


def _protocol(obj: dict[str, Any]) -> str:
    return "{0,9,1}" if obj.get("protocol") == "AMQP 0-9-1" else str(obj.get("protocol", ""))


@attrs.frozen
class Listing:
    """One list_* verb: its API path, banner, default columns and every column it knows."""

    path: str  # "{vhost}" is replaced by the vhost, percent-encoded
    banner: str  # "{vhost}" likewise, as given
    default: tuple[str, ...]
    columns: dict[str, Column]
    preamble: tuple[str, ...] = ()  # printed before the banner (list_queues' timeout line)

    @property
    def per_vhost(self) -> bool:
        return "{vhost}" in self.path


def _fields(*names: str) -> dict[str, Column]:
    return {name: field(name) for name in names}


QUEUES = Listing(
    "/api/queues/{vhost}",
    "Listing queues for vhost {vhost} ...",
    ("name", "messages"),
    {
        **_fields("name", "durable", "auto_delete", "arguments", "policy"),
        "pid": field("pid"),
        "owner_pid": nested("owner_pid_details", "name"),
        **_fields("exclusive", "exclusive_consumer_tag"),
        "exclusive_consumer_pid": nested("exclusive_consumer_details", "channel"),
        **_fields(
            "messages_ready",
            "messages_unacknowledged",
            "messages",
            "messages_ready_ram",
            "messages_unacknowledged_ram",
            "messages_ram",
            "messages_persistent",
            "message_bytes",
            "message_bytes_ready",
            "message_bytes_unacknowledged",
            "message_bytes_ram",
            "message_bytes_persistent",
            "head_message_timestamp",
            "disk_reads",
            "disk_writes",
            "consumers",
            "consumer_utilisation",
            "consumer_capacity",
            "memory",
            "slave_pids",
            "synchronised_slave_pids",
            "state",
            "type",
            "leader",
            "members",
            "online",
        ),
    },
    preamble=("Timeout: 60.0 seconds ...",),
)

EXCHANGES = Listing(
    "/api/exchanges/{vhost}",
    "Listing exchanges for vhost {vhost} ...",
    ("name", "type"),
    _fields(
        "name",
        "type",
        "durable",
        "auto_delete",
        "internal",
        "arguments",
        "policy",
        "user_who_performed_action",
    ),
)

BINDINGS = Listing(
    "/api/bindings/{vhost}",
    "Listing bindings for vhost {vhost}...",
    (
        "source_name",
        "source_kind",
        "destination_name",
        "destination_kind",
        "routing_key",
        "arguments",
    ),
    {
        "source_name": field("source"),
        "source_kind": lambda obj: "exchange",
        "destination_name": field("destination"),
        "destination_kind": field("destination_type"),
        "routing_key": field("routing_key"),
        "arguments": field("arguments", {}),
    },
)

CONNECTIONS = Listing(
    "/api/connections",
    "Listing connections ...",
    ("user", "peer_host", "peer_port", "state"),
    {
        "pid": field("name"),  # no Erlang processes here: a connection is known by its name
        **_fields(
            "name",
            "port",
            "host",
            "peer_port",
            "peer_host",
            "ssl",
            "ssl_protocol",
            "ssl_key_exchange",
            "ssl_cipher",
            "ssl_hash",
            "peer_cert_subject",
            "peer_cert_issuer",
            "peer_cert_validity",
            "state",
            "channels",
        ),
        "protocol": _protocol,
        **_fields(
            "auth_mechanism",
            "user",
            "vhost",
            "timeout",
            "frame_max",
            "channel_max",
            "client_properties",
            "recv_oct",
            "recv_cnt",
            "send_oct",
            "send_cnt",
            "send_pend",
            "connected_at",
        ),
    },
)

CHANNELS = Listing(
    "/api/channels",
    "Listing channels ...",
    ("pid", "user", "consumer_count", "messages_unacknowledged"),
    {
        "pid": field("name"),  # as for connections: the channel's name
        "connection": nested("connection_details", "name"),
        **_fields(
            "name",
            "number",
            "user",
            "vhost",
            "transactional",
            "confirm",
            "consumer_count",
            "messages_unacknowledged",
            "messages_uncommitted",
            "acks_uncommitted",
            "messages_unconfirmed",
            "prefetch_count",
            "global_prefetch_count",
        ),
    },
)

CONSUMERS = Listing(
    "/api/consumers/{vhost}",
    "Listing consumers in vhost {vhost} ...",
    (
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ),
    {
        "queue_name": nested("queue", "name"),
        "channel_pid": nested("channel_details", "name"),
        **_fields("consumer_tag", "ack_required", "prefetch_count", "active", "activity_status"),
        "arguments": field("arguments", {}),
    },
)

VHOSTS = Listing(
    "/api/vhosts",
    "Listing vhosts ...",
    ("name",),
    {
        **_fields("name", "description", "tracing", "cluster_state"),
        "tags": lambda obj: "[" + ", ".join(obj.get("tags") or []) + "]",
    },
)

USERS = Listing(
    "/api/users",
    "Listing users ...",
    ("user", "tags"),
    {
        "user": field("name"),
        "tags": lambda obj: "[" + ", ".join(_tags(obj.get("tags"))) + "]",
    },
)

POLICIES = Listing(
    "/api/policies/{vhost}",
    'Listing policies for vhost "{vhost}" ...',
    ("vhost", "name", "pattern", "apply-to", "definition", "priority"),
    {
        **_fields("vhost", "name", "pattern", "apply-to", "priority"),
        "definition": lambda obj: _compact_json(obj.get("definition", {})),
    },
)

LISTINGS = {
    "list_queues": QUEUES,
    "list_exchanges": EXCHANGES,
    "list_bindings": BINDINGS,
    "list_connections": CONNECTIONS,
    "list_channels": CHANNELS,
    "list_consumers": CONSUMERS,
    "list_vhosts": VHOSTS,
    "list_users": USERS,
    "list_policies": POLICIES,
}


def run_listing(
    api: Api, output: Output, listing: Listing, vhost: str, columns: Sequence[str]
) -> None:
    wanted = tuple(_split_columns(columns)) or listing.default
    unknown = [c for c in wanted if c not in listing.columns]
    if unknown:
        raise CtlError(f"Info key(s) {','.join(unknown)} are not supported", EX_USAGE)
    for line in listing.preamble:
        output.banner(line)
    output.banner(listing.banner.format(vhost=vhost))
    answer = api.call("GET", listing.path.format(vhost=segment(vhost)))
    if answer.status == 404 and listing.per_vhost:
        found: list[dict[str, Any]] = []  # as rabbitmqctl: a vhost that is not there lists nothing
    elif answer.status != 200 or not isinstance(answer.body, list):
        raise CtlError(f"cannot list: HTTP {answer.status}")
    else:
        found = answer.body
    rows = [[listing.columns[c](obj) for c in wanted] for obj in found]
    output.table(wanted, rows)


def _split_columns(columns: Sequence[str]) -> list[str]:
    """rabbitmqctl takes `name messages` and `name,messages` alike."""
    return [c.strip() for text in columns for c in text.split(",") if c.strip()]


def _tags(tags: Any) -> list[str]:
    if isinstance(tags, str):
        return [t for t in tags.split(",") if t]
    return [str(t) for t in tags or []]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
