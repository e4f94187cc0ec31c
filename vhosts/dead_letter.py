"""Dead-lettering: the message a queue republishes, with the `x-death` history RabbitMQ writes.

A dead-lettered message is a new message: its headers gain (or update) `x-death`, an array
with one table per (queue, reason), newest first; the first death also sets the
`x-first-death-queue`, `-reason` and `-exchange` headers; the header table leaves sorted by key,
as RabbitMQ's does. The `expiration` property goes (so the copy does not expire again by the
same rule), a dead-letter routing key replaces the original keys and drops `CC`.
"""

from __future__ import annotations

import datetime
from typing import Any

from vhosts.message import Message, evolve

REASONS = ("rejected", "expired", "maxlen", "delivery_limit")  # the last: quorum queues


class Long(int):
    """An int the wire encodes as a signed 64-bit `l`, as RabbitMQ types x-death's count."""

    amqp_type = "l"


def dead_lettered(
    message: Message,
    queue_name: str,
    reason: str,
    dead_letter_exchange: str,
    dead_letter_routing_key: str | None,
    now: float,
) -> Message:
    """The copy of `message` that `queue_name` publishes to its dead-letter exchange."""
    properties = message.properties
    headers = dict(properties.headers or {})
    event: dict[str, Any] = {
        "count": Long(1),
        "reason": reason,
        "queue": queue_name,
        "time": datetime.datetime.fromtimestamp(int(now), tz=datetime.UTC),
        "exchange": message.exchange,
        "routing-keys": [message.routing_key, *_string_keys(headers.get("CC"))],
    }
    if properties.expiration is not None:
        event["original-expiration"] = properties.expiration
    _record_death(headers, event)
    routing_key = message.routing_key
    if dead_letter_routing_key is not None:
        routing_key = dead_letter_routing_key
        headers.pop("CC", None)
    # RabbitMQ writes the x-death headers into the table with its sorting setter: the whole
    # header table leaves sorted by key (byte order, which str order matches for UTF-8).
    headers = dict(sorted(headers.items()))
    copy = Message(
        dead_letter_exchange,
        routing_key,
        evolve(properties, headers=headers, expiration=None),
        message.body,
    )
    if dead_letter_routing_key is None:
        copy.bcc = message.bcc  # the original keys route it, BCC's included
    return copy


def _record_death(headers: dict[str, Any], event: dict[str, Any]) -> None:
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        # The first death (or a client replaced the array with something else: start over).
        if deaths is None:
            headers["x-first-death-reason"] = event["reason"]
            headers["x-first-death-queue"] = event["queue"]
            headers["x-first-death-exchange"] = event["exchange"]
        headers["x-death"] = [event]
        return
    same = [
        d
        for d in deaths
        if isinstance(d, dict)
        and d.get("queue") == event["queue"]
        and d.get("reason") == event["reason"]
    ]
    others = [d for d in deaths if not any(d is s for s in same)]
    # A repeat death keeps the earlier table as it was (time included), with its count raised.
    updated = dict(same[0], count=Long(_count(same[0]) + 1)) if same else event
    # RabbitMQ sorts the keys of the table it rewrites; the first event keeps its own order.
    headers["x-death"] = [dict(sorted(updated.items())), *(_typed(d) for d in others)]


def _count(death: dict[str, Any]) -> int:
    count = death.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else 1


def _typed(death: Any) -> Any:
    """A table read back from the wire: its count is an `l` again when it goes out."""
    if isinstance(death, dict) and isinstance(death.get("count"), int):
        return dict(death, count=Long(death["count"]))
    return death


def _string_keys(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [key for key in value if isinstance(key, str)]


def is_death_cycle(queue_name: str, headers: dict[str, Any] | None) -> bool:
    """Has the message come back to `queue_name` with no rejection on the way round?

    Only automatic cycles (expiry, length limits) are broken; a consumer rejecting the message
    somewhere in the loop means someone is deciding, so it may go round again.
    """
    deaths = (headers or {}).get("x-death")
    if not isinstance(deaths, list):
        return False
    for index, death in enumerate(deaths):
        if isinstance(death, dict) and death.get("queue") == queue_name:
            loop = deaths[: index + 1]
            return all(isinstance(d, dict) and d.get("reason") != "rejected" for d in loop)
    return False
