"""Fixtures: a real broker on a free loopback port, started inside the test process."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import pytest
from hypothesis import HealthCheck, settings

from amqp_lite import Broker, Clock, ThreadedBroker, run_in_thread

# A loaded CI machine must not fail a property for being slow; CI also explores the same
# examples every run (derandomize), so a red CI is a real regression, never a new random draw.
settings.register_profile("amqp-lite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("amqp-lite"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "amqp-lite")

# A property names the examples a thorough run tries (`pytest --thorough`); a plain run, as in
# `make test`, tries a third of them: still hundreds of cases for the cheap ones, seconds saved
# on the costly ones.
_EXAMPLES_SHARE = {"share": 1 / 3}


def examples(thorough: int) -> int:
    """`max_examples` for a property: `thorough` under --thorough, else a third (at least 10)."""
    share = _EXAMPLES_SHARE["share"]
    return thorough if share >= 1 else min(thorough, max(10, round(thorough * share)))


# Where a frozen clock starts: tests that check times (x-death) can name it.
FROZEN_AT = 1_700_000_000.0


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[ThreadedBroker]:
    """A fresh broker per test, its trio loop in a background thread (for pika and aio-pika).

    Under `@pytest.mark.frozen_clock` its clock stands at FROZEN_AT and moves only when the
    test calls `broker.advance(seconds)`.
    """
    clock = Clock(frozen_at=FROZEN_AT) if request.node.get_closest_marker("frozen_clock") else None
    with run_in_thread(vhosts=("/", "other"), clock=clock) as running:
        yield running


@pytest.fixture
async def server() -> AsyncIterator[Broker]:
    """A fresh broker per trio test, in the test's own event loop."""
    async with Broker(vhosts=("/", "other")) as running:
        yield running


@pytest.fixture
def connection(broker: ThreadedBroker) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield conn
    if conn.is_open:
        conn.close()


@pytest.fixture
def channel(connection: pika.BlockingConnection, request: pytest.FixtureRequest):
    """Under `@pytest.mark.confirms`, in confirm mode: each publish has been routed and queued
    by the time it returns, so a test may move the clock right after it."""
    opened = connection.channel()
    if request.node.get_closest_marker("confirms"):
        opened.confirm_delivery()
    return opened


class Target:
    """The broker a wire test talks to: amqp-lite started for the test, or (with --rabbitmq-url)
    another broker, so the same test shows RabbitMQ 3.10.8 behaves as it asserts.

    Tests that use it keep to their own names (`unique`), as the other broker may be shared.
    """

    def __init__(
        self, url: str, broker: ThreadedBroker | None = None, ctl: list[str] | None = None
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5672
        self.broker = broker
        self._ctl = ctl
        self.is_amqp_lite = broker is not None

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def vhost_url(self, vhost: str) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/{quote(vhost, safe='')}"

    def add_vhost(self, name: str) -> None:
        if self.broker is not None:
            self.broker.add_vhost(name)
        else:
            self.rabbitmqctl("add_vhost", name)
            self.rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")

    def delete_vhost(self, name: str) -> None:
        if self.broker is not None:
            self.broker.delete_vhost(name)
        else:
            self.rabbitmqctl("delete_vhost", name)

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        """A user with every permission in '/'."""
        if self.broker is not None:
            self.broker.admin.add_user(name, password, tags=tags)
            self.broker.admin.set_permissions(name, "/")
        else:
            self.rabbitmqctl("add_user", name, password)
            self.rabbitmqctl("set_user_tags", name, *tags)
            self.rabbitmqctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")

    def delete_user(self, name: str) -> None:
        if self.broker is not None:
            self.broker.admin.delete_user(name)
        else:
            self.rabbitmqctl("delete_user", name)

    def set_tracing(self, vhost: str, on: bool) -> None:
        """The firehose tracer on or off for `vhost` (`rabbitmqctl trace_on` / `trace_off`)."""
        if self.broker is not None:
            self.broker.admin.set_tracing(vhost, on)
        else:
            self.rabbitmqctl("trace_on" if on else "trace_off", "-p", vhost)

    def set_vhost_limits(self, vhost: str, limits: dict[str, int]) -> None:
        """`rabbitmqctl set_vhost_limits` (an empty dict clears them)."""
        if self.broker is not None:
            self.broker.admin.set_vhost_limits(vhost, limits)
        elif limits:
            self.rabbitmqctl("set_vhost_limits", "-p", vhost, json.dumps(limits))
        else:
            self.rabbitmqctl("clear_vhost_limits", "-p", vhost)

    def set_user_limits(self, user: str, limits: dict[str, int]) -> None:
        """`rabbitmqctl set_user_limits` (kept limits stay, as RabbitMQ merges them)."""
        if self.broker is not None:
            self.broker.admin.set_user_limits(user, limits)
        else:
            self.rabbitmqctl("set_user_limits", user, json.dumps(limits))

    def let_time_pass(self, seconds: float) -> None:
        """`seconds` go by on the broker's clock: at once on amqp-lite (its clock is moved),
        in real time on another broker."""
        if self.broker is not None:
            self.broker.advance(seconds)
        else:
            time.sleep(seconds)

    def rabbitmqctl(self, *args: str) -> None:
        if self._ctl is None:
            pytest.skip("needs --rabbitmqctl to change the other broker")
        subprocess.run([*self._ctl, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """amqp-lite with a data directory (durable replies wait for the disk, as RabbitMQ's do),
    or the broker named by --rabbitmq-url."""
    url = request.config.getoption("rabbitmq_url")
    if url:
        ctl = request.config.getoption("rabbitmqctl")
        yield Target(url, ctl=shlex.split(ctl) if ctl else None)
        return
    with run_in_thread(vhosts=("/", "other"), data_dir=tmp_path / "data") as running:
        yield Target(running.url, broker=running)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("thorough"):
        _EXAMPLES_SHARE["share"] = 1.0
    # `amqp-lite serve` without --data-dir keeps its store in $XDG_DATA_HOME/amqp-lite: a test
    # must never touch the user's own store, nor share one with a test running beside it.
    data_home = tempfile.mkdtemp(prefix="amqp-lite-tests-data-")
    config.stash[_DATA_HOME] = data_home
    os.environ["XDG_DATA_HOME"] = data_home


def pytest_unconfigure(config: pytest.Config) -> None:
    data_home = config.stash.get(_DATA_HOME, None)
    if data_home is not None:
        shutil.rmtree(data_home, ignore_errors=True)


_DATA_HOME = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Captured output as valid UTF-8: the broker logs names of any octets (surrogate-escaped),
    and a report that cannot be encoded would break the workers' channel under pytest-xdist."""
    report: pytest.TestReport = yield
    report.sections = [(title, _utf8(text)) for title, text in report.sections]
    return report


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("rabbitmq_url"):
        return
    only_ours = pytest.mark.skip(reason="speaks to amqp-lite alone (no `target` fixture)")
    for item in items:
        if "target" not in getattr(item, "fixturenames", ()):
            item.add_marker(only_ours)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rabbitmq-url",
        default=None,
        metavar="URL",
        help="run the tests that take the `target` fixture against this broker (RabbitMQ "
        "3.10.8, to check they assert what it does) and skip every other test",
    )
    parser.addoption(
        "--rabbitmqctl",
        default=None,
        metavar="COMMAND",
        help="how to run rabbitmqctl for --rabbitmq-url's broker, for tests that add vhosts",
    )
    parser.addoption(
        "--fuzz-cases",
        default="400",
        help="damaged sessions the fuzz test replays (make test runs a few hundred; soak with "
        "tens of thousands)",
    )
    parser.addoption(
        "--fuzz-seed",
        default=None,
        help="the fuzz test's random seed, to repeat a run (printed when a case fails)",
    )
    parser.addoption(
        "--thorough",
        action="store_true",
        help="property tests try all the examples they name (a plain run tries a third)",
    )
    parser.addoption(
        "--crash-rounds",
        default="5",
        help="kill -9 rounds in the durability test (make test runs a few; soak with more)",
    )
