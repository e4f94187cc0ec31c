"""A reply and a server-sent basic.cancel or channel.close on one channel come in RabbitMQ's order.

RabbitMQ answers queue.delete before it tells the queue's consumers they are cancelled. py-amqp
(and so kombu and Celery) handles a basic.cancel that arrives while it waits for delete-ok by
raising ConsumerCancelled out of `queue_delete()`, so the order is what a user sees.

Every test here passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`, see tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import amqp
import pytest

from amqp_lite.wire import methods
from amqp_lite.wire.frames import MethodFrame, encode_method
from tests.conftest import Target
from tests.rawclient import RawClient

# What a client must say to hear of consumers the server cancels.
CANCEL_NOTIFY = {"product": "rawclient", "capabilities": {"consumer_cancel_notify": True}}


async def _client(target: Target, vhost: str = "/") -> RawClient:
    client = await RawClient.connect(target.port, target.host)
    await client.handshake(vhost=vhost, client_properties=CANCEL_NOTIFY)
    await client.open_channel(1)
    return client


async def _consume(client: RawClient, channel: int, queue: str, tag: str) -> None:
    await client.send_method(channel, methods.BasicConsume(queue=queue, consumer_tag=tag))
    await client.expect(methods.BasicConsumeOk, channel)


async def _bye(client: RawClient) -> None:
    """connection.close and its close-ok; RabbitMQ then leaves closing the socket to us."""
    await client.send_method(0, methods.ConnectionClose(reply_code=200, reply_text="bye"))
    await client.expect(methods.ConnectionCloseOk, 0)


async def _methods(client: RawClient, count: int) -> list[tuple[int, Any]]:
    frames = [await client.next_frame() for _ in range(count)]
    assert all(isinstance(frame, MethodFrame) for frame in frames), frames
    return [(frame.channel, frame.method) for frame in frames]


QUEUE_KINDS = {
    "plain": {},
    "durable": {"durable": True},
    "exclusive": {"exclusive": True},
    "auto-delete": {"auto_delete": True},
}


@pytest.mark.parametrize("flags", QUEUE_KINDS.values(), ids=QUEUE_KINDS.keys())
async def test_delete_ok_comes_before_the_cancel_of_the_channels_own_consumers(
    target: Target, flags: dict[str, bool]
) -> None:
    queue = target.unique("delete-own")
    async with await _client(target) as client:
        await client.declare_queue(1, queue, **flags)
        await _consume(client, 1, queue, "first")
        await _consume(client, 1, queue, "second")
        await client.send_method(1, methods.QueueDelete(queue=queue))
        assert await _methods(client, 3) == [
            (1, methods.QueueDeleteOk(message_count=0)),
            (1, methods.BasicCancel(consumer_tag="first", no_wait=True)),
            (1, methods.BasicCancel(consumer_tag="second", no_wait=True)),
        ]
        await _bye(client)


async def test_a_pipelined_method_after_the_delete_is_still_answered(target: Target) -> None:
    queue = target.unique("delete-pipelined")
    async with await _client(target) as client:
        await client.declare_queue(1, queue, durable=True)
        await _consume(client, 1, queue, "tag")
        await client.send(
            encode_method(1, methods.QueueDelete(queue=queue))
            + encode_method(1, methods.BasicQos(prefetch_count=5))
        )
        received = await _methods(client, 3)
        # RabbitMQ may answer the qos before the cancel too; both come after delete-ok.
        assert received[0] == (1, methods.QueueDeleteOk(message_count=0))
        assert sorted(received[1:], key=repr) == [
            (1, methods.BasicCancel(consumer_tag="tag", no_wait=True)),
            (1, methods.BasicQosOk()),
        ]
        await _bye(client)


async def test_deleting_from_another_channel_cancels_the_consumer_and_answers(
    target: Target,
) -> None:
    queue = target.unique("delete-other")
    async with await _client(target) as client:
        await client.open_channel(2)
        await client.declare_queue(1, queue, durable=True)
        await _consume(client, 1, queue, "tag")
        await client.send_method(2, methods.QueueDelete(queue=queue))
        received = await _methods(client, 2)
        assert sorted(received, key=repr) == [
            (1, methods.BasicCancel(consumer_tag="tag", no_wait=True)),
            (2, methods.QueueDeleteOk(message_count=0)),
        ]
        await _bye(client)


async def test_deleting_from_another_connection_cancels_the_consumer(target: Target) -> None:
    queue = target.unique("delete-elsewhere")
    async with await _client(target) as consumer, await _client(target) as deleter:
        await consumer.declare_queue(1, queue, durable=True)
        await _consume(consumer, 1, queue, "tag")
        await deleter.send_method(1, methods.QueueDelete(queue=queue))
        await deleter.expect(methods.QueueDeleteOk, 1)
        assert await _methods(consumer, 1) == [
            (1, methods.BasicCancel(consumer_tag="tag", no_wait=True))
        ]
        await _bye(consumer)
        await _bye(deleter)


async def test_a_durable_declare_is_answered_before_the_error_that_follows_it(
    target: Target,
) -> None:
    """declare-ok of a durable queue waits for the disk; the channel.close the next pipelined
    method earns must not overtake it."""
    queue = target.unique("declare-then-error")
    async with await _client(target) as client:
        await client.send(
            encode_method(1, methods.QueueDeclare(queue=queue, durable=True))
            + encode_method(1, methods.QueueBind(queue=queue, exchange=queue + "-missing"))
        )
        declare_ok = await client.expect(methods.QueueDeclareOk, 1)
        assert declare_ok.queue == queue
        close = await client.expect(methods.ChannelClose, 1)
        assert (close.reply_code, close.reply_text) == (
            404,
            f"NOT_FOUND - no exchange '{queue}-missing' in vhost '/'",
        )
        await client.send_method(1, methods.ChannelCloseOk())
        await client.open_channel(1)
        await client.send_method(1, methods.QueueDelete(queue=queue))
        await client.expect(methods.QueueDeleteOk, 1)
        await _bye(client)


async def test_deleting_the_vhost_cancels_consumers_then_closes_the_connection(
    target: Target,
) -> None:
    vhost = target.unique("vhost-deleted")
    target.add_vhost(vhost)
    try:
        async with await _client(target, vhost) as client:
            await client.declare_queue(1, "consumed", durable=True)
            await _consume(client, 1, "consumed", "tag")
            target.delete_vhost(vhost)
            frames = await client.frames_until_eof()
    finally:
        if target.is_amqp_lite:
            target.delete_vhost(vhost)
    assert [(frame.channel, type(frame.method)) for frame in frames] == [
        (1, methods.BasicCancel),
        (0, methods.ConnectionClose),
    ]
    close = frames[1].method
    assert close.reply_code == 320
    # RabbitMQ 3.10 says "is down" or "is deleted", whichever of its processes stops first.
    assert close.reply_text in (
        f"CONNECTION_FORCED - vhost '{vhost}' is deleted",
        f"CONNECTION_FORCED - vhost '{vhost}' is down",
    )


# -- py-amqp, the client kombu and Celery use ----------------------------------------------------


def _py_amqp(target: Target) -> amqp.Connection:
    connection = amqp.Connection(
        f"{target.host}:{target.port}", userid="guest", password="guest", connect_timeout=10
    )
    connection.connect()
    return connection


@pytest.mark.parametrize("durable", [False, True], ids=["transient", "durable"])
def test_py_amqp_queue_delete_of_a_consumed_queue_returns(target: Target, durable: bool) -> None:
    queue = target.unique("py-amqp-delete")
    connection = _py_amqp(target)
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=durable, auto_delete=False)
        channel.basic_consume(queue, consumer_tag="worker", callback=lambda message: None)
        assert channel.queue_delete(queue) == 0  # before the fix: raised ConsumerCancelled
        # The cancel comes next, and py-amqp raises it where it reads it: here, not above.
        with pytest.raises(amqp.exceptions.ConsumerCancelled):
            connection.drain_events(timeout=10)
        assert "worker" not in channel.callbacks
    finally:
        connection.close()


def test_py_amqp_hears_the_cancel_through_on_cancel(target: Target) -> None:
    queue = target.unique("py-amqp-on-cancel")
    cancelled: list[str] = []
    connection = _py_amqp(target)
    try:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True)
        channel.basic_consume(
            queue, consumer_tag="worker", callback=lambda message: None, on_cancel=cancelled.append
        )
        assert channel.queue_delete(queue) == 0
        assert cancelled == []
        connection.drain_events(timeout=10)
        assert cancelled == ["worker"]
    finally:
        connection.close()


async def test_replies_and_deliveries_keep_the_order_of_the_methods_that_caused_them(
    target: Target,
) -> None:
    """A durable declare's ok waits for the disk; the consume-ok and delivery after it wait too."""
    ready, durable = target.unique("ready"), target.unique("durable")
    async with await _client(target) as client:
        await client.declare_queue(1, ready)
        await client.publish(1, ready, b"waiting")
        await client.send(
            encode_method(1, methods.QueueDeclare(queue=durable, durable=True))
            + encode_method(1, methods.BasicConsume(queue=ready, consumer_tag="tag", no_ack=True))
        )
        received = await _methods(client, 3)
        assert [type(method) for _channel, method in received] == [
            methods.QueueDeclareOk,
            methods.BasicConsumeOk,
            methods.BasicDeliver,
        ]
        assert (await client.expect_content())[1] == b"waiting"
        await client.send_method(1, methods.QueueDelete(queue=durable))
        await client.expect(methods.QueueDeleteOk, 1)
        await client.send_method(1, methods.QueueDelete(queue=ready))
        await client.expect(methods.QueueDeleteOk, 1)
        await client.expect(methods.BasicCancel, 1)
        await _bye(client)
