"""Topology methods on a channel: exchange and queue declare, delete, bind, unbind, purge.

Each checks the user's permissions, asks the vhost to make the change and answers; answers
that promise durability wait until the store has written the change.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from amqp_lite.wire import methods
from vhosts import Queue, User, VirtualHost
from vhosts.errors import AccessRefused, NotFound
from vhosts.vhost import REPLY_TO


class Session(Protocol):
    """The connection a channel belongs to, as topology methods see it: it owns exclusive
    queues and remembers the last queue it declared (AMQP 0-9-1's "current queue")."""

    last_queue_name: str

    def claim_exclusive(self, queue: Queue) -> None:
        """`queue` is exclusive to this connection: delete it when the connection goes."""
        ...

    def notifying_after_reply(self) -> AbstractContextManager[None]:
        """Hold server-sent basic.cancels until the current method's reply is on its way."""
        ...


class Topology:
    def __init__(
        self,
        vhost: VirtualHost,
        user: User,
        session: Session,
        *,
        send: Callable[[Any], None],
        reply_when_stored: Callable[[Any], None],
    ) -> None:
        self._vhost = vhost
        self._user = user
        self._session = session
        self._send = send
        self._reply_when_stored = reply_when_stored

    def _check(self, kind: str, resource_kind: str, name: str) -> None:
        self._user.check(self._vhost.name, kind, resource_kind, name)

    # -- exchanges -------------------------------------------------------------------------------

    def exchange_declare(self, method: Any) -> None:
        if not method.passive:
            self._check("configure", "exchange", method.exchange)
        self._vhost.declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=dict(method.arguments),
        )
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeclareOk())

    def exchange_delete(self, method: Any) -> None:
        self._check("configure", "exchange", method.exchange)
        self._vhost.delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeleteOk())

    def exchange_bind(self, method: Any) -> None:
        self._bind_exchanges(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeBindOk())

    def exchange_unbind(self, method: Any) -> None:
        self._bind_exchanges(method, bind=False)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeUnbindOk())

    def _bind_exchanges(self, method: Any, *, bind: bool) -> None:
        self._check("write", "exchange", method.destination)
        self._check("read", "exchange", method.source)
        if not method.source or not method.destination:  # refused before any lookup
            raise AccessRefused("operation not permitted on the default exchange")
        vhost = self._vhost
        exchanges = vhost.exchanges
        if not bind and (method.source not in exchanges or method.destination not in exchanges):
            return  # RabbitMQ: unbinding from or to a missing exchange is ok
        source = vhost.exchange(method.source)  # a missing source is reported first
        destination = vhost.exchange(method.destination)
        change = vhost.bind if bind else vhost.unbind
        change(source, destination, method.routing_key, dict(method.arguments))

    # -- queues ----------------------------------------------------------------------------------

    def queue_declare(self, method: Any) -> None:
        if method.queue.startswith(REPLY_TO):
            self._declare_reply_queue(method)
            return
        if not method.passive:
            self._check("configure", "queue", method.queue or "amq.gen")
        session = self._session
        queue = self._vhost.declare_queue(
            method.queue,
            session,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=dict(method.arguments),
        )
        if queue.exclusive_owner is session:
            session.claim_exclusive(queue)
        session.last_queue_name = queue.name
        if not method.no_wait:
            self._reply_when_stored(
                methods.QueueDeclareOk(
                    queue=queue.name,
                    message_count=queue.message_count,
                    consumer_count=queue.consumer_count,
                ),
            )

    def _declare_reply_queue(self, method: Any) -> None:
        """RabbitMQ answers a declare of the reply-to pseudo-queue as if it were a queue with
        one consumer; a reply address is there while its consumer is. Any other name with the
        prefix is not found, passive or not (never the 403 of the amq. prefix)."""
        if method.queue != REPLY_TO and method.queue not in self._vhost.reply_queues:
            raise NotFound(f"no queue '{method.queue}' in vhost '{self._vhost.name}'")
        if not method.no_wait:
            self._send(
                methods.QueueDeclareOk(queue=method.queue, message_count=0, consumer_count=1)
            )

    def _queue_name(self, name: str) -> str:
        # An empty queue name means "the queue this connection declared last" (AMQP 0-9-1).
        if not name:
            name = self._session.last_queue_name
            if not name:
                raise NotFound("no previously declared queue")
        return name

    def queue_bind(self, method: Any) -> None:
        self._queue_binding(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.QueueBindOk())

    def queue_unbind(self, method: Any) -> None:
        self._queue_binding(method, bind=False)
        self._reply_when_stored(methods.QueueUnbindOk())

    def _queue_binding(self, method: Any, *, bind: bool) -> None:
        vhost = self._vhost
        queue_name = self._queue_name(method.queue)
        self._check("write", "queue", queue_name)
        self._check("read", "exchange", method.exchange)
        if not method.exchange:
            raise AccessRefused("operation not permitted on the default exchange")
        if not bind and (method.exchange not in vhost.exchanges or queue_name not in vhost.queues):
            return  # RabbitMQ: unbinding from a missing exchange or queue is ok
        # As RabbitMQ: a missing exchange is reported first, a locked queue only once both exist,
        # and unbinding a binding that is not there is ok even on a queue locked to another.
        exchange = vhost.exchange(method.exchange)
        if not bind and not exchange.router.has_binding(
            vhost.queues[queue_name], method.routing_key, method.arguments
        ):
            return
        queue = vhost.queue(queue_name, self._session)
        change = vhost.bind if bind else vhost.unbind
        change(exchange, queue, method.routing_key, dict(method.arguments))

    def queue_purge(self, method: Any) -> None:
        queue_name = self._queue_name(method.queue)
        self._check("read", "queue", queue_name)
        count = self._vhost.purge_queue(queue_name, self._session)
        if not method.no_wait:
            self._reply_when_stored(methods.QueuePurgeOk(message_count=count))

    def queue_delete(self, method: Any) -> None:
        queue_name = self._queue_name(method.queue)
        self._check("configure", "queue", queue_name)
        # The queue's consumers hear basic.cancel after delete-ok, as from RabbitMQ: py-amqp
        # (kombu, Celery) waiting for delete-ok would raise ConsumerCancelled otherwise.
        with self._session.notifying_after_reply():
            count = self._vhost.delete_queue(
                queue_name, self._session, if_unused=method.if_unused, if_empty=method.if_empty
            )
            if not method.no_wait:
                self._reply_when_stored(methods.QueueDeleteOk(message_count=count))
