"""Queue arguments: which of them must match when a queue is declared again."""

from __future__ import annotations

from typing import Any

from exchanges.erlang_text import type_name
from vhosts.errors import PreconditionFailed


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(value: Any) -> str:
    if value is None:
        return "none"
    return f"the value '{_shown(value)}' of type '{type_name(value)}'"


def check_queue_equivalence(queue: Any, arguments: dict[str, Any]) -> None:
    """A redeclare must match the arguments the queue's type takes (RabbitMQ compares only
    those, in its order); others may differ freely."""
    keys: tuple[str, ...] = queue.declare_arguments
    types = (queue.arguments.get("x-queue-type"), arguments.get("x-queue-type"))
    if None in types and "classic" in types:
        # RabbitMQ takes an explicit "classic" as the same as saying nothing, either way.
        keys = tuple(key for key in keys if key != "x-queue-type")
    check_arguments_equivalence(queue, arguments, keys)


def check_arguments_equivalence(
    existing: Any, arguments: dict[str, Any], keys: tuple[str, ...]
) -> None:
    """Raise as RabbitMQ does when a redeclare's `keys` differ from `existing.arguments`."""
    for key in keys:
        current, received = existing.arguments.get(key), arguments.get(key)
        if _comparable(current) != _comparable(received):
            if current is not None and received is not None:
                # Both present: RabbitMQ shows the bare values, without their types.
                received_text, current_text = f"'{_shown(received)}'", f"'{_shown(current)}'"
            else:
                received_text, current_text = _describe(received), _describe(current)
            raise PreconditionFailed(
                f"inequivalent arg '{key}' for {existing.describe()}: "
                f"received {received_text} but current is {current_text}"
            )


def _comparable(value: Any) -> tuple[type, Any]:
    # True == 1 in Python, not in RabbitMQ; ints of any wire width are the same number, and a
    # longstr and a binary (type x) with the same bytes are the same text.
    if isinstance(value, str):
        return (bytes, value.encode(errors="surrogateescape"))
    return (type(value), value)
