"""Applications that declare quorum queues themselves, each doing a real task.

taskiq-aio-pika declares its task queue and dead-letter queue as quorum queues by default; a
Celery worker whose queue is a quorum queue sets no global QoS (a quorum queue refuses it) and
sends countdown tasks through its native delayed delivery: quorum queues with message TTLs and
at-least-once dead-lettering into each other.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from amqp_lite import ThreadedBroker
from tests.conftest import Target

CELERY_APP = Path(__file__).parent / "fixtures" / "celery_quorum_app.py"


def test_taskiq_aio_pika_with_its_defaults_runs_a_task(broker: ThreadedBroker) -> None:
    taskiq = pytest.importorskip("taskiq")
    from taskiq.api import run_receiver_task
    from taskiq.brokers.inmemory_broker import InmemoryResultBackend
    from taskiq_aio_pika import AioPikaBroker

    async def scenario() -> int:
        tasks = AioPikaBroker(broker.url).with_result_backend(InmemoryResultBackend())

        @tasks.task
        async def add(a: int, b: int) -> int:
            return a + b

        tasks.is_worker_process = True
        await tasks.startup()  # the worker's start: its queues are declared and bound
        worker = asyncio.create_task(run_receiver_task(tasks))
        try:
            sent = await add.kiq(2, 3)
            result: taskiq.TaskiqResult[int] = await sent.wait_result(timeout=10)
            assert not result.is_err
            return result.return_value
        finally:
            worker.cancel()
            await tasks.shutdown()

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == 5
    types = {queue.name: queue.type for queue in broker.admin.queues("/")}
    assert types == {"taskiq": "quorum", "taskiq.dead_letter": "quorum"}


def test_a_celery_worker_on_a_quorum_queue_runs_tasks_now_and_later(target: Target) -> None:
    vhost = target.unique("celery-quorum")
    target.add_vhost(vhost)  # native delayed delivery declares its queues with fixed names
    url = target.vhost_url(vhost)
    heard, told = os.pipe()
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_quorum_app", "worker"),
            *("--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ],
        cwd=CELERY_APP.parent,
        env={**os.environ, "CELERY_TEST_BROKER": url, "CELERY_TEST_PIPE": str(told)},
        pass_fds=(told,),
    )
    os.close(told)
    try:
        assert _next_line(heard, timeout=30) == "ready"
        app = _app(url)
        add = app.tasks["add"]
        add.delay(2, 3)
        assert _next_line(heard, timeout=10) == "ran add: 5"
        sent = time.monotonic()
        add.apply_async((4, 5), countdown=1)  # through the delayed-delivery quorum queues
        assert _next_line(heard, timeout=10) == "ran add: 9"
        assert time.monotonic() - sent >= 0.9
    finally:
        worker.kill()
        worker.wait(timeout=20)
        os.close(heard)
        target.delete_vhost(vhost)


def _app(url: str) -> Any:  # a celery.Celery; the module is imported late
    from celery import Celery
    from kombu import Exchange, Queue

    app = Celery("quorum-client", broker=url)
    app.conf.update(
        task_queues=[
            Queue(
                "tasks",
                Exchange("tasks", type="topic"),
                routing_key="tasks",
                queue_arguments={"x-queue-type": "quorum"},
            )
        ],
        task_default_queue="tasks",
        task_default_exchange="tasks",
        task_default_exchange_type="topic",
        task_default_routing_key="tasks",
    )

    @app.task(name="add")
    def add(a: int, b: int) -> int:  # the worker's is what runs; this one only sends
        return a + b

    return app


def _next_line(pipe: int, timeout: float) -> str:
    line = b""
    while not line.endswith(b"\n"):
        readable, _, _ = select.select([pipe], [], [], timeout)
        assert readable, f"nothing from the worker in {timeout} s"
        chunk = os.read(pipe, 1)
        assert chunk, "the worker exited"
        line += chunk
    return line.decode().strip()
