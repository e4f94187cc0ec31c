"""x-single-active-consumer takes a boolean only, with RabbitMQ 3.10.8's text for anything else.

Passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`).
"""

from __future__ import annotations

from typing import Any

import pytest

from amqp_lite.wire import methods
from tests.conftest import Target
from tests.rawclient import RawClient


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (1, "signedint"),
        (0, "signedint"),
        ("true", "longstr"),
        (1.5, "double"),
        (None, "void"),
        (b"x", "binary"),
        ([True], "array"),
        ({"a": 1}, "table"),
    ],
)
async def test_a_value_that_is_not_a_boolean_is_406(
    target: Target, value: Any, type_name: str
) -> None:
    queue = target.unique("sac")
    async with await RawClient.connect(target.port, target.host) as client:
        await client.handshake()
        await client.open_channel(1)
        arguments = {"x-single-active-consumer": value}
        await client.send_method(1, methods.QueueDeclare(queue=queue, arguments=arguments))
        close = await client.expect(methods.ChannelClose, 1)
    assert (close.reply_code, close.reply_text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue '{queue}' "
        f"in vhost '/': {{unacceptable_type,{type_name}}}",
    )


@pytest.mark.parametrize("value", [True, False])
async def test_a_boolean_is_taken(target: Target, value: bool) -> None:
    queue = target.unique("sac")
    async with await RawClient.connect(target.port, target.host) as client:
        await client.handshake()
        await client.open_channel(1)
        arguments = {"x-single-active-consumer": value}
        await client.declare_queue(1, queue, exclusive=True, arguments=arguments)
