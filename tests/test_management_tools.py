"""Operators' tools against amqp-lite's management API: rabbitmqadmin and pyrabbit2, unchanged.

rabbitmqadmin is RabbitMQ's own program, not ours to ship: the test uses the one a RabbitMQ
installation provides (Debian's rabbitmq-server package puts it in /usr/bin), else the script
`make rabbitmqadmin` took out of that package into .tools/, and is skipped, saying so, where
there is neither.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker

from amqp_lite import ThreadedBroker, run_in_thread

FETCHED_RABBITMQADMIN = Path(__file__).resolve().parent.parent / ".tools/usr/bin/rabbitmqadmin"


def _rabbitmqadmin() -> str | None:
    found = shutil.which("rabbitmqadmin")
    if found:
        return found
    shipped = glob.glob(
        "/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_management-*/priv/www/cli/rabbitmqadmin"
    )
    if shipped:
        return shipped[0]
    return str(FETCHED_RABBITMQADMIN) if FETCHED_RABBITMQADMIN.is_file() else None


RABBITMQADMIN = _rabbitmqadmin()


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with run_in_thread(vhosts=("/", "shop"), management=True) as running:
        yield running


def _port(broker: ThreadedBroker) -> int:
    assert broker.management_url is not None
    return int(broker.management_url.rstrip("/").rsplit(":", 1)[1])


@pytest.mark.skipif(
    RABBITMQADMIN is None,
    reason="rabbitmqadmin not found: neither installed (Debian's rabbitmq-server package) nor"
    " taken out of that package by `make rabbitmqadmin`",
)
def test_rabbitmqadmin(broker: ThreadedBroker, tmp_path: Path) -> None:
    assert RABBITMQADMIN is not None

    def admin(*args: str, vhost: str = "shop") -> str:
        command = [sys.executable, RABBITMQADMIN, "-H", "127.0.0.1", "-P", str(_port(broker))]
        command += ["-u", "guest", "-p", "guest", "-V", vhost, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def listed(*args: str) -> list[dict[str, object]]:
        return json.loads(admin("-f", "raw_json", *args))

    assert "declared" in admin("declare", "exchange", "name=orders", "type=topic", "durable=true")
    admin("declare", "queue", "name=orders.new", "durable=true")
    admin("declare", "binding", "source=orders", "destination=orders.new", "routing_key=order.#")
    assert "Message published" in admin(
        "publish", "exchange=orders", "routing_key=order.created", "payload=hello"
    )
    assert "Message published but NOT routed" in admin(
        "publish", "exchange=orders", "routing_key=elsewhere", "payload=lost"
    )
    [queue] = [q for q in listed("list", "queues") if q["name"] == "orders.new"]
    assert queue["messages"] == 1
    [message] = listed("get", "queue=orders.new", "ackmode=ack_requeue_true")
    assert message["payload"] == "hello" and message["routing_key"] == "order.created"
    assert {"orders", "amq.direct"} <= {e["name"] for e in listed("list", "exchanges")}
    assert [b["destination"] for b in listed("list", "bindings") if b["source"] == "orders"] == [
        "orders.new"
    ]
    admin("declare", "user", "name=ann", "password=secret", "tags=monitoring")
    admin("declare", "permission", "vhost=shop", "user=ann", "configure=.*", "write=.*", "read=.*")
    admin("declare", "policy", "name=cap", "pattern=^orders", 'definition={"max-length": 5}')
    assert [p["name"] for p in listed("list", "policies")] == ["cap"]
    assert {u["name"] for u in listed("list", "users")} == {"guest", "ann"}
    assert "shop" in {v["name"] for v in listed("list", "vhosts")}
    overview = listed("show", "overview")
    assert overview[0]["rabbitmq_version"] == "3.10.8"

    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("shop")))
    [listed_connection] = listed("list", "connections")
    admin("close", "connection", f"name={listed_connection['name']}")
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert closed.value.reply_code == 320

    exported = tmp_path / "definitions.json"
    assert "Exported definitions" in admin("export", str(exported))
    assert {"orders.new"} <= {q["name"] for q in json.loads(exported.read_text())["queues"]}
    admin("purge", "queue", "name=orders.new")
    admin("delete", "queue", "name=orders.new")
    assert [q["name"] for q in listed("list", "queues")] == []


def test_pyrabbit2(broker: ThreadedBroker) -> None:
    from pyrabbit2.api import Client

    client = Client(f"127.0.0.1:{_port(broker)}", "guest", "guest")
    assert client.is_alive("shop")
    assert client.get_overview()["rabbitmq_version"] == "3.10.8"
    assert set(client.get_vhost_names()) == {"/", "shop"}
    client.create_exchange("shop", "orders", "topic", durable=True)
    client.create_queue("shop", "orders.new", durable=True)
    client.create_binding("shop", "orders", "orders.new", "order.#")
    assert client.publish("shop", "orders", "order.created", "hello")
    assert client.get_queue_depth("shop", "orders.new") == 1
    [message] = client.get_messages("shop", "orders.new", count=1, requeue=True)
    assert message["payload"] == "hello"
    # As on RabbitMQ, is_alive left its aliveness-test queue behind.
    assert [q["name"] for q in client.get_queues("shop")] == ["aliveness-test", "orders.new"]
    assert "orders" in [e["name"] for e in client.get_exchanges("shop")]
    client.create_user("ann", "secret", tags="management")
    client.set_vhost_permissions("shop", "ann", ".*", ".*", ".*")
    assert "ann" in [user["name"] for user in client.get_users()]
    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("shop")))
    connection.channel()
    assert len(client.get_connections()) == 1
    assert len(client.get_channels()) == 1
    client.purge_queue("shop", "orders.new")
    assert client.get_queue_depth("shop", "orders.new") == 0
    client.delete_queue("shop", "orders.new")
    client.delete_exchange("shop", "orders")
    assert [q["name"] for q in client.get_queues("shop")] == ["aliveness-test"]
    connection.close()
