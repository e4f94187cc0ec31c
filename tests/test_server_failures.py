"""A failure inside one connection's tasks costs that connection (541 and a log line), never the
broker: not in the reader, the writer, the release of a closed connection, nor when the process
runs out of file descriptors."""

from __future__ import annotations

import logging
import os
import resource
import socket
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from amqp_lite import Broker
from amqp_lite.channel import Channel
from amqp_lite.connection import ServerConnection
from amqp_lite.wire import methods
from amqp_lite.wire.frames import PROTOCOL_HEADER, MethodFrame
from tests.processes import BrokerProcess
from tests.rawclient import Closed, connected


class Boom(Exception):
    """A bug, planted on purpose."""


async def _round_trip(port: int, queue: str = "probe") -> None:
    """A fresh connection can still declare, publish and get: the broker is alive."""
    async with await connected(port) as client:
        await client.declare_queue(1, queue)
        await client.publish(1, queue, b"alive")
        assert await client.get(1, queue) == b"alive"
        await client.close()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.ERROR, logger="amqp_lite")
    yield caplog


def _logged_internal_error(caplog: pytest.LogCaptureFixture) -> bool:
    return any("internal error" in r.getMessage() for r in caplog.records)


def _fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, when: Any) -> list[bool]:
    """Make `cls.name` raise Boom the first time `when(self)` holds; returns [fired]."""
    original = getattr(cls, name)
    fired: list[bool] = []

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and when(self):
            fired.append(True)
            raise Boom(f"planted in {cls.__name__}.{name}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, failing)
    return fired


async def test_a_failure_while_releasing_a_closed_connection_costs_only_that_connection(
    server: Broker, monkeypatch: pytest.MonkeyPatch, errors: pytest.LogCaptureFixture
) -> None:
    """The release after a client hangs up runs outside any frame: it used to escape to the
    listener and stop the broker."""
    bystander = await connected(server.port)
    await bystander.declare_queue(1, "held")
    await bystander.publish(1, "held", b"a")
    await bystander.publish(1, "held", b"b")

    doomed = await connected(server.port)
    await doomed.open_channel(2)
    for channel in (1, 2):  # one delivery held unacked on each channel
        await doomed.send_method(channel, methods.BasicGet(queue="held"))
        await doomed.expect(methods.BasicGetOk, channel)
        await doomed.expect_content()
    fired = _fail_once(monkeypatch, Channel, "release", lambda channel: channel.number == 1)
    await doomed.aclose()  # no connection.close: the server finds out at EOF

    await _round_trip(server.port)
    assert fired
    assert _logged_internal_error(errors)
    # The other channel was still released: its delivery went back to the queue.
    assert await bystander.get(1, "held") == b"b"
    await bystander.close()
    await bystander.aclose()


async def test_a_failure_in_the_writer_closes_that_connection_with_541(
    server: Broker, monkeypatch: pytest.MonkeyPatch, errors: pytest.LogCaptureFixture
) -> None:
    bystander = await connected(server.port)
    victim = await connected(server.port)
    await victim.declare_queue(1, "w")
    fired = _fail_once(
        monkeypatch, ServerConnection, "data_to_send", lambda connection: connection.channels
    )
    await victim.publish(1, "w", b"x")
    await victim.send_method(1, methods.BasicGet(queue="w", no_ack=True))
    # What was already waiting to go out may precede the close.
    while not isinstance(frame := await victim.next_frame(), MethodFrame) or not isinstance(
        frame.method, methods.ConnectionClose
    ):
        pass
    close = frame.method
    assert close.reply_code == 541
    await victim.send_method(0, methods.ConnectionCloseOk())
    assert await victim.frames_until_eof() == []
    assert close.reply_text == "INTERNAL_ERROR - internal error"
    assert fired
    assert _logged_internal_error(errors)

    await bystander.declare_queue(1, "still-here")
    await bystander.close()
    await bystander.aclose()
    await victim.aclose()
    await _round_trip(server.port)


async def test_a_failure_while_closing_for_a_failure_hangs_up_on_that_connection(
    server: Broker, monkeypatch: pytest.MonkeyPatch, errors: pytest.LogCaptureFixture
) -> None:
    """Even the 541 cannot be sent (it happened when a lazy import met a full fd table)."""
    victim = await connected(server.port)
    _fail_once(monkeypatch, Channel, "handle_method", lambda channel: True)
    _fail_once(monkeypatch, ServerConnection, "close", lambda connection: True)
    await victim.send_method(1, methods.QueueDeclare(queue="q"))
    assert await victim.frames_until_eof() == []
    await victim.aclose()
    await _round_trip(server.port)


# -- closes an operator asks for ------------------------------------------------------------------


def _first_to_close(connection: ServerConnection, seen: list[ServerConnection]) -> bool:
    """True for the first connection an admin operation closes, and for it alone."""
    if not seen:
        seen.append(connection)
    return connection is seen[0]


@pytest.mark.parametrize("operation", ["delete_vhost", "delete_user", "close_connection"])
async def test_a_failure_closing_one_connection_for_an_operator_costs_only_that_connection(
    server: Broker,
    monkeypatch: pytest.MonkeyPatch,
    errors: pytest.LogCaptureFixture,
    operation: str,
) -> None:
    """The operation completes, the other connections get their 320, the failing one is cut
    off, and the failure is logged: it does not reach the caller."""
    server.admin.add_user("ann", "secret", tags=["administrator"])
    server.admin.set_permissions("ann", "other")
    login = {"vhost": "other", "response": b"\0ann\0secret"}
    clients = [await connected(server.port, **login) for _ in range(2)]
    seen: list[ServerConnection] = []
    fired = _fail_once(monkeypatch, ServerConnection, "close", lambda c: _first_to_close(c, seen))
    if operation == "delete_vhost":
        assert server.admin.delete_vhost("other")
    elif operation == "delete_user":
        assert server.admin.delete_user("ann")
    else:
        for info in server.admin.connections():
            assert server.admin.close_connection(info.name)
    assert fired
    assert _logged_internal_error(errors)
    outcomes = []
    for client in clients:
        try:
            close = (await client.next_frame()).method
        except Closed:
            outcomes.append(0)  # cut off without a word
        else:
            outcomes.append(close.reply_code)  # closed as asked
            if operation == "close_connection":  # the others hang up without waiting
                await client.send_method(0, methods.ConnectionCloseOk())
            assert await client.frames_until_eof() == []
        await client.aclose()
    assert sorted(outcomes) == [0, 320]
    assert server.admin.connections() == []
    await _round_trip(server.port)


# -- out of file descriptors (a broker process whose limit the test lowers) -----------------------


def _first_free_fd(pid: int) -> int:
    """The lowest descriptor number the process has free: the next socket it opens gets it."""
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    return next(n for n in range(len(used) + 1) if n not in used)


def _handshake_starts(port: int) -> bytes:
    """Connect, send the protocol header, and return what comes back before EOF or 20 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(PROTOCOL_HEADER)
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def _pika_round_trip(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("fd-probe")
    channel.basic_publish("", "fd-probe", b"alive")
    assert channel.basic_get("fd-probe", auto_ack=True)[2] == b"alive"
    connection.close()


needs_prlimit = pytest.mark.skipif(
    not hasattr(resource, "prlimit") or not os.path.isdir("/proc/self/fd"),
    reason="needs Linux's prlimit and /proc to starve a process of file descriptors",
)


@needs_prlimit
def test_running_out_of_file_descriptors_after_accept_costs_one_connection() -> None:
    """The first connection after start needs a descriptor for a module it imports lazily; with
    none left, even its 541 could not be encoded, and the broker used to exit."""
    broker = BrokerProcess(None)
    try:
        limits = resource.prlimit(broker.pid, resource.RLIMIT_NOFILE)
        free = _first_free_fd(broker.pid)
        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, (free + 1, limits[1]))  # one left
        _handshake_starts(broker.port)  # served or hung up on: either is fine
        assert broker.process.poll() is None
        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, limits)
        _pika_round_trip(broker.url)
    finally:
        broker.stop()


@needs_prlimit
def test_accept_failing_for_want_of_file_descriptors_is_retried() -> None:
    broker = BrokerProcess(None)
    try:
        _pika_round_trip(broker.url)
        limits = resource.prlimit(broker.pid, resource.RLIMIT_NOFILE)
        free = _first_free_fd(broker.pid)
        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, (free, limits[1]))  # none left
        with socket.create_connection(("127.0.0.1", broker.port), timeout=20) as waiting:
            waiting.sendall(PROTOCOL_HEADER)  # the kernel holds it until the broker accepts
            broker.wait_for_log("cannot accept connections: Too many open files")
            resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, limits)
            start = waiting.recv(4096)
            assert start[:1] == b"\x01"  # a method frame: connection.start
        broker.wait_for_log("accepting connections again")
        _pika_round_trip(broker.url)
        # One line for the episode, not one per retry.
        assert sum("cannot accept" in line for line in broker.log) == 1
    finally:
        broker.stop()
