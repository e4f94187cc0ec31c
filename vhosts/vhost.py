"""A virtual host: its exchanges, queues and the bindings between them; vhosts share nothing."""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

from exchanges import ROUTERS, InvalidArguments, InvalidBinding
from exchanges.walk import InvalidRoutingHeader, WalkObserver, routing_keys, sender_selected
from exchanges.walk import walk as routing_walk
from vhosts.arguments import check_arguments_equivalence, check_queue_equivalence
from vhosts.clock import Clock
from vhosts.dead_letter import dead_lettered, is_death_cycle
from vhosts.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed
from vhosts.event import Event
from vhosts.exchange import (
    DEFAULT_EXCHANGE,
    DELAYED_MESSAGE,
    STANDARD_EXCHANGES,
    TRACE_EXCHANGE,
    DefaultRouter,
    Exchange,
    released_headers,
)
from vhosts.limits import MAX_QUEUES, limit
from vhosts.message import Message, evolve
from vhosts.paging import Paging
from vhosts.policies import Policy, PolicySet
from vhosts.queue import Queue, QueueEntry
from vhosts.queue_settings import validate_exchange_arguments
from vhosts.queue_types import check_new_queue, check_server_named, queue_class, with_default_type
from vhosts.store import Store
from vhosts.stream_storage import StreamStorage
from vhosts.timers import Timers

Destination = Queue | Exchange

# Exchange types a declare may name: the routers, and the delayed-message wrapper around them.
EXCHANGE_TYPES = (*ROUTERS, DELAYED_MESSAGE)

REPLY_TO = "amq.rabbitmq.reply-to"  # the pseudo-queue of direct reply-to


class ReplyQueue(Hashable, Protocol):
    """A channel's consumer of `amq.rabbitmq.reply-to`: replies reach it without a queue."""

    name: str  # "amq.rabbitmq.reply-to.<token>", the routing key replies are published with

    def enqueue(self, message: Message) -> object: ...


class VhostEvents:
    """The events a vhost emits (see `vhosts.events`; a node's `NodeEvents` has these too)."""

    def __init__(self) -> None:
        self.queue_created: Event[[Queue]] = Event("queue_created")
        self.queue_deleted: Event[[Queue]] = Event("queue_deleted")
        self.exchange_created: Event[[Exchange]] = Event("exchange_created")
        self.exchange_deleted: Event[[Exchange]] = Event("exchange_deleted")
        # (source, destination, routing key, arguments)
        self.binding_created: Event[[Exchange, Destination, str, dict[str, Any]]] = Event(
            "binding_created"
        )
        self.binding_deleted: Event[[Exchange, Destination, str, dict[str, Any]]] = Event(
            "binding_deleted"
        )
        self.policy_set: Event[[Policy]] = Event("policy_set")
        self.policy_cleared: Event[[Policy]] = Event("policy_cleared")

    def __iter__(self) -> Iterator[Event[...]]:
        """Every event, in the order they are declared."""
        return (value for value in vars(self).values() if isinstance(value, Event))


class VirtualHost:
    def __init__(
        self,
        name: str,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        timers: Timers | None = None,
        events: VhostEvents | None = None,
        streams: StreamStorage | None = None,
        paging: Paging | None = None,
    ) -> None:
        self.name = name
        # Where stream queues keep their logs: the node's (a temporary directory by default).
        self.streams = streams if streams is not None else StreamStorage()
        self.clock = clock if clock is not None else Clock()
        self.timers = timers if timers is not None else Timers()
        self.paging = paging  # the node's: where classic queues page (None: they do not)
        self.events = events if events is not None else VhostEvents()  # the node's, shared
        self.description = ""  # what an operator says the vhost is for (metadata, not kept)
        self.tags: list[str] = []
        # The x-queue-type of queues declared without one, where the type allows their flags
        # (RabbitMQ 3.11's vhost metadata); None: classic.
        self.default_queue_type: str | None = None
        self.store = store  # durable exchanges, queues and bindings are recorded here
        # RabbitMQ's vhost limits (max-connections, max-queues) as set; see vhosts.limits.
        self.limits: dict[str, int] = {}
        self.queues: dict[str, Queue] = {}
        self.exchanges: dict[str, Exchange] = {}
        self.policies: PolicySet | None = None  # made by the first set_policy
        # Direct reply-to: "amq.rabbitmq.reply-to.<token>" names and the consumers they reach.
        self.reply_queues: dict[str, ReplyQueue] = {}
        # Which exchanges bind to a destination, so deleting it need not visit every exchange.
        self._sources: dict[Destination, set[Exchange]] = {}
        self.exchanges[DEFAULT_EXCHANGE] = Exchange(
            name,
            DEFAULT_EXCHANGE,
            "direct",
            durable=True,
            router=DefaultRouter(self.queues, self.reply_queues),
        )
        for exchange_name, type_name in STANDARD_EXCHANGES.items():
            internal = exchange_name == TRACE_EXCHANGE  # only the broker publishes there
            self.exchanges[exchange_name] = Exchange(
                name, exchange_name, type_name, durable=True, internal=internal
            )
        # Firehose tracing (`rabbitmqctl trace_on`): the protocol layer copies every publish and
        # delivery here to TRACE_EXCHANGE. Not kept: as in RabbitMQ, a restart turns it off.
        self.tracing = False

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
        if not passive:
            self.check_exchange_type(type_name)
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
        self.check_exchange_name(name)
        validate_exchange_arguments(
            type_name,
            arguments or {},
            exchange_description=f"exchange '{name}' in vhost '{self.name}'",
            known_types=ROUTERS,
        )
        try:
            exchange = Exchange(
                self.name,
                name,
                type_name,
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=arguments,
            )
        except InvalidArguments as error:
            raise PreconditionFailed(error.text) from None
        self.exchanges[name] = exchange
        if self.policies is not None:
            exchange.apply_policy(self._policy_definition("exchange", name))
        if durable and self.store is not None:
            self.store.save_exchange(
                self.name, name, type_name, auto_delete, internal, exchange.arguments
            )
        self.events.exchange_created.emit(exchange)
        return exchange

    @staticmethod
    def check_exchange_type(type_name: str) -> None:
        if type_name not in EXCHANGE_TYPES:
            raise CommandInvalid(f"unknown exchange type '{type_name}'")

    @staticmethod
    def check_exchange_name(name: str) -> None:
        """A new exchange may not take a name of the reserved `amq.` prefix."""
        if name.startswith("amq."):
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")

    def check_exchange_deletable(self, name: str) -> None:
        """Neither the default exchange nor any amq.* name may be deleted.

        RabbitMQ refuses by prefix, before looking: even an amq.* name that is not there.
        """
        if name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if name.startswith("amq."):
            raise AccessRefused(
                f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed"
            )

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        self.check_exchange_deletable(name)
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
        binding_deleted = self.events.binding_deleted
        for bound, key, arguments in list(exchange.router.bindings()):
            destination = cast(Destination, bound)
            self._forget_source(destination, exchange)
            binding_deleted.emit(exchange, destination, key, arguments)
        self._unbind_everywhere(exchange)
        self.events.exchange_deleted.emit(exchange)

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
        server_named: bool = False,
    ) -> Queue:
        """Declare queue `name`; "" makes a server-named one, as does a name from
        `new_queue_name` given with `server_named=True`."""
        if passive:
            queue = self.queue(name, owner)
            queue.touch(passive=True)
            return queue
        arguments = self.with_default_type(
            arguments or {}, durable=durable, exclusive=exclusive, auto_delete=auto_delete
        )
        if not name:
            name = self.new_queue_name()
            check_server_named(arguments, f"queue '{name}' in vhost '{self.name}'")
        elif not server_named:
            self.check_queue_name(name)
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
            existing.touch()
            return existing
        most = limit(self.limits, MAX_QUEUES)  # new queues only, as RabbitMQ counts
        if most is not None and len(self.queues) >= most:
            raise PreconditionFailed(
                f"cannot declare queue '{name}': queue limit in vhost '{self.name}' ({most}) "
                "is reached"
            )
        check_new_queue(
            arguments,
            # An exclusive queue dies with its connection: RabbitMQ takes it as not durable.
            durable=durable and not exclusive,
            exclusive=exclusive,
            auto_delete=auto_delete,
            queue_description=f"queue '{name}' in vhost '{self.name}'",
        )
        store = self.store if durable and not exclusive else None
        queue = self.new_queue(
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
        self.events.queue_created.emit(queue)
        return queue

    def with_default_type(
        self, arguments: dict[str, Any], *, durable: bool, exclusive: bool, auto_delete: bool
    ) -> dict[str, Any]:
        """The arguments a declaration stands for: with this vhost's default queue type."""
        return with_default_type(
            arguments,
            self.default_queue_type,
            durable=durable and not exclusive,
            exclusive=exclusive,
            auto_delete=auto_delete,
        )

    def check_server_named(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
    ) -> None:
        """May queue.declare with an empty name make this queue, named `name`? Some types
        refuse it."""
        check_server_named(
            self.with_default_type(
                arguments, durable=durable, exclusive=exclusive, auto_delete=auto_delete
            ),
            f"queue '{name}' in vhost '{self.name}'",
        )

    def new_queue(self, name: str, **options: Any) -> Queue:
        """A queue of this vhost, of the type its arguments name, with its settings from its
        arguments and any policy."""
        arguments = options.get("arguments") or {}
        chosen = queue_class(arguments)
        definition = self._policy_definition("queue", name, chosen.unsupported_policies)
        settings = chosen.resolve_settings(arguments, definition)
        return chosen.variant(settings)(self.name, name, settings=settings, host=self, **options)

    @staticmethod
    def check_queue_name(name: str) -> None:
        """Names of the reserved `amq.` prefix are refused before looking, as RabbitMQ does:
        even a server-named queue that exists."""
        if name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")

    def new_queue_name(self) -> str:
        """A fresh server-made queue name, `amq.gen-` and 22 random characters."""
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
        count = queue.delete()
        for consumer in list(queue.consumers):
            consumer.queue_deleted()
        queue.consumers.clear()
        self._unbind_everywhere(queue)
        self.events.queue_deleted.emit(queue)
        return count

    def queue_expired(self, queue: Queue) -> None:
        """x-expires: nobody used the queue for that long. Its messages go, not dead-lettered."""
        self.remove_queue(queue)

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
            store = self._binding_store(source, destination)
            if store is not None:
                store.save_binding(
                    self.name, source.name, _kind(destination), destination.name, key, arguments
                )
            self.events.binding_created.emit(source, destination, key, arguments)

    def unbind(
        self, source: Exchange, destination: Destination, key: str, arguments: dict[str, Any]
    ) -> None:
        if source.name == DEFAULT_EXCHANGE:
            raise AccessRefused("operation not permitted on the default exchange")
        if source.router.unbind(destination, key, arguments):
            if isinstance(destination, Exchange):
                source.exchange_bindings -= 1
            store = self._binding_store(source, destination)
            if store is not None:
                store.delete_binding(
                    self.name, source.name, _kind(destination), destination.name, key, arguments
                )
            self.events.binding_deleted.emit(source, destination, key, arguments)
            if not source.router.has_bindings_to(destination):
                self._forget_source(destination, source)
            self._auto_delete_if_unbound(source)

    def _binding_store(self, source: Exchange, destination: Destination) -> Store | None:
        """Where the binding is kept: RabbitMQ keeps one across restarts when both of its ends
        are durable."""
        if self.store is None or not source.durable:
            return None
        if isinstance(destination, Queue):
            return self.store if destination.store is not None else None
        return self.store if destination.durable else None

    def _unbind_everywhere(self, destination: Destination) -> None:
        binding_deleted = self.events.binding_deleted
        for source in self._sources.pop(destination, ()):
            if binding_deleted:  # only then is it worth finding which bindings these were
                for bound, key, arguments in list(source.router.bindings()):
                    if bound is destination:
                        binding_deleted.emit(source, destination, key, arguments)
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

    # -- publishing and routing ------------------------------------------------------------------

    def publish(
        self,
        exchange: Exchange,
        message: Message,
        trace: Callable[[Message, Collection[Queue]], None] | None = None,
    ) -> tuple[Collection[Queue], bool]:
        """Route `message` and enqueue it: (the queues it reached, refused by some full queue).

        `trace` (the firehose, when tracing is on) is told where it was routed before any queue
        has it, so a trace of its publish comes before traces of its deliveries.
        """
        exchange.publish_in += 1
        headers = message.properties.headers
        if headers and "BCC" in headers:
            # BCC adds routing keys, but is removed before routing: no binding, and no
            # receiver, ever sees it.
            keys = _routing_keys(message.routing_key, headers)
            message.bcc = tuple(sender_selected(headers, "BCC"))
            message.drop_header("BCC")
            queues = self.walk(exchange, keys, message.properties.headers, message)
        else:
            queues = self.route(exchange, message.routing_key, headers, message)
        if trace is not None:
            trace(message, queues)
        if not queues:
            exchange.unrouted += 1
            return queues, False
        refused = False
        for queue in queues:
            if queue.enqueue(message) is None:
                refused = True
        message.queued()
        return queues, refused

    def route(
        self,
        exchange: Exchange,
        routing_key: str,
        headers: dict[str, Any] | None,
        message: Message | None = None,
    ) -> Collection[Queue]:
        """The queues a message reaches, each once; a delayed-message exchange on the way holds
        `message` instead of routing it.

        The usual case is one router lookup, with the same outcome as the walk's. Exchange-to-
        exchange bindings, alternate exchanges, delays and the CC/BCC headers (more routing
        keys) take the walk.
        """
        if not (headers and ("CC" in headers or "BCC" in headers)):
            destinations = exchange.router.route(routing_key, headers)
            if (
                not exchange.exchange_bindings
                and (destinations or not exchange.alternate_exchange)
                and not exchange.delayed
            ):
                return destinations  # type: ignore[return-value]  # only queues bind here
            keys = [routing_key]
        else:
            keys = _routing_keys(routing_key, headers)
        return self.walk(exchange, keys, headers, message)

    def walk(
        self,
        start: Exchange,
        keys: Sequence[str],
        headers: Mapping[str, Any] | None,
        message: Message | None = None,
        *,
        observer: WalkObserver[Exchange] | None = None,
    ) -> Collection[Queue]:
        """RabbitMQ's routing walk (`exchanges.walk`) over this vhost's exchanges: the broker
        routes by it whatever takes more than one router lookup, and the explainer records it.

        A delayed-message exchange anywhere on the way (the first, one bound to another, a
        dead-letter exchange) holds `message`, as the plugin does; with no message (explaining),
        what is held goes nowhere for now.
        """
        on_hold = None
        if message is not None and headers and "x-delay" in headers:  # else nothing holds it
            on_hold = functools.partial(self._hold_for, message)
        return routing_walk(  # type: ignore[return-value]  # not an exchange: a queue
            start,
            keys,
            headers,
            exchange_named=self.exchanges.get,
            exchange_type=Exchange,
            on_hold=on_hold,
            observer=observer,
        )

    # -- dead letters and delayed messages -------------------------------------------------------

    def dead_letter(self, queue: Queue, entries: list[QueueEntry], reason: str) -> None:
        """Republish what left `queue` (rejected, expired, over its limit) through its DLX."""
        exchange = self._dead_letter_exchange(queue)
        if exchange is None:
            return  # RabbitMQ drops a dead letter whose exchange does not exist
        now = self.clock.now()
        for entry in entries:
            message, targets = self._dead_letter_targets(queue, exchange, entry, reason, now)
            for target in targets:
                target.enqueue(message)
            message.queued()

    def dead_letter_confirmed(
        self, queue: Queue, entry: QueueEntry, reason: str, settled: set[str]
    ) -> bool:
        """At-least-once dead-lettering (quorum queues): offer the dead letter of `entry` to
        each target queue not yet in `settled`; those that take it join `settled`.

        True once it reached some queue and no target refused it (a full reject-publish
        queue): the source may forget it then. Each target records the message in the store
        before the source forgets it, so a crash between keeps a copy.
        """
        exchange = self._dead_letter_exchange(queue)
        if exchange is None:
            return False  # kept until the exchange exists
        message, targets = self._dead_letter_targets(
            queue, exchange, entry, reason, self.clock.now()
        )
        routed = refused = False
        for target in targets:
            routed = True
            if target.name in settled:
                continue
            if target.enqueue(message) is None:
                refused = True
            else:
                settled.add(target.name)
        return routed and not refused

    def _dead_letter_exchange(self, queue: Queue) -> Exchange | None:
        name = queue.settings.dead_letter_exchange
        return self.exchanges.get(name) if name is not None else None

    def _dead_letter_targets(
        self, queue: Queue, exchange: Exchange, entry: QueueEntry, reason: str, now: float
    ) -> tuple[Message, Iterable[Queue]]:
        """The dead letter of `entry` and the queues it goes to, as RabbitMQ routes it."""
        message = dead_lettered(
            entry.message,
            queue.name,
            reason,
            exchange.name,
            queue.settings.dead_letter_routing_key,
            now,
        )
        headers = message.properties.headers
        targets: Iterable[Queue]
        if message.bcc:  # routed by every key it was published with, as RabbitMQ does
            keys = _routing_keys(message.routing_key, headers)
            keys += [key for key in message.bcc if key not in keys]
            targets = self.walk(exchange, keys, headers, message)
        else:
            targets = self.route(exchange, message.routing_key, headers, message)
        if reason != "rejected":  # an automatic loop back to a queue ends there
            targets = [q for q in targets if not is_death_cycle(q.name, headers)]
        return message, targets

    def _hold_for(self, message: Message, exchange: Exchange, delay_ms: int) -> None:
        self._hold(exchange, message, self.clock.now() + delay_ms / 1000)

    def _hold(
        self, exchange: Exchange, message: Message, release_at: float, held_id: int | None = None
    ) -> None:
        """x-delayed-message: route the message at `release_at`, if its exchange still exists.

        A persistent message held by a durable exchange is stored until then (`held_id`), so a
        confirm still means it is on disk and a restart keeps it.
        """
        store = self.store
        if held_id is None and store is not None and exchange.durable and message.persistent:
            held_id = store.hold(self.name, exchange.name, release_at, message.keep_in(store))

        def release(now: float) -> None:
            if self.exchanges.get(exchange.name) is exchange:
                self.publish(exchange, _released(message))
            if held_id is not None and store is not None:
                store.release(held_id)
                message.let_go(store)

        self.timers.schedule(release_at, release)

    # -- policies --------------------------------------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        """Add or replace a policy, and apply the policies anew to every queue and exchange."""
        policies = self.policies if self.policies is not None else PolicySet()
        policies.set(policy)  # raises ValueError for a policy RabbitMQ refuses
        self.policies = policies
        if self.store is not None:  # RabbitMQ keeps policies across restarts
            p = policy
            self.store.save_policy(
                self.name, p.name, p.pattern, p.apply_to, p.priority, p.definition
            )
        self._apply_policies()
        self.events.policy_set.emit(policy)

    def delete_policy(self, name: str) -> bool:
        policies = self.policies
        policy = policies.get(name) if policies is not None else None
        if policies is None or policy is None:
            return False
        policies.delete(name)
        if self.store is not None:
            self.store.delete_policy(self.name, name)
        self._apply_policies()
        self.events.policy_cleared.emit(policy)
        return True

    def policy_for(self, kind: str, name: str) -> Policy | None:
        """The policy that applies to the queue or exchange `name` (`kind`), if any.

        A policy with a key the queue's type cannot take does not apply to it at all.
        """
        if self.policies is None:
            return None
        queue = self.queues.get(name) if kind == "queue" else None
        unsupported = queue.unsupported_policies if queue is not None else frozenset()
        return self.policies.match(kind, name, unsupported)

    def _apply_policies(self) -> None:
        for queue in self.queues.values():
            definition = self._policy_definition("queue", queue.name, queue.unsupported_policies)
            queue.apply_settings(queue.resolve_settings(queue.arguments, definition))
        for exchange in self.exchanges.values():
            if exchange.name != DEFAULT_EXCHANGE:
                exchange.apply_policy(self._policy_definition("exchange", exchange.name))

    def _policy_definition(
        self, kind: str, name: str, unsupported: Collection[str] = ()
    ) -> dict[str, Any] | None:
        if self.policies is None:
            return None
        policy = self.policies.match(kind, name, unsupported)
        return policy.definition if policy is not None else None


def _routing_keys(routing_key: str, headers: Mapping[str, Any] | None) -> list[str]:
    try:
        return routing_keys(routing_key, headers)
    except InvalidRoutingHeader as error:
        raise PreconditionFailed(error.text) from None


def _released(message: Message) -> Message:
    """The message a delayed exchange routes when its delay is over: its x-delay is now minus
    the delay, as the plugin marks it (so it is not held again, and consumers can tell)."""
    properties = message.properties
    headers = released_headers(properties.headers)
    if message.bcc:  # stripped before routing, but its keys still count when the delay ends
        headers["BCC"] = list(message.bcc)
    copy = Message(
        message.exchange,
        message.routing_key,
        evolve(properties, headers=headers),
        message.body,
    )
    copy.ttl = message.ttl
    return copy


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
    check_arguments_equivalence(exchange, arguments, ("alternate-exchange",))
