"""Logging in as RabbitMQ 3.10.8 lets one in, and refusing as it refuses.

Observed on RabbitMQ 3.10.8: PLAIN with an authorization identity is not read at all; AMQPLAIN
takes the first LOGIN and the first PASSWORD, either of which may be a byte array; guest is
refused unless it comes over loopback. A refused login gets 403 "Login was refused..." only when
the client announced `authentication_failure_close`; otherwise, and for a response that cannot be
read, nothing is sent and the socket closes 3 seconds later. Other connections go on meanwhile.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
import trio
import trio.testing

from amqp_lite import Broker
from amqp_lite.cli import _user_list
from amqp_lite.connection import SILENT_CLOSE_DELAY, ServerConnection, State
from amqp_lite.wire import methods
from amqp_lite.wire.fields import encode_table
from amqp_lite.wire.frames import PROTOCOL_HEADER, FrameDecoder, MethodFrame, encode_method
from tests.rawclient import Closed, RawClient, connected
from vhosts import Node

CAPABLE = {"capabilities": {"authentication_failure_close": True}}
REFUSED_PLAIN = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)


def _field(name: str, tag: bytes, payload: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + tag + len(payload).to_bytes(4, "big") + payload


def _amqplain(*fields: tuple[str, bytes, bytes]) -> bytes:
    """An AMQPLAIN response written field by field: repeated keys and any types."""
    return b"".join(_field(name, tag, value) for name, tag, value in fields)


async def _start_ok(
    client: RawClient, mechanism: str, response: bytes, properties: dict[str, Any]
) -> Any:
    """Send the header and a start-ok; returns the first frame back, or None at end of stream."""
    await client.send(PROTOCOL_HEADER)
    await client.expect(methods.ConnectionStart, 0)
    start_ok = methods.ConnectionStartOk(
        client_properties=properties, mechanism=mechanism, response=response, locale="en_US"
    )
    await client.send_method(0, start_ok)
    try:
        return await client.next_frame()
    except Closed:
        return None


# -- what logs in --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "password"),
    [
        pytest.param(b"S", b"S", id="strings"),
        pytest.param(b"x", b"S", id="login-as-bytes"),
        pytest.param(b"S", b"x", id="password-as-bytes"),
    ],
)
async def test_amqplain_takes_a_byte_array_beside_a_string(
    server: Broker, login: bytes, password: bytes
) -> None:
    response = _amqplain(("LOGIN", login, b"guest"), ("PASSWORD", password, b"guest"))
    async with await RawClient.connect(server.port) as client:
        frame = await _start_ok(client, "AMQPLAIN", response, CAPABLE)
        assert isinstance(frame.method, methods.ConnectionTune)


async def test_amqplain_takes_the_first_of_two_logins(server: Broker) -> None:
    first_wins = _amqplain(
        ("LOGIN", b"S", b"guest"), ("LOGIN", b"S", b"nobody"), ("PASSWORD", b"S", b"guest")
    )
    async with await RawClient.connect(server.port) as client:
        frame = await _start_ok(client, "AMQPLAIN", first_wins, CAPABLE)
        assert isinstance(frame.method, methods.ConnectionTune)
    first_refused = _amqplain(
        ("LOGIN", b"S", b"nobody"), ("LOGIN", b"S", b"guest"), ("PASSWORD", b"S", b"guest")
    )
    async with await RawClient.connect(server.port) as client:
        frame = await _start_ok(client, "AMQPLAIN", first_refused, CAPABLE)
        assert frame.method.reply_code == 403


# -- what is not even read: no reply, a delayed hang-up --------------------------------------------


@pytest.mark.parametrize(
    ("mechanism", "response"),
    [
        pytest.param("PLAIN", b"admin\x00guest\x00guest", id="plain-with-authzid"),
        pytest.param("PLAIN", b"\x00guest\x00guest\x00", id="plain-with-a-third-nul"),
        pytest.param("PLAIN", b"\x00guest", id="plain-without-password"),
        pytest.param(
            "AMQPLAIN",
            _amqplain(("LOGIN", b"x", b"guest"), ("PASSWORD", b"x", b"guest")),
            id="amqplain-bytes-only",
        ),
        pytest.param("AMQPLAIN", _amqplain(("LOGIN", b"S", b"guest")), id="amqplain-no-password"),
        pytest.param("AMQPLAIN", b"\x05LOG", id="amqplain-garbled"),
        pytest.param("FOO", b"\x00guest\x00guest", id="unknown-mechanism"),
        pytest.param("EXTERNAL", b"", id="external-without-tls"),
    ],
)
async def test_an_unreadable_login_gets_no_reply_and_a_close_3_seconds_later(
    server: Broker, autojump_clock: trio.testing.MockClock, mechanism: str, response: bytes
) -> None:
    async with await RawClient.connect(server.port) as client:
        started = trio.current_time()
        assert await _start_ok(client, mechanism, response, CAPABLE) is None
        assert trio.current_time() - started == pytest.approx(SILENT_CLOSE_DELAY, abs=0.1)


# -- refused logins ------------------------------------------------------------------------------


async def test_a_refused_login_is_403_at_once_for_a_client_that_asks(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with await RawClient.connect(server.port) as client:
        started = trio.current_time()
        frame = await _start_ok(client, "PLAIN", b"\x00guest\x00wrong", CAPABLE)
        assert (frame.method.reply_code, frame.method.reply_text) == (403, REFUSED_PLAIN)
        await client.send_method(0, methods.ConnectionCloseOk())
        assert await client.frames_until_eof() == []
        assert trio.current_time() - started < 0.1


async def test_a_refused_login_is_silent_and_slow_for_a_client_that_does_not_ask(
    server: Broker, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        guesser = await RawClient.connect(server.port)
        started = trio.current_time()

        async def guess() -> None:
            assert await _start_ok(guesser, "PLAIN", b"\x00guest\x00wrong", {}) is None
            assert trio.current_time() - started == pytest.approx(SILENT_CLOSE_DELAY, abs=0.1)

        nursery.start_soon(guess)
        # Meanwhile the broker serves everyone else at once.
        other = await connected(server.port)
        await other.close()
        assert trio.current_time() - started < 0.1
    await guesser.aclose()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (b"\x00guest\x00wrong", "user 'guest' - invalid credentials"),
        (b"\x00nobody\x00guest", "user 'nobody' - invalid credentials"),
        (b"\x00guest\x00", "user 'guest' attempted to log in with a blank password"),
    ],
)
async def test_every_refused_login_is_logged_with_peer_and_user(
    server: Broker, caplog: pytest.LogCaptureFixture, response: bytes, reason: str
) -> None:
    caplog.set_level(logging.WARNING, logger="amqp_lite.connection")
    async with await RawClient.connect(server.port) as client:
        frame = await _start_ok(client, "PLAIN", response, CAPABLE)
        assert frame.method.reply_code == 403
        port = client.stream.socket.getsockname()[1]
    [record] = [r for r in caplog.records if "login refused" in r.getMessage()]
    assert f"127.0.0.1:{port} -> 127.0.0.1:{server.port}" in record.getMessage()
    assert f"PLAIN login refused: {reason}" in record.getMessage()


async def test_a_user_without_a_password_cannot_log_in_with_one(server: Broker) -> None:
    server.admin.add_user("certificate-only")  # no password: EXTERNAL only
    server.admin.set_permissions("certificate-only", "/")
    for password in (b"", b"x"):
        async with await RawClient.connect(server.port) as client:
            response = b"\x00certificate-only\x00" + password
            frame = await _start_ok(client, "PLAIN", response, CAPABLE)
            assert frame.method.reply_code == 403


# -- loopback users, through the sans-IO core with the peer address given in -------------------


def _log_in_from(host: str, username: str = "guest", **options: Any) -> Any:
    """Run a PLAIN login on a ServerConnection whose peer is `host`; the frame it answers."""
    node = Node()
    node.add_user("alice", "secret")
    connection = ServerConnection(node, peer=(host, 40000), local=("192.0.2.2", 5672), **options)
    password = "secret" if username == "alice" else "guest"
    start_ok = methods.ConnectionStartOk(
        client_properties=CAPABLE,
        mechanism="PLAIN",
        response=f"\x00{username}\x00{password}".encode(),
        locale="en_US",
    )
    connection.receive_data(PROTOCOL_HEADER + encode_method(0, start_ok))
    decoder = FrameDecoder(frame_max=0)
    decoder.feed(connection.data_to_send())
    frames = list(decoder.frames())
    assert isinstance(frames[0].method, methods.ConnectionStart)
    assert isinstance(frames[1], MethodFrame)
    return frames[1].method


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"])
def test_guest_may_log_in_over_loopback(host: str) -> None:
    assert isinstance(_log_in_from(host), methods.ConnectionTune)


@pytest.mark.parametrize("host", ["192.0.2.7", "10.0.0.1", "::ffff:192.0.2.7", "2001:db8::1"])
def test_guest_is_refused_from_anywhere_else(host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="amqp_lite.connection")
    close = _log_in_from(host)
    assert (close.reply_code, close.reply_text) == (403, REFUSED_PLAIN)
    assert "PLAIN login refused: user 'guest' can only connect via localhost" in caplog.text
    assert f"{host}:40000 -> 192.0.2.2:5672" in caplog.text


def test_other_users_may_log_in_from_anywhere() -> None:
    assert isinstance(_log_in_from("192.0.2.7", "alice"), methods.ConnectionTune)


def test_loopback_users_none_lets_guest_in_from_anywhere() -> None:
    assert isinstance(_log_in_from("192.0.2.7", loopback_users=()), methods.ConnectionTune)


def test_loopback_users_may_name_others() -> None:
    close = _log_in_from("192.0.2.7", "alice", loopback_users={"alice"})
    assert close.reply_code == 403


def test_a_silent_refusal_asks_the_io_layer_to_wait_before_closing() -> None:
    connection = ServerConnection(Node(), peer=("192.0.2.7", 40000))
    start_ok = methods.ConnectionStartOk(
        client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest", locale="en_US"
    )
    connection.receive_data(PROTOCOL_HEADER + encode_method(0, start_ok))
    connection.data_to_send()  # connection.start, and nothing after it
    assert connection.data_to_send() == b""
    assert connection.state is State.CLOSED and connection.wants_socket_closed
    assert connection.close_delay == SILENT_CLOSE_DELAY


def test_amqplain_response_table_helper_matches_the_codec() -> None:
    # The hand-written AMQPLAIN fields above are what the codec writes for plain strings.
    fields = _amqplain(("LOGIN", b"S", b"guest"), ("PASSWORD", b"S", b"guest"))
    assert fields == encode_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]


async def test_the_broker_hands_its_loopback_users_to_every_connection() -> None:
    async with Broker(loopback_users=("alice",)) as broker:
        client = await connected(broker.port)
        [connection] = broker.server.connections
        assert connection.loopback_users == {"alice"}
        await client.close()
    async with Broker() as broker:
        assert broker.server.loopback_users == {"guest"}  # RabbitMQ's default


@pytest.mark.parametrize(
    ("option", "users"),
    [("guest", ("guest",)), ("guest, admin", ("guest", "admin")), ("none", ()), ("", ())],
)
def test_the_loopback_users_option(option: str, users: tuple[str, ...]) -> None:
    assert _user_list(option) == users


# -- the management API refuses loopback users from elsewhere too ---------------------------------


def _whoami_from(peer: str, loopback_users: tuple[str, ...] = ("guest",)) -> Any:
    from amqp_lite.admin import Admin
    from amqp_lite.management import Management
    from amqp_lite.management.http import Request
    from amqp_lite.server import Server

    node = Node()
    management = Management(Admin(node, Server(node, loopback_users=loopback_users)))
    credentials = base64.b64encode(b"guest:guest").decode()
    request = Request(
        "GET", "/api/whoami", {"authorization": f"Basic {credentials}"}, b"", peer=peer
    )
    return management.router(request)


def test_the_management_api_lets_guest_in_over_loopback_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _whoami_from("127.0.0.1").status == 200
    refused = _whoami_from("192.0.2.7")
    assert refused.status == 401
    assert json.loads(refused.body) == {
        "error": "not_authorised",
        "reason": "User can only log in via localhost",
    }
    assert "HTTP access denied: user 'guest' - User can only log in via localhost" in caplog.text
    assert _whoami_from("192.0.2.7", loopback_users=()).status == 200
