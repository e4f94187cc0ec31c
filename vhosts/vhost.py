"""A virtual host: its exchanges, queues and the bindings between them; vhosts share nothing."""

from __future__ import annotations

import base64
import os
from collections.abc import Collection
from typing import Any

from exchanges import ROUTERS, InvalidBinding
from vhosts.arguments import check_queue_equivalence
from vhosts.clock import Clock
from vhosts.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed
from vhosts.exchange import DEFAULT_EXCHANGE, STANDARD_EXCHANGES, DefaultRouter, Exchange
from vhosts.queue import Queue
from vhosts.store import Store
from vhosts.timers import Timers

Destination = Queue | Exchange


class VirtualHost:
    def __init__(
        self,
        name: str,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        timers: Timers | None = None,
    ) -> None:
        self.name = name
        self.clock = clock or Clock()
        self.timers = timers or Timers()
        self.store = store  # durable exchanges, queues and bindings are recorded here
        self.queues: dict[str, Queue] = {}
        self.exchanges: dict[str, Exchange] = {}
        # Which exchanges bind to a destination, so deleting it need not visit every exchange.
        self._sources: dict[Destination, set[Exchange]] = {}
        self.exchanges[DEFAULT_EXCHANGE] = Exchange(
            name, DEFAULT_EXCHANGE, "direct", durable=True, router=DefaultRouter(self.queues)
        )
        for exchange_name, type_name in STANDARD_EXCHANGES.items():
            self.exchanges[exchange_name] = Exchange(name, exchange_name, type_name, durable=True)

    def __repr__(self) -> str:
        return f"<VirtualHost {self.name!r}>"

    # -- exchanges -------------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise NotFound(f"no exchange '{name}' in vhost '{self.name}'")
        return exchange

    def declare_exchange(
        self,
        name: str,
        type_name: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Exchange:
        if name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if not passive and type_name not in ROUTERS:
            raise CommandInvalid(f"unknown exchange type '{type_name}'")
        existing = self.exchanges.get(name)
        if passive:
            if existing is None:
                raise NotFound(f"no exchange '{name}' in vhost '{self.name}'")
            return existing
        if existing is not None:
            _check_exchange_equivalence(
                existing, type_name, durable, auto_delete, internal, arguments or {}
            )
            return existing
        if name.startswith("amq."):
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        exchange = Exchange(
            self.name,
            name,
            type_name,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=arguments,
        )
        self.exchanges[name] = exchange
        if durable and self.store is not None:
            self.store.save_exchange(
                self.name, name, type_name, auto_delete, internal, exchange.arguments
            )
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        # RabbitMQ refuses by prefix, before looking: even an amq.* name that is not there.
        if name.startswith("amq."):
            raise AccessRefused(
                f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed"
            )
        exchange = self.exchanges.get(name)
        if exchange is None:
            return  # RabbitMQ answers delete-ok for an exchange that is not there
        # "In use" means bindings from this exchange; being a destination does not count.
        if if_unused and len(exchange.router):
            raise PreconditionFailed(f"{exchange.describe()} in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        if exchange.durable and self.store is not None:
            self.store.delete_exchange(self.name, exchange.name)
        for destination, _key, _args in list(exchange.router.bindings()):
            self._forget_source(destination, exchange)
        self._unbind_everywhere(exchange)

    # -- queues ----------------------------------------------------------------------------------

    def queue(self, name: str, owner: object) -> Queue:
        """The queue `name`, if `owner` (a connection) may use it."""
        queue = self.queues.get(name)
        if queue is None:
            raise NotFound(f"no queue '{name}' in vhost '{self.name}'")
        queue.check_exclusive_access(owner)
        return queue

    def declare_queue(
        self,
        name: str,
        owner: object,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Queue:
        arguments = arguments or {}
        if passive:
            return self.queue(name, owner)
        generated = not name
        if generated:
            name = self._generate_queue_name()
        elif name.startswith("amq."):
            # Checked before looking, as RabbitMQ does: even a server-named queue that exists.
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if existing is not None:
            # Another connection's queue, or the exclusive flag differs either way: 405.
            if existing.exclusive_owner is not (owner if exclusive else None):
                raise existing.locked_error()
            if existing.durable != durable:
                raise PreconditionFailed(
                    f"inequivalent arg 'durable' for {existing.describe()}: "
                    f"received '{_flag(durable)}' but current is '{_flag(existing.durable)}'"
                )
            if existing.auto_delete != auto_delete:
                raise PreconditionFailed(
                    f"inequivalent arg 'auto_delete' for {existing.describe()}: "
                    f"received '{_flag(auto_delete)}' "
                    f"but current is '{_flag(existing.auto_delete)}'"
                )
            check_queue_equivalence(existing, arguments)
            return existing
        # An exclusive queue dies with its connection, so it never outlives a restart.
        store = self.store if durable and not exclusive else None
        queue = Queue(
            self.name,
            name,
            durable=durable,
            exclusive_owner=owner if exclusive else None,
            auto_delete=auto_delete,
            arguments=arguments,
            store=store,
        )
        self.queues[name] = queue
        if store is not None:
            store.save_queue(self.name, name, auto_delete, arguments)
        return queue

    def _generate_queue_name(self) -> str:
        while True:
            token = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
            name = f"amq.gen-{token}"
            if name not in self.queues:
                return name

    def delete_queue(
        self, name: str, owner: object, *, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        queue = self.queues.get(name)
        if queue is None:
            return 0  # RabbitMQ answers delete-ok with a count of 0
        queue.check_exclusive_access(owner)
        queue.check_deletable(if_unused=if_unused, if_empty=if_empty)
        return self.remove_queue(queue)

    def remove_queue(self, queue: Queue) -> int:
        """Delete without conditions (owner gone, auto-delete); returns the ready count lost."""
        if self.queues.get(queue.name) is not queue:
            return 0
        del self.queues[queue.name]
        queue.deleted = True
        count = queue.purge()
        if queue.store is not None:
            queue.store.delete_queue(self.name, queue.name)
        for consumer in list(queue.consumers):
            consumer.queue_deleted()
        queue.consumers.clear()
        self._unbind_everywhere(queue)
        return count

    def purge_queue(self, name: str, owner: object) -> int:
        return self.queue(name, owner).purge()

    def owner_closed(self, owner: object) -> list[Queue]:
        """A connection went away: its exclusive queues go with it."""
        gone = [q for q in self.queues.values() if q.exclusive_owner is owner]
        for queue in gone:
            self.remove_queue(queue)
        return gone

    # -- bindings --------------------------------------------------------------------------------

    def bind(
        self, source: Exchange, destination: Destination, key: str, arguments: dict[str, Any]
    ) -> None:
        if source.name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        try:
            source.router.validate_binding(key, arguments)
        except InvalidBinding as error:
            raise PreconditionFailed(str(error)) from None
        if source.router.bind(destination, key, arguments):
            self._sources.setdefault(destination, set()).add(source)
            if isinstance(destination, Exchange):
                source.exchange_bindings += 1
            if self._is_durable_binding(source, destination):
                self.store.save_binding(  # type: ignore[union-attr]
                    self.name, source.name, _kind(destination), destination.name, key, arguments
                )

    def unbind(
        self, source: Exchange, destination: Destination, key: str, arguments: dict[str, Any]
    ) -> None:
        if source.name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if source.router.unbind(destination, key, arguments):
            if isinstance(destination, Exchange):
                source.exchange_bindings -= 1
            if self._is_durable_binding(source, destination):
                self.store.delete_binding(  # type: ignore[union-attr]
                    self.name, source.name, _kind(destination), destination.name, key, arguments
                )
            if not source.router.has_bindings_to(destination):
                self._forget_source(destination, source)
            self._auto_delete_if_unbound(source)

    def _is_durable_binding(self, source: Exchange, destination: Destination) -> bool:
        """RabbitMQ keeps a binding across restarts when both of its ends are durable."""
        if self.store is None or not source.durable:
            return False
        if isinstance(destination, Queue):
            return destination.store is not None
        return destination.durable

    def _unbind_everywhere(self, destination: Destination) -> None:
        for source in self._sources.pop(destination, ()):
            removed = source.router.remove_destination(destination)
            if isinstance(destination, Exchange):
                source.exchange_bindings -= removed
            self._auto_delete_if_unbound(source)

    def _forget_source(self, destination: Destination, source: Exchange) -> None:
        sources = self._sources.get(destination)
        if sources is not None:
            sources.discard(source)
            if not sources:
                del self._sources[destination]

    def _auto_delete_if_unbound(self, exchange: Exchange) -> None:
        if (
            exchange.auto_delete
            and not len(exchange.router)
            and self.exchanges.get(exchange.name) is exchange
        ):
            self._remove_exchange(exchange)

    # -- routing ---------------------------------------------------------------------------------

    def route(
        self, exchange: Exchange, routing_key: str, headers: dict[str, Any] | None
    ) -> Collection[Queue]:
        """The queues a message reaches, each once, following exchange-to-exchange bindings."""
        destinations = exchange.router.route(routing_key, headers)
        if not exchange.exchange_bindings:
            return destinations  # type: ignore[return-value]  # only queues bind here
        queues: dict[Queue, None] = {}
        visited = {exchange}
        pending = [destinations]
        while pending:
            for destination in pending.pop():
                if isinstance(destination, Queue):
                    queues[destination] = None
                elif destination not in visited:
                    visited.add(destination)
                    pending.append(destination.router.route(routing_key, headers))
        return queues.keys()


def _kind(destination: Destination) -> str:
    return "queue" if isinstance(destination, Queue) else "exchange"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _check_exchange_equivalence(
    exchange: Exchange,
    type_name: str,
    durable: bool,
    auto_delete: bool,
    internal: bool,
    arguments: dict[str, Any],
) -> None:
    def differs(arg: str, received: str, current: str) -> PreconditionFailed:
        return PreconditionFailed(
            f"inequivalent arg '{arg}' for {exchange.describe()}: "
            f"received '{received}' but current is '{current}'"
        )

    if exchange.type_name != type_name:
        raise differs("type", type_name, exchange.type_name)
    if exchange.durable != durable:
        raise differs("durable", _flag(durable), _flag(exchange.durable))
    if exchange.auto_delete != auto_delete:
        raise differs("auto_delete", _flag(auto_delete), _flag(exchange.auto_delete))
    if exchange.internal != internal:
        raise differs("internal", _flag(internal), _flag(exchange.internal))
    # RabbitMQ compares only this one argument of an exchange.
    ae_now, ae_new = (
        exchange.arguments.get("alternate-exchange"),
        arguments.get("alternate-exchange"),
    )
    if ae_now != ae_new:
        raise differs("alternate-exchange", str(ae_new), str(ae_now))
