"""What a queue's arguments and its policy make of it: TTLs, limits, dead-lettering, priority.

`resolve_queue_settings` merges a queue's `x-` arguments with the definition of the policy that
applies to it, with RabbitMQ's precedence. Validation of argument types and values lives in
`validate_queue_arguments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")


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


def validate_queue_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise PreconditionFailed (or another BrokerError) as RabbitMQ does for a bad argument."""


def resolve_queue_settings(
    arguments: Mapping[str, Any], policy: Mapping[str, Any] | None = None
) -> QueueSettings:
    """The effective settings; `policy` is the matching policy's definition, if any."""
    policy = policy or {}

    def smallest(argument: str, key: str) -> int | None:
        values = [v for v in (arguments.get(argument), policy.get(key)) if v is not None]
        return min(values) if values else None

    def argument_first(argument: str, key: str) -> Any:
        value = arguments.get(argument)
        return value if value is not None else policy.get(key)

    def as_text(value: Any) -> str | None:
        return value.decode() if isinstance(value, bytes) else value

    return QueueSettings(
        message_ttl=smallest("x-message-ttl", "message-ttl"),
        expires=smallest("x-expires", "expires"),
        dead_letter_exchange=as_text(
            argument_first("x-dead-letter-exchange", "dead-letter-exchange")
        ),
        dead_letter_routing_key=as_text(
            argument_first("x-dead-letter-routing-key", "dead-letter-routing-key")
        ),
        max_length=smallest("x-max-length", "max-length"),
        max_length_bytes=smallest("x-max-length-bytes", "max-length-bytes"),
        overflow=as_text(argument_first("x-overflow", "overflow")) or "drop-head",
        max_priority=arguments.get("x-max-priority"),
        single_active_consumer=arguments.get("x-single-active-consumer") is True,
    )
