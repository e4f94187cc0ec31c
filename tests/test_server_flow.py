"""Load on the trio layer: a client that stops reading, many channels, many connections."""

from __future__ import annotations

import trio
import trio.testing

from amqp_lite import Broker
from amqp_lite.connection import READ_PAUSE_BACKLOG
from amqp_lite.wire import methods
from amqp_lite.wire.frames import encode_content, encode_method
from tests.rawclient import RawClient, connected

MESSAGE = b"m" * 100_000
BACKLOG = 200  # 20 MB for a client that reads none of it


async def _publish_backlog(port: int, queue: str, done: trio.Event) -> None:
    async with await connected(port) as publisher:
        await publisher.send_method(1, methods.ConfirmSelect())
        await publisher.expect(methods.ConfirmSelectOk, 1)
        for _ in range(BACKLOG):
            await publisher.publish(1, queue, MESSAGE)
        acked = 0
        while acked < BACKLOG:
            acked = (await publisher.expect(methods.BasicAck, 1)).delivery_tag
        await publisher.close()
    done.set()


async def _round_trips(port: int, until: trio.Event) -> int:
    """Publish + get on an unrelated queue, each bounded, until `until`; returns how many."""
    count = 0
    async with await connected(port) as client:
        await client.declare_queue(1, "unrelated")
        while not until.is_set() or count < 3:
            with trio.fail_after(2):  # generous: a stalled broker takes forever, not 2 s
                await client.publish(1, "unrelated", b"ping %d" % count)
                assert await client.get(1, "unrelated") == b"ping %d" % count
            count += 1
        await client.close()
    return count


async def test_a_client_that_stops_reading_stalls_no_one_else(server: Broker) -> None:
    slow = await connected(server.port)
    await slow.declare_queue(1, "backlog")
    # No basic.qos: only the server's output high-water mark holds deliveries back.
    await slow.send_method(1, methods.BasicConsume(queue="backlog", no_ack=True))
    await slow.expect(methods.BasicConsumeOk, 1)
    # From here on the slow client reads nothing.

    published = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_publish_backlog, server.port, "backlog", published)
            round_trips = await _round_trips(server.port, published)
    assert round_trips >= 3

    # The backlog waits in the queue, not in the slow connection's output buffer: only what
    # the kernel's socket buffers took and one high-water mark's worth left the queue.
    async with await connected(server.port) as observer:
        waiting = (await observer.declare_queue(1, "backlog", passive=True)).message_count
        await observer.close()
    assert waiting >= BACKLOG // 2  # 15 messages left it here; all 200 without the mark

    # Once the client reads again, deliveries resume and every message arrives.
    with trio.fail_after(30):
        for _ in range(BACKLOG):
            await slow.expect(methods.BasicDeliver, 1)
            _properties, body = await slow.expect_content()
            assert body == MESSAGE
    await slow.close()
    await slow.aclose()


async def test_a_client_that_sends_without_reading_is_paused_not_buffered_for(
    server: Broker,
) -> None:
    """Returns are not held back like deliveries: the server stops reading from such a client
    (TCP slows it down) rather than keep what it owes it in memory without bound."""
    count = 300  # 300 x 100 kB of basic.return owed, far past the backlog mark
    client = await connected(server.port)
    [connection] = server.server.connections
    burst = b"".join(
        encode_method(1, methods.BasicPublish(routing_key="nowhere", mandatory=True))
        + encode_content(1, 60, MESSAGE, client.frame_max)
        for _ in range(count)
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send, burst)
        await trio.testing.wait_all_tasks_blocked()  # both sides stuck: nobody reads
        assert connection.reading_paused
        assert (
            connection.output_pending < READ_PAUSE_BACKLOG + 256 * 1024 * 2
        )  # one read's worth past the mark
        for _ in range(count):  # reading lets the rest through, and nothing is lost
            returned = await client.expect(methods.BasicReturn, 1)
            assert returned.reply_code == 312
            await client.expect_content()
    await client.close()
    await client.aclose()


async def test_many_channels_on_one_connection(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        _start, tune = await client.handshake()
        numbers = range(1, tune.channel_max + 1)
        await client.send(b"".join(encode_method(n, methods.ChannelOpen()) for n in numbers))
        for n in numbers:
            await client.expect(methods.ChannelOpenOk, n)
        await client.declare_queue(1, "fan-in")
        await client.send(
            b"".join(
                encode_method(n, methods.BasicPublish(routing_key="fan-in"))
                + encode_content(n, 60, b"%d" % n, tune.frame_max)
                for n in numbers
            )
        )
        ok = await client.declare_queue(tune.channel_max, "fan-in", passive=True)
        assert ok.message_count == tune.channel_max
        await client.send(encode_method(tune.channel_max + 1, methods.ChannelOpen()))
        await client.expect_connection_close(530)


async def test_a_hundred_connections_at_once(server: Broker) -> None:
    async def one(n: int) -> None:
        async with await connected(server.port) as client:
            queue = f"conn-{n}"
            await client.declare_queue(1, queue)
            await client.publish(1, queue, queue.encode())
            assert await client.get(1, queue) == queue.encode()
            await client.close()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(one, n)
    assert not server.server.connections


async def test_a_dead_peer_with_a_full_window_is_dropped_on_missed_heartbeats(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Neither reading nor sending (a vanished host): the stuck writer must not keep it alive."""
    async with Broker(heartbeat=2) as broker:
        dead = await connected(broker.port, heartbeat=2)
        await dead.declare_queue(1, "backlog")
        await dead.send_method(1, methods.BasicConsume(queue="backlog", no_ack=True))
        await dead.expect(methods.BasicConsumeOk, 1)
        await _publish_backlog(broker.port, "backlog", trio.Event())
        await trio.sleep(60)  # thirty heartbeat intervals of silence
        assert not broker.server.connections
        await dead.aclose()


async def test_an_alarm_blocks_publishers_until_it_clears(server: Broker) -> None:
    """RabbitMQ's resource-alarm flow control: a connection that publishes while an alarm is on
    hears connection.blocked and is not read from until connection.unblocked; consumers are
    not blocked, so queues can drain."""
    capabilities = {"capabilities": {"connection.blocked": True}}
    publisher = await connected(server.port, client_properties=capabilities)
    consumer = await connected(server.port)
    await publisher.declare_queue(1, "q")
    server.node.set_alarm("memory")
    await publisher.publish(1, "q", b"first")
    blocked = await publisher.expect(methods.ConnectionBlocked, 0)
    assert blocked.reason == "low on memory"
    await publisher.publish(1, "q", b"second")  # sent, but not read while blocked
    await trio.testing.wait_all_tasks_blocked()
    assert await consumer.get(1, "q") == b"first"  # consuming goes on
    assert await consumer.get(1, "q") is None
    server.node.clear_alarm("memory")
    await publisher.expect(methods.ConnectionUnblocked, 0)
    await publisher.declare_queue(1, "q", passive=True)  # a round trip: "second" was read
    assert await consumer.get(1, "q") == b"second"
    for client in (publisher, consumer):
        await client.close()
        await client.aclose()
