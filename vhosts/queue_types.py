"""Queue types: one class per `x-queue-type`, all behind the interface of `vhosts.queue.Queue`.

The vhost asks this module which class a declare makes (`queue_class`), what a vhost's default
queue type turns a declaration's arguments into (`with_default_type`), and whether a new queue
may be declared as asked (`check_new_queue`, `check_server_named`): the arguments' checks, with
RabbitMQ's texts, follow from what each class says of its type.

How a new queue type plugs in
-----------------------------
1. Write its class in a module of its own under vhosts/, subclassing `vhosts.queue.Queue`.
2. Describe the type with the class attributes `Queue` documents: `type_name` (the value of
   x-queue-type), `rabbit_module` (RabbitMQ's module, which its texts name),
   `declare_arguments` and `consume_arguments` (what it takes, in RabbitMQ's order; RabbitMQ's
   other types' arguments are then refused with its text), `unsupported_policies` and
   `server_named`; override the classmethods `compatible` (may a vhost default make one),
   `check_properties` (durable/exclusive/auto-delete refusals), `check_declaration` (checks
   of its own that come after those), `resolve_settings` (arguments
   and policy into settings) and, for variants of one type, `variant`. An argument check
   RabbitMQ has that is not yet in `vhosts.queue_settings.DECLARE_CHECKS` goes there, in
   RabbitMQ's place.
3. Override the behaviour that differs from the base class's FIFO: publish (`enqueue`),
   delivery (`dispatch`, `get`, `outgoing`), settlement (`ack`, `requeue`, `discard`),
   `purge` and `delete`, the counts, `check_consumable`, `validate_consume_arguments` (a
   consumer's own arguments reach the queue as `consumer.arguments` in `add_consumer`),
   `check_deletable`, and what it keeps in the store and gets back through `restore`. A type
   with storage of its own (a log on disk) opens it when made and drops it in `delete`.
4. Add the class to `QUEUE_TYPES` below. Nothing else names it: the channel, the vhost, the
   store's recovery and the management API all go through the interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchanges.erlang_text import type_name
from vhosts.classic_queue import ClassicQueue
from vhosts.errors import PreconditionFailed
from vhosts.queue import Queue
from vhosts.queue_settings import (
    check_dead_letter_exchange_type,
    check_declare_arguments,
    erlang_string,
    invalid_argument,
)
from vhosts.quorum_queue import QuorumQueue
from vhosts.stream_queue import StreamQueue

# By the value of x-queue-type.
QUEUE_TYPES: dict[str, type[Queue]] = {
    ClassicQueue.type_name: ClassicQueue,
    QuorumQueue.type_name: QuorumQueue,
    StreamQueue.type_name: StreamQueue,
}
DEFAULT_QUEUE_TYPE = ClassicQueue.type_name  # a queue declared without x-queue-type


def check_queue_type_name(name: str) -> None:
    """ValueError unless `name` is a queue type this broker has (a vhost's default, say)."""
    if name not in QUEUE_TYPES:
        known = ", ".join(sorted(QUEUE_TYPES))
        raise ValueError(f"unknown queue type '{name}' (this broker has {known})")


def queue_class(arguments: Mapping[str, Any]) -> type[Queue]:
    """The class of a queue with these (checked) arguments."""
    return QUEUE_TYPES.get(arguments.get("x-queue-type") or DEFAULT_QUEUE_TYPE, ClassicQueue)


def with_default_type(
    arguments: dict[str, Any],
    default_type: str | None,
    *,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
) -> dict[str, Any]:
    """A vhost's default queue type (RabbitMQ 3.11's vhost metadata) becomes the x-queue-type of
    a declaration that names none, if the type can have a queue with such flags; the queue then
    keeps it among its arguments, as RabbitMQ keeps it."""
    if default_type is None or "x-queue-type" in arguments:
        return arguments
    chosen = QUEUE_TYPES.get(default_type)
    if chosen is None or not chosen.compatible(
        durable=durable, exclusive=exclusive, auto_delete=auto_delete
    ):
        return arguments
    return {**arguments, "x-queue-type": default_type}


def check_queue_type(arguments: Mapping[str, Any], queue_description: str) -> type[Queue]:
    """The class x-queue-type names; PreconditionFailed with RabbitMQ's text if none does."""
    if "x-queue-type" not in arguments:
        return QUEUE_TYPES[DEFAULT_QUEUE_TYPE]
    value = arguments["x-queue-type"]
    if not isinstance(value, str):
        raise invalid_argument(
            "x-queue-type", queue_description, f"{{unacceptable_type,{type_name(value)}}}"
        )
    chosen = QUEUE_TYPES.get(value)
    if chosen is None:
        reason = erlang_string(f"unsupported queue type '{value}'")
        raise invalid_argument("x-queue-type", queue_description, reason)
    return chosen


def check_server_named(arguments: Mapping[str, Any], queue_description: str) -> None:
    """queue.declare with an empty name: only types that allow it, as RabbitMQ refuses them.
    `queue_description` names the queue by the name it would get.

    RabbitMQ 3.10 crashes (541) on an unknown x-queue-type here; the usual 406 for it says more.
    """
    chosen = check_queue_type(arguments, queue_description)
    if not chosen.server_named:
        raise PreconditionFailed(
            f"Cannot declare a server-named queue for type {chosen.rabbit_module}"
        )


def check_new_queue(
    arguments: Mapping[str, Any],
    *,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    queue_description: str,
) -> type[Queue]:
    """RabbitMQ's checks of a queue about to be made, in its order; returns its class.

    The type comes first, then the arguments its type takes (and the refusal of those other
    types take), then the flags the type refuses. `queue_description` is like
    "queue 'q' in vhost '/'".
    """
    check_dead_letter_exchange_type(arguments, queue_description)  # the channel's, first
    chosen = check_queue_type(arguments, queue_description)
    check_declare_arguments(
        arguments,
        accepted=chosen.declare_arguments,
        queue_description=queue_description,
        type_module=chosen.rabbit_module,
    )
    chosen.check_properties(
        durable=durable,
        exclusive=exclusive,
        auto_delete=auto_delete,
        description=queue_description,
    )
    chosen.check_declaration(arguments, queue_description)
    return chosen
