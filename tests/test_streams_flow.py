"""Streams and the event loop: a publisher into a stream faster than the disk is slowed, as one
into a durable queue is (a stream's records waiting for the disk count towards the store's
backlog limit), and a consumer with much to read from disk reads it in rounds."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import trio
import trio.testing

import vhosts.stream_queue as stream_queue
from amqp_lite import Broker
from amqp_lite.server import RECEIVE_SIZE
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_content, encode_method
from tests.rawclient import connected

MESSAGE = b"m" * 10_000
COUNT = 500


async def test_a_stream_publisher_faster_than_the_disk_waits_in_tcp(tmp_path: Path) -> None:
    async with Broker(data_dir=tmp_path) as broker:
        store, streams = broker.node.store, broker.node.streams
        assert store is not None
        client = await connected(broker.port)
        await client.declare_queue(1, "s", durable=True, arguments={"x-queue-type": "stream"})
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)

        store.backlog_limit = 256 * 1024
        disk = threading.Event()
        write = streams.write_batch

        def stalled_write(batch: Any) -> None:
            disk.wait(30)
            write(batch)

        streams.write_batch = stalled_write  # type: ignore[method-assign]
        publish = encode_method(1, methods.BasicPublish(routing_key="s")) + encode_content(
            1, 60, MESSAGE, client.frame_max
        )
        publisher = next(
            c for c in broker.server.connections if c.channels.get(1) and c.channels[1].confirming
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, publish * COUNT)
            await trio.testing.wait_all_tasks_blocked()
            assert publisher.reading_paused and publisher.throttled == "flow"
            assert store.unwritten_bytes < store.backlog_limit + 2 * RECEIVE_SIZE + len(publish)
            disk.set()  # the disk catches up: the publisher is read again, nothing is lost
            confirmed = 0
            while confirmed < COUNT:
                confirmed = (await client.expect(methods.BasicAck, 1)).delivery_tag
        assert not publisher.reading_paused
        assert broker.node.vhosts["/"].queues["s"].message_count == COUNT
        await client.close()
        await client.aclose()


async def test_a_consumer_reading_far_lets_the_event_loop_run_between_rounds(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A filtering consumer that skips most of a long log reads it DISPATCH_BUDGET at a time,
    and the event loop runs between those rounds: another client is answered meanwhile."""
    monkeypatch.setattr(stream_queue, "DISPATCH_BUDGET", 4096)
    monkeypatch.setattr(stream_queue, "READ_AHEAD", 1024)
    async with Broker(data_dir=tmp_path) as broker:
        streams = broker.node.streams
        client = await connected(broker.port)
        await client.declare_queue(1, "s", durable=True, arguments={"x-queue-type": "stream"})
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        common = encode_method(1, methods.BasicPublish(routing_key="s")) + encode_content(
            1, 60, b"c" * 200, client.frame_max, Properties(headers={"x-stream-filter-value": "a"})
        )
        rare = encode_method(1, methods.BasicPublish(routing_key="s")) + encode_content(
            1, 60, b"rare", client.frame_max, Properties(headers={"x-stream-filter-value": "b"})
        )
        await client.send(common * 2000 + rare)
        while (await client.expect(methods.BasicAck, 1)).delivery_tag < 2001:
            pass
        rounds = 0
        run_resumes = streams.run_resumes

        def counted() -> None:
            nonlocal rounds
            rounds += 1
            run_resumes()

        monkeypatch.setattr(streams, "run_resumes", counted)
        await client.send_method(1, methods.BasicQos(prefetch_count=10))
        await client.expect(methods.BasicQosOk, 1)
        arguments = {"x-stream-offset": "first", "x-stream-filter": "b"}
        await client.send_method(1, methods.BasicConsume(queue="s", arguments=arguments))
        await client.expect(methods.BasicConsumeOk, 1)
        deliver = await client.expect(methods.BasicDeliver, 1)
        _properties, body = await client.expect_content()
        assert (deliver.delivery_tag, body) == (1, b"rare")
        assert rounds > 50  # about 480 KB read 4 KB at a time, each round a turn of the loop
        await client.close()
        await client.aclose()
