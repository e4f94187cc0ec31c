"""RabbitMQ's vhost and user limits: what may be set, and the counting they are checked against.

A vhost may limit its connections and queues (`rabbitmqctl set_vhost_limits`), a user its
connections and channels (`set_user_limits`). As in RabbitMQ, a limit is a JSON integer; a
negative one means no limit and 0 allows nothing. The texts of refusals are RabbitMQ 3.10.8's.

`Tracking` counts the connections open per vhost and per user, and the channels per user: the
protocol layer tells it when one opens and closes, and it refuses one over a limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from vhosts.errors import NotAllowed

MAX_CONNECTIONS = "max-connections"
MAX_QUEUES = "max-queues"
MAX_CHANNELS = "max-channels"

VHOST_LIMITS = (MAX_CONNECTIONS, MAX_QUEUES)
USER_LIMITS = (MAX_CONNECTIONS, MAX_CHANNELS)


class LimitsInvalid(ValueError):
    """A definition RabbitMQ would refuse; the message is its text."""


def validate_vhost_limits(definition: Mapping[str, Any]) -> dict[str, int]:
    """A vhost's whole set of limits, checked; LimitsInvalid with RabbitMQ's text (all of its
    complaints, as a runtime parameter's validation lists them)."""
    complaints = _complaints(definition, VHOST_LIMITS, "limits")
    if complaints:
        raise LimitsInvalid("Validation failed\n\n" + "".join(f"{c}\n" for c in complaints))
    return dict(definition)


def validate_user_limits(definition: Mapping[str, Any]) -> dict[str, int]:
    """Limits to merge into a user's; LimitsInvalid with RabbitMQ's text."""
    complaints = _complaints(definition, USER_LIMITS, "user-limits")
    if complaints:
        raise LimitsInvalid(complaints[0])
    return dict(definition)


def _complaints(definition: Mapping[str, Any], known: tuple[str, ...], what: str) -> list[str]:
    """In RabbitMQ's order: the unknown keys first, then each known one, last first."""
    unknown = [(key, value) for key, value in definition.items() if key not in known]
    complaints = []
    if unknown:
        terms = ",".join(f"{{{erlang_term(k)},{erlang_term(v)}}}" for k, v in unknown)
        complaints.append(f"Unrecognised terms [{terms}] in {what}")
    for key in reversed(known):
        if key in definition and not _is_integer(definition[key]):
            complaints.append(
                f"{key} should be a number, actually was {erlang_term(definition[key])}"
            )
    return complaints


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def erlang_term(value: object) -> str:
    """A JSON value as RabbitMQ prints it in an error (Erlang's ~p)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'<<"{escaped}">>'
    if isinstance(value, float):
        return repr(value).replace("e+", "e").replace("inf", "infinity")
    if isinstance(value, list):
        return "[" + ",".join(erlang_term(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ",".join(f"{erlang_term(k)} => {erlang_term(v)}" for k, v in value.items())
        return f"#{{{pairs}}}"
    return str(value)


def limit(limits: Mapping[str, int], name: str) -> int | None:
    """The limit in force: None when there is none (not set, or negative)."""
    value = limits.get(name)
    if value is None or value < 0:
        return None
    return value


class Tracking:
    """Connections per vhost and per user, channels per user: what the limits are checked on.

    Limits are read when a connection or channel opens, by name, so a user or vhost changed
    meanwhile is seen as it is now; lowering a limit closes nothing already open, as in RabbitMQ.
    """

    def __init__(self) -> None:
        self.vhost_connections: Counter[str] = Counter()
        self.user_connections: Counter[str] = Counter()
        self.user_channels: Counter[str] = Counter()

    def admit_connection(
        self,
        vhost: str,
        vhost_limits: Mapping[str, int],
        user: str,
        user_limits: Mapping[str, int],
    ) -> None:
        """Count a connection opening `vhost` as `user`, or refuse it (530, vhost limit first)."""
        most = limit(vhost_limits, MAX_CONNECTIONS)
        if most is not None and self.vhost_connections[vhost] >= most:
            raise NotAllowed(
                f"access to vhost '{vhost}' refused for user '{user}': "
                f"connection limit ({most}) is reached"
            )
        most = limit(user_limits, MAX_CONNECTIONS)
        if most is not None and self.user_connections[user] >= most:
            raise NotAllowed(
                f"connection refused for user '{user}': user connection limit ({most}) is reached"
            )
        self.vhost_connections[vhost] += 1
        self.user_connections[user] += 1

    def connection_closed(self, vhost: str, user: str) -> None:
        _forget(self.vhost_connections, vhost)
        _forget(self.user_connections, user)

    def admit_channel(self, user: str, user_limits: Mapping[str, int]) -> None:
        """Count a channel `user` opens, or refuse it (530, on the connection)."""
        most = limit(user_limits, MAX_CHANNELS)
        if most is not None and self.user_channels[user] >= most:
            raise NotAllowed(
                f"number of channels opened for user '{user}' has reached the maximum allowed "
                f"user limit of ({most})"
            )
        self.user_channels[user] += 1

    def channel_closed(self, user: str) -> None:
        _forget(self.user_channels, user)


def _forget(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
