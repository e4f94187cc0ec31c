"""A pika session on a quorum queue, for wire tests that also run against RabbitMQ 3.10.8.

RabbitMQ applies a settlement (ack, nack, reject) to a quorum queue a little after the client
sent it, so what follows one waits until the queue shows it (`until`): against amqp-lite the
condition already holds and nothing waits. Publishes are confirmed, so a published message is
in the queue when `publish` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from tests.conftest import Target

QUORUM = {"x-queue-type": "quorum"}


class Got(NamedTuple):
    body: str
    tag: int
    redelivered: bool
    delivery_count: int | None  # the x-delivery-count header, None when absent
    headers: dict[str, Any]


class Refusal(NamedTuple):
    code: int
    text: str
    connection: bool  # the whole connection was closed, not only the channel


class QuorumSession:
    def __init__(self, target: Target, url: str | None = None) -> None:
        self.target = target
        self.url = url or target.url
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def close(self) -> None:
        """Delete what the test made (the other broker may be shared) and disconnect."""
        if not self.connection.is_open:
            self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = self.connection.channel()
        for queue in self.queues:
            channel.queue_delete(queue)
        for exchange in self.exchanges:
            channel.exchange_delete(exchange)
        self.connection.close()

    # -- topology --------------------------------------------------------------------------------

    def name(self, prefix: str = "qq") -> str:
        name = self.target.unique(prefix)
        self.queues.append(name)
        return name

    def declare(self, name: str | None = None, **arguments: Any) -> str:
        """A quorum queue (a new name unless given) with these x- arguments."""
        name = name or self.name()
        self.channel.queue_declare(name, durable=True, arguments={**QUORUM, **arguments})
        return name

    def classic(self, prefix: str = "classic") -> str:
        name = self.name(prefix)
        self.channel.queue_declare(name, durable=True)
        return name

    def fanout(self, *queues: str) -> str:
        """A fanout exchange bound to `queues` (a dead-letter exchange, say)."""
        name = self.target.unique("x")
        self.exchanges.append(name)
        self.channel.exchange_declare(name, "fanout")
        for queue in queues:
            self.channel.queue_bind(queue, name)
        return name

    # -- messages --------------------------------------------------------------------------------

    def publish(self, queue: str, *bodies: str, **properties: Any) -> list[bool]:
        """Confirmed publishes; True for each the broker acked, False for each it nacked."""
        acked = []
        for body in bodies:
            try:
                self.channel.basic_publish(
                    "", queue, body.encode(), pika.BasicProperties(**properties)
                )
                acked.append(True)
            except pika.exceptions.NackError:
                acked.append(False)
        return acked

    def get(self, queue: str, *, no_ack: bool = False) -> Got | None:
        method, properties, body = self.channel.basic_get(queue, auto_ack=no_ack)
        if method is None:
            return None
        headers = dict(properties.headers or {})
        count = headers.get("x-delivery-count")
        return Got(body.decode(), method.delivery_tag, method.redelivered, count, headers)

    def take_all(self, queue: str) -> list[str]:
        """Every ready body, in the order the queue gives them (taken with no-ack)."""
        bodies = []
        while (got := self.get(queue, no_ack=True)) is not None:
            bodies.append(got.body)
        return bodies

    def ready(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def until(self, done: Callable[[], bool]) -> None:
        """Let a settlement land: amqp-lite has applied it already, RabbitMQ soon after."""
        deadline = time.monotonic() + 5
        while not done():
            assert time.monotonic() < deadline, "the queue never showed what was expected"
            self.connection.process_data_events(time_limit=0.02)

    def consume(
        self, queue: str, channel: BlockingChannel | None = None, **options: Any
    ) -> list[Got]:
        """Record every delivery to a new consumer (on `channel`, else the session's)."""
        received: list[Got] = []

        def on_message(
            _channel: BlockingChannel, method: Any, properties: Any, body: bytes
        ) -> None:
            headers = dict(properties.headers or {})
            received.append(
                Got(
                    body.decode(),
                    method.delivery_tag,
                    method.redelivered,
                    headers.get("x-delivery-count"),
                    headers,
                )
            )

        (channel or self.channel).basic_consume(queue, on_message, **options)
        return received

    def wait_for(self, received: list[Got], count: int) -> list[Got]:
        self.until(lambda: len(received) >= count)
        return received

    def quiet(self, seconds: float = 0.2) -> None:
        """Let deliveries that are not expected show up, if any would (no event says none will)."""
        self.connection.process_data_events(time_limit=seconds)

    # -- refusals --------------------------------------------------------------------------------

    def refusal(self, action: Callable[[BlockingChannel], Any]) -> Refusal:
        """What the broker says to `action` on a fresh connection's channel."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            action(connection.channel())
        except pika.exceptions.ChannelClosedByBroker as closed:
            return Refusal(closed.reply_code, closed.reply_text, False)
        except pika.exceptions.ConnectionClosedByBroker as closed:
            return Refusal(closed.reply_code, closed.reply_text, True)
        finally:
            if connection.is_open:
                connection.close()
        raise AssertionError("the broker took it")


def session(target: Target) -> Iterator[QuorumSession]:
    opened = QuorumSession(target)
    try:
        yield opened
    finally:
        opened.close()
