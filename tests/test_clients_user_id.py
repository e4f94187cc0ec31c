"""The user_id property must name the user who publishes, as RabbitMQ enforces it.

Each test passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`, see tests/conftest.py).
"""

from __future__ import annotations

import pytest

from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import encode_content, encode_method
from tests.conftest import Target
from tests.rawclient import RawClient


async def _publish(client: RawClient, queue: str, user_id: str, exchange: str = "") -> None:
    await client.send(
        encode_method(1, methods.BasicPublish(exchange=exchange, routing_key=queue))
        + encode_content(1, 60, b"body", client.frame_max, Properties(user_id=user_id))
    )


async def _client(target: Target, response: bytes = b"\x00guest\x00guest") -> RawClient:
    client = await RawClient.connect(target.port, target.host)
    await client.handshake(response=response)
    await client.open_channel(1)
    return client


@pytest.mark.parametrize("user_id", ["someone", "GUEST", ""])
async def test_a_user_id_that_is_not_the_publisher_closes_the_channel_with_406(
    target: Target, user_id: str
) -> None:
    queue = target.unique("user-id")
    async with await _client(target) as client:
        await client.declare_queue(1, queue, exclusive=True)
        await _publish(client, queue, user_id)
        close = await client.expect(methods.ChannelClose, 1)
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            406,
            f"PRECONDITION_FAILED - user_id property set to '{user_id}' "
            "but authenticated user was 'guest'",
            60,
            40,
        )
        await client.send_method(1, methods.ChannelCloseOk())
        await client.open_channel(1)
        assert await client.get(1, queue) is None  # nothing was enqueued


async def test_the_publishers_own_user_id_is_delivered(target: Target) -> None:
    queue = target.unique("user-id-own")
    async with await _client(target) as client:
        await client.declare_queue(1, queue, exclusive=True)
        await _publish(client, queue, "guest")
        await client.send_method(1, methods.BasicGet(queue=queue, no_ack=True))
        await client.expect(methods.BasicGetOk, 1)
        properties, body = await client.expect_content()
        assert (properties.user_id, body) == ("guest", b"body")


async def test_in_a_transaction_the_publish_itself_is_refused(target: Target) -> None:
    queue = target.unique("user-id-tx")
    async with await _client(target) as client:
        await client.declare_queue(1, queue, exclusive=True)
        await client.send_method(1, methods.TxSelect())
        await client.expect(methods.TxSelectOk, 1)
        await _publish(client, queue, "someone")
        close = await client.expect(methods.ChannelClose, 1)
        assert close.reply_code == 406


async def test_a_missing_exchange_is_reported_before_the_user_id(target: Target) -> None:
    async with await _client(target) as client:
        await _publish(client, "anywhere", "someone", exchange="missing-exchange")
        close = await client.expect(methods.ChannelClose, 1)
        assert (close.reply_code, close.reply_text) == (
            404,
            "NOT_FOUND - no exchange 'missing-exchange' in vhost '/'",
        )


async def test_an_impersonator_may_publish_as_anyone(target: Target) -> None:
    name, queue = target.unique("impersonator"), target.unique("user-id-impersonated")
    target.add_user(name, "secret", tags=("impersonator",))
    try:
        async with await _client(target, f"\x00{name}\x00secret".encode()) as client:
            await client.declare_queue(1, queue, exclusive=True)
            await _publish(client, queue, "someone-else")
            await client.send_method(1, methods.BasicGet(queue=queue, no_ack=True))
            await client.expect(methods.BasicGetOk, 1)
            properties, _body = await client.expect_content()
            assert properties.user_id == "someone-else"
    finally:
        target.delete_user(name)
