"""What the stream tests share: declaring streams that are deleted afterwards (RabbitMQ's node is
shared), and consuming from them with pika."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from tests.conftest import Target

STREAM = {"x-queue-type": "stream"}


class Delivery:
    def __init__(self, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        self.tag: int = method.delivery_tag
        self.redelivered: bool = method.redelivered
        self.headers: dict[str, Any] = properties.headers or {}
        self.body = body

    @property
    def offset(self) -> int:
        return int(self.headers["x-stream-offset"])

    def __repr__(self) -> str:
        return f"<Delivery {self.offset} {self.body!r}>"


class Streams:
    """One connection to the broker under test; streams declared through it are deleted at the
    end of the test."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.connection = pika.BlockingConnection(pika.URLParameters(target.url))
        self._names: list[str] = []

    def channel(self) -> BlockingChannel:
        if not self.connection.is_open:  # a connection-level error closed it
            self.connection = pika.BlockingConnection(pika.URLParameters(self.target.url))
        return self.connection.channel()

    def declare(
        self, name: str | None = None, arguments: dict[str, Any] | None = None, **flags: Any
    ) -> str:
        name = name if name is not None else self.target.unique("stream")
        if name:
            self._names.append(name)
        flags.setdefault("durable", True)
        self.channel().queue_declare(name, arguments={**STREAM, **(arguments or {})}, **flags)
        return name

    def publish(self, name: str, bodies: list[bytes], **properties: Any) -> None:
        """Publish with confirms: each is in the stream when this returns."""
        channel = self.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("", name, body, pika.BasicProperties(**properties))
        channel.close()

    def close(self) -> None:
        channel = self.channel()
        for name in self._names:
            channel.queue_delete(name)
        self.connection.close()


def consume(
    channel: BlockingChannel,
    queue: str,
    arguments: dict[str, Any] | None = None,
    *,
    prefetch: int = 1000,
    count: int | None = None,
    ack: bool = True,
    wait: float = 0.3,
    tag: str = "",
) -> list[Delivery]:
    """Start a consumer and collect what it gets: `count` deliveries (waiting up to 5 s for
    them), or what arrives within `wait` seconds when no count is given."""
    channel.basic_qos(prefetch_count=prefetch)
    got: list[Delivery] = []

    def on_message(ch: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
        got.append(Delivery(method, properties, body))
        if ack:
            ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message, arguments=arguments, consumer_tag=tag or None)
    collect(channel.connection, got, count, wait)
    return got if count is None else got[:count]


def collect(
    connection: pika.BlockingConnection, got: list[Any], count: int | None, wait: float = 0.3
) -> None:
    deadline = time.monotonic() + (5.0 if count is not None else wait)
    while (count is None or len(got) < count) and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.02)


def channel_error(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ChannelClosedByBroker) as caught:
        call()
    return caught.value.reply_code, caught.value.reply_text


def connection_error(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ConnectionClosedByBroker) as caught:
        call()
    return caught.value.reply_code, caught.value.reply_text
