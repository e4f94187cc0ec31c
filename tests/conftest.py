"""Fixtures: a real broker on a free loopback port, started inside the test process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pika
import pytest
from hypothesis import HealthCheck, settings

from amqp_lite import Broker, Clock, ThreadedBroker, run_in_thread

# A loaded CI machine must not fail a property for being slow; CI also explores the same
# examples every run (derandomize), so a red CI is a real regression, never a new random draw.
settings.register_profile("amqp-lite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("amqp-lite"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "amqp-lite")

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--crash-rounds",
        default="3",
        help="kill -9 rounds in the durability test (make test runs a few; soak with more)",
    )
