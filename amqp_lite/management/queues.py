"""/api/queues: list, declare, delete, purge (`contents`) and get messages."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from amqp_lite.connection import ServerConnection
from amqp_lite.management.app import (
    Call,
    Created,
    Route,
    bad_request,
    declare_error,
    flag,
    not_found,
)
from amqp_lite.management.bindings import binding_json
from amqp_lite.management.connections import consumer_json
from amqp_lite.management.exchanges import properties_json
from amqp_lite.management.overview import NODE_NAME
from amqp_lite.management.paging import listing
from amqp_lite.management.stats import QUEUE_STATS, message_stats, with_rates
from amqp_lite.tracing import management_tracer
from vhosts import Queue
from vhosts.errors import BrokerError, NotImplementedFeature

ACK_MODES = ("ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false")


def queue_json(call: Call, queue: Queue, *, details: bool = False) -> dict[str, Any]:
    stats = call.stats
    vhost = call.admin.node.vhosts[queue.vhost_name]
    policy = vhost.policy_for("queue", queue.name)
    ready, unacked = queue.message_count, queue.unacked_count
    paged, paged_bytes = queue.paged_count, queue.paged_bytes
    totals = {
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    }
    consumers = list(queue.consumers)
    active = consumers[0] if consumers and queue.settings.single_active_consumer else None
    exclusive = next((c for c in consumers if c.exclusive), None)
    shaped: dict[str, Any] = {
        "name": queue.name,
        "vhost": queue.vhost_name,
        "type": queue.type_name,
        "node": NODE_NAME,
        "state": "running",
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive_owner is not None,
        "arguments": queue.arguments,
        "policy": policy.name if policy is not None else None,
        "operator_policy": None,
        "effective_policy_definition": policy.definition if policy is not None else {},
        "consumers": len(consumers),
        "consumer_capacity": 1.0 if consumers else 0,
        "consumer_utilisation": 1.0 if consumers else None,
        "exclusive_consumer_tag": exclusive.tag if exclusive is not None else None,
        "single_active_consumer_tag": active.tag if active is not None else None,
        "head_message_timestamp": None,
        "idle_since": None if consumers else _now_text(call),
        "memory": 0,
        "message_bytes": queue.ready_bytes + queue.unacked_bytes,
        "message_bytes_ready": queue.ready_bytes,
        "message_bytes_unacknowledged": queue.unacked_bytes,
        "message_bytes_ram": queue.ready_bytes - paged_bytes + queue.unacked_bytes,
        "message_bytes_paged_out": paged_bytes,
        "message_bytes_persistent": 0,
        "messages_ram": ready - paged + unacked,
        "messages_ready_ram": ready - paged,
        "messages_unacknowledged_ram": unacked,
        "messages_paged_out": paged,
        "messages_persistent": 0,
        "recoverable_slaves": None,
        "backing_queue_status": {"mode": "default", "len": ready, "version": 1},
        "message_stats": message_stats(stats, queue, queue.counts, QUEUE_STATS),
        **with_rates(stats, queue, totals, tuple(totals)),
    }
    if queue.type_name == "quorum":  # what RabbitMQ adds for its Raft members
        shaped.update(
            leader=NODE_NAME,
            members=[NODE_NAME],
            online=[NODE_NAME],
            messages_dlx=getattr(queue, "dead_letter_count", 0),
        )
    owner = queue.exclusive_owner
    if isinstance(owner, ServerConnection):
        shaped["owner_pid_details"] = {
            "name": owner.name,
            "peer_host": owner.peer[0],
            "peer_port": owner.peer[1],
        }
    if details:
        shaped["consumer_details"] = [
            consumer_json(info)
            for info in call.admin.consumers(queue.vhost_name)
            if info.queue == queue.name
        ]
        shaped["deliveries"] = []
        shaped["incoming"] = []
    return shaped


def _now_text(call: Call) -> str:
    now = datetime.datetime.fromtimestamp(call.admin.node.clock.now(), datetime.UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S")


def queues(call: Call) -> Any:
    found = [q for v in call.visible_vhosts() for q in _sorted(call, v)]
    return listing([queue_json(call, q) for q in found], call.query)


def vhost_queues(call: Call) -> Any:
    return listing([queue_json(call, q) for q in _sorted(call, call.vhost())], call.query)


def _sorted(call: Call, vhost: str) -> list[Queue]:
    queues = call.admin.node.vhosts[vhost].queues
    return [queues[name] for name in sorted(queues)]


def _queue(call: Call) -> Queue:
    queue = call.admin.node.vhosts[call.vhost()].queues.get(call.params["name"])
    if queue is None:
        raise not_found()
    return queue


def queue(call: Call) -> Any:
    return queue_json(call, _queue(call), details=True)


def put_queue(call: Call) -> Created:
    vhost_name, name = call.vhost(), call.params["name"]
    body = call.body()
    durable = flag(body, "durable", False)
    auto_delete = flag(body, "auto_delete", False)
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    call.check("configure", "queue", vhost_name, name)
    vhost = call.admin.node.vhost(vhost_name)
    existed = name in vhost.queues
    try:
        vhost.declare_queue(
            name, None, durable=durable, auto_delete=auto_delete, arguments=arguments
        )
    except BrokerError as error:
        raise declare_error(error) from None
    return Created(not existed)


def delete_queue(call: Call) -> None:
    queue = _queue(call)
    call.check("configure", "queue", queue.vhost_name, queue.name)
    try:
        call.admin.delete_queue(
            queue.vhost_name,
            queue.name,
            if_unused=call.query.get("if-unused") == "true",
            if_empty=call.query.get("if-empty") == "true",
        )
    except ValueError as error:
        raise bad_request(str(error)) from None


def purge(call: Call) -> None:
    queue = _queue(call)
    call.check("read", "queue", queue.vhost_name, queue.name)
    try:
        call.admin.purge_queue(queue.vhost_name, queue.name)
    except NotImplementedFeature as error:  # a stream, as RabbitMQ answers for one
        raise bad_request(error.text) from None


def get_messages(call: Call) -> list[dict[str, Any]]:
    """Take up to `count` messages and put them back or settle them, as `ackmode` says."""
    queue = _queue(call)
    call.check("read", "queue", queue.vhost_name, queue.name)
    body = call.body()
    missing = [k for k in ("count", "ackmode", "encoding") if k not in body]
    if missing:
        raise bad_request("[" + ",".join(f"{{key_missing,{k}}}" for k in missing) + "]")
    count, ackmode, encoding = _natural(body["count"]), body["ackmode"], body["encoding"]
    if count is None:
        raise bad_request("count must be a non-negative integer")
    if ackmode not in ACK_MODES:
        raise bad_request(f"ackmode must be one of {', '.join(ACK_MODES)}")
    if encoding not in ("auto", "base64"):
        raise bad_request("encoding must be auto or base64")
    truncate = body.get("truncate")
    if truncate is not None and (truncate := _natural(truncate)) is None:
        raise bad_request("truncate must be a non-negative integer")
    taken = []
    results = []
    vhost = call.admin.node.vhost(queue.vhost_name)
    tracer = None
    if vhost.tracing:
        tracer = management_tracer(vhost, call.user.name, call.admin.node.cluster_name)
    for _ in range(count):
        try:
            entry = queue.get(no_ack=False)
        except NotImplementedFeature as error:  # a stream: RabbitMQ's 400 names the code
            raise bad_request(f"{error.reply_code} {error.text}") from None
        if entry is None:
            break
        # What basic.get would send, as RabbitMQ's API gets it: a quorum queue's
        # x-delivery-count included.
        message = queue.outgoing(entry, got=True)
        if tracer is not None:
            tracer.delivered(entry, message)
        taken.append(entry)
        payload = message.body if truncate is None else message.body[:truncate]
        results.append(
            {
                "payload_bytes": len(message.body),
                "redelivered": entry.redelivered,
                "exchange": message.exchange,
                "routing_key": message.routing_key,
                "message_count": queue.message_count,
                "properties": properties_json(message.properties),
                **_payload(payload, encoding),
            }
        )
    if ackmode.endswith("requeue_true"):
        queue.requeue(taken)
    elif ackmode == "ack_requeue_false":
        for entry in taken:
            queue.ack(entry)
    else:
        for entry in taken:
            queue.discard(entry)
    return results


def _natural(value: Any) -> int | None:
    """A count: RabbitMQ takes a number or its digits as a string (rabbitmqadmin sends those)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _payload(payload: bytes, encoding: str) -> dict[str, Any]:
    if encoding == "auto":
        try:
            return {"payload": payload.decode("utf-8"), "payload_encoding": "string"}
        except UnicodeDecodeError:
            pass
    return {"payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}


def queue_bindings(call: Call) -> Any:
    queue = _queue(call)
    found = [
        b
        for b in call.admin.bindings(queue.vhost_name)
        if b.destination_type == "queue" and b.destination == queue.name
    ]
    return [binding_json(b) for b in found]


ROUTES = [
    Route("/api/queues", {"GET": queues}),
    Route("/api/queues/{vhost}", {"GET": vhost_queues}),
    Route("/api/queues/{vhost}/{name}", {"GET": queue, "PUT": put_queue, "DELETE": delete_queue}),
    Route("/api/queues/{vhost}/{name}/contents", {"DELETE": purge}),
    Route("/api/queues/{vhost}/{name}/get", {"POST": get_messages}),
    Route("/api/queues/{vhost}/{name}/bindings", {"GET": queue_bindings}),
]
