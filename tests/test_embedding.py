"""The embedding API: a broker inside a trio program or in a background thread, its clock, its
vhosts, starting from a definitions file, and how fast it starts and how cleanly it stops.

What a vhost deletion sends to the connections open on it is what RabbitMQ 3.10 sends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pika
import pytest
import trio
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from amqp_lite import Broker, Clock, DefinitionsError, run_in_thread
from amqp_lite.wire import methods
from amqp_lite.wire.frames import PROTOCOL_HEADER
from tests.rawclient import RawClient

# -- starting and stopping ------------------------------------------------------------------------


def test_run_in_thread_serves_on_a_free_port_and_stops_cleanly() -> None:
    with run_in_thread() as first, run_in_thread() as second:
        assert first.port != second.port
        assert first.url == f"amqp://guest:guest@127.0.0.1:{first.port}/"
        connection = pika.BlockingConnection(pika.URLParameters(first.url))
        connection.channel().queue_declare("q")
        connection.close()
    assert not [t for t in threading.enumerate() if t.name == "amqp-lite-broker"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", first.port), timeout=1).close()


def test_leaving_the_block_closes_open_connections_with_320() -> None:
    with run_in_thread() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert closed.value.reply_code == 320


def test_a_broker_that_cannot_start_raises_in_the_callers_thread() -> None:
    with run_in_thread() as broker, pytest.raises(OSError), run_in_thread(port=broker.port):
        pass


async def test_broker_in_a_trio_program() -> None:
    async with Broker() as broker:
        assert broker.url == f"amqp://guest:guest@127.0.0.1:{broker.port}/"
        async with await RawClient.connect(broker.port) as client:
            await client.handshake()


def test_the_start_up_benchmark_runs() -> None:
    """The README's start-up figure comes from tests/bench/startup.py; timing is its job, not a
    test's (a loaded CI machine would make any bound flaky), so this only checks it runs."""
    script = Path(__file__).parent / "bench" / "startup.py"
    result = subprocess.run(
        [sys.executable, str(script), "--runs", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ms" in result.stdout


def test_call_runs_in_the_broker_thread_from_anywhere_and_raises_there() -> None:
    with run_in_thread() as broker:
        broker_thread = broker.call(threading.current_thread)
        assert broker_thread.name == "amqp-lite-broker"
        assert broker.call(broker.call, threading.current_thread) is broker_thread  # no deadlock
        with pytest.raises(KeyError):
            broker.call({}.__getitem__, "missing")

        async def from_a_trio_program() -> None:  # which trio.from_thread would refuse
            broker.advance(1)
            assert broker.call(threading.current_thread) is broker_thread

        trio.run(from_a_trio_program)


# -- the clock ------------------------------------------------------------------------------------


def test_advance_moves_a_frozen_clock_exactly() -> None:
    with run_in_thread(clock=Clock(frozen_at=1000.0)) as broker:
        broker.advance(60)
        assert broker.call(broker.node.clock.now) == 1060.0


def test_advance_jumps_a_wall_clock_ahead() -> None:
    with run_in_thread() as broker:
        before = broker.call(broker.node.clock.now)
        broker.advance(3600)
        assert broker.call(broker.node.clock.now) - before >= 3600


def test_advance_fires_what_fell_due_before_returning() -> None:
    fired: list[float] = []
    with run_in_thread(clock=Clock(frozen_at=0.0)) as broker:
        broker.call(broker.node.timers.schedule, 60.0, fired.append)
        broker.advance(59)
        assert fired == []
        broker.advance(1)
        assert fired == [60.0]


async def test_advance_in_a_trio_program() -> None:
    async with Broker(clock=Clock(frozen_at=5.0)) as broker:
        broker.advance(10)
        assert broker.node is not None
        assert broker.node.clock.now() == 15.0


# -- adding and deleting vhosts -------------------------------------------------------------------


def test_added_vhost_is_open_to_guest_and_empty_once_deleted_and_added_again() -> None:
    with run_in_thread() as broker:
        url = broker.add_vhost("app")
        assert url == broker.vhost_url("app") == f"amqp://guest:guest@127.0.0.1:{broker.port}/app"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        connection.channel().queue_declare("jobs", durable=True)
        connection.close()
        assert broker.delete_vhost("app")
        broker.add_vhost("app")
        connection = pika.BlockingConnection(pika.URLParameters(url))
        with pytest.raises(ChannelClosedByBroker) as missing:
            connection.channel().queue_declare("jobs", passive=True)
        assert missing.value.reply_code == 404
        connection.close()


def test_deleting_an_unknown_vhost_says_so() -> None:
    with run_in_thread() as broker:
        assert not broker.delete_vhost("nowhere")


def test_deleting_a_vhost_closes_its_connections_like_rabbitmq() -> None:
    """RabbitMQ 3.10: connection.close 320 CONNECTION_FORCED "vhost '<name>' is deleted"."""
    with run_in_thread() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.add_vhost("doomed")))
        connection.channel().queue_declare("q")
        broker.delete_vhost("doomed")
        with pytest.raises(ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=5)
        assert (closed.value.reply_code, closed.value.reply_text) == (
            320,
            "CONNECTION_FORCED - vhost 'doomed' is deleted",
        )


async def test_deleted_vhost_cancels_consumers_then_hangs_up_without_waiting_for_close_ok() -> None:
    """RabbitMQ 3.10 sends basic.cancel (to clients that take it) before connection.close, and
    closes the socket without waiting for close-ok."""
    async with Broker() as broker:
        broker.add_vhost("doomed")
        async with await RawClient.connect(broker.port) as client:
            await _open_taking_cancels(client, "doomed")
            await client.open_channel()
            await client.declare_queue(1, "q")
            await client.send_method(1, methods.BasicConsume(queue="q", consumer_tag="ct"))
            await client.expect(methods.BasicConsumeOk, 1)
            broker.delete_vhost("doomed")
            cancel = await client.expect(methods.BasicCancel, 1)
            assert cancel.consumer_tag == "ct"
            close = await client.expect(methods.ConnectionClose, 0)
            assert (close.reply_code, close.class_id, close.method_id) == (320, 0, 0)
            assert await client.frames_until_eof() == []  # no close-ok sent, yet the socket closes


async def _open_taking_cancels(client: RawClient, vhost: str) -> None:
    """The handshake, announcing consumer_cancel_notify as pika and aio-pika do."""
    await client.send(PROTOCOL_HEADER)
    await client.expect(methods.ConnectionStart, 0)
    await client.send_method(
        0,
        methods.ConnectionStartOk(
            client_properties={"capabilities": {"consumer_cancel_notify": True}},
            mechanism="PLAIN",
            response=b"\x00guest\x00guest",
            locale="en_US",
        ),
    )
    tune = await client.expect(methods.ConnectionTune, 0)
    await client.send_method(
        0,
        methods.ConnectionTuneOk(
            channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0
        ),
    )
    await client.send_method(0, methods.ConnectionOpen(virtual_host=vhost))
    await client.expect(methods.ConnectionOpenOk, 0)


def test_connections_on_other_vhosts_stay_open() -> None:
    with run_in_thread() as broker:
        broker.add_vhost("doomed")
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        broker.delete_vhost("doomed")
        connection.channel().queue_declare("still-here")
        connection.close()


def test_deleted_vhost_stays_deleted_across_a_restart(tmp_path: Path) -> None:
    with run_in_thread(data_dir=tmp_path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.add_vhost("app")))
        channel = connection.channel()
        channel.queue_declare("jobs", durable=True)
        channel.exchange_declare("work", "direct", durable=True)
        channel.queue_bind("jobs", "work", "k")
        channel.confirm_delivery()
        channel.basic_publish("work", "k", b"job", pika.BasicProperties(delivery_mode=2))
        connection.close()
        broker.delete_vhost("app")
    with run_in_thread(data_dir=tmp_path) as broker:
        assert "app" not in broker.node.vhosts
        url = broker.add_vhost("app")
        connection = pika.BlockingConnection(pika.URLParameters(url))
        with pytest.raises(ChannelClosedByBroker) as missing:
            connection.channel().queue_declare("jobs", passive=True)
        assert missing.value.reply_code == 404
        connection.close()


# -- policies -------------------------------------------------------------------------------------


def test_a_policy_set_at_runtime_applies_and_survives_a_restart(tmp_path: Path) -> None:
    ttl = {"message-ttl": 1000}
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=0)) as broker:
        broker.set_policy("/", "short", "^jobs$", ttl, priority=1, apply_to="queues")
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()  # each publish is queued before the clock moves
        channel.queue_declare("jobs", durable=True)
        channel.basic_publish("", "jobs", b"stale")
        broker.advance(1)
        assert channel.basic_get("jobs")[0] is None
        connection.close()
    with run_in_thread(data_dir=tmp_path, clock=Clock(frozen_at=0)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", "jobs", b"stale too")
        broker.advance(1)
        assert channel.basic_get("jobs")[0] is None
        assert broker.clear_policy("/", "short")
        assert not broker.clear_policy("/", "short")
        channel.basic_publish("", "jobs", b"kept")
        broker.advance(1)
        assert channel.basic_get("jobs", auto_ack=True)[2] == b"kept"
        connection.close()
    with run_in_thread(data_dir=tmp_path) as broker:
        assert not broker.node.vhost("/").policies  # the cleared policy stayed cleared


def test_a_policy_rabbitmq_would_refuse_is_refused_with_its_text() -> None:
    with run_in_thread() as broker:
        with pytest.raises(ValueError) as refused:
            broker.set_policy("/", "bad", "^q", {"max-length": -1})
        assert str(refused.value) == "-1 is not a valid maximum length"
        assert broker.node.vhost("/").policies is None


# -- definitions ----------------------------------------------------------------------------------


def _definitions(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    return path


def test_broker_starts_from_a_definitions_file(tmp_path: Path) -> None:
    path = _definitions(
        tmp_path / "definitions.json",
        {
            "vhosts": [{"name": "/"}],
            "queues": [
                {
                    "name": "jobs",
                    "vhost": "/",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {},
                }
            ],
        },
    )
    with run_in_thread(definitions=path) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        connection.channel().queue_declare("jobs", passive=True)
        connection.close()


def test_a_bad_definitions_file_raises_from_run_in_thread(tmp_path: Path) -> None:
    path = _definitions(tmp_path / "broken.json", "{not json")
    with pytest.raises(DefinitionsError), run_in_thread(definitions=path):
        pass
    assert not [t for t in threading.enumerate() if t.name == "amqp-lite-broker"]


async def test_a_bad_definitions_file_raises_from_aenter(tmp_path: Path) -> None:
    path = _definitions(tmp_path / "broken.json", "{not json")
    with pytest.raises(DefinitionsError):
        async with Broker(definitions=path):
            pass
