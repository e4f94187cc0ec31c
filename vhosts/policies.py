"""Policies: named patterns that give matching queues and exchanges settings, as RabbitMQ 3.10.

`validate_policy` refuses what `rabbitmqctl set_policy` refuses, with its texts (the part after
"Validation failed"). `PolicySet.match` picks the policy that applies to a queue or exchange.

Patterns are PCRE in RabbitMQ and Python `re` here. The differences we accept: PCRE matches
bytes, so `.` is one byte of a non-ASCII name there and one character here; Python lacks
`\\p{..}` and POSIX classes like `[[:alpha:]]`, and its `\\Z` is PCRE's `\\z`; PCRE refuses
quantifiers above 65535. Error texts for bad patterns are PCRE's for the common mistakes and
Python's otherwise.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import attrs

from exchanges.erlang_text import binary, erlang_float
from exchanges.values import octets
from vhosts.queue_settings import (
    DEAD_LETTER_STRATEGIES,
    LEADER_LOCATORS,
    MAX_SEGMENT_SIZE,
    OVERFLOW_MODES,
    QUEUE_MODES,
    erlang_string,
    max_age_ms,
)

APPLY_TO = ("all", "queues", "exchanges")


@attrs.frozen
class Policy:
    vhost: str
    name: str
    pattern: str
    apply_to: str = "all"
    priority: int | float = 0  # RabbitMQ takes any number
    definition: dict[str, Any] = attrs.Factory(dict)


def _natural(minimum: int) -> Any:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _text(value: Any) -> bool:
    return isinstance(value, str)


# The keys we implement: how to tell a good value, and the end of RabbitMQ's text for a bad one.
# A policy cannot set max-priority or single-active-consumer: RabbitMQ 3.10 refuses those keys.
CHECKED_KEYS: dict[str, tuple[Any, str]] = {
    "alternate-exchange": (_text, "is not a valid alternate exchange name"),
    "dead-letter-exchange": (_text, "is not a valid dead letter exchange name"),
    "dead-letter-routing-key": (_text, "is not a valid dead letter routing key"),
    "expires": (_natural(1), "is not a valid queue expiry"),
    "max-length": (_natural(0), "is not a valid maximum length"),
    "max-length-bytes": (_natural(0), "is not a valid maximum length in bytes"),
    "message-ttl": (_natural(0), "is not a valid message TTL"),
    "overflow": (lambda v: v in OVERFLOW_MODES, "is not a valid overflow value"),
    "queue-mode": (lambda v: v in QUEUE_MODES, "is not a valid queue-mode value"),
    # Streams. RabbitMQ crashes on an age that is not a string or has no leading digits; it is
    # refused here like the other bad ages.
    "max-age": (
        lambda v: isinstance(v, str) and max_age_ms(v) is not None,
        "is not a valid max age",
    ),
    "stream-max-segment-size-bytes": (
        lambda v: _natural(0)(v) and v <= MAX_SEGMENT_SIZE,
        "is not a valid segment size",
    ),
    # RabbitMQ 3.12's, which 3.10.8 does not have.
    "consumer-timeout": (_natural(0), "is not a valid consumer timeout"),
    # Quorum queues.
    "delivery-limit": (_natural(0), "is not a valid delivery limit"),
    "dead-letter-strategy": (
        lambda v: v in DEAD_LETTER_STRATEGIES,
        "is not a valid dead letter strategy",
    ),
    "max-in-memory-length": (_natural(0), "is not a valid maximum memory in bytes"),  # sic
    "max-in-memory-bytes": (_natural(0), "is not a valid maximum memory in bytes"),
    "queue-leader-locator": (
        lambda v: v in LEADER_LOCATORS,
        "is not a valid queue leader locator value",
    ),
}

# Keys RabbitMQ (or a common plugin) knows that mean nothing here: mirroring, cluster placement,
# federation. They are taken and ignored, values unchecked, so that definitions
# exported from a production broker load.
IGNORED_KEYS = frozenset(
    {
        "ha-mode",
        "ha-params",
        "ha-sync-mode",
        "ha-sync-batch-size",
        "ha-promote-on-shutdown",
        "ha-promote-on-failure",
        "queue-master-locator",
        "queue-version",
        "initial-cluster-size",
        "federation-upstream",
        "federation-upstream-set",
    }
)


def validate_policy(policy: Policy) -> None:
    """Raise ValueError with every complaint RabbitMQ would make, one per line, in its order."""
    errors = [
        _definition_error(policy.definition),
        _apply_to_error(policy.apply_to),
        _pattern_error(policy.pattern),
        _priority_error(policy.priority),
    ]
    if any(errors):
        raise ValueError("\n".join(e for e in errors if e))


def _definition_error(definition: Any) -> str | None:
    if not isinstance(definition, Mapping):
        return f"definition must be a dictionary: {_term(definition)}"
    if not definition:
        return "no policy provided"
    # Only the first bad value is reported, in key order.
    for key in sorted(definition, key=_erlang_order):
        if key in CHECKED_KEYS:
            good, complaint = CHECKED_KEYS[key]
            if not good(definition[key]):
                return f"{_term(definition[key])} {complaint}"
    unknown = [
        ("{", [_term(key), _term(definition[key])], "}")
        for key in sorted(definition, key=_erlang_order)
        if key not in CHECKED_KEYS and key not in IGNORED_KEYS
    ]
    if unknown:
        return _pretty(("[", unknown, "]"), 0) + " are not recognised policy settings"
    return None


def _apply_to_error(apply_to: Any) -> str | None:
    if apply_to in APPLY_TO:
        return None
    return f"apply-to '{apply_to}' unrecognised; should be 'queues', 'exchanges' or 'all'"


def _pattern_error(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return f"pattern should be a binary but was {_term(pattern)}"
    try:
        _compile(pattern)
    except re.error as error:
        prefix = "pattern should be regular expression but is invalid: "
        message, offset = _pcre_error(error, pattern)
        return prefix + _pretty(("{", [erlang_string(message), str(offset)], "}"), len(prefix))
    return None


def _priority_error(priority: Any) -> str | None:
    if isinstance(priority, int | float) and not isinstance(priority, bool):
        return None
    return f"priority should be a number, actually was {_term(priority)}"


def _compile(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():  # "possible nested set" for PCRE's [[:alpha:]]
        warnings.simplefilter("ignore")
        return re.compile(pattern)


def _pcre_error(error: re.error, pattern: str) -> tuple[str, int]:
    """PCRE's message and offset for Python's complaint, where they can be told apart."""
    message, at, end = error.msg, error.pos or 0, len(pattern)
    if message.startswith("missing ), unterminated subpattern"):
        return "missing )", end
    if message == "unbalanced parenthesis":
        return "unmatched parentheses", at
    if message == "unterminated character set":
        return "missing terminating ] for character class", end
    if message in ("nothing to repeat", "multiple repeat"):
        return "nothing to repeat", at
    if message == "min repeat greater than max repeat":
        return "numbers out of order in {} quantifier", pattern.find("}", at)
    if message == "bad escape (end of pattern)":
        return "\\ at end of pattern", end
    if message.startswith("bad character range"):
        return "range out of order in character class", at + 2
    return message, at


class PolicySet:
    """The policies of one vhost, by name."""

    def __init__(self) -> None:
        self._policies: dict[str, tuple[Policy, re.Pattern[str]]] = {}

    def set(self, policy: Policy) -> None:
        """Add or replace (by name); ValueError if RabbitMQ would refuse the policy."""
        validate_policy(policy)
        self._policies[policy.name] = (policy, _compile(policy.pattern))

    def delete(self, name: str) -> bool:
        return self._policies.pop(name, None) is not None

    def get(self, name: str) -> Policy | None:
        entry = self._policies.get(name)
        return entry[0] if entry is not None else None

    def __iter__(self) -> Iterator[Policy]:
        return iter([policy for policy, _ in self._policies.values()])

    def __len__(self) -> int:
        return len(self._policies)

    def match(self, kind: str, name: str, unsupported: Collection[str] = ()) -> Policy | None:
        """The policy for the queue or exchange `name` (`kind` "queue" or "exchange").

        `unsupported`: the keys a queue's type cannot take; as in RabbitMQ, a policy with any
        of them does not apply to the queue, and the next one that matches may.

        As RabbitMQ: the pattern is searched for anywhere in the name (anchor it with ^ and $
        to match whole names); the highest priority wins. Exclusive and server-named queues and
        the default and amq.* exchanges get policies like any other.
        Between equal priorities RabbitMQ takes whichever its runtime-parameter table lists
        first, an order that follows hashes of the names (checked: with "a" and "b" set, "a"
        wins; with "a" to "g", "g" wins). We take the smallest name, so the choice at least
        stays the same across restarts and definition imports.
        """
        if kind not in ("queue", "exchange"):
            raise ValueError(f"kind must be 'queue' or 'exchange', not {kind!r}")
        applies = ("all", kind + "s")
        best: Policy | None = None
        for policy, regex in self._policies.values():
            if policy.apply_to not in applies or regex.search(name) is None:
                continue
            if unsupported and any(key in unsupported for key in policy.definition):
                continue
            if best is None or (-policy.priority, policy.name) < (-best.priority, best.name):
                best = policy
        return best


# -- Erlang's ~p, for the texts ------------------------------------------------------------------

# A node of a term to lay out: a leaf already printed, or (open, children, close).
_Node = str | tuple[str, list[Any], str]
_LINE = 78  # io_lib_pretty breaks a term that would end past this column


def _pretty(node: _Node, column: int) -> str:
    """Print flat if it fits, else one element per line under the first, as ~p does."""
    flat = _flat(node)
    if isinstance(node, str) or column + len(flat) <= _LINE:
        return flat
    opening, children, closing = node
    inner = column + len(opening)
    return opening + (",\n" + " " * inner).join(_pretty(c, inner) for c in children) + closing


def _flat(node: _Node) -> str:
    if isinstance(node, str):
        return node
    opening, children, closing = node
    return opening + ",".join(_flat(c) for c in children) + closing


def _erlang_order(key: str) -> bytes:
    return octets(key)  # binaries sort bytewise


def _term(value: Any) -> str:
    """A JSON value as RabbitMQ holds and prints it (strings are binaries, null an atom)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return erlang_float(value)
    if isinstance(value, str):
        # rabbitmqctl shows each byte of the UTF-8 as a Latin-1 character: "é" as "Ã©".
        return octets(binary(octets(value))).decode("latin-1")
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: _erlang_order(str(kv[0])))
        return "#{" + ",".join(f"{_term(k)} => {_term(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_term(v) for v in value) + "]"
    return repr(value)
