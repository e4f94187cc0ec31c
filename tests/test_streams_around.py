"""What surrounds stream queues: definitions in and out, a broker started from them, the
explainer, the management API and the pytest plugin's vhost.

The definitions are a RabbitMQ 3.10.8 export's shapes: a stream's `type` and its x-queue-type
argument, with its retention arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pika
import pytest

from amqp_lite import run_in_thread
from amqp_lite.cli import main
from tests.management_client import Api
from tests.stream_helpers import consume
from vhosts import Node
from vhosts.definitions import parse
from vhosts.definitions_export import export_definitions
from vhosts.errors import NotImplementedFeature
from vhosts.stream_queue import StreamQueue

# As RabbitMQ 3.10.8's export_definitions writes them.
EXPORTED: dict[str, Any] = {
    "rabbit_version": "3.10.8",
    "vhosts": [{"name": "shop", "limits": [], "metadata": {"description": "", "tags": []}}],
    "queues": [
        {
            "name": "orders",
            "vhost": "shop",
            "durable": True,
            "auto_delete": False,
            "type": "stream",
            "arguments": {
                "x-max-age": "7D",
                "x-max-length-bytes": 1000000,
                "x-queue-type": "stream",
                "x-stream-max-segment-size-bytes": 50000,
            },
        }
    ],
    "exchanges": [
        {
            "name": "events",
            "vhost": "shop",
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
    ],
    "bindings": [
        {
            "source": "events",
            "vhost": "shop",
            "destination": "orders",
            "destination_type": "queue",
            "routing_key": "order.#",
            "arguments": {},
        }
    ],
}


def test_definitions_bring_streams_in_and_out() -> None:
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(EXPORTED), "exported").apply_to(node)
    orders = node.vhost("shop").queues["orders"]
    assert isinstance(orders, StreamQueue)
    settings = orders.settings
    assert (settings.max_age, settings.max_length_bytes, settings.max_segment_size) == (
        7 * 24 * 3600 * 1000,
        1_000_000,
        50_000,
    )
    assert export_definitions(node)["queues"] == EXPORTED["queues"]


def test_a_broker_started_from_definitions_keeps_its_streams(tmp_path: Path) -> None:
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(EXPORTED))
    for _ in range(2):  # the second start recovers the stream, and loading again is harmless
        with run_in_thread(data_dir=tmp_path / "data", definitions=path) as broker:
            connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("shop")))
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("events", "order.placed", b"one more")
            got = consume(connection.channel(), "orders", {"x-stream-offset": "first"}, wait=0.3)
            connection.close()
    assert [d.body for d in got] == [b"one more", b"one more"]


def test_the_explainer_says_a_queue_is_a_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(EXPORTED))
    command = ["explain", "--definitions", str(path), "--vhost", "shop", "--exchange", "events"]
    status = main([*command, "--routing-key", "order.placed"])
    out = capsys.readouterr().out
    assert status == 0
    assert "stream queue 'orders'" in out
    assert out.endswith("final: queue 'orders'\n")


def test_the_management_api_shows_a_stream() -> None:
    with run_in_thread(management=True) as broker:
        assert broker.management_url is not None
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
        channel.confirm_delivery()
        for body in (b"a", b"b", b"c"):
            channel.basic_publish("", "log", body)
        consume(connection.channel(), "log", {"x-stream-offset": "first"}, count=3)
        api = Api(broker.management_url)
        queue = api.get("/api/queues/%2F/log")
        purged = api.delete("/api/queues/%2F/log/contents")
        request = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
        got = api.post("/api/queues/%2F/log/get", request)
        connection.close()
    assert (queue["type"], queue["durable"], queue["arguments"]) == (
        "stream",
        True,
        {"x-queue-type": "stream"},
    )
    # As RabbitMQ 3.10.8's management API answers for a stream:
    assert (purged.status, purged.body) == (
        400,
        {
            "error": "bad_request",
            "reason": "queue.purge not supported by stream queues queue 'log' in vhost '/'",
        },
    )
    assert (got.status, got.body) == (
        400,
        {
            "error": "bad_request",
            "reason": "540 basic.get not supported by stream queues queue 'log' in vhost '/'",
        },
    )
    # Delivered messages are still in the log: none counts as unacknowledged.
    assert (queue["messages"], queue["messages_ready"], queue["messages_unacknowledged"]) == (
        3,
        3,
        0,
    )


def test_the_pytest_plugin_vhost_has_streams_too(amqp_vhost: Any) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost.url))
    channel = connection.channel()
    channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
    channel.confirm_delivery()
    for i in range(5):
        channel.basic_publish("", "log", b"%d" % i)
    got = consume(connection.channel(), "log", {"x-stream-offset": 3}, count=2)
    connection.close()
    assert [d.body for d in got] == [b"3", b"4"]
    assert [(q.name, q.type, q.messages) for q in amqp_vhost.queues()] == [("log", "stream", 5)]
    with pytest.raises(NotImplementedFeature):
        amqp_vhost.purge_queue("log")
    amqp_vhost.set_policy("retention", "^log$", {"max-age": "1h"})
    amqp_vhost.delete_queue("log")
    assert amqp_vhost.queues() == []
