"""Field by field, the management API's JSON has the shape of RabbitMQ 3.10.8's.

tests/fixtures/management/ holds what a RabbitMQ 3.10.8 node with the management plugin
answered for the same topology (recorded by record.py there). Every field RabbitMQ sends must
be here with the same JSON type, recursively; values differ (names, counts, times) and are not
compared. The few fields we leave out are listed with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import pytest

from amqp_lite import run_in_thread
from tests.management_client import Api

FIXTURES = Path(__file__).parent / "fixtures" / "management"

# Fields RabbitMQ has and amqp-lite does not, by path ("*" matches any key), and why.
ABSENT = {
    "*.garbage_collection": "Erlang process internals",
    "*.reductions": "Erlang process internals",
    "*.reductions_details": "Erlang process internals",
    "*.backing_queue_status.*": "RabbitMQ's classic queue internals (we give mode, len, version)",
    "*.message_stats.disk_reads": "not counted (README)",
    "*.message_stats.disk_reads_details": "not counted (README)",
    "*.message_stats.disk_writes": "not counted (README)",
    "*.message_stats.disk_writes_details": "not counted (README)",
    "nodes.*": "Erlang VM figures (io, gc, mnesia, run queue...); see README",
    "overview.listeners.*.socket_opts.*": "Erlang socket options",
    "overview.contexts.*": "no Cowboy contexts",
    "definitions.*.limits": "vhost limits are not supported",
    "definitions.*.metadata": "exported vhosts have their own metadata form",
    "*.cluster_state.*": "keyed by node name, which differs",
    "overview.churn_rates.queue_declared": "declaring a queue that exists is not counted",
    "overview.churn_rates.queue_declared_details": "as queue_declared",
}

# Fields whose JSON type differs on purpose.
RETYPED = {
    "queue.consumer_utilisation": "null when there are no consumers, a number otherwise",
}


def _ignored(path: str, table: dict[str, str]) -> bool:
    """Whether a table's pattern covers `path`; "*" stands for one or more path parts."""
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".+"), path) for p in table)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(theirs: Any, ours: Any, path: str) -> list[str]:
    found: list[str] = []
    if theirs is None or ours is None:
        return found
    if _kind(theirs) != _kind(ours):
        if not _ignored(path, RETYPED):
            found.append(f"{path}: RabbitMQ has {_kind(theirs)}, we have {_kind(ours)}")
        return found
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            child = f"{path}.{key}"
            if key not in ours:
                if not _ignored(child, ABSENT):
                    found.append(f"{child}: missing")
                continue
            found += differences(value, ours[key], child)
    elif isinstance(theirs, list) and theirs and ours:
        found += differences(theirs[0], ours[0], f"{path}.*")
    return found


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    """The same topology the fixtures were recorded with, and amqp-lite's answers."""
    with run_in_thread(management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        api.put("/api/vhosts/shop", {"description": "the shop", "tags": "production"})
        api.put("/api/users/ann", {"password": "ann-secret", "tags": "monitoring"})
        api.put("/api/permissions/shop/ann", {"configure": "^ann", "write": ".*", "read": ".*"})
        api.put(
            "/api/policies/shop/ttl",
            {
                "pattern": "^orders",
                "definition": {"message-ttl": 60000},
                "apply-to": "queues",
                "priority": 1,
            },
        )
        params = pika.URLParameters(broker.vhost_url("shop"))
        params.client_properties = {"connection_name": "recorder"}
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare("orders", "topic", durable=True)
        channel.exchange_declare("audit", "fanout", durable=True)
        channel.queue_declare("orders.new", durable=True, arguments={"x-max-length": 100})
        channel.queue_bind("orders.new", "orders", "order.#")
        channel.exchange_bind("audit", "orders", "#")
        for n in range(3):
            channel.basic_publish(
                "orders",
                "order.created",
                f"order {n}".encode(),
                pika.BasicProperties(delivery_mode=2),
            )
        consumer = connection.channel()
        consumer.basic_qos(prefetch_count=1)
        consumer.basic_consume("orders.new", lambda *args: None, consumer_tag="ctag-1")
        connection.process_data_events(0.2)
        broker.advance(5)  # a statistics sample
        [listed] = api.get("/api/connections")
        name = quote(listed["name"], safe="")
        got: dict[str, Any] = {}
        for fixture in sorted(FIXTURES.glob("*.json")):
            recorded = json.loads(fixture.read_text())
            got[fixture.stem] = recorded
        paths = {
            "overview": "/api/overview",
            "whoami": "/api/whoami",
            "nodes": "/api/nodes",
            "vhosts": "/api/vhosts",
            "vhost": "/api/vhosts/shop",
            "users": "/api/users",
            "user": "/api/users/ann",
            "permissions": "/api/permissions",
            "permission": "/api/permissions/shop/ann",
            "policies": "/api/policies/shop",
            "policy": "/api/policies/shop/ttl",
            "exchanges": "/api/exchanges/shop",
            "exchange": "/api/exchanges/shop/orders",
            "exchange_bindings_source": "/api/exchanges/shop/orders/bindings/source",
            "queues": "/api/queues/shop",
            "queue": "/api/queues/shop/orders.new",
            "queue_bindings": "/api/queues/shop/orders.new/bindings",
            "bindings": "/api/bindings/shop",
            "binding": "/api/bindings/shop/e/orders/q/orders.new",
            "connections": "/api/connections",
            "connection": f"/api/connections/{name}",
            "connection_channels": f"/api/connections/{name}/channels",
            "channels": "/api/channels",
            "consumers": "/api/consumers",
            "definitions": "/api/definitions",
            "aliveness": "/api/aliveness-test/shop",
            "health_alarms": "/api/health/checks/alarms",
            "health_local_alarms": "/api/health/checks/local-alarms",
            "queues_paged": "/api/queues/shop?page=1&page_size=1",
            "queues_columns": "/api/queues/shop?columns=name,messages,message_stats.publish",
            "not_found": "/api/queues/shop/nowhere",
            "vhost_not_found": "/api/queues/nowhere",
        }
        ours = {stem: api.call("GET", path) for stem, path in paths.items()}
        ours["queue_get"] = api.post(
            "/api/queues/shop/orders.new/get",
            {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000},
        )
        ours["exchange_publish"] = api.post(
            "/api/exchanges/shop/orders/publish",
            {
                "properties": {},
                "routing_key": "order.x",
                "payload": "hi",
                "payload_encoding": "string",
            },
        )
        ours["forbidden"] = api.as_user("ann", "ann-secret").call("GET", "/api/users")
        connection.close()
        return {"theirs": got, "ours": ours}


FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_json_has_rabbitmqs_shape(answers: dict[str, Any], name: str) -> None:
    theirs = answers["theirs"][name]
    ours = answers["ours"][name]
    assert ours.status == theirs["status"], (name, ours.body)
    assert differences(theirs["body"], ours.body, name) == []
