"""pytest fixtures: one amqp-lite broker per test session, a fresh virtual host for every test.

Installing amqp-lite registers this plugin (the `pytest11` entry point). A test asks for
`amqp_url` (or `amqp_vhost` for its name and the clock) and connects with any client: pika,
aio-pika, or a trio program. Each test gets its own empty vhost, deleted afterwards, so tests
cannot see each other's queues and the broker never restarts.

The session broker keeps nothing on disk. Its clock follows wall time, so real TTLs work, and
`amqp_vhost.advance(seconds)` jumps it forward: a 60-second TTL expires without a wait. The clock
is the broker's, so an advance counts for the whole session (time only moves forward anyway).

`amqps_url` and `amqps_vhost` are the same on a second session broker that speaks only TLS,
with a certificate made for the session (and client certificates on request, for EXTERNAL); it
starts only when a test asks for it.

To start the broker from a RabbitMQ definitions file: `--amqp-definitions PATH`, or the ini
setting `amqp_definitions`, or override the `amqp_definitions` fixture in a conftest.py.
"""

from __future__ import annotations

import itertools
import os
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the broker is imported when a test first asks for it, not at plugin load
    from amqp_lite.broker import ThreadedBroker
    from vhosts.inventory import QueueInfo

_HELP = "RabbitMQ definitions file (JSON) the session's amqp-lite broker starts from"
_numbers = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("amqp-lite")
    group.addoption(
        "--amqp-definitions", metavar="PATH", default=None, help=f"{_HELP} (overrides the ini)"
    )
    parser.addini("amqp_definitions", f"{_HELP}, relative to the ini file", default="")


class AmqpVhost:
    """A virtual host that belongs to one test: its `name`, its `url`, and the broker's clock.

    Its methods are the broker's admin operations (`amqp_broker.admin`) in this vhost.
    """

    def __init__(self, broker: ThreadedBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self.url = broker.vhost_url(name)

    def __repr__(self) -> str:
        return f"<AmqpVhost {self.name!r} {self.url}>"

    def advance(self, seconds: float) -> None:
        """Move the broker's clock forward; what fell due (expired TTLs) is done on return."""
        self.broker.advance(seconds)

    def set_policy(
        self,
        name: str,
        pattern: str,
        definition: dict[str, Any],
        *,
        priority: int | float = 0,
        apply_to: str = "all",
    ) -> None:
        """A policy in this vhost, as `rabbitmqctl set_policy -p <vhost>` sets one."""
        self.broker.admin.set_policy(
            self.name, name, pattern, definition, priority=priority, apply_to=apply_to
        )

    def clear_policy(self, name: str) -> bool:
        return self.broker.admin.clear_policy(self.name, name)

    def set_default_queue_type(self, queue_type: str) -> None:
        """Queues declared here without an x-queue-type become `queue_type` ("quorum") where
        the type allows their flags, as with RabbitMQ 3.11's vhost default queue type."""
        self.broker.admin.set_vhost_metadata(self.name, default_queue_type=queue_type)

    def queues(self) -> list[QueueInfo]:
        """This vhost's queues with their type and counts (messages ready and unacknowledged,
        consumers)."""
        return self.broker.admin.queues(self.name)

    def purge_queue(self, name: str) -> int:
        return self.broker.admin.purge_queue(self.name, name)

    def delete_queue(self, name: str) -> int:
        return self.broker.admin.delete_queue(self.name, name)


class AmqpsVhost(AmqpVhost):
    """A test's vhost on the TLS broker: `url` is amqps://, and certificates come with it.

    The broker's certificate was made for this session, for 127.0.0.1, ::1 and localhost, by a
    CA that `ca` (a PEM file) holds and `ssl_context()` trusts.
    """

    @property
    def ca(self) -> Path:
        certificates = self.broker.certificates
        assert certificates is not None
        return certificates.ca

    def ssl_context(
        self, cert: str | os.PathLike[str] | None = None, key: str | os.PathLike[str] | None = None
    ) -> ssl.SSLContext:
        """A client context that trusts the broker's certificate (and presents `cert`)."""
        certificates = self.broker.certificates
        assert certificates is not None
        return certificates.client_context(cert, key)

    def client_certificate(self, common_name: str) -> tuple[Path, Path]:
        """A client certificate (subject CN=`common_name`) and its key, as PEM files, for a
        user of that name, made without a password and allowed everything in this vhost:
        with the EXTERNAL mechanism the certificate is the login. The broker's EXTERNAL takes
        the name from the subject's distinguished name, which for it is `CN=<common_name>`."""
        certificates = self.broker.certificates
        assert certificates is not None
        user = f"CN={common_name}"
        admin = self.broker.admin
        if user not in {info.name for info in admin.users()}:
            admin.add_user(user)
        admin.set_permissions(user, self.name)
        return certificates.issue_client(common_name)


@pytest.fixture(scope="session")
def amqp_definitions(pytestconfig: pytest.Config) -> Path | None:
    """The definitions file for the session broker, or None; override it to pick one in code."""
    option: str | None = pytestconfig.getoption("amqp_definitions")
    if option:
        return pytestconfig.invocation_params.dir / option
    setting: str = pytestconfig.getini("amqp_definitions")
    if setting:
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        return base / setting
    return None


@pytest.fixture(scope="session")
def amqp_broker(amqp_definitions: Path | None) -> Iterator[ThreadedBroker]:
    """The session's broker, in a background thread on a free port: `.url`, `.advance()`..."""
    from amqp_lite.broker import run_in_thread

    with run_in_thread(definitions=amqp_definitions, management=True) as broker:
        yield broker


@pytest.fixture(scope="session")
def amqp_management_url(amqp_broker: ThreadedBroker) -> str:
    """The session broker's management HTTP API, RabbitMQ's: `http://127.0.0.1:<port>/`.

    Log in as guest/guest; the per-test vhosts are there, %2F-quoted as in any RabbitMQ URL.
    """
    assert amqp_broker.management_url is not None
    return amqp_broker.management_url


@pytest.fixture
def amqp_vhost(amqp_broker: ThreadedBroker, request: pytest.FixtureRequest) -> Iterator[AmqpVhost]:
    """A fresh, empty vhost for this test; deleted afterwards, closing connections left open."""
    name = _vhost_name(request)
    amqp_broker.admin.add_vhost(name)
    try:
        yield AmqpVhost(amqp_broker, name)
    finally:
        amqp_broker.admin.delete_vhost(name)


@pytest.fixture
def amqp_url(amqp_vhost: AmqpVhost) -> str:
    """The URL of this test's own vhost: `amqp://guest:guest@127.0.0.1:<port>/test-...`."""
    return amqp_vhost.url


@pytest.fixture(scope="session")
def amqps_broker(amqp_definitions: Path | None) -> Iterator[ThreadedBroker]:
    """A session broker that speaks only TLS, with a certificate made for the session (needs
    the `cryptography` package: amqp-lite[tls]); started only if a test asks for it."""
    pytest.importorskip("cryptography", reason="generated certificates need amqp-lite[tls]")
    from amqp_lite.broker import run_in_thread

    with run_in_thread(definitions=amqp_definitions, port=None, tls=True) as broker:
        yield broker


@pytest.fixture
def amqps_vhost(
    amqps_broker: ThreadedBroker, request: pytest.FixtureRequest
) -> Iterator[AmqpsVhost]:
    """A fresh vhost on the TLS broker for this test: `.url` (amqps://), `.ssl_context()`,
    `.ca`, `.client_certificate(name)`; deleted afterwards."""
    name = _vhost_name(request)
    amqps_broker.admin.add_vhost(name)
    try:
        yield AmqpsVhost(amqps_broker, name)
    finally:
        amqps_broker.admin.delete_vhost(name)


@pytest.fixture
def amqps_url(amqps_vhost: AmqpsVhost) -> str:
    """`amqps://guest:guest@127.0.0.1:<port>/test-...`: connect with `amqps_vhost.ssl_context()`."""
    return amqps_vhost.url


def _vhost_name(request: pytest.FixtureRequest) -> str:
    # Numbered so that a test run twice (reruns, parametrized ids cut short) never meets itself.
    label = re.sub(r"[^\w.-]+", "-", request.node.name)[:80]
    return f"test-{next(_numbers)}-{label}"
