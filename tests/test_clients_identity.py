"""The broker introduces itself as RabbitMQ 3.10.8 does, so clients that ask pick its semantics.

Each test passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`, see tests/conftest.py).
"""

from __future__ import annotations

import importlib
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import amqp
import kombu
import rabbitpy

from tests.conftest import Target
from tests.rawclient import RawClient

RABBITMQ_CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}


async def test_server_properties_are_rabbitmqs(target: Target) -> None:
    async with await RawClient.connect(target.port, target.host) as client:
        start, _tune = await client.handshake()
    properties = start.server_properties
    assert sorted(properties) == [
        "capabilities",
        "cluster_name",
        "copyright",
        "information",
        "platform",
        "product",
        "version",
    ]
    assert properties["capabilities"] == RABBITMQ_CAPABILITIES
    assert (properties["product"], properties["version"]) == ("RabbitMQ", "3.10.8")
    for key in ("cluster_name", "copyright", "information", "platform"):
        assert isinstance(properties[key], str) and properties[key], key
    if target.is_amqp_lite:  # says what really answers, where people read it
        assert properties["platform"].startswith("amqp-lite ")
        assert properties["cluster_name"].startswith("amqp-lite@")


def test_kombu_takes_basic_qos_global_as_rabbitmq_means_it(target: Target) -> None:
    """kombu asks the server properties; False makes Celery send global=true, per channel."""
    with kombu.Connection(target.url) as connection:
        connection.connect()
        assert connection.qos_semantics_matches_spec is False


def test_rabbitpy_consumes_with_a_priority(target: Target) -> None:
    """rabbitpy refuses x-priority unless the server lists consumer_priorities."""
    name = target.unique("rabbitpy-priority")
    with rabbitpy.Connection(target.url) as connection, connection.channel() as channel:
        queue = rabbitpy.Queue(channel, name, auto_delete=True)
        queue.declare()
        rabbitpy.Message(channel, "first").publish("", name)
        for message in queue.consume(priority=5):
            assert message.body == b"first"
            message.ack()
            break


# -- Celery ------------------------------------------------------------------------------------

CELERY_APP = Path(__file__).parent / "fixtures" / "celery_eta_app.py"


def test_a_celery_worker_runs_an_immediate_task_beside_a_held_eta_task(target: Target) -> None:
    """A real worker holds the ETA task unacked and raises its prefetch to take the next one.

    kombu sends that raise as basic.qos global=false to a broker it takes to follow the spec;
    under RabbitMQ's semantics (ours) that leaves the running consumer at prefetch 1, and the
    immediate task waited behind the ETA task. Told it is RabbitMQ, kombu sends global=true.
    """
    queue = target.unique("celery")
    environment = {**os.environ, "CELERY_TEST_BROKER": target.url, "CELERY_TEST_QUEUE": queue}
    heard, told = os.pipe()
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_eta_app", "worker", "--pool", "solo"),
            *("--concurrency", "1", "--loglevel", "WARNING"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ],
        cwd=CELERY_APP.parent,
        env={**environment, "CELERY_TEST_PIPE": str(told)},
        pass_fds=(told,),
    )
    os.close(told)
    try:
        assert _next_line(heard, timeout=20) == "ready"
        tasks = _import_tasks(environment)
        with tasks.app.connection_for_write() as connection, connection.Producer() as producer:
            tasks.later.apply_async(countdown=3600, producer=producer)
            assert _next_line(heard, timeout=20) == "received later"  # held, filling prefetch 1
            tasks.now.apply_async(producer=producer)
        # Well under the ~17 s an immediate task used to wait (and the hour of the ETA task).
        assert _next_line(heard, timeout=5) == "received now"
        assert _next_line(heard, timeout=5) == "ran"
    finally:
        worker.kill()  # a warm shutdown takes seconds, and nothing of it is under test
        worker.wait(timeout=20)
        os.close(heard)
        _delete_queue_and_exchange(target, queue)


def _next_line(pipe: int, timeout: float) -> str:
    line = b""
    while not line.endswith(b"\n"):
        readable, _, _ = select.select([pipe], [], [], timeout)
        assert readable, f"nothing from the worker in {timeout} s"
        chunk = os.read(pipe, 1)
        assert chunk, "the worker exited"
        line += chunk
    return line.decode().strip()


def _delete_queue_and_exchange(target: Target, name: str) -> None:
    connection = amqp.Connection(f"{target.host}:{target.port}", connect_timeout=10)
    connection.connect()
    try:
        channel = connection.channel()
        channel.queue_delete(name)
        channel.exchange_delete(name)
    finally:
        connection.close()


def _import_tasks(environment: dict[str, str]) -> Any:
    """The worker's own task module, for this process to send its tasks."""
    sys.path.insert(0, str(CELERY_APP.parent))
    try:
        with patch.dict(os.environ, environment):
            return importlib.import_module("celery_eta_app")
    finally:
        sys.path.remove(str(CELERY_APP.parent))
        sys.modules.pop("celery_eta_app", None)
