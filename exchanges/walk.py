"""The routing walk: from the exchange a message is published to, through every exchange it
reaches, to the queues it lands in.  The broker routes with it, and the explainer
(``exchanges.trace``) records it through a ``WalkObserver``: there is no second walk to disagree.

The rules are RabbitMQ's (rabbit_exchange:route in 3.10), plus the delayed-message plugin's hold:

* The keys are the routing key, then the strings of the ``CC`` header, then those of ``BCC``
  (``routing_keys``).  Every exchange routes on each of them, except a type that routes by the
  routing key alone (``only_first_routing_key``: x-consistent-hash).
* Each exchange reached routes the message once; what its router matches are its destinations.
  Only when its router matched nothing does the message go on to its alternate exchange (if it
  names one, the name is not "", and an exchange of that name exists).
* Exchanges are visited at most once.  Pending exchanges are visited newest first, as in
  RabbitMQ's work list; this changes the order of the hops, never which queues are reached.
* Queues are collected once each.
* An exchange that holds the message (``delayed``, and ``hold_ms`` > 0 for its headers: an
  x-delay) routes nothing now, so its alternate exchange is tried at once.  ``on_hold`` is told;
  when the hold ends, the caller routes the released message from that exchange by a new walk.

Exchanges and routers are anything of the right shape, so this module needs nothing from the
broker.  The walk costs a few attribute reads per exchange; the broker's usual publish, to one
exchange with queue bindings only, does not come here at all (see VirtualHost.route).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from exchanges import erlang_text

ROUTING_HEADERS = ("CC", "BCC")

# What became of one destination of a hop.
Outcome = Literal["queued", "already queued", "visited", "already visited", "missing"]


class Routes(Protocol):
    """What the walk needs from a router: an `exchanges.Router`, or anything shaped like one."""

    @property
    def only_first_routing_key(self) -> bool: ...

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None
    ) -> Collection[Hashable]: ...


class Walkable(Protocol):
    """What the walk needs from an exchange."""

    @property
    def name(self) -> str: ...

    @property
    def router(self) -> Routes: ...

    @property
    def alternate_exchange(self) -> str | None: ...

    @property
    def delayed(self) -> bool:
        """Whether it may hold a message at all (a delayed-message exchange)."""
        ...

    def hold_ms(self, headers: Mapping[str, Any] | None) -> int:
        """How long this exchange holds a message with these headers before routing it."""
        ...


X = TypeVar("X", bound=Walkable)
X_contra = TypeVar("X_contra", bound=Walkable, contravariant=True)


class WalkObserver(Protocol[X_contra]):
    """Told everything the walk does, in order; the explainer records it."""

    def visiting(self, exchange: X_contra) -> None:
        """A hop begins at `exchange`."""

    def held(self, exchange: X_contra, delay_ms: int) -> None:
        """`exchange` holds the message and routes nothing now."""

    def tried(
        self,
        exchange: X_contra,
        key: str,
        headers: Mapping[str, Any] | None,
        routed: Collection[Hashable],
    ) -> None:
        """`exchange`'s router, given `key` and `headers`, routed to `routed`."""

    def to_alternate(
        self, exchange: X_contra, name: str, alternate: X_contra | None, outcome: Outcome
    ) -> None:
        """Nothing matched at `exchange`, so the message went to its alternate `name`."""

    def to_destination(self, exchange: X_contra, destination: Hashable, outcome: Outcome) -> None:
        """`exchange` passed the message to `destination` (a queue or an exchange)."""


class InvalidRoutingHeader(ValueError):
    """A CC or BCC header that is not an array; RabbitMQ refuses the publish with a 406."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def sender_selected(headers: Mapping[str, Any], name: str) -> list[str]:
    """The routing keys a CC or BCC header adds: its longstr elements (RabbitMQ skips others).

    A header that is there but is not an array (even a void one) refuses the publish.
    """
    if name not in headers:
        return []
    value = headers[name]
    if not isinstance(value, list | tuple):
        kind = erlang_text.type_name(value)
        raise InvalidRoutingHeader(
            f'invalid message: {{unacceptable_type_in_header,"{name}",{kind}}}'
        )
    return [key for key in value if isinstance(key, str)]


def routing_keys(routing_key: str, headers: Mapping[str, Any] | None) -> list[str]:
    """The keys a message routes by: its routing key, then CC's, then BCC's; each key once.

    The same keys as `sender_selected` gives, read in one pass: this is on the publish path.
    CC is checked before BCC, so when both are invalid the refusal names CC, as RabbitMQ's does.
    """
    keys = [routing_key]
    if headers:
        for name in ROUTING_HEADERS:
            if name in headers:
                value = headers[name]
                if not isinstance(value, (list, tuple)):  # faster than a union
                    sender_selected(headers, name)  # raises, with RabbitMQ's text
                for key in value:
                    if type(key) is str and key not in keys:
                        keys.append(key)
    return keys


def walk(
    start: X,
    keys: Sequence[str],
    headers: Mapping[str, Any] | None,
    *,
    exchange_named: Callable[[str], X | None],
    exchange_type: type[X],
    on_hold: Callable[[X, int], object] | None = None,
    observer: WalkObserver[X] | None = None,
) -> Collection[Hashable]:
    """The queues (any destination not an `exchange_type`) a message reaches, each once.

    `keys` come from `routing_keys`; `headers` are what routers see (without BCC).
    `exchange_named` finds an alternate exchange by name.  An exchange holding the message is
    passed to `on_hold` with its delay.
    """
    queues: dict[Hashable, None] = {}
    seen = {start}
    pending = [start]
    while pending:
        exchange = pending.pop()
        if observer is not None:
            observer.visiting(exchange)
        matched: dict[Hashable, None] = {}
        delay = exchange.hold_ms(headers) if exchange.delayed else 0
        if delay > 0:
            if on_hold is not None:
                on_hold(exchange, delay)
            if observer is not None:
                observer.held(exchange, delay)
        else:
            router = exchange.router
            for key in keys[:1] if router.only_first_routing_key else keys:
                routed = router.route(key, headers)
                if observer is not None:
                    observer.tried(exchange, key, headers, routed)
                matched.update(dict.fromkeys(routed))
        # As in RabbitMQ, the alternate is handed the message before any match would be.
        if not matched and exchange.alternate_exchange:
            name = exchange.alternate_exchange
            alternate = exchange_named(name)
            outcome: Outcome
            if alternate is None:
                outcome = "missing"
            elif alternate in seen:
                outcome = "already visited"
            else:
                outcome = "visited"
                seen.add(alternate)
                pending.append(alternate)
            if observer is not None:
                observer.to_alternate(exchange, name, alternate, outcome)
        for destination in matched:
            if isinstance(destination, exchange_type):
                if destination in seen:
                    outcome = "already visited"
                else:
                    outcome = "visited"
                    seen.add(destination)
                    pending.append(destination)
            else:
                outcome = "already queued" if destination in queues else "queued"
                queues[destination] = None
            if observer is not None:
                observer.to_destination(exchange, destination, outcome)
    return queues.keys()
