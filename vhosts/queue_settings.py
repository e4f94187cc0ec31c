"""What a queue's arguments and its policy make of it: TTLs, limits, dead-lettering, priority.

`check_declare_arguments`, `check_consume_arguments` and `validate_exchange_arguments` refuse
what RabbitMQ 3.10 refuses, with its reply texts, in its order of checks; the first two take
the arguments the queue's type accepts (see `vhosts.queue_types`), since RabbitMQ checks only
those and refuses the ones its other queue types take.
`resolve_queue_settings` merges a queue's `x-` arguments with the definition of the policy that
applies to it, with RabbitMQ's precedence for classic queues; `resolve_alternate_exchange` does
so for exchanges.

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
MAX_SEGMENT_SIZE = 3_000_000_000  # RabbitMQ's ceiling on a stream's segment size

DEAD_LETTER_STRATEGIES = ("at-most-once", "at-least-once")
LEADER_LOCATORS = ("client-local", "balanced", "random", "least-leaders")

# Every x- argument some RabbitMQ 3.10 queue type takes (classic, quorum, stream). A queue
# refuses those its own type does not take, after every other check, in the order the client's
# table lists them; other unknown x- arguments pass.
ALL_QUEUE_ARGUMENTS = frozenset(
    {
        "x-expires",
        "x-message-ttl",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-dead-letter-strategy",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-max-priority",
        "x-overflow",
        "x-queue-mode",
        "x-queue-version",
        "x-single-active-consumer",
        "x-queue-type",
        "x-queue-master-locator",
        "x-quorum-initial-group-size",
        "x-delivery-limit",
        "x-queue-leader-locator",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-initial-cluster-size",
    }
)
# The same for basic.consume.
ALL_CONSUME_ARGUMENTS = frozenset(
    {"x-priority", "x-cancel-on-ha-failover", "x-credit", "x-stream-offset"}
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
    lazy: bool = False  # x-queue-mode lazy: a classic queue pages its messages from the first
    # Quorum queues: redeliveries past this are dead-lettered (None: no limit), and how.
    delivery_limit: int | float | None = None
    dead_letter_strategy: str = "at-most-once"
    # Streams: segments whose newest message is older go (ms), and where segments roll (bytes).
    max_age: int | None = None
    max_segment_size: int | None = None
    # Is there a length limit? Worked out once, since every publish asks (twice).
    limited: bool = attrs.field(init=False, eq=False, repr=False)

    @limited.default
    def _limited(self) -> bool:
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
    if _text(value) not in QUEUE_MODES:
        raise _Invalid(erlang_string(f"unsupported queue mode '{value}'"))


def _check_queue_version(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) not in QUEUE_VERSIONS:
        raise _Invalid(erlang_string(f"unsupported queue version '{value}'"))


def _check_single_active_consumer(value: Any, _arguments: Mapping[str, Any]) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"{{unacceptable_type,{type_name(value)}}}")


def _check_dead_letter_strategy(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _text(value) not in DEAD_LETTER_STRATEGIES:
        raise _Invalid("invalid_dlx_strategy")


def _check_cluster_size(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _integer(value) == 0:
        raise _Invalid("{value_zero,0}")


def _check_leader_locator(value: Any, _arguments: Mapping[str, Any]) -> None:
    if _text(value) not in LEADER_LOCATORS:
        raise _Invalid("invalid_queue_locator_arg")


def _check_max_age(value: Any, _arguments: Mapping[str, Any]) -> None:
    # RabbitMQ crashes (541) on a value with no leading digits; a 406 says the same more kindly.
    if not isinstance(value, str):
        raise _Invalid(f"{{unacceptable_type,{type_name(value)}}}")
    if max_age_ms(value) is None:
        raise _Invalid("invalid_max_age")


# An age's units, as x-max-age and the max-age policy key take them ("7D", "1h", "30s").
MAX_AGE_UNITS = {
    "Y": 365 * 24 * 3600 * 1000,
    "M": 30 * 24 * 3600 * 1000,
    "D": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
}


def max_age_ms(text: str) -> int | None:
    """An age like "7D" in milliseconds; None unless digits (not all zero) and one unit."""
    digits = len(text) - len(text.lstrip("0123456789"))
    unit = MAX_AGE_UNITS.get(text[digits:])
    if not digits or unit is None or int(text[:digits]) <= 0:
        return None
    return int(text[:digits]) * unit


_Check = Callable[[Any, Mapping[str, Any]], None]

# RabbitMQ's checks of a new queue's arguments, in its order whatever the order of the client's
# table. A queue runs those of the arguments its type takes; x-queue-type is checked before all
# of them (by `vhosts.queue_types`, which knows the types), x-dead-letter-exchange by the
# channel first with a text of its own, and x-queue-master-locator not at all (RabbitMQ crashes
# (541) on a bad value, and locating masters means nothing on one node).
DECLARE_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("x-expires", _check_expires),
    ("x-message-ttl", _check_message_ttl),
    ("x-dead-letter-routing-key", _check_dead_letter_routing_key),
    ("x-dead-letter-strategy", _check_dead_letter_strategy),
    ("x-max-length", _check_length),
    ("x-max-length-bytes", _check_length),
    ("x-max-in-memory-length", _check_length),
    ("x-max-in-memory-bytes", _check_length),
    ("x-max-priority", _check_max_priority),
    ("x-overflow", _check_overflow),
    ("x-queue-mode", _check_queue_mode),
    ("x-queue-version", _check_queue_version),
    ("x-single-active-consumer", _check_single_active_consumer),
    ("x-quorum-initial-group-size", _check_cluster_size),
    ("x-max-age", _check_max_age),
    ("x-stream-max-segment-size-bytes", _check_length),
    ("x-initial-cluster-size", _check_cluster_size),
    ("x-queue-leader-locator", _check_leader_locator),
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


def check_dead_letter_exchange_type(arguments: Mapping[str, Any], queue_description: str) -> None:
    """The channel checks that a dead-letter exchange is named by text before anything else."""
    _check_exchange_name(arguments, "x-dead-letter-exchange", queue_description)


def check_declare_arguments(
    arguments: Mapping[str, Any],
    *,
    accepted: Collection[str],
    queue_description: str,
    type_module: str,
) -> None:
    """Raise PreconditionFailed as RabbitMQ 3.10 does for the first bad argument of a new queue
    of a type that takes the arguments `accepted` (RabbitMQ's module for it: `type_module`).

    `queue_description` is like "queue 'q' in vhost '/'". The channel's check of the
    dead-letter exchange's type comes first, and x-queue-type's (the caller's) before this.
    A queue that exists already is not validated: RabbitMQ only compares the arguments (see
    vhosts.arguments).
    """
    for key, check in DECLARE_CHECKS:
        if key in arguments and key in accepted:
            try:
                check(arguments[key], arguments)
            except _Invalid as invalid:
                raise invalid_argument(key, queue_description, invalid.reason) from None
    _refuse_other_types_arguments(
        arguments, ALL_QUEUE_ARGUMENTS, accepted, queue_description, type_module
    )


def invalid_argument(key: str, queue_description: str, reason: str) -> PreconditionFailed:
    return PreconditionFailed(f"invalid arg '{key}' for {queue_description}: {reason}")


def _refuse_other_types_arguments(
    arguments: Mapping[str, Any],
    known: Collection[str],
    accepted: Collection[str],
    queue_description: str,
    type_module: str,
) -> None:
    for key in arguments:
        if key in known and key not in accepted:
            raise PreconditionFailed(
                f"invalid arg '{key}' for {queue_description} of queue type {type_module}"
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


def _check_consumer_priority(value: Any, _arguments: Mapping[str, Any]) -> None:
    if not _is_int(value):  # any width and sign will do
        raise _Invalid(erlang_string(f"expected integer, got {type_name(value)}"))


def _check_cancel_on_failover(value: Any, _arguments: Mapping[str, Any]) -> None:
    # Mirroring means nothing on one node, but RabbitMQ still checks the type.
    if not isinstance(value, bool):
        raise _Invalid(f"{{unacceptable_type,{type_name(value)}}}")


# RabbitMQ's checks of basic.consume arguments, in its order; a queue runs those its type takes.
CONSUME_CHECKS: tuple[tuple[str, _Check], ...] = (
    ("x-priority", _check_consumer_priority),
    ("x-cancel-on-ha-failover", _check_cancel_on_failover),
)


def check_consume_arguments(
    arguments: Mapping[str, Any],
    *,
    accepted: Collection[str],
    queue_description: str,
    type_module: str,
) -> None:
    """Raise as RabbitMQ does for the arguments of a basic.consume on a queue whose type takes
    `accepted`. Unknown arguments are ignored, as RabbitMQ ignores them."""
    for key, check in CONSUME_CHECKS:
        if key in arguments and key in accepted:
            try:
                check(arguments[key], arguments)
            except _Invalid as invalid:
                raise invalid_argument(key, queue_description, invalid.reason) from None
    _refuse_other_types_arguments(
        arguments, ALL_CONSUME_ARGUMENTS, accepted, queue_description, type_module
    )


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
        lazy=argument_first("x-queue-mode", "queue-mode") == "lazy",
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
