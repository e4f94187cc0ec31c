"""What a queue's arguments and its policy make of it: TTLs, limits, dead-lettering, priority.

`validate_queue_arguments`, `validate_exchange_arguments` and `validate_consume_arguments`
refuse what RabbitMQ 3.10 refuses, with its reply texts, in its order of checks.
`resolve_queue_settings` merges a queue's `x-` arguments with the definition of the policy that
applies to it, with RabbitMQ's precedence; `resolve_alternate_exchange` does so for exchanges.

Values arrive decoded from field tables, which loses a little of what RabbitMQ sees: a longstr
that is not UTF-8 arrives as bytes and so reads as a binary, and a float (type f) reads as a
double. Clients send neither for these arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeGuard

import attrs

from exchanges.erlang_text import binary, type_name
from exchanges.values import octets
from vhosts.errors import CommandInvalid, PreconditionFailed

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
QUEUE_MODES = ("default", "lazy")
QUEUE_VERSIONS = (1, 2)
MAX_PRIORITY = 255
MAX_EXPIRY = 315_360_000_000  # ten years in ms: RabbitMQ's bound on x-expires and x-message-ttl

# Arguments of quorum queues and streams, which RabbitMQ refuses on a classic queue (only after
# every other check, and in the order the client's table lists them). Other unknown `x-`
# arguments pass.
CLASSIC_REFUSES = frozenset(
    {
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-delivery-limit",
        "x-quorum-initial-group-size",
        "x-initial-cluster-size",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-queue-leader-locator",
        "x-dead-letter-strategy",
    }
)


@attrs.frozen
class QueueSettings:
    message_ttl: int | None = None  # milliseconds
    expires: int | None = None  # milliseconds unused before the queue is deleted
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_length: int | None = None  # ready messages
    max_length_bytes: int | None = None  # body bytes of ready messages
    overflow: str = "drop-head"
    max_priority: int | None = None
    single_active_consumer: bool = False

    @property
    def limited(self) -> bool:
        return self.max_length is not None or self.max_length_bytes is not None


DEFAULT_SETTINGS = QueueSettings()


class _Invalid(Exception):
    """An argument's value is refused; `reason` is RabbitMQ's Erlang term for why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def erlang_string(text: str) -> str:
    """A string as Erlang's ~p prints it: quoted if printable, else a list of byte values."""
    shown = binary(octets(text))
    return shown[2:-2] if shown.startswith('<<"') else "[" + shown[2:-2] + "]"


def _integer(value: Any) -> int:
    if not _is_int(value):
        raise _Invalid(erlang_string(f"expected integer, got {type_name(value)}"))
    if value < 0:
        raise _Invalid(f"{{value_negative,{value}}}")
    return value


def _text(value: Any) -> str:
    # Only a longstr will do: a binary (type x) is refused like any other type.
    if not isinstance(value, str):
        raise _Invalid(f"{{unacceptable_type,{type_name(value)}}}")
    return value


def _check_expires(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) == 0:
        raise _Invalid("{value_zero,0}")
    if value > MAX_EXPIRY:
        raise _Invalid(f"{{value_too_large,{value}}}")


def _check_message_ttl(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) > MAX_EXPIRY:
        raise _Invalid(f"{{value_too_large,{value}}}")


def _check_dead_letter_routing_key(value: Any, arguments: Mapping[str, Any]) -> None:
    _text(value)
    # A policy's dead-letter-exchange does not count: the argument needs its own.
    if "x-dead-letter-exchange" not in arguments:
        raise _Invalid("routing_key_but_no_dlx_defined")


def _check_length(value: Any, _arguments: Mapping[str, Any]) -> None:
    _integer(value)  # no upper bound


def _check_max_priority(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) > MAX_PRIORITY:  # 0 is allowed
        raise _Invalid(f"{{max_value_exceeded,{value}}}")


def _check_overflow(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _text(value) not in OVERFLOW_MODES:
        raise _Invalid("invalid_overflow")


def _check_queue_mode(value: Any, _arguments: Mapping[str, Any]) -> None:
    # Accepted for compatibility; "lazy" changes nothing here.
    if _text(value) not in QUEUE_MODES:
        raise _Invalid(erlang_string(f"unsupported queue mode '{value}'"))


def _check_queue_version(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) not in QUEUE_VERSIONS:
        raise _Invalid(erlang_string(f"unsupported queue version '{value}'"))


def _check_single_active_consumer(value: Any, _arguments: Mapping[str, Any]) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"{{unacceptable_type,{type_name(value)}}}")


def _check_queue_type(value: Any, _arguments: Mapping[str, Any]) -> None:
    # Only classic queues exist here. RabbitMQ has quorum queues and streams, but refusing them
    # as it refuses an unknown type tells a client plainly that this broker lacks them; taking
    # them as classic queues would quietly drop the guarantees the client asked for.
    if _text(value) != "classic":
        raise _Invalid(erlang_string(f"unsupported queue type '{value}'"))


_Check = Callable[[Any, Mapping[str, Any]], None]

# RabbitMQ's order of checks, whatever the order of the client's table.
QUEUE_ARGUMENT_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("x-queue-type", _check_queue_type),
    ("x-expires", _check_expires),
    ("x-message-ttl", _check_message_ttl),
    ("x-dead-letter-routing-key", _check_dead_letter_routing_key),
    ("x-max-length", _check_length),
    ("x-max-length-bytes", _check_length),
    ("x-max-priority", _check_max_priority),
    ("x-overflow", _check_overflow),
    ("x-queue-mode", _check_queue_mode),
    ("x-queue-version", _check_queue_version),
    ("x-single-active-consumer", _check_single_active_consumer),
)


def _check_exchange_name(
    arguments: Mapping[str, Any], key: str, owner_description: str
) -> str | None:
    """An argument that names an exchange (a dead-letter or alternate exchange) must be text."""
    if key not in arguments:
        return None
    value = arguments[key]
    if not isinstance(value, str):
        raise PreconditionFailed(
            f"invalid type '{type_name(value)}' for arg '{key}' in {owner_description}"
        )
    return value


def validate_queue_arguments(arguments: Mapping[str, Any], *, queue_description: str) -> None:
    """Raise PreconditionFailed as RabbitMQ 3.10 does for the first bad argument of a new queue.

    `queue_description` is like "queue 'q' in vhost '/'". A queue that exists already is not
    validated: RabbitMQ only compares the arguments (see vhosts.arguments).
    x-queue-master-locator is not checked: RabbitMQ crashes (541) on a bad value, and locating
    masters means nothing on one node.
    """
    # The channel checks this one before the queue's own checks, with a text of its own.
    _check_exchange_name(arguments, "x-dead-letter-exchange", queue_description)
    for key, check in QUEUE_ARGUMENT_CHECKS:
        if key in arguments:
            try:
                check(arguments[key], arguments)
            except _Invalid as invalid:
                raise PreconditionFailed(
                    f"invalid arg '{key}' for {queue_description}: {invalid.reason}"
                ) from None
    for key in arguments:
        if key in CLASSIC_REFUSES:
            raise PreconditionFailed(
                f"invalid arg '{key}' for {queue_description} of queue type rabbit_classic_queue"
            )


def validate_exchange_arguments(
    type_name: str,
    arguments: Mapping[str, Any],
    *,
    exchange_description: str,
    known_types: Collection[str],
) -> None:
    """Raise as RabbitMQ does for a new exchange's arguments (after its type is known good).

    `exchange_description` is like "exchange 'x' in vhost '/'"; `known_types` are the names of
    the exchange types this broker has.
    """
    _check_exchange_name(arguments, "alternate-exchange", exchange_description)
    if type_name == "x-delayed-message":
        _check_delayed_type(arguments.get("x-delayed-type"), known_types)


def _check_delayed_type(value: Any, known_types: Collection[str]) -> None:
    # The texts of the rabbitmq_delayed_message_exchange plugin (not on our oracle node).
    if isinstance(value, bytes):  # the plugin takes a binary (type x) as well as a longstr
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        raise PreconditionFailed(
            "Invalid argument, 'x-delayed-type' must be an existing exchange type"
        )
    if value == "x-delayed-message":
        raise PreconditionFailed(
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"
        )
    if value not in known_types:
        # The plugin asks the broker's exchange type check, which closes the connection.
        raise CommandInvalid(f"unknown exchange type '{value}'")


def validate_consume_arguments(
    arguments: Mapping[str, Any], *, queue_description: str = "queue"
) -> int:
    """The consumer priority (x-priority, default 0) of a basic.consume, after RabbitMQ's checks.

    `queue_description` is like "queue 'q' in vhost '/'" (the queue consumed from). Unknown
    arguments are ignored, as RabbitMQ ignores them.
    """

    def refuse(key: str, reason: str) -> PreconditionFailed:
        return PreconditionFailed(f"invalid arg '{key}' for {queue_description}: {reason}")

    priority = arguments.get("x-priority", 0)
    if not _is_int(priority):  # any width and sign will do
        raise refuse("x-priority", erlang_string(f"expected integer, got {type_name(priority)}"))
    if "x-cancel-on-ha-failover" in arguments:
        # Mirroring means nothing on one node, but RabbitMQ still checks the type.
        failover = arguments["x-cancel-on-ha-failover"]
        if not isinstance(failover, bool):
            raise refuse("x-cancel-on-ha-failover", f"{{unacceptable_type,{type_name(failover)}}}")
    if "x-stream-offset" in arguments:
        raise PreconditionFailed(
            f"invalid arg 'x-stream-offset' for {queue_description} "
            "of queue type rabbit_classic_queue"
        )
    return priority


def resolve_queue_settings(
    arguments: Mapping[str, Any], policy: Mapping[str, Any] | None = None
) -> QueueSettings:
    """The effective settings; `policy` is the matching policy's definition, if any.

    As RabbitMQ 3.10: the smaller of argument and policy for the TTLs and length limits; the
    argument, when given (even ""), for dead-lettering and overflow, each key on its own. A
    policy cannot set max-priority or single-active-consumer (3.10 refuses those keys).
    """
    policy = policy or {}

    def smallest(argument: str, key: str) -> int | None:
        values = [v for v in (arguments.get(argument), policy.get(key)) if v is not None]
        return min(values) if values else None

    def argument_first(argument: str, key: str) -> Any:
        value = arguments.get(argument)
        return value if value is not None else policy.get(key)

    return QueueSettings(
        message_ttl=smallest("x-message-ttl", "message-ttl"),
        expires=smallest("x-expires", "expires"),
        dead_letter_exchange=_as_text(
            argument_first("x-dead-letter-exchange", "dead-letter-exchange")
        ),
        dead_letter_routing_key=_as_text(
            argument_first("x-dead-letter-routing-key", "dead-letter-routing-key")
        ),
        max_length=smallest("x-max-length", "max-length"),
        max_length_bytes=smallest("x-max-length-bytes", "max-length-bytes"),
        overflow=_as_text(argument_first("x-overflow", "overflow")) or "drop-head",
        max_priority=arguments.get("x-max-priority"),
        single_active_consumer=arguments.get("x-single-active-consumer") is True,
    )


def resolve_alternate_exchange(
    arguments: Mapping[str, Any], policy: Mapping[str, Any] | None = None
) -> str | None:
    """An exchange's alternate exchange: its argument when given (even ""), else the policy's."""
    value = arguments.get("alternate-exchange")
    if value is None and policy is not None:
        value = policy.get("alternate-exchange")
    return _as_text(value)


def _as_text(value: Any) -> str | None:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
