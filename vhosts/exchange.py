"""An exchange as the broker keeps it: its declared properties around a router from `exchanges`."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import Any, NoReturn

from exchanges import ROUTERS, Router
from vhosts.errors import CommandInvalid

DEFAULT_EXCHANGE = ""

# Exchanges every vhost has from its creation, as RabbitMQ declares them.
STANDARD_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}


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
        if router is None:
            router_class = ROUTERS.get(type_name)
            if router_class is None:
                raise CommandInvalid(f"unknown exchange type '{type_name}'")
            router = router_class()
        self.vhost_name = vhost_name
        self.name = name
        self.type_name = type_name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments or {}
        self.router: Router | DefaultRouter = router
        self.exchange_bindings = (
            0  # bindings whose destination is an exchange: routing must follow them
        )

    def __repr__(self) -> str:
        return f"<Exchange {self.name!r} {self.type_name}>"

    def describe(self) -> str:
        return f"exchange '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def is_system(self) -> bool:
        return self.name == DEFAULT_EXCHANGE or self.name in STANDARD_EXCHANGES


class DefaultRouter:
    """The nameless exchange: every queue is bound to it by its own name, and nothing else is.

    Shaped like an `exchanges.Router` but backed by the vhost's queue table, so declaring a
    queue is all it takes to be routable here.
    """

    type_name = "direct"

    def __init__(self, queues: Mapping[str, Hashable]) -> None:
        self._queues = queues

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Collection[Hashable]:
        queue = self._queues.get(routing_key)
        return (queue,) if queue is not None else ()

    def _refuse(self, *binding: Any) -> NoReturn:
        raise AssertionError("the vhost refuses bindings to the default exchange before this")

    validate_binding = bind = unbind = _refuse

    def remove_destination(self, destination: Hashable) -> int:
        return 0

    def bindings(self) -> Iterator[tuple[Hashable, str, dict]]:
        for name, queue in self._queues.items():
            yield queue, name, {}

    def has_bindings_to(self, destination: Hashable) -> bool:
        return False

    def explain(self, routing_key: str, headers: Mapping[str, Any] | None) -> list:
        return []

    def __len__(self) -> int:
        return 0
