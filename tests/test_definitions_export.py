"""Exporting definitions: what RabbitMQ's export_definitions writes, read back by our loader and
(checked by hand against RabbitMQ 3.10.8's import_definitions) by RabbitMQ's.

The round trip through a RabbitMQ export is the strongest check: every section our loader takes
from tests/fixtures/rabbitmq-definitions.json comes out again as RabbitMQ wrote it.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pytest

from amqp_lite import run_in_thread
from amqp_lite.cli import main
from vhosts import Node
from vhosts.definitions import load, parse
from vhosts.definitions_export import export_definitions
from vhosts.policies import Policy
from vhosts.users import Permission

FIXTURE = Path(__file__).parent / "fixtures" / "rabbitmq-definitions.json"


def _reloaded(exported: dict[str, Any]) -> dict[str, Any]:
    """Export -> JSON text -> our loader on a blank node -> export again."""
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(exported), "exported").apply_to(node)
    return export_definitions(node)


def _keyed(entries: list[dict[str, Any]], *fields: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(entry[f] for f in fields): entry for entry in entries}


def test_a_rabbitmq_export_comes_back_out_as_rabbitmq_wrote_it() -> None:
    original = json.loads(FIXTURE.read_text())
    node = Node(vhost_names=(), guest=False)
    load(FIXTURE).apply_to(node)
    exported = export_definitions(node)
    # RabbitMQ 3.10 writes no "internal" key (and leaves internal exchanges out); we write it,
    # since its import reads it and bindings through an internal exchange would be lost.
    for exchange in exported["exchanges"]:
        assert exchange.pop("internal") is False

    for section, key in [
        ("queues", ("vhost", "name")),
        ("exchanges", ("vhost", "name")),
        ("policies", ("vhost", "name")),
        ("permissions", ("user", "vhost")),
        ("topic_permissions", ("user", "vhost", "exchange")),
    ]:
        assert _keyed(exported[section], *key) == _keyed(original[section], *key), section
    binding_key = ("vhost", "source", "destination_type", "destination", "routing_key")
    assert _keyed(exported["bindings"], *binding_key) == _keyed(original["bindings"], *binding_key)
    assert _keyed(exported["users"], "name") == _keyed(original["users"], "name")
    assert [v["name"] for v in exported["vhosts"]] == ["/", "defs-test"]
    # The vhost's limits, in both places RabbitMQ writes them.
    assert [v["limits"] for v in exported["vhosts"]] == [v["limits"] for v in original["vhosts"]]
    assert exported["parameters"] == original["parameters"]


def test_export_is_stable_through_our_own_loader() -> None:
    exported = export_definitions(_topology())
    assert _reloaded(exported) == exported


def _topology() -> Node:
    node = Node(("/", "shop"))
    node.add_user("alice", "secret", tags=["management"])
    alice = node.users.get("alice")
    assert alice is not None
    node.set_permission(alice, "shop", Permission("^alice\\.", ".*", ".*"))
    shop = node.vhosts["shop"]
    shop.set_policy(Policy("shop", "dlx", "^orders", "queues", 5, {"dead-letter-exchange": "dlx"}))
    orders = shop.declare_exchange("orders", "topic", durable=True)
    audit = shop.declare_exchange("audit", "fanout", internal=True)
    shop.declare_exchange("dlx", "direct", arguments={"alternate-exchange": "audit"})
    paid = shop.declare_queue("orders.paid", None, durable=True, arguments={"x-max-length": 10})
    log = shop.declare_queue("audit.log", None, auto_delete=True)
    shop.bind(orders, paid, "order.paid.#", {})
    shop.bind(orders, audit, "#", {})
    shop.bind(audit, log, "", {})
    return node


def test_the_shape_of_each_section() -> None:
    exported = export_definitions(_topology())
    assert exported["vhosts"] == [
        {
            "name": "/",
            "limits": [],
            "metadata": {"description": "Default virtual host", "tags": []},
        },
        {"name": "shop", "limits": [], "metadata": {"description": "", "tags": []}},
    ]
    alice = next(u for u in exported["users"] if u["name"] == "alice")
    assert alice["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert alice["tags"] == ["management"] and alice["limits"] == {}
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(exported), "exported").apply_to(node)
    assert node.users.authenticate("alice", "secret") is not None  # the hash travels as it is
    assert {"user": "alice", "vhost": "shop", "configure": "^alice\\.", "write": ".*",
            "read": ".*"} in exported["permissions"]  # fmt: skip
    assert exported["policies"] == [
        {
            "vhost": "shop",
            "name": "dlx",
            "pattern": "^orders",
            "apply-to": "queues",
            "definition": {"dead-letter-exchange": "dlx"},
            "priority": 5,
        }
    ]
    assert [(x["vhost"], x["name"]) for x in exported["exchanges"]] == [
        ("shop", "audit"),
        ("shop", "dlx"),
        ("shop", "orders"),
    ]  # never the default or amq.* exchanges
    assert exported["exchanges"][0] == {
        "name": "audit",
        "vhost": "shop",
        "type": "fanout",
        "durable": False,
        "auto_delete": False,
        "internal": True,
        "arguments": {},
    }
    assert exported["queues"] == [
        {
            "name": "audit.log",
            "vhost": "shop",
            "durable": False,
            "auto_delete": True,
            "type": "classic",
            "arguments": {},
        },
        {
            "name": "orders.paid",
            "vhost": "shop",
            "durable": True,
            "auto_delete": False,
            "type": "classic",
            "arguments": {"x-max-length": 10},
        },
    ]
    assert [
        (b["source"], b["destination_type"], b["destination"], b["routing_key"])
        for b in exported["bindings"]
    ] == [
        ("audit", "queue", "audit.log", ""),
        ("orders", "exchange", "audit", "#"),
        ("orders", "queue", "orders.paid", "order.paid.#"),
    ]


def test_exclusive_queues_and_their_bindings_are_left_out() -> None:
    node = Node()
    vhost = node.vhosts["/"]
    owner = object()
    mine = vhost.declare_queue("mine", owner, exclusive=True)
    vhost.bind(vhost.exchanges["amq.topic"], mine, "k", {})
    exported = export_definitions(node)
    assert exported["queues"] == [] and exported["bindings"] == []


def test_argument_values_json_cannot_hold_are_written_as_rabbitmq_writes_them() -> None:
    node = Node()
    arguments = {
        "text": b"caf\xc3\xa9",
        "binary": b"\x00\xff",
        "longstr": "\x00\udcff",  # an S of octets that are not UTF-8, as the codec decodes it
        "decimal": Decimal("1.5"),
        "when": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        "void": None,
        "nested": [{"deep": b"x"}],
    }
    node.vhosts["/"].declare_exchange("x", "headers", arguments=arguments)
    (exchange,) = export_definitions(node)["exchanges"]
    assert exchange["arguments"] == {
        "text": "café",
        "binary": "Not UTF-8, base64 is: AP8=",
        "longstr": "Not UTF-8, base64 is: AP8=",
        "decimal": 1.5,
        "when": 1577836800,
        "void": "undefined",
        "nested": [{"deep": "x"}],
    }


# -- from a running broker, and from a stopped broker's data directory ----------------------------


def test_a_running_broker_exports_what_clients_declared() -> None:
    with run_in_thread() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.exchange_declare("events", "topic")
        channel.queue_declare("jobs", arguments={"x-message-ttl": 1000})
        channel.queue_bind("jobs", "events", "job.*")
        connection.close()
        exported = broker.export_definitions()
    assert [q["name"] for q in exported["queues"]] == ["jobs"]
    assert exported["queues"][0]["arguments"] == {"x-message-ttl": 1000}
    assert [(b["source"], b["routing_key"]) for b in exported["bindings"]] == [("events", "job.*")]


def test_the_cli_exports_a_stopped_brokers_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_in_thread(data_dir=tmp_path / "data") as broker:
        broker.set_policy("/", "ttl", "^kept$", {"message-ttl": 5000}, apply_to="queues")
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("kept", durable=True)
        channel.queue_declare("forgotten")  # transient: not in the store, so not exported
        connection.close()
    out = tmp_path / "definitions.json"
    assert main(["export-definitions", "--data-dir", str(tmp_path / "data"), str(out)]) == 0
    exported = json.loads(out.read_text())
    assert [q["name"] for q in exported["queues"]] == ["kept"]
    assert [p["name"] for p in exported["policies"]] == ["ttl"]
    assert [u["name"] for u in exported["users"]] == ["guest"]
    # What the file says, a broker started from it has.
    with run_in_thread(definitions=out) as again:
        assert again.export_definitions() == exported

    assert main(["export-definitions", "--data-dir", str(tmp_path / "data")]) == 0
    assert json.loads(capsys.readouterr().out) == exported


def test_the_cli_refuses_a_directory_without_a_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["export-definitions", "--data-dir", str(tmp_path)]) == 1
    assert f"no amqp-lite store in {tmp_path}" in caplog.text
    assert list(tmp_path.iterdir()) == []  # and made none
