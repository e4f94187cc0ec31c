"""Fixtures: a real broker on a free loopback port, started inside the test process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pika
import pytest

from amqp_lite import Broker, ThreadedBroker, run_in_thread


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    """A fresh broker per test, its trio loop in a background thread (for pika and aio-pika)."""
    with run_in_thread(vhosts=("/", "other")) as running:
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
def channel(connection: pika.BlockingConnection):
    return connection.channel()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--crash-rounds",
        default="3",
        help="kill -9 rounds in the durability test (make test runs a few; soak with more)",
    )
