"""An exchange as the broker keeps it: its declared properties around a router from `exchanges`."""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import Any, NoReturn

import attrs

from exchanges import ROUTERS, BindingVerdict, Router
from exchanges.explain import quote
from vhosts.errors import CommandInvalid
from vhosts.queue_settings import resolve_alternate_exchange

DEFAULT_EXCHANGE = ""
DELAYED_MESSAGE = "x-delayed-message"  # the type name RabbitMQ's delayed-message plugin uses

# Exchanges every vhost has from its creation, as RabbitMQ declares them.
STANDARD_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
    "amq.rabbitmq.trace": "topic",
}
# Where a vhost with tracing on copies every publish and delivery (RabbitMQ's firehose); only
# the broker publishes to it.
TRACE_EXCHANGE = "amq.rabbitmq.trace"


# The plugin holds a message only for a delay an Erlang timer takes: 1 ms to 2^32 - 1 ms.
MAX_DELAY = 4_294_967_295


def delay_of(headers: Mapping[str, Any] | None) -> int:
    """The x-delay to hold a message for, in ms; 0 to route it at once.

    As the plugin (for RabbitMQ 3.10) reads it: an integer, or a longstr of one; any other
    type, and a delay out of the timer's range, means no delay.
    """
    delay = (headers or {}).get("x-delay")
    if isinstance(delay, str) and _ERLANG_INTEGER.fullmatch(delay):
        delay = int(delay)
    if not isinstance(delay, int) or isinstance(delay, bool):
        return 0
    return delay if 0 < delay <= MAX_DELAY else 0


_ERLANG_INTEGER = re.compile(r"[+-]?[0-9]+")  # what binary_to_integer takes


def released_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers a delayed message is routed with when its delay ends: x-delay is now minus
    the delay, as the plugin marks it (so it is not held again, and consumers can tell)."""
    released = dict(headers or {})
    released["x-delay"] = -delay_of(headers)
    return released


class Exchange:
    def __init__(
        self,
        vhost_name: str,
        name: str,
        type_name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        router: Router | DefaultRouter | None = None,
    ) -> None:
        arguments = arguments or {}
        # A delayed-message exchange holds messages back, then routes as its x-delayed-type.
        self.delayed = type_name == DELAYED_MESSAGE
        if router is None:
            routing_type = arguments.get("x-delayed-type") if self.delayed else type_name
            router_class = ROUTERS.get(routing_type) if isinstance(routing_type, str) else None
            if router_class is None:
                raise CommandInvalid(f"unknown exchange type '{type_name}'")
            router = router_class.for_exchange(arguments)
        self.vhost_name = vhost_name
        self.name = name
        self.type_name = type_name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments
        self.router: Router | DefaultRouter = router
        # Where messages this exchange cannot route go: its argument, else its policy's.
        self.alternate_exchange: str | None = None
        self.apply_policy(None)
        self.exchange_bindings = (
            0  # bindings whose destination is an exchange: routing must follow them
        )
        # RabbitMQ's message_stats of an exchange: published to it, and of those routed
        # nowhere (see publish_out).
        self.publish_in = 0
        self.unrouted = 0

    def __repr__(self) -> str:
        return f"<Exchange {self.name!r} {self.type_name}>"

    def describe(self) -> str:
        return f"exchange '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def publish_out(self) -> int:
        """Messages published to it that it routed on, to a queue or beyond."""
        return self.publish_in - self.unrouted

    def apply_policy(self, definition: Mapping[str, Any] | None) -> None:
        self.alternate_exchange = resolve_alternate_exchange(self.arguments, definition)

    def hold_ms(self, headers: Mapping[str, Any] | None) -> int:
        """How long this exchange holds a message with these headers before routing it (ms);
        0 for every exchange but a delayed-message one."""
        return delay_of(headers) if self.delayed else 0

    @property
    def is_system(self) -> bool:
        return self.name == DEFAULT_EXCHANGE or self.name in STANDARD_EXCHANGES


class DefaultRouter:
    """The nameless exchange: every queue is bound to it by its own name, and nothing else is.

    Shaped like an `exchanges.Router` but backed by the vhost's queue table, so declaring a
    queue is all it takes to be routable here.
    """

    type_name = "direct"
    only_first_routing_key = False  # CC and BCC keys reach queues of those names too

    def __init__(
        self, queues: Mapping[str, Hashable], reply_queues: Mapping[str, Hashable] | None = None
    ) -> None:
        self._queues = queues
        self._reply_queues = reply_queues if reply_queues is not None else {}

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Collection[Hashable]:
        queue = self._queues.get(routing_key)
        if queue is None:
            queue = self._reply_queues.get(routing_key)  # direct reply-to: a channel's consumer
        return (queue,) if queue is not None else ()

    def _refuse(self, *binding: Any) -> NoReturn:
        raise AssertionError("the vhost refuses bindings to the default exchange before this")

    validate_binding = bind = unbind = has_binding = _refuse

    def remove_destination(self, destination: Hashable) -> int:
        return 0

    def bindings(self) -> Iterator[tuple[Hashable, str, dict[str, Any]]]:
        for name, queue in self._queues.items():
            yield queue, name, {}

    def has_bindings_to(self, destination: Hashable) -> bool:
        return False

    def explain(self, routing_key: str, headers: Mapping[str, Any] | None) -> list[BindingVerdict]:
        routed = self.route(routing_key, headers)
        if not routed:
            reason = "no queue has this name (the default exchange binds each queue by its name)"
            return [BindingVerdict(_Absent(routing_key), routing_key, {}, False, reason)]
        reason = f"the default exchange binds every queue by its own name: {quote(routing_key)}"
        return [BindingVerdict(queue, routing_key, {}, True, reason) for queue in routed]

    def __len__(self) -> int:
        return 0


@attrs.frozen
class _Absent:
    """The queue a default-exchange key names when there is none, so a verdict can say so."""

    name: str
