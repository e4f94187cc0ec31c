"""A store that cannot write (a full disk) stops nothing: the batch waits and is tried again,
nothing is confirmed that is not on disk, publishers are blocked by a disk alarm meanwhile, and
consumers carry on. When writing works again, so does everything else."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from amqp_lite import Broker
from amqp_lite.wire import methods
from amqp_lite.wire.frames import encode_body, encode_header, encode_method
from tests.rawclient import RawClient
from vhosts.store import Store

PERSISTENT = b"\x10\x00\x02"  # raw properties: delivery_mode 2


class DiskFull:
    """Makes every store write fail as SQLite fails on a full disk, until `free()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.failed = 0
        write = Store.write_batch

        def write_batch(store: Store, batch: list[Any]) -> None:
            if self.full:
                self.failed += 1
                raise sqlite3.OperationalError("database or disk is full")
            write(store, batch)

        monkeypatch.setattr(Store, "write_batch", write_batch)

    def free(self) -> None:
        self.full = False


async def blocking_aware(port: int) -> RawClient:
    """A client that announces the connection.blocked capability, with channel 1 open."""
    client = await RawClient.connect(port)
    await client.handshake(client_properties={"capabilities": {"connection.blocked": True}})
    await client.open_channel(1)
    return client


async def publish(client: RawClient, queue: str, body: bytes) -> None:
    await client.send(
        encode_method(1, methods.BasicPublish(routing_key=queue))
        + encode_header(1, 60, len(body), PERSISTENT)
        + encode_body(1, body, client.frame_max)
    )


def alarm_watch(broker: Broker) -> tuple[trio.Event, trio.Event]:
    raised, cleared = trio.Event(), trio.Event()
    assert broker.node is not None
    broker.node.events.alarm_set.subscribe(lambda resource: resource == "disk" and raised.set())
    broker.node.events.alarm_cleared.subscribe(
        lambda resource: resource == "disk" and cleared.set()
    )
    return raised, cleared


async def test_a_full_disk_blocks_publishers_loses_nothing_and_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amqp_lite")
    disk = DiskFull(monkeypatch)
    async with Broker(data_dir=tmp_path) as broker:
        raised, cleared = alarm_watch(broker)
        publisher = await blocking_aware(broker.port)
        await publisher.declare_queue(1, "kept", durable=True)
        await publisher.send_method(1, methods.ConfirmSelect())
        await publisher.expect(methods.ConfirmSelectOk, 1)
        consumer = await blocking_aware(broker.port)

        disk.full = True
        await publish(publisher, "kept", b"first")
        with trio.fail_after(10):
            await raised.wait()  # the write failed: the node is in a disk alarm
        # Nothing confirmed: a reply that needs no disk comes back with no basic.ack before it.
        await publisher.send_method(1, methods.BasicQos(prefetch_count=10))
        await publisher.expect(methods.BasicQosOk, 1)
        # Consumers are served meanwhile (the message is in memory).
        await consumer.send_method(1, methods.BasicGet(queue="kept", no_ack=False))
        await consumer.expect(methods.BasicGetOk, 1)
        assert (await consumer.expect_content())[1] == b"first"
        await consumer.send_method(1, methods.BasicReject(delivery_tag=1, requeue=True))

        # The next publish blocks the publisher, as a disk alarm does in RabbitMQ.
        await publish(publisher, "kept", b"second")
        blocked = await publisher.expect(methods.ConnectionBlocked, 0)
        assert blocked.reason == "low on disk"
        assert disk.failed >= 1

        disk.free()  # the next retry writes everything that waited, and the alarm clears
        frames = [await publisher.next_frame() for _ in range(2)]
        kinds = {type(frame.method) for frame in frames}
        assert kinds == {methods.BasicAck, methods.ConnectionUnblocked}, frames
        ack = next(f.method for f in frames if isinstance(f.method, methods.BasicAck))
        assert (ack.delivery_tag, ack.multiple) == (2, True)
        assert cleared.is_set()
        await publisher.close()
        await consumer.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write to disk" in m for m in messages) == 1  # once, not per retry
    assert any("writing to disk again" in m for m in messages)

    async with Broker(data_dir=tmp_path) as broker:  # and both are on disk
        client = await RawClient.connect(broker.port)
        await client.handshake()
        await client.open_channel(1)
        assert [await client.get(1, "kept") for _ in range(3)] == [b"first", b"second", None]
        await client.close()


async def test_a_disk_still_full_at_shutdown_costs_only_what_was_never_confirmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskFull(monkeypatch)
    async with Broker(data_dir=tmp_path) as broker:
        client = await blocking_aware(broker.port)
        await client.declare_queue(1, "kept", durable=True)
        await client.send_method(1, methods.ConfirmSelect())
        await client.expect(methods.ConfirmSelectOk, 1)
        await publish(client, "kept", b"confirmed")
        await client.expect(methods.BasicAck, 1)
        disk.full = True
        await publish(client, "kept", b"never confirmed")
        await client.send_method(1, methods.BasicQos(prefetch_count=1))
        await client.expect(methods.BasicQosOk, 1)
        await client.aclose()
    disk.free()  # the broker stopped without a traceback; start it again
    async with Broker(data_dir=tmp_path) as broker:
        client = await RawClient.connect(broker.port)
        await client.handshake()
        await client.open_channel(1)
        assert await client.get(1, "kept") == b"confirmed"
        await client.close()
