"""The protocol header and the connection handshake, byte by byte, as RabbitMQ 3.10 does them."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from amqp_lite import Broker
from amqp_lite.server import HANDSHAKE_TIMEOUT
from amqp_lite.wire import methods
from amqp_lite.wire.fields import encode_table
from amqp_lite.wire.frames import PROTOCOL_HEADER, BodyFrame, encode_method
from tests.conftest import Target
from tests.rawclient import RawClient

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


# -- the protocol header -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"AMQP\x00\x00\x09\x00",  # 0-9-0
        b"AMQP\x00\x00\x09\x02",  # a 0-9-2 that never was
        b"AMQP\x00\x00\x0a\x00",  # 0-10
        b"AMQP\x01\x01\x00\x0a",  # 0-10 in the old form
        b"AMQP\x00\x01\x00\x00",  # AMQP 1.0
        b"AMQP\x03\x01\x00\x00",  # AMQP 1.0 SASL
        b"HTTP/1.1",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ],
)
async def test_a_foreign_header_gets_ours_back_and_the_socket_closed(
    target: Target, header: bytes
) -> None:
    async with await RawClient.connect(target.port, target.host) as client:
        await client.send(header)
        # RabbitMQ sends the same 8 octets, then resets the connection; we close it cleanly.
        assert await client.read_raw_until_eof() == b"AMQP\x00\x00\x09\x01"


@pytest.mark.parametrize("header", [b"AMQP\x01\x01\x08\x00", b"AMQP\x01\x01\x09\x01"])
async def test_a_0_8_header_is_refused(server: Broker, header: bytes) -> None:
    """RabbitMQ still speaks AMQP 0-8 to these; amqp-lite does not (see the README)."""
    async with await RawClient.connect(server.port) as client:
        await client.send(header)
        assert await client.read_raw_until_eof() == b"AMQP\x00\x00\x09\x01"


async def test_the_old_form_of_the_0_9_header_gets_0_9_1(target: Target) -> None:
    """Perl's Net::AMQP sends AMQP 1 1 0 9; RabbitMQ answers it in 0-9-1, and so do we."""
    async with await RawClient.connect(target.port, target.host) as client:
        await client.send(b"AMQP\x01\x01\x00\x09")
        start = await client.expect(methods.ConnectionStart, 0)
        assert (start.version_major, start.version_minor) == (0, 9)
        await client.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest"
            ),
        )
        tune = await client.expect(methods.ConnectionTune, 0)
        await client.send_method(
            0, methods.ConnectionTuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max)
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="/"))
        await client.expect(methods.ConnectionOpenOk, 0)
        await client.open_channel(1)
        await client.send_method(0, methods.ConnectionClose(reply_code=200, reply_text="bye"))
        await client.expect(methods.ConnectionCloseOk, 0)


async def test_header_and_handshake_arriving_one_byte_at_a_time(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        for byte in PROTOCOL_HEADER:
            await client.send(bytes([byte]))
            await trio.testing.wait_all_tasks_blocked()  # the server reads each byte alone
        await client.expect(methods.ConnectionStart, 0)
        start_ok = encode_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest"
            ),
        )
        for byte in start_ok:
            await client.send(bytes([byte]))
            await trio.testing.wait_all_tasks_blocked()
        tune = await client.expect(methods.ConnectionTune, 0)
        assert tune.frame_max == 131072


async def test_the_whole_handshake_in_one_write(server: Broker) -> None:
    """A client that pipelines header, start-ok, tune-ok, open and a channel.open."""
    async with await RawClient.connect(server.port) as client:
        await client.send(
            PROTOCOL_HEADER
            + encode_method(
                0,
                methods.ConnectionStartOk(
                    client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest"
                ),
            )
            + encode_method(
                0, methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0)
            )
            + encode_method(0, methods.ConnectionOpen(virtual_host="other"))
            + encode_method(1, methods.ChannelOpen())
        )
        await client.expect(methods.ConnectionStart, 0)
        await client.expect(methods.ConnectionTune, 0)
        await client.expect(methods.ConnectionOpenOk, 0)
        await client.expect(methods.ChannelOpenOk, 1)
        await client.close()


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await RawClient.connect(server.port) as client:
        started = trio.current_time()
        assert await client.read_raw_until_eof() == b""
        assert trio.current_time() - started == pytest.approx(HANDSHAKE_TIMEOUT, abs=0.5)
        assert not server.server.connections


async def test_a_handshake_that_stalls_after_the_header_is_dropped_too(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.send(PROTOCOL_HEADER)
        await client.expect(methods.ConnectionStart, 0)
        started = trio.current_time()
        assert await client.frames_until_eof() == []
        assert trio.current_time() - started == pytest.approx(HANDSHAKE_TIMEOUT, abs=0.5)


async def _trickle(client: RawClient, data: bytes, every: float) -> None:
    for octet in data:
        await client.send(bytes((octet,)))
        await trio.sleep(every)


async def test_a_client_trickling_its_handshake_is_dropped_on_time_all_the_same(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    """One octet a second used to reset the timeout with each read, for ever; RabbitMQ drops
    such a client 10 to 12 seconds after it connected."""
    async with await RawClient.connect(server.port) as client, trio.open_nursery() as nursery:
        started = trio.current_time()
        start_ok = encode_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\0guest\0guest"
            ),
        )
        nursery.start_soon(_trickle, client, PROTOCOL_HEADER + start_ok, 1.0)
        await client.expect(methods.ConnectionStart, 0)
        assert await client.frames_until_eof() == []
        assert trio.current_time() - started == pytest.approx(HANDSHAKE_TIMEOUT, abs=1.1)
        nursery.cancel_scope.cancel()


async def test_heartbeats_before_connection_open_do_not_extend_the_handshake(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await RawClient.connect(server.port) as client:
        started = trio.current_time()
        await client.send(PROTOCOL_HEADER)
        await client.expect(methods.ConnectionStart, 0)
        await client.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\0guest\0guest"
            ),
        )
        tune = await client.expect(methods.ConnectionTune, 0)
        await client.send_method(
            0,
            methods.ConnectionTuneOk(
                channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=1
            ),
        )
        with pytest.raises(trio.BrokenResourceError):  # never connection.open; a heartbeat a second
            while True:
                await client.heartbeat()
                await trio.sleep(1.0)
        assert trio.current_time() - started == pytest.approx(HANDSHAKE_TIMEOUT, abs=1.1)


# -- connection.start and connection.tune --------------------------------------------------------


async def test_connection_start_advertises_what_rabbitmq_does(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        start, tune = await client.handshake()
        await client.close()
    assert (start.version_major, start.version_minor) == (0, 9)
    assert sorted(start.mechanisms.split()) == [b"AMQPLAIN", b"PLAIN"]
    assert start.locales == b"en_US"
    properties = start.server_properties
    for key in ("product", "version", "platform"):
        assert isinstance(properties[key], str | bytes) and properties[key], key
    assert {name: properties["capabilities"].get(name) for name in CAPABILITIES} == dict.fromkeys(
        CAPABILITIES, True
    )
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)


async def test_tune_proposes_the_configured_heartbeat() -> None:
    async with Broker(heartbeat=7) as broker, await RawClient.connect(broker.port) as client:
        _start, tune = await client.handshake(heartbeat=7)
        assert tune.heartbeat == 7
        await client.close()


async def test_amqplain_login(server: Broker) -> None:
    # AMQPLAIN's response is a field table without its length prefix (what pika sends).
    response = encode_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    async with await RawClient.connect(server.port) as client:
        await client.handshake(mechanism="AMQPLAIN", response=response)
        await client.open_channel(1)
        await client.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
async def test_a_wrong_password_is_403_for_clients_that_ask_for_a_close(
    server: Broker, mechanism: str
) -> None:
    if mechanism == "PLAIN":
        response = b"\x00guest\x00wrong"
    else:
        response = encode_table({"LOGIN": "guest", "PASSWORD": "wrong"})[4:]
    async with await RawClient.connect(server.port) as client:
        await client.send(PROTOCOL_HEADER)
        await client.expect(methods.ConnectionStart)
        await client.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties={"capabilities": {"authentication_failure_close": True}},
                mechanism=mechanism,
                response=response,
            ),
        )
        close = await client.expect_connection_close(403)
    assert close.reply_text == (
        f"ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. "
        "For details see the broker logfile."
    )


async def test_client_may_lower_frame_max_and_deliveries_respect_it(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.handshake(frame_max=4096)
        await client.open_channel(1)
        await client.declare_queue(1, "small-frames")
        body = bytes(range(256)) * 40  # 10240 octets: three body frames at frame_max 4096
        await client.publish(1, "small-frames", body)
        await client.send_method(1, methods.BasicGet(queue="small-frames", no_ack=True))
        await client.expect(methods.BasicGetOk, 1)
        header = await client.next_frame()
        assert header.body_size == len(body)
        pieces = [await client.next_frame() for _ in range(3)]
        assert all(isinstance(piece, BodyFrame) for piece in pieces)
        assert [len(piece.payload) for piece in pieces] == [4088, 4088, 2064]
        assert b"".join(piece.payload for piece in pieces) == body
        await client.close()


async def test_opening_an_unknown_vhost_is_530(server: Broker) -> None:
    async with await RawClient.connect(server.port) as client:
        await client.send(PROTOCOL_HEADER)
        await client.expect(methods.ConnectionStart)
        await client.send_method(
            0,
            methods.ConnectionStartOk(
                client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest"
            ),
        )
        await client.expect(methods.ConnectionTune)
        await client.send_method(
            0, methods.ConnectionTuneOk(channel_max=2047, frame_max=131072, heartbeat=0)
        )
        await client.send_method(0, methods.ConnectionOpen(virtual_host="nope"))
        close = await client.expect_connection_close(530)
    assert close.reply_text == "NOT_ALLOWED - vhost nope not found"
    assert (close.class_id, close.method_id) == (10, 40)
