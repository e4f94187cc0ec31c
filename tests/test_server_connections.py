"""The trio layer's connection lifecycle: clean close, shutdown, vanishing clients, heartbeats."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from amqp_lite import Broker
from amqp_lite.connection import SHUTDOWN_TEXT
from amqp_lite.server import CLOSE_TIMEOUT
from amqp_lite.wire import methods
from amqp_lite.wire.frames import (
    PROTOCOL_HEADER,
    HeartbeatFrame,
    MethodFrame,
    encode_content,
    encode_method,
)
from tests.rawclient import Closed, RawClient, connected


async def _message_count(port: int, queue: str) -> int:
    async with await connected(port) as client:
        count = (await client.declare_queue(1, queue, passive=True)).message_count
        await client.close()
    return count


async def _round_trip(port: int, queue: str = "probe") -> None:
    """A fresh connection can still declare, publish and get: the server is alive."""
    async with await connected(port) as client:
        await client.declare_queue(1, queue)
        await client.publish(1, queue, b"alive")
        assert await client.get(1, queue) == b"alive"
        await client.close()


# -- closing -------------------------------------------------------------------------------------


async def test_client_close_gets_close_ok_and_the_socket_closed(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.send_method(0, methods.ConnectionClose(reply_code=200, reply_text="bye"))
        await client.expect(methods.ConnectionCloseOk, 0)
        # RabbitMQ leaves the socket for the client to close (and resets it 30 s later);
        # we close right after close-ok.
        assert await client.frames_until_eof() == []
    assert not server.server.connections


async def test_client_close_releases_its_exclusive_queues(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "mine", exclusive=True)
        await client.close()
    async with await connected(server.port) as other:
        await other.send_method(1, methods.QueueDeclare(queue="mine", passive=True))
        close = await other.expect(methods.ChannelClose, 1)
        assert close.reply_code == 404
        await other.send_method(1, methods.ChannelCloseOk())
        await other.close()


async def _expect_forced_close(client: RawClient) -> None:
    close = await client.expect(methods.ConnectionClose, 0)
    assert (close.reply_code, close.reply_text) == (320, SHUTDOWN_TEXT)
    await client.send_method(0, methods.ConnectionCloseOk())
    assert await client.frames_until_eof() == []


async def test_shutdown_sends_every_connection_320(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    clients = [await connected(server.port) for _ in range(3)]
    handshaking = await RawClient.connect(server.port)
    await handshaking.send(PROTOCOL_HEADER)
    await handshaking.expect(methods.ConnectionStart, 0)
    async with trio.open_nursery() as nursery:
        for client in [*clients, handshaking]:
            nursery.start_soon(_expect_forced_close, client)
        started = trio.current_time()
        await server.server.shutdown()
        # Every client answered close-ok, so nobody waited for the close timeout.
        assert trio.current_time() - started < CLOSE_TIMEOUT / 2
    assert not server.server.connections


async def test_leaving_the_broker_block_sends_320() -> None:
    async with trio.open_nursery() as nursery, Broker() as broker:
        client = await connected(broker.port)
        nursery.start_soon(_expect_forced_close, client)


async def test_shutdown_waits_for_close_ok_only_so_long(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await connected(server.port) as deaf:
        started = trio.current_time()
        await server.server.shutdown()
        assert trio.current_time() - started == pytest.approx(CLOSE_TIMEOUT, abs=0.1)
        frames = await deaf.frames_until_eof()
    assert [type(frame.method) for frame in frames] == [methods.ConnectionClose]


# -- clients that vanish -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["eof", "reset"])
@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(3, id="inside-a-frame-header"),
        pytest.param(30, id="inside-the-method"),
        pytest.param(-1, id="before-the-last-body-octet"),
    ],
)
async def test_a_client_vanishing_mid_publish_disturbs_no_one(
    server: Broker, how: str, cut: int
) -> None:
    bystander = await connected(server.port)
    await bystander.declare_queue(1, "q")
    vanishing = await connected(server.port)
    data = encode_method(1, methods.BasicPublish(routing_key="q")) + encode_content(
        1, 60, b"x" * 100_000, 131072
    )
    await vanishing.send(data[:cut])
    await (vanishing.abort() if how == "reset" else vanishing.aclose())
    await _round_trip(server.port)
    await bystander.publish(1, "q", b"mine")
    assert await bystander.get(1, "q") == b"mine"  # and nothing half-published before it
    assert await bystander.get(1, "q") is None
    await bystander.close()
    await bystander.aclose()


async def test_a_client_reset_while_the_server_writes_to_it_disturbs_no_one(
    server: Broker,
) -> None:
    """The writer's send fails (broken pipe or reset): that costs the connection only."""
    async with await connected(server.port) as publisher:
        await publisher.declare_queue(1, "backlog")
        for _ in range(50):
            await publisher.publish(1, "backlog", b"y" * 100_000)
        await publisher.close()
    consumer = await connected(server.port)
    await consumer.send_method(1, methods.BasicConsume(queue="backlog", consumer_tag="c"))
    await consumer.expect(methods.BasicConsumeOk, 1)
    await consumer.expect(methods.BasicDeliver, 1)  # deliveries are streaming in
    await consumer.abort()
    await _round_trip(server.port)
    # Its unacked deliveries went back to the queue.
    assert await _message_count(server.port, "backlog") == 50


async def test_confirmed_messages_survive_a_frame_error_on_another_channel(
    server: Broker,
) -> None:
    async with await connected(server.port) as client:
        await client.open_channel(2)
        await client.declare_queue(1, "kept")
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        for n in range(20):
            await client.publish(1, "kept", b"%d" % n)
        acked = 0
        while acked < 20:
            ack = await client.expect(methods.BasicAck, 1)
            acked = ack.delivery_tag
        # Now a broken frame on channel 2: the whole connection goes (501).
        flow = encode_method(2, methods.ChannelFlow(active=True))
        await client.send(flow[:-1] + b"\x00")
        await client.expect_connection_close(501)
    async with await connected(server.port) as reader:
        bodies = [await reader.get(1, "kept") for _ in range(20)]
        assert bodies == [b"%d" % n for n in range(20)]
        await reader.close()


async def test_deliveries_unacked_at_a_connection_error_are_requeued(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "redo")
        for n in range(3):
            await client.publish(1, "redo", b"%d" % n)
        await client.send_method(1, methods.BasicGet(queue="redo"))
        await client.expect(methods.BasicGetOk, 1)
        await client.expect_content()
        await client.send(encode_method(1, methods.ChannelOpen()))  # 504: connection closes
        await client.expect_connection_close(504)
    async with await connected(server.port) as reader:
        await reader.send_method(1, methods.BasicGet(queue="redo", no_ack=True))
        get_ok = await reader.expect(methods.BasicGetOk, 1)
        assert get_ok.redelivered
        assert (await reader.expect_content())[1] == b"0"
        assert await reader.get(1, "redo") == b"1"
        await reader.close()


# -- heartbeats (on trio's MockClock: seconds pass only when everything waits) -------------------


async def test_heartbeats_when_idle_and_a_silent_client_is_dropped_after_two_intervals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Broker(heartbeat=2) as broker:
        client = await connected(broker.port, heartbeat=2)
        started = trio.current_time()
        beats = []
        with pytest.raises(Closed):
            while True:
                frame = await client.next_frame(skip_heartbeats=False)
                assert isinstance(frame, HeartbeatFrame), frame  # no connection.close either
                beats.append(trio.current_time() - started)
        dropped = trio.current_time() - started
        await client.aclose()
        assert not broker.server.connections
    # RabbitMQ 3.10 at heartbeat 2: a beat every second, the silent client gone after 4-6 s.
    assert beats[:3] == pytest.approx([1.0, 2.0, 3.0], abs=0.1)
    assert len(beats) <= 4  # one more may go out in the instant the reader gives up
    assert dropped == pytest.approx(4.0, abs=0.1)


async def _beat(client: RawClient, every: float) -> None:
    while True:
        await trio.sleep(every)
        await client.heartbeat()


async def test_a_client_that_sends_heartbeats_staysconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Broker(heartbeat=2) as broker:
        client = await connected(broker.port, heartbeat=2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_beat, client, 1.5)
            with trio.move_on_after(60):
                # Heartbeats skipped (and counted): nothing else may come.
                frame = await client.next_frame(timeout=math.inf)
                pytest.fail(f"unexpected {frame}")
            nursery.cancel_scope.cancel()
        assert client.heartbeats_seen >= 50
        await client.open_channel(2)
        await client.close()


async def test_any_frame_counts_as_a_sign_of_life(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Broker(heartbeat=2) as broker:
        client = await connected(broker.port, heartbeat=2)
        await client.declare_queue(1, "busy")
        for _ in range(30):
            await trio.sleep(3)  # longer than a heartbeat interval, shorter than two
            await client.publish(1, "busy", b"tick")
        assert await client.get(1, "busy") == b"tick"
        await client.close()


async def test_the_client_may_lower_the_heartbeat(autojump_clock: trio.testing.MockClock) -> None:
    async with Broker(heartbeat=60) as broker:
        client = await connected(broker.port, heartbeat=1)
        started = trio.current_time()
        frame = await client.next_frame(skip_heartbeats=False)
        assert isinstance(frame, HeartbeatFrame)
        assert trio.current_time() - started == pytest.approx(0.5, abs=0.05)
        await client.close()


async def test_heartbeat_zero_means_none_and_no_timeout(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    client = await connected(server.port, heartbeat=0)
    with trio.move_on_after(3600):
        frame = await client.next_frame(skip_heartbeats=False, timeout=math.inf)
        pytest.fail(f"unexpected {frame}")
    await client.open_channel(2)
    await client.close()


async def test_a_heartbeat_during_content_is_fine(server: Broker) -> None:
    async with await connected(server.port) as client:
        await client.declare_queue(1, "hb")
        data = encode_method(1, methods.BasicPublish(routing_key="hb")) + encode_content(
            1, 60, b"z" * 10, 131072
        )
        header_end = len(data) - (10 + 8)
        await client.send(data[:header_end])
        await client.heartbeat()
        await client.send(data[header_end:])
        assert await client.get(1, "hb") == b"z" * 10
        await client.close()


async def test_crossing_connection_closes_are_each_answered(server: Broker) -> None:
    """Both sides send connection.close at once: each answers the other with close-ok."""
    async with await connected(server.port) as client:
        await client.send_method(1, methods.ChannelOpen())  # 504: the server closes
        await client.send_method(0, methods.ConnectionClose(reply_code=200, reply_text="bye"))
        frames = await client.frames_until_eof()
    assert [f.method.NAME for f in frames if isinstance(f, MethodFrame)] == [
        "connection.close",
        "connection.close-ok",
    ]


async def test_shutdown_hangs_up_at_once_on_a_client_that_sent_nothing_yet(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await RawClient.connect(server.port) as mute:
        await trio.testing.wait_all_tasks_blocked()  # accepted, reading
        started = trio.current_time()
        await server.server.shutdown()
        assert trio.current_time() - started < CLOSE_TIMEOUT / 2
        assert await mute.read_raw_until_eof() == b""
