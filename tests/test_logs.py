"""What the broker logs, as RabbitMQ logs it: connections opened and closed (with who and why),
refused logins, channel and connection errors with their reply code and text, missed
heartbeats, and what start-up recovered; `--log-format json` writes one object per line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import trio
import trio.testing

from amqp_lite import Broker, ThreadedBroker
from amqp_lite.logs import JsonFormatter
from tests.rawclient import Closed, connected


class _Waiter(logging.Handler):
    """Wakes a test when a record whose message contains `text` has been logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="amqp_lite")
    yield caplog


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def test_a_client_session_is_logged_from_accept_to_close(
    broker: ThreadedBroker, logged: pytest.LogCaptureFixture
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    local_port = connection._impl._transport._sock.getsockname()[1]  # the broker's peer
    name = f"127.0.0.1:{local_port} -> 127.0.0.1:{broker.port}"
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare("missing", passive=True)
    closed_line = f"closing AMQP connection {name}"
    waiter = _Waiter(closed_line)
    logging.getLogger("amqp_lite").addHandler(waiter)
    try:
        connection.close()
        assert waiter.seen.wait(10)
    finally:
        logging.getLogger("amqp_lite").removeHandler(waiter)
    lines = [m for m in _messages(logged) if name in m]
    assert lines[0] == f"accepting AMQP connection {name}"
    assert lines[1] == (
        f"connection {name}: user 'guest' authenticated and granted access to vhost '/' "
        f"(client: Pika Python Client Library {pika.__version__})"
    )
    assert lines[2] == (
        f"channel error on connection {name}, channel 1: "
        "NOT_FOUND - no queue 'missing' in vhost '/' (class 50, method 10)"
    )
    assert lines[3] == (
        f"{closed_line} (vhost '/', user 'guest'): "
        "client closed the connection: 200 'Normal shutdown'"
    )


def test_a_refused_login_is_logged_with_the_peer_and_the_user(
    broker: ThreadedBroker, logged: pytest.LogCaptureFixture
) -> None:
    parameters = pika.URLParameters(broker.url.replace("guest:guest", "guest:wrong"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(parameters)
    refused = [m for m in _messages(logged, logging.WARNING) if "login refused" in m]
    assert len(refused) == 1
    assert refused[0].startswith("connection 127.0.0.1:")
    assert "user 'guest'" in refused[0]


async def test_a_connection_error_is_logged_with_its_code_and_text(
    server: Broker, logged: pytest.LogCaptureFixture
) -> None:
    async with await connected(server.port) as client:
        await client.send(b"\x01\x00\x01\x00\x00\x00\x00\x00")  # a method frame, bad frame-end
        await client.expect_connection_close(501)
    errors = [m for m in _messages(logged, logging.WARNING) if "connection error on" in m]
    assert len(errors) == 1
    assert "FRAME_ERROR - " in errors[0]


async def test_missed_heartbeats_are_logged(
    autojump_clock: trio.testing.MockClock, logged: pytest.LogCaptureFixture
) -> None:
    async with Broker(heartbeat=2) as broker:
        client = await connected(broker.port, heartbeat=2)
        with pytest.raises(Closed):
            while True:
                await client.next_frame()
        await client.aclose()
    [line] = [m for m in _messages(logged) if "missed heartbeats" in m]
    assert line.endswith("(vhost '/', user 'guest'): missed heartbeats from client, timeout: 2s")


async def test_a_vanished_client_is_a_warning(
    server: Broker, logged: pytest.LogCaptureFixture
) -> None:
    client = await connected(server.port)
    await client.abort()
    with trio.fail_after(10):
        while server.server.connections:
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0)
    warnings = _messages(logged, logging.WARNING)
    assert any(m.endswith("client unexpectedly closed TCP connection") for m in warnings)


def test_start_up_says_what_it_recovered(tmp_path: Path, logged: pytest.LogCaptureFixture) -> None:
    from amqp_lite import run_in_thread

    with run_in_thread(data_dir=tmp_path) as first:
        connection = pika.BlockingConnection(pika.URLParameters(first.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("kept", durable=True)
        for _ in range(3):
            channel.basic_publish("", "kept", b"m", pika.BasicProperties(delivery_mode=2))
        connection.close()
    logged.clear()
    with run_in_thread(data_dir=tmp_path):
        pass
    recovered = [m for m in _messages(logged) if m.startswith("recovered ")]
    assert recovered == ["recovered 1 vhosts, 1 users, 1 queues, 3 messages"]


# -- --log-format json ---------------------------------------------------------------------------


def test_the_json_formatter_writes_one_object_per_record() -> None:
    record = logging.LogRecord(
        "amqp_lite.connection", logging.WARNING, __file__, 1, "a %s\nline", ("two-line",), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "amqp_lite.connection"
    assert entry["message"] == "a two-line\nline"
    assert entry["time"].endswith("+00:00")


def test_serve_with_log_format_json_logs_json_lines() -> None:
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "amqp_lite", "serve", "--port", "0", "--transient"),
            *("--no-management", "--no-prometheus", "--log-format", "json"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert serve.stderr is not None
    try:
        entries = []
        for line in serve.stderr:
            entries.append(json.loads(line))
            if entries[-1]["message"].startswith("amqp-lite ready on "):
                break
        url = entries[-1]["message"].removeprefix("amqp-lite ready on ")
        pika.BlockingConnection(pika.URLParameters(url)).close()
        for line in serve.stderr:
            entries.append(json.loads(line))
            if entries[-1]["message"].startswith("closing AMQP connection"):
                break
    finally:
        serve.terminate()
        serve.wait(timeout=20)
    messages = [entry["message"] for entry in entries]
    assert any("authenticated and granted access to vhost '/'" in m for m in messages)
    assert {entry["level"] for entry in entries} <= {"info", "warning"}


@pytest.mark.parametrize(
    ("option", "what"),
    [("--management-port", "management API"), ("--port", "AMQP")],
)
def test_serve_says_in_one_line_which_port_is_taken(option: str, what: str) -> None:
    """As for the Prometheus port (tests/test_prometheus.py): one error line, exit status 1."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"]
        command += ["--management-port", "0", "--no-prometheus", option, str(port)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [refusal] = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert refusal.endswith(f"cannot serve {what} on 127.0.0.1:{port}: Address already in use")
