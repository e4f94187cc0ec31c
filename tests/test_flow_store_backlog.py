"""A publisher faster than the disk is slowed, not buffered for without end.

Persistent messages wait in the store's batch until the disk has them. While more than the
store's backlog limit (64 MiB) waits, a connection that publishes is not read (RabbitMQ's "flow"
state): TCP slows it down, consumers and other work carry on, and it is read again as soon as
the store catches up. Here the disk is made to stall, so the limit is reached at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import trio
import trio.testing

from amqp_lite import Broker
from amqp_lite.server import RECEIVE_SIZE
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_content, encode_method
from tests.rawclient import connected

MESSAGE = b"m" * 10_000
COUNT = 500  # 5 MB, twenty times the limit below


async def test_a_publisher_faster_than_the_disk_waits_in_tcp(tmp_path: Path) -> None:
    async with Broker(data_dir=tmp_path) as broker:
        store = broker.node.store
        assert store is not None
        client = await connected(broker.port)
        await client.declare_queue(1, "q", durable=True)
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        consumer = await connected(broker.port)

        store.backlog_limit = 256 * 1024
        disk = threading.Event()
        write = store.write_batch

        def stalled_write(batch: list) -> None:
            disk.wait(30)
            write(batch)

        store.write_batch = stalled_write  # type: ignore[method-assign]
        publish = encode_method(1, methods.BasicPublish(routing_key="q")) + encode_content(
            1, 60, MESSAGE, client.frame_max, Properties(delivery_mode=2)
        )
        publisher = next(
            c for c in broker.server.connections if c.channels.get(1) and c.channels[1].confirming
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, publish * COUNT)
            await trio.testing.wait_all_tasks_blocked()
            assert publisher.reading_paused and publisher.throttled == "flow"
            [info] = [c for c in broker.admin.connections() if c.connection is publisher]
            assert info.state == "flow"
            # What waits for the disk is the limit and at most two reads past it: the one that
            # crossed it, and the next, which the first publish in it pauses after.
            most = store.backlog_limit + 2 * RECEIVE_SIZE + len(publish)
            assert store.unwritten_bytes < most
            # Others are served meanwhile: the messages already queued can be got.
            assert await consumer.get(1, "q") == MESSAGE

            disk.set()  # the disk catches up: the publisher is read again, nothing is lost
            confirmed = 0
            while confirmed < COUNT:
                ack = await client.expect(methods.BasicAck, 1)
                confirmed = ack.delivery_tag
        assert not publisher.reading_paused and publisher.throttled is None
        ok = await consumer.declare_queue(1, "q", passive=True)
        assert ok.message_count == COUNT - 1
        for peer in (client, consumer):
            await peer.close()
            await peer.aclose()
