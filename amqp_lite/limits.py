"""The node-wide limits an operator sets when starting the broker, with RabbitMQ's defaults.

They travel from the command line (or `Broker(...)`) through the server to each connection and
channel as one value. The limits set at runtime, per vhost and per user, are the domain's
(`vhosts.limits`).
"""

from __future__ import annotations

import attrs

# RabbitMQ's max_message_size: 128 MiB by default, and never above 512 MiB (its ?MAX_MSG_SIZE).
DEFAULT_MAX_MESSAGE_SIZE = 128 * 2**20
MAX_MESSAGE_SIZE_CAP = 512 * 2**20
DEFAULT_CONSUMER_TIMEOUT = 1_800_000  # ms, RabbitMQ's consumer_timeout


def _capped(size: int) -> int:
    return min(size, MAX_MESSAGE_SIZE_CAP)


@attrs.frozen
class Limits:
    # The largest body a publish may announce, in bytes (RabbitMQ's max_message_size).
    max_message_size: int = attrs.field(default=DEFAULT_MAX_MESSAGE_SIZE, converter=_capped)
    # Connections the node serves at once (RabbitMQ's connection_max); None: no limit.
    connection_max: int | None = None
    # Milliseconds a delivery may stay unacknowledged before its channel is closed (RabbitMQ's
    # consumer_timeout, 30 minutes by default); None: no limit but the queues' own.
    consumer_timeout: int | None = DEFAULT_CONSUMER_TIMEOUT

    def __attrs_post_init__(self) -> None:
        if self.max_message_size < 0:
            raise ValueError("max_message_size cannot be negative")
        if self.connection_max is not None and self.connection_max < 0:
            raise ValueError("connection_max cannot be negative")
        if self.consumer_timeout is not None and self.consumer_timeout < 0:
            raise ValueError("consumer_timeout cannot be negative")

    def message_too_large(self, size: int) -> str | None:
        """RabbitMQ's refusal of a message of `size` bytes; None when it may be published."""
        if size <= self.max_message_size:
            return None
        # RabbitMQ says "configured" unless the limit is its own ceiling.
        configured = "" if self.max_message_size == MAX_MESSAGE_SIZE_CAP else "configured "
        return f"message size {size} is larger than {configured}max size {self.max_message_size}"
