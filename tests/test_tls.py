"""amqps: TLS listeners beside plain ones, client certificates, and the EXTERNAL mechanism.

Checked against RabbitMQ 3.10.8 with a TLS listener (verify_peer, fail_if_no_peer_cert false,
the EXTERNAL mechanism enabled): it offers "AMQPLAIN PLAIN EXTERNAL" over TLS and only
"AMQPLAIN PLAIN" over plain TCP; EXTERNAL logs in as the certificate subject's distinguished
name ("CN=tls-client,O=amqp-lite"); without a client certificate, or for a name that is not a
user, EXTERNAL is refused like a wrong password (403 "Login was refused using authentication
mechanism EXTERNAL...").
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pika
import pytest
import trio
import trio.testing

pytest.importorskip("cryptography", reason="generated certificates need amqp-lite[tls]")

from amqp_lite import Broker, ThreadedBroker, run_in_thread
from amqp_lite.certificates import TestCertificates
from amqp_lite.connection import HANDSHAKE_TIMEOUT
from amqp_lite.login import LOGIN_FROM_CN, TlsPeer, distinguished_name
from amqp_lite.pytest_plugin import AmqpsVhost
from amqp_lite.tls import VERIFY_PEER, TlsConfigError, TlsOptions
from amqp_lite.wire import methods
from amqp_lite.wire.frames import PROTOCOL_HEADER, FrameDecoder, encode_method
from tests.processes import BrokerProcess

REFUSED_EXTERNAL = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. "
    "For details see the broker logfile."
)


def _pika(url: str, context: ssl.SSLContext, *, external: bool = False) -> pika.BlockingConnection:
    parameters = pika.URLParameters(url)
    parameters.ssl_options = pika.SSLOptions(context, "localhost")
    if external:
        parameters.credentials = pika.credentials.ExternalCredentials()
    return pika.BlockingConnection(parameters)


def _round_trip(connection: pika.BlockingConnection) -> bytes:
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"over TLS")
    body = channel.basic_get(queue, auto_ack=True)[2]
    connection.close()
    return body


@pytest.fixture
def tls_broker() -> Iterator[ThreadedBroker]:
    """A broker of its own with both listeners and a certificate made for it."""
    with run_in_thread(tls=True) as broker:
        yield broker


# -- URLs and listeners ----------------------------------------------------------------------------


def test_a_tls_broker_says_amqps_and_keeps_its_plain_listener(tls_broker: ThreadedBroker) -> None:
    assert tls_broker.url == f"amqps://guest:guest@127.0.0.1:{tls_broker.tls_port}/"
    assert tls_broker.plain_url == f"amqp://guest:guest@127.0.0.1:{tls_broker.port}/"
    assert tls_broker.vhost_url("/").startswith("amqps://")
    assert tls_broker.certificates is not None
    context = tls_broker.certificates.client_context()
    assert _round_trip(_pika(tls_broker.url, context)) == b"over TLS"
    assert tls_broker.plain_url is not None
    plain = pika.BlockingConnection(pika.URLParameters(tls_broker.plain_url))
    assert _round_trip(plain) == b"over TLS"


def test_port_none_leaves_only_the_tls_listener() -> None:
    with run_in_thread(port=None, tls=True) as broker:
        assert broker.port == 0 and broker.plain_url is None
        assert broker.url.startswith("amqps://")


def test_a_plain_broker_says_amqp() -> None:
    with run_in_thread() as broker:
        assert broker.url.startswith("amqp://") and broker.tls_port == 0


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_the_tls_listener_speaks_tls_1_2_and_1_3_only(tls_broker: ThreadedBroker) -> None:
    assert tls_broker.certificates is not None
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = tls_broker.certificates.client_context()
        context.minimum_version = context.maximum_version = version
        assert _round_trip(_pika(tls_broker.url, context)) == b"over TLS"
    old = tls_broker.certificates.client_context()
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")  # let the client at least ask
    with pytest.raises(ssl.SSLError):
        _tls_socket(tls_broker.tls_port, old)


def _tls_socket(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    import socket

    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


# -- clients over TLS, with and without a client certificate ---------------------------------------


def test_pika_over_tls_without_a_client_certificate(amqps_vhost: AmqpsVhost) -> None:
    assert _round_trip(_pika(amqps_vhost.url, amqps_vhost.ssl_context())) == b"over TLS"


def test_pika_over_tls_with_a_client_certificate_logs_in_by_it(amqps_vhost: AmqpsVhost) -> None:
    cert, key = amqps_vhost.client_certificate("pika-client")
    connection = _pika(amqps_vhost.url, amqps_vhost.ssl_context(cert, key), external=True)
    [info] = [c for c in amqps_vhost.broker.admin.connections() if c.vhost == amqps_vhost.name]
    assert (info.user, info.auth_mechanism) == ("CN=pika-client", "EXTERNAL")
    assert _round_trip(connection) == b"over TLS"


def test_a_client_certificate_does_not_stop_a_password_login(amqps_vhost: AmqpsVhost) -> None:
    cert, key = amqps_vhost.client_certificate("also-guest")
    connection = _pika(amqps_vhost.url, amqps_vhost.ssl_context(cert, key))
    [info] = [c for c in amqps_vhost.broker.admin.connections() if c.vhost == amqps_vhost.name]
    assert info.user == "guest"
    assert _round_trip(connection) == b"over TLS"


@pytest.mark.parametrize("with_certificate", [False, True], ids=["password", "certificate"])
def test_aio_pika_over_tls(amqps_vhost: AmqpsVhost, with_certificate: bool) -> None:
    url, context = amqps_vhost.url, amqps_vhost.ssl_context()
    if with_certificate:
        context = amqps_vhost.ssl_context(*amqps_vhost.client_certificate("aio-pika-client"))
        url += "?auth=external"

    async def round_trip() -> bytes:
        connection = await aio_pika.connect(url, ssl_context=context)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"over TLS"), queue.name)
            message = await queue.get(no_ack=True)
            return message.body

    assert asyncio.run(round_trip()) == b"over TLS"


# -- verifying client certificates ----------------------------------------------------------------


@pytest.fixture
def certificates(tmp_path: Path) -> TestCertificates:
    return TestCertificates(tmp_path / "certs")


def _options(certificates: TestCertificates, **settings: object) -> TlsOptions:
    files = (certificates.server_cert, certificates.server_key, certificates.ca)
    return TlsOptions(*files, **settings)  # type: ignore[arg-type]


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """Does the broker turn this client away during the handshake? (With TLS 1.3 the client may
    finish its side first and hear the refusal only when it reads.)"""
    try:
        with _tls_socket(port, context) as sock:
            sock.sendall(PROTOCOL_HEADER)
            return sock.recv(100) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def test_fail_if_no_peer_cert_refuses_a_client_without_one(
    certificates: TestCertificates, tmp_path: Path
) -> None:
    options = _options(certificates, verify=VERIFY_PEER, fail_if_no_peer_cert=True)
    with run_in_thread(tls=options) as broker:
        assert _refused(broker.tls_port, certificates.client_context())
        stranger = TestCertificates(tmp_path / "other-ca")
        cert, key = stranger.issue_client("stranger")
        context = certificates.client_context(cert, key)  # trusts the broker, not trusted by it
        assert _refused(broker.tls_port, context)
        context = certificates.client_context(*certificates.issue_client("friend"))
        assert _round_trip(_pika(broker.url, context)) == b"over TLS"


def test_verify_peer_alone_lets_a_client_without_a_certificate_in(
    certificates: TestCertificates,
) -> None:
    with run_in_thread(tls=_options(certificates, verify=VERIFY_PEER)) as broker:
        assert _round_trip(_pika(broker.url, certificates.client_context())) == b"over TLS"


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"verify": "verify_maybe"}, "TLS verify must be verify_none or verify_peer"),
        ({"verify": VERIFY_PEER, "cafile": None}, "verify_peer needs a CA file"),
        ({"fail_if_no_peer_cert": True}, "fail_if_no_peer_cert needs verify_peer"),
        ({"certfile": "/nonexistent.pem"}, "cannot use TLS certificate /nonexistent.pem"),
        ({"login_from": "subject_alternative_name"}, "ssl_cert_login_from must be one of"),
    ],
)
def test_bad_tls_settings_are_refused_with_a_sentence(
    certificates: TestCertificates, settings: dict[str, object], complaint: str
) -> None:
    options = {
        "certfile": certificates.server_cert,
        "keyfile": certificates.server_key,
        "cafile": certificates.ca,
        **settings,
    }
    with pytest.raises(TlsConfigError, match=complaint):
        run_in_thread(tls=TlsOptions(**options)).__enter__()  # type: ignore[arg-type]


# -- EXTERNAL --------------------------------------------------------------------------------------


def _start(port: int, context: ssl.SSLContext, mechanism: str) -> tuple[bytes, object]:
    """connection.start's mechanisms, and the reply to a start-ok with `mechanism`."""
    sock = _tls_socket(port, context)
    try:
        sock.sendall(PROTOCOL_HEADER)
        decoder = FrameDecoder(frame_max=0)
        frames: list[object] = []
        while len(frames) < 2:
            if not frames:
                decoder.feed(sock.recv(65536))
                frames.extend(decoder.frames())
                start_ok = methods.ConnectionStartOk(
                    client_properties={"capabilities": {"authentication_failure_close": True}},
                    mechanism=mechanism,
                    response=b"",
                    locale="en_US",
                )
                sock.sendall(encode_method(0, start_ok))
                continue
            data = sock.recv(65536)
            if not data:
                frames.append(None)
                break
            decoder.feed(data)
            frames.extend(decoder.frames())
    finally:
        sock.close()
    reply = frames[1].method if frames[1] is not None else None  # type: ignore[attr-defined]
    return frames[0].method.mechanisms, reply  # type: ignore[attr-defined]


def test_external_is_offered_over_tls_only(tls_broker: ThreadedBroker) -> None:
    assert tls_broker.certificates is not None
    mechanisms, _reply = _start(
        tls_broker.tls_port, tls_broker.certificates.client_context(), "EXTERNAL"
    )
    assert mechanisms == b"AMQPLAIN PLAIN EXTERNAL"


def test_external_without_a_certificate_is_refused(
    tls_broker: ThreadedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_broker.certificates is not None
    _mechanisms, close = _start(
        tls_broker.tls_port, tls_broker.certificates.client_context(), "EXTERNAL"
    )
    assert (close.reply_code, close.reply_text) == (403, REFUSED_EXTERNAL)  # type: ignore[attr-defined]
    assert "EXTERNAL login refused: connection peer presented no TLS (x.509) certificate" in (
        caplog.text
    )


def test_external_for_a_name_that_is_no_user_is_refused(
    tls_broker: ThreadedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    certificates = tls_broker.certificates
    assert certificates is not None
    context = certificates.client_context(*certificates.issue_client("nobody", organization="x"))
    _mechanisms, close = _start(tls_broker.tls_port, context, "EXTERNAL")
    assert close.reply_code == 403  # type: ignore[attr-defined]
    assert "EXTERNAL login refused: user 'CN=nobody,O=x' - invalid credentials" in caplog.text


def test_a_user_without_a_password_logs_in_only_by_certificate(tls_broker: ThreadedBroker) -> None:
    certificates = tls_broker.certificates
    assert certificates is not None
    tls_broker.admin.add_user("CN=robot,O=factory")  # no password
    tls_broker.admin.set_permissions("CN=robot,O=factory", "/")
    cert, key = certificates.issue_client("robot", organization="factory")
    connection = _pika(tls_broker.url, certificates.client_context(cert, key), external=True)
    assert _round_trip(connection) == b"over TLS"
    url = tls_broker.url.replace("guest:guest", "CN%3Drobot%2CO%3Dfactory:")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        _pika(url, certificates.client_context(cert, key))


def test_external_may_take_the_common_name(certificates: TestCertificates) -> None:
    options = _options(certificates, verify=VERIFY_PEER, login_from=LOGIN_FROM_CN)
    with run_in_thread(tls=options) as broker:
        broker.admin.add_user("robot")
        broker.admin.set_permissions("robot", "/")
        cert, key = certificates.issue_client("robot", organization="factory")
        connection = _pika(broker.url, certificates.client_context(cert, key), external=True)
        assert [c.user for c in broker.admin.connections()] == ["robot"]
        assert _round_trip(connection) == b"over TLS"


def test_a_listener_that_verifies_nothing_trusts_no_certificate(
    certificates: TestCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    # verify_none asks for no certificate, so EXTERNAL has nothing to go by.
    with run_in_thread(tls=_options(certificates)) as broker:
        cert, key = certificates.issue_client("robot")
        _mechanisms, close = _start(
            broker.tls_port, certificates.client_context(cert, key), "EXTERNAL"
        )
        assert close.reply_code == 403  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        (
            ((("organizationName", "amqp-lite"),), (("commonName", "tls-client"),)),
            "CN=tls-client,O=amqp-lite",
        ),
        (
            ((("countryName", "GB"),), (("commonName", "a,b+c"), ("userId", "7"))),
            "CN=a\\,b\\+c+UID=7,C=GB",
        ),
        (((("commonName", " #x "),),), "CN=\\ #x\\ "),
        (((("commonName", "Zoë~"),),), "CN=Zo\\C3\\AB\\7E"),
        (((("1.2.3.4", "v"),),), "1.2.3.4=v"),
    ],
)
def test_distinguished_names_are_written_as_rabbitmq_writes_them(
    subject: tuple[tuple[tuple[str, str], ...], ...], name: str
) -> None:
    assert distinguished_name(subject) == name
    assert TlsPeer(subject=subject, verified=True).subject == subject


# -- the handshake ---------------------------------------------------------------------------------


async def test_a_client_that_never_completes_the_handshake_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Broker(tls=True) as broker:
        stream = await trio.open_tcp_stream("127.0.0.1", broker.tls_port)
        started = trio.current_time()
        with trio.fail_after(HANDSHAKE_TIMEOUT * 2):
            assert await stream.receive_some(100) == b""
        assert trio.current_time() - started == pytest.approx(HANDSHAKE_TIMEOUT, abs=0.1)
        await stream.aclose()


def test_a_failed_handshake_is_logged_and_disturbs_no_one(
    tls_broker: ThreadedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amqp_lite.server")
    assert tls_broker.certificates is not None and tls_broker.plain_url is not None
    bystander = _pika(tls_broker.url, tls_broker.certificates.client_context())
    untrusting = ssl.create_default_context()  # does not trust the broker's CA
    with pytest.raises(ssl.SSLError):
        _tls_socket(tls_broker.tls_port, untrusting)
    import socket

    with socket.create_connection(("127.0.0.1", tls_broker.tls_port)) as plain_talker:
        plain_talker.sendall(PROTOCOL_HEADER)  # AMQP where TLS was expected
        assert plain_talker.recv(100) == b""
    assert _round_trip(bystander) == b"over TLS"
    assert caplog.text.count("TLS handshake with 127.0.0.1:") >= 1


# -- the command line and the management API -------------------------------------------------------


def test_serve_with_tls_from_the_command_line(certificates: TestCertificates) -> None:
    process = BrokerProcess(
        None,
        "--tls-port",
        "0",
        "--tls-cert",
        str(certificates.server_cert),
        "--tls-key",
        str(certificates.server_key),
        "--tls-ca",
        str(certificates.ca),
        "--tls-verify",
        "verify_peer",
    )
    try:
        assert process.url.startswith("amqps://guest:guest@127.0.0.1:")
        assert _round_trip(_pika(process.url, certificates.client_context())) == b"over TLS"
        process.wait_for_log("listening for TLS on 127.0.0.1:")
    finally:
        process.stop()


def test_serve_refuses_tls_settings_that_cannot_work(certificates: TestCertificates) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            *(sys.executable, "-m", "amqp_lite", "serve", "--transient", "--port", "0"),
            *("--no-management", "--no-prometheus", "--tls-cert", "/nowhere.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot use TLS certificate /nowhere.pem" in result.stderr


def test_the_management_api_over_https() -> None:
    with run_in_thread(tls=True, management=True, management_tls=True) as broker:
        assert broker.management_url is not None and broker.certificates is not None
        assert broker.management_url.startswith("https://127.0.0.1:")
        request = urllib.request.Request(
            broker.management_url + "api/whoami",
            headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()},
        )
        context = broker.certificates.client_context()
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert json.load(response)["name"] == "guest"
