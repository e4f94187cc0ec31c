"""What surrounds quorum queues: definitions in and out, the management API, the explainer, and
the pytest plugin's vhost.

The definitions are a RabbitMQ 3.10.8 export's shapes: a quorum queue's `type` and its
x-queue-type argument, a vhost's `default_queue_type` in its metadata.
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
from vhosts import Node
from vhosts.definitions import parse
from vhosts.definitions_export import export_definitions
from vhosts.quorum_queue import QuorumQueue

# As RabbitMQ 3.10.8's export_definitions writes them.
EXPORTED: dict[str, Any] = {
    "rabbit_version": "3.10.8",
    "vhosts": [
        {
            "name": "jobs",
            "limits": [],
            "metadata": {"default_queue_type": "quorum", "description": "", "tags": []},
        }
    ],
    "queues": [
        {
            "name": "work",
            "vhost": "jobs",
            "durable": True,
            "auto_delete": False,
            "type": "quorum",
            "arguments": {"x-delivery-limit": 3, "x-queue-type": "quorum"},
        }
    ],
    "exchanges": [
        {
            "name": "tasks",
            "vhost": "jobs",
            "type": "direct",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
    ],
    "bindings": [
        {
            "source": "tasks",
            "vhost": "jobs",
            "destination": "work",
            "destination_type": "queue",
            "routing_key": "work",
            "arguments": {},
        }
    ],
}


def test_definitions_bring_quorum_queues_and_a_vhost_default_type_in_and_out() -> None:
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(EXPORTED), "exported").apply_to(node)
    jobs = node.vhost("jobs")
    assert jobs.default_queue_type == "quorum"
    work = jobs.queues["work"]
    assert isinstance(work, QuorumQueue) and work.settings.delivery_limit == 3
    exported = export_definitions(node)
    assert exported["vhosts"] == EXPORTED["vhosts"]
    assert exported["queues"] == EXPORTED["queues"]


def test_a_queue_whose_type_only_the_type_field_names_is_of_that_type() -> None:
    hand_written = {
        **EXPORTED,
        "queues": [{**EXPORTED["queues"][0], "arguments": {}}],
    }
    node = Node(vhost_names=(), guest=False)
    parse(json.dumps(hand_written), "by hand").apply_to(node)
    assert isinstance(node.vhost("jobs").queues["work"], QuorumQueue)


def test_an_unknown_default_queue_type_is_refused_with_its_place() -> None:
    bad = {"vhosts": [{"name": "v", "metadata": {"default_queue_type": "bogus"}}]}
    with pytest.raises(Exception, match='unknown default_queue_type "bogus"'):
        parse(json.dumps(bad, indent=1), "bad.json")


def test_the_explainer_says_a_queue_is_a_quorum_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(EXPORTED))
    status = main(
        [
            "explain",
            "--definitions",
            str(path),
            "--vhost",
            "jobs",
            "--exchange",
            "tasks",
            "--routing-key",
            "work",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "quorum queue 'work'" in out
    assert out.endswith("final: queue 'work'\n")


def test_the_management_api_shows_quorum_queues_and_sets_a_vhost_default_type() -> None:
    with run_in_thread(vhosts=("/", "jobs"), management=True) as broker:
        assert broker.management_url is not None
        api = Api(broker.management_url)
        answer = api.put("/api/vhosts/jobs", {"default_queue_type": "quorum"})
        assert answer.status == 204
        vhost = api.get("/api/vhosts/jobs")
        assert vhost["default_queue_type"] == "quorum"
        assert vhost["metadata"]["default_queue_type"] == "quorum"
        assert api.get("/api/vhosts/%2F")["default_queue_type"] == "undefined"
        connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("jobs")))
        connection.channel().queue_declare("work", durable=True)
        connection.close()
        queue = api.get("/api/queues/jobs/work")
        assert (queue["type"], queue["arguments"]) == ("quorum", {"x-queue-type": "quorum"})
        assert queue["leader"] == queue["node"] and queue["members"] == [queue["node"]]
        assert api.put("/api/vhosts/jobs", {"default_queue_type": "bogus"}).status == 400


def test_the_pytest_plugin_vhost_takes_a_default_queue_type(amqp_vhost: Any) -> None:
    amqp_vhost.set_default_queue_type("quorum")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost.url))
    channel = connection.channel()
    channel.queue_declare("jobs", durable=True)
    channel.queue_declare("scratch", exclusive=True)
    connection.close()
    assert {q.name: q.type for q in amqp_vhost.queues()} == {"jobs": "quorum"}
