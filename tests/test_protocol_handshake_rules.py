"""What the broker does with a handshake that breaks the rules, as RabbitMQ 3.10.8 does it.

Before tune-ok a client is not trusted with a reason: whatever it gets wrong (tune-ok values
above the server's, a method out of turn, even connection.close) ends in silence and a socket
closed after a delay. Between tune-ok and connection.open it gets a connection.close that says
what was wrong. Each test passes against RabbitMQ 3.10.8 too (`--rabbitmq-url`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from amqp_lite.wire import methods
from amqp_lite.wire.frames import PROTOCOL_HEADER
from tests.conftest import Target
from tests.rawclient import RawClient

GUEST = b"\x00guest\x00guest"


def _start_ok(response: bytes = GUEST) -> methods.ConnectionStartOk:
    return methods.ConnectionStartOk(
        client_properties={"product": "rawclient"}, mechanism="PLAIN", response=response
    )


async def _started(target: Target) -> RawClient:
    client = await RawClient.connect(target.port, target.host)
    await client.send(PROTOCOL_HEADER)
    await client.expect(methods.ConnectionStart, 0)
    return client


async def _tuned(target: Target) -> RawClient:
    client = await _started(target)
    await client.send_method(0, _start_ok())
    await client.expect(methods.ConnectionTune, 0)
    return client


async def _opening(target: Target) -> RawClient:
    """Past tune-ok, before connection.open."""
    client = await _tuned(target)
    await client.send_method(
        0, methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0)
    )
    return client


Step = Callable[[RawClient], Awaitable[None]]


def _method(channel: int, method: Any) -> Step:
    async def send(client: RawClient) -> None:
        await client.send_method(channel, method)

    return send


def _tune_ok(**values: int) -> Step:
    return _method(0, methods.ConnectionTuneOk(**{"heartbeat": 0, **values}))


SILENT_AFTER_START = {
    "tune-ok before start-ok": _tune_ok(channel_max=2047, frame_max=131072),
    "channel.open before start-ok": _method(1, methods.ChannelOpen()),
    "connection.close before start-ok": _method(0, methods.ConnectionClose(reply_code=200)),
    "a wrong password, no authentication_failure_close": _method(
        0, _start_ok(b"\x00guest\x00wrong")
    ),
}
SILENT_AFTER_TUNE = {
    "channel_max above the server's": _tune_ok(channel_max=2048, frame_max=131072),
    "channel_max 0, no limit": _tune_ok(channel_max=0, frame_max=131072),
    "frame_max above the server's": _tune_ok(channel_max=2047, frame_max=131073),
    "frame_max 0, no limit": _tune_ok(channel_max=2047, frame_max=0),
    "frame_max below 4096": _tune_ok(channel_max=2047, frame_max=4095),
    "connection.open before tune-ok": _method(0, methods.ConnectionOpen(virtual_host="/")),
    "channel.open before tune-ok": _method(1, methods.ChannelOpen()),
    "connection.close before tune-ok": _method(0, methods.ConnectionClose(reply_code=200)),
}


async def test_a_broken_rule_before_tune_ok_gets_silence_and_a_late_hang_up(
    target: Target,
) -> None:
    """All at once, as each waits out the delay (3 s in RabbitMQ, and here)."""
    outcomes: dict[str, tuple[bytes, float]] = {}

    async def attempt(name: str, opened: Callable[[Target], Awaitable[RawClient]], step: Step):
        async with await opened(target) as client:
            await step(client)
            started = time.monotonic()
            outcomes[name] = (await client.read_raw_until_eof(), time.monotonic() - started)

    async with trio.open_nursery() as nursery:
        for name, step in SILENT_AFTER_START.items():
            nursery.start_soon(attempt, name, _started, step)
        for name, step in SILENT_AFTER_TUNE.items():
            nursery.start_soon(attempt, name, _tuned, step)
    for name, (received, waited) in outcomes.items():
        assert received == b"", name
        assert waited > 2.5, name


async def test_a_heartbeat_above_the_servers_is_taken_as_the_client_asks(target: Target) -> None:
    async with await _tuned(target) as client:
        await client.send_method(
            0, methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=600)
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="/"))
        await client.expect(methods.ConnectionOpenOk, 0)


async def test_lower_tune_ok_values_are_taken(target: Target) -> None:
    async with await _tuned(target) as client:
        await client.send_method(
            0, methods.ConnectionTuneOk(channel_max=1, frame_max=4096, heartbeat=5)
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="/"))
        await client.expect(methods.ConnectionOpenOk, 0)
        await client.open_channel(1)


@pytest.mark.parametrize(
    ("method", "ids"),
    [
        (methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0), (10, 31)),
        (_start_ok(), (10, 11)),
        (methods.ConnectionClose(reply_code=200, reply_text="bye"), (10, 50)),
    ],
    ids=["tune-ok again", "start-ok again", "connection.close"],
)
async def test_a_channel_zero_method_before_connection_open_is_504(
    target: Target, method: Any, ids: tuple[int, int]
) -> None:
    async with await _opening(target) as client:
        await client.send_method(0, method)
        close = await client.expect(methods.ConnectionClose, 0)
        assert (close.reply_code, close.reply_text, (close.class_id, close.method_id)) == (
            504,
            "CHANNEL_ERROR - unexpected method in connection state opening",
            ids,
        )


async def test_a_channel_frame_before_connection_open_is_505_with_its_octets(
    target: Target,
) -> None:
    async with await _opening(target) as client:
        await client.send_method(1, methods.ChannelOpen())
        close = await client.expect(methods.ConnectionClose, 0)
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            505,
            "UNEXPECTED_FRAME - type 1, all octets = <<0,20,0,10,0>>",
            0,
            0,
        )


async def test_channel_max_counts_channels_not_their_numbers(target: Target) -> None:
    """RabbitMQ 3.10 opens channel 11 under a negotiated channel_max of 10."""
    async with await _tuned(target) as client:
        await client.send_method(
            0, methods.ConnectionTuneOk(channel_max=10, frame_max=131072, heartbeat=0)
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="/"))
        await client.expect(methods.ConnectionOpenOk, 0)
        await client.open_channel(11)
