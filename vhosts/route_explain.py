"""'Why did this message go where it went?' for a virtual host: the vhost's own routing walk,
recorded by `exchanges.trace` with every binding's verdict on the way."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from exchanges.trace import RouteTrace, trace_route
from exchanges.walk import InvalidRoutingHeader
from vhosts.errors import PreconditionFailed
from vhosts.exchange import Exchange, released_headers
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
    start = vhost.exchange(exchange_name)  # NotFound, with the broker's own text
    try:
        return trace_route(
            start,
            routing_key,
            headers,
            walk=vhost.walk,
            destination_name=_named,
            released_headers=released_headers,
        )
    except InvalidRoutingHeader as error:
        raise PreconditionFailed(error.text) from None


def _named(destination: Hashable) -> tuple[str, str]:
    # Anything else a router holds is queue-like: a Queue, a direct reply-to consumer, or
    # the stand-in for a queue that does not exist. A queue of a type other than classic says
    # so ("quorum queue 'jobs'"): what happens to the message there differs.
    if isinstance(destination, Exchange):
        return "exchange", destination.name
    queue_type = getattr(destination, "type_name", "classic")
    kind = "queue" if queue_type == "classic" else f"{queue_type} queue"
    return kind, destination.name  # type: ignore[attr-defined]
