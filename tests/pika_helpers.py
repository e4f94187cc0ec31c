"""Small helpers the pika (BlockingConnection) tests share."""

from __future__ import annotations

import time
from collections.abc import Callable

import pika
from pika.adapters.blocking_connection import BlockingChannel

Received = list[tuple[bytes, int, bool]]  # (body, delivery tag, redelivered)


def ready(channel: BlockingChannel, queue: str) -> int:
    """The queue's ready-message count, from a passive declare."""
    return channel.queue_declare(queue, passive=True).method.message_count


def collector(into: Received) -> Callable[..., None]:
    """A basic_consume callback that records every delivery in `into`."""

    def on_message(_channel: BlockingChannel, method, _properties, body: bytes) -> None:
        into.append((body, method.delivery_tag, method.redelivered))

    return on_message


def wait_for(connection: pika.BlockingConnection, done: Callable[[], bool]) -> None:
    """Process events until `done()`; for deliveries that must come."""
    deadline = time.monotonic() + 5
    while not done():
        assert time.monotonic() < deadline, "expected deliveries did not arrive"
        connection.process_data_events(time_limit=0.05)
