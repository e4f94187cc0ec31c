"""'Why did this message go where it went?' for a virtual host: its exchanges and queues fed to
the pure walker in `exchanges.trace`, which records every binding's verdict on the way."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import Any

import attrs

from exchanges import BindingVerdict
from exchanges.explain import quote
from exchanges.trace import ExchangeView, InvalidRoutingHeader, RouteTrace, trace_route
from vhosts.errors import PreconditionFailed
from vhosts.exchange import DefaultRouter, Exchange
from vhosts.vhost import VirtualHost


def explain_route(
    vhost: VirtualHost,
    exchange_name: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
) -> RouteTrace:
    """Route a message as a publish to ``exchange_name`` would, without delivering it.

    Refuses as the publish would: NotFound for a missing exchange, PreconditionFailed for a
    CC or BCC header that is not an array.
    """
    vhost.exchange(exchange_name)  # NotFound, with the broker's own text

    def view(name: str) -> ExchangeView | None:
        exchange = vhost.exchanges.get(name)
        if exchange is None:
            return None
        router = exchange.router
        explainer = _DefaultExplainer(router) if isinstance(router, DefaultRouter) else router
        return ExchangeView(
            exchange.name,
            exchange.type_name,
            explainer,
            _alternate(exchange),
            exchange.hold_ms(headers),
        )

    try:
        return trace_route(
            exchange_name, routing_key, headers, exchange=view, destination_name=_named
        )
    except InvalidRoutingHeader as error:
        raise PreconditionFailed(error.text) from None


def _alternate(exchange: Exchange) -> str | None:
    # An alternate exchange named "" routes nothing (the broker's walk skips it too); it is
    # never the default exchange.
    return exchange.alternate_exchange or None


def _named(destination: Hashable) -> tuple[str, str]:
    # Anything else a router holds is queue-like: a Queue, a direct reply-to consumer, or
    # the stand-in for a queue that does not exist.
    if isinstance(destination, Exchange):
        return "exchange", destination.name
    return "queue", destination.name  # type: ignore[attr-defined]


@attrs.frozen
class _Absent:
    """The queue a default-exchange key names when there is none, so a verdict can say so."""

    name: str


class _DefaultExplainer:
    """The default exchange's router with explanations: it binds each queue by its name."""

    def __init__(self, router: DefaultRouter) -> None:
        self._router = router

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Collection[Hashable]:
        return self._router.route(routing_key, headers)

    def explain(self, routing_key: str, headers: Mapping[str, Any] | None) -> list[BindingVerdict]:
        routed = list(self._router.route(routing_key, headers))
        if not routed:
            reason = "no queue has this name (the default exchange binds each queue by its name)"
            return [BindingVerdict(_Absent(routing_key), routing_key, {}, False, reason)]
        reason = f"the default exchange binds every queue by its own name: {quote(routing_key)}"
        return [BindingVerdict(queue, routing_key, {}, True, reason) for queue in routed]
