"""Topology methods on a channel: exchange and queue declare, delete, bind, unbind, purge.

Each checks the user's permissions, asks the vhost to make the change and answers; answers
that promise durability wait until the store has written the change.

Names are checked as RabbitMQ 3.10.8 checks them, in its order: CR and LF dropped from declared,
deleted and bound names, an empty queue name is the channel's last declared queue, a server-named
queue is checked by the name it gets, the default exchange is `amq.default`, and a permission is
refused before the resource is looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from amqp_lite.wire import methods
from amqp_lite.wire.methods import Method
from vhosts import Queue, User, VirtualHost
from vhosts.errors import AccessRefused, NotFound
from vhosts.vhost import REPLY_TO

# The methods whose empty queue name means the channel's last declared queue.
NamingAQueue = (
    methods.BasicGet
    | methods.BasicConsume
    | methods.QueueDelete
    | methods.QueuePurge
    | methods.QueueBind
    | methods.QueueUnbind
)

NOT_ON_DEFAULT_EXCHANGE = "operation not permitted on the default exchange"
DEAD_LETTER_EXCHANGE = "x-dead-letter-exchange"
ALTERNATE_EXCHANGE = "alternate-exchange"


class Session(Protocol):
    """The connection a channel belongs to, as topology methods see it: it owns exclusive
    queues."""

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
        send: Callable[[Method], None],
        reply_when_stored: Callable[[Method], None],
    ) -> None:
        self._vhost = vhost
        self._user = user
        self._session = session
        self._send = send
        self._reply_when_stored = reply_when_stored
        # AMQP 0-9-1's "current queue": the last one this channel declared.
        self.last_queue_name = ""

    def _check(self, kind: str, resource_kind: str, name: str) -> None:
        self._user.check(self._vhost.name, kind, resource_kind, name)

    def expand_shortcuts(self, method: NamingAQueue) -> None:
        """An empty queue name means the channel's last declared queue, and so does an empty
        routing key beside it in queue.bind and unbind. RabbitMQ expands them before anything
        else, permissions included."""
        if method.queue:
            return
        if not self.last_queue_name:
            raise NotFound("no previously declared queue")
        if isinstance(method, methods.QueueBind | methods.QueueUnbind) and not method.routing_key:
            method.routing_key = self.last_queue_name
        method.queue = self.last_queue_name

    # -- exchanges -------------------------------------------------------------------------------

    def exchange_declare(self, method: methods.ExchangeDeclare) -> None:
        vhost = self._vhost
        name = _strip_cr_lf(method.exchange)
        arguments = dict(method.arguments)
        if not method.passive:
            vhost.check_exchange_type(method.type)
            if not name:
                raise AccessRefused(NOT_ON_DEFAULT_EXCHANGE)
            self._check("configure", "exchange", name)
            if name not in vhost.exchanges:
                vhost.check_exchange_name(name)
                alternate = arguments.get(ALTERNATE_EXCHANGE)
                if isinstance(alternate, str):
                    self._check("read", "exchange", name)
                    self._check("write", "exchange", alternate)
        vhost.declare_exchange(
            name,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=arguments,
        )
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeclareOk())

    def exchange_delete(self, method: methods.ExchangeDelete) -> None:
        name = _strip_cr_lf(method.exchange)
        self._vhost.check_exchange_deletable(name)
        self._check("configure", "exchange", name)
        self._vhost.delete_exchange(name, if_unused=method.if_unused)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeDeleteOk())

    def exchange_bind(self, method: methods.ExchangeBind) -> None:
        self._bind_exchanges(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeBindOk())

    def exchange_unbind(self, method: methods.ExchangeUnbind) -> None:
        self._bind_exchanges(method, bind=False)
        if not method.no_wait:
            self._reply_when_stored(methods.ExchangeUnbindOk())

    def _bind_exchanges(
        self, method: methods.ExchangeBind | methods.ExchangeUnbind, *, bind: bool
    ) -> None:
        source_name = _strip_cr_lf(method.source)
        destination_name = _strip_cr_lf(method.destination)
        self._check("write", "exchange", destination_name)
        if not source_name or not destination_name:  # refused before any lookup
            raise AccessRefused(NOT_ON_DEFAULT_EXCHANGE)
        self._check_binding_read(source_name, method.routing_key)
        vhost = self._vhost
        exchanges = vhost.exchanges
        if not bind and (source_name not in exchanges or destination_name not in exchanges):
            return  # RabbitMQ: unbinding from or to a missing exchange is ok
        source = vhost.exchange(source_name)  # a missing source is reported first
        destination = vhost.exchange(destination_name)
        change = vhost.bind if bind else vhost.unbind
        change(source, destination, method.routing_key, dict(method.arguments))

    def _check_binding_read(self, source_name: str, routing_key: str) -> None:
        """Read on the source exchange; on a topic exchange, the topic read permission too."""
        self._check("read", "exchange", source_name)
        source = self._vhost.exchanges.get(source_name)
        if source is not None and source.type_name == "topic" and self._user.topic_permissions:
            self._user.check_topic(self._vhost.name, source_name, "read", routing_key)

    # -- queues ----------------------------------------------------------------------------------

    def queue_declare(self, method: methods.QueueDeclare) -> None:
        name = _strip_cr_lf(method.queue)
        if name.startswith(REPLY_TO):
            self._declare_reply_queue(method, name)
            return
        vhost = self._vhost
        arguments = dict(method.arguments)
        server_named = False
        if not method.passive:
            if name:
                vhost.check_queue_name(name)
            else:
                name, server_named = vhost.new_queue_name(), True
                vhost.check_server_named(
                    name,
                    arguments,
                    durable=method.durable,
                    exclusive=method.exclusive,
                    auto_delete=method.auto_delete,
                )
            self._check("configure", "queue", name)
            dead_letter_exchange = arguments.get(DEAD_LETTER_EXCHANGE)
            if isinstance(dead_letter_exchange, str) and name not in vhost.queues:
                self._check("read", "queue", name)
                self._check("write", "exchange", dead_letter_exchange)
        session = self._session
        queue = vhost.declare_queue(
            name,
            session,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=arguments,
            server_named=server_named,
        )
        if queue.exclusive_owner is session:
            session.claim_exclusive(queue)
        self.last_queue_name = queue.name
        if not method.no_wait:
            self._reply_when_stored(
                methods.QueueDeclareOk(
                    queue=queue.name,
                    message_count=queue.message_count,
                    consumer_count=queue.consumer_count,
                ),
            )

    def _declare_reply_queue(self, method: methods.QueueDeclare, name: str) -> None:
        """RabbitMQ answers a declare of the reply-to pseudo-queue as if it were a queue with
        one consumer; a reply address is there while its consumer is. Any other name with the
        prefix is not found, passive or not (never the 403 of the amq. prefix)."""
        if name != REPLY_TO and name not in self._vhost.reply_queues:
            raise NotFound(f"no queue '{name}' in vhost '{self._vhost.name}'")
        self.last_queue_name = name
        if not method.no_wait:
            self._send(methods.QueueDeclareOk(queue=name, message_count=0, consumer_count=1))

    def queue_bind(self, method: methods.QueueBind) -> None:
        self._queue_binding(method, bind=True)
        if not method.no_wait:
            self._reply_when_stored(methods.QueueBindOk())

    def queue_unbind(self, method: methods.QueueUnbind) -> None:
        self._queue_binding(method, bind=False)
        self._reply_when_stored(methods.QueueUnbindOk())

    def _queue_binding(
        self, method: methods.QueueBind | methods.QueueUnbind, *, bind: bool
    ) -> None:
        vhost = self._vhost
        queue_name = _strip_cr_lf(method.queue)
        exchange_name = _strip_cr_lf(method.exchange)
        self._check("write", "queue", queue_name)
        if not exchange_name:
            raise AccessRefused(NOT_ON_DEFAULT_EXCHANGE)
        self._check_binding_read(exchange_name, method.routing_key)
        if not bind and (exchange_name not in vhost.exchanges or queue_name not in vhost.queues):
            return  # RabbitMQ: unbinding from a missing exchange or queue is ok
        # As RabbitMQ: a missing exchange is reported first, a locked queue only once both exist,
        # and unbinding a binding that is not there is ok even on a queue locked to another.
        exchange = vhost.exchange(exchange_name)
        if not bind and not exchange.router.has_binding(
            vhost.queues[queue_name], method.routing_key, method.arguments
        ):
            return
        queue = vhost.queue(queue_name, self._session)
        change = vhost.bind if bind else vhost.unbind
        change(exchange, queue, method.routing_key, dict(method.arguments))

    def queue_purge(self, method: methods.QueuePurge) -> None:
        self._check("read", "queue", method.queue)
        count = self._vhost.purge_queue(method.queue, self._session)
        if not method.no_wait:
            self._reply_when_stored(methods.QueuePurgeOk(message_count=count))

    def queue_delete(self, method: methods.QueueDelete) -> None:
        queue_name = _strip_cr_lf(method.queue)
        self._check("configure", "queue", queue_name)
        # The queue's consumers hear basic.cancel after delete-ok, as from RabbitMQ: py-amqp
        # (kombu, Celery) waiting for delete-ok would raise ConsumerCancelled otherwise.
        with self._session.notifying_after_reply():
            count = self._vhost.delete_queue(
                queue_name, self._session, if_unused=method.if_unused, if_empty=method.if_empty
            )
            if not method.no_wait:
                self._reply_when_stored(methods.QueueDeleteOk(message_count=count))


def _strip_cr_lf(name: str) -> str:
    """RabbitMQ drops CR and LF from the names of what is declared, deleted or bound."""
    if "\r" in name or "\n" in name:
        return name.replace("\r", "").replace("\n", "")
    return name
