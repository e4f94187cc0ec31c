"""Consistent-hash exchange (``x-consistent-hash``, RabbitMQ's rabbitmq_consistent_hash_exchange
plugin): each message goes to exactly one destination, picked by hashing its routing key (or
one header), so equal keys keep landing on the same queue while the bindings stay put.

The layout follows RabbitMQ 3.10 (its source, and checked on a 3.10.8 node):
* The binding key is a weight: a decimal integer of at least 1 ("+2" and "02" pass, " 2" does
  not), refused with RabbitMQ's own 406 texts otherwise.
* The ring is a row of numbered buckets.  A destination's first binding appends ``weight``
  buckets to the end of the row.  Further bindings to the same destination add none, and
  removing any binding of a destination takes all of its buckets away; the buckets after them
  move down to close the gap.
* The message's key is hashed, and jump consistent hashing (Lamping & Veach) turns the hash
  into a bucket from 0 to N-1.  When the row grows, a key moves only into one of the new
  buckets, so a new binding takes its share of keys and every other key stays where it was.
* Only the routing key is hashed: CC and BCC keys play no part.  With the exchange argument
  ``hash-header``, the value of that header is hashed instead, and all messages without the
  header hash the same way, so they all go to one bucket.  The empty routing key is hashed
  like any other key.

RabbitMQ hashes with erlang:phash2 and its exs1024 generator; this module uses BLAKE2b and the
64-bit LCG of the jump hash paper.  A key may therefore land on a different queue than on
RabbitMQ, though just as stably; RabbitMQ does not promise positions across restarts either.
``hash-property`` (message_id, correlation_id, timestamp) needs message properties that a router
is never given, so it is refused rather than silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar, Self

import attrs

from exchanges import erlang_text
from exchanges.base import BindingId, InvalidBinding, Router
from exchanges.explain import BindingVerdict, quote
from exchanges.values import freeze_arguments, octets, typed_form

# What Erlang's list_to_integer accepts: an optional sign and ASCII digits, nothing else.
WEIGHT = re.compile(r"[+-]?[0-9]+")
PROPERTIES = ("correlation_id", "message_id", "timestamp")

_MASK64 = (1 << 64) - 1
# The hash input for a message that lacks the hash header: no header value encodes to it.
_NO_HEADER = b""


class InvalidArguments(Exception):
    """Exchange arguments this type refuses; the text becomes a 406 PRECONDITION_FAILED."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def parse_weight(binding_key: str) -> int:
    if not WEIGHT.fullmatch(binding_key):
        shown = erlang_text.binary(octets(binding_key))
        raise InvalidBinding(f"The binding key must be an integer: {shown}")
    weight = int(binding_key)
    if weight < 1:
        raise InvalidBinding("The binding key must be greater than 0")
    return weight


def hash_header(arguments: Mapping[str, Any]) -> str | None:
    """The header to hash on, or None for the routing key; raises InvalidArguments."""
    for name in ("hash-header", "hash-property"):
        if name in arguments and not isinstance(arguments[name], str):
            # RabbitMQ 3.10 crashes on this (541 INTERNAL_ERROR); a 406 says why.
            kind = erlang_text.type_name(arguments[name])
            raise InvalidArguments(f"{name} must be a longstr, not {kind}")
    if "hash-property" in arguments:
        if "hash-header" in arguments:
            raise InvalidArguments("hash-header and hash-property are mutually exclusive")
        prop = arguments["hash-property"]
        if prop not in PROPERTIES:
            raise InvalidArguments(f"Unsupported property: {prop}")
        raise InvalidArguments(
            f"hash-property {prop} is not supported by amqp-lite: routers see only the "
            "routing key and headers; use hash-header"
        )
    return arguments.get("hash-header")


def key_hash(data: bytes) -> int:
    """A well-mixed 64-bit hash, the same in every process (unlike Python's hash())."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def jump_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: the bucket in [0, buckets) for a 64-bit key.

    The key seeds a random walk of "jumps" through bucket numbers; the last jump below
    ``buckets`` is the answer, so raising ``buckets`` can only move a key to a new bucket.
    Exact integers stand in for the paper's floating point: any weight works.
    """
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK64
        jump = ((bucket + 1) << 31) // ((key >> 33) + 1)
    return bucket


@attrs.frozen
class Share:
    """The buckets held by one destination, through one of its bindings."""

    binding: BindingId
    first: int
    weight: int

    def describe(self) -> str:
        if self.weight == 1:
            return f"bucket {self.first}"
        return f"buckets {self.first}-{self.first + self.weight - 1}"


@attrs.frozen
class Located:
    """Where a message's key falls: ``bucket`` is None when the row is empty."""

    subject: str  # what was hashed, for people
    bucket: int | None
    buckets: int


class ConsistentHashRouter(Router):
    type_name: ClassVar[str] = "x-consistent-hash"
    # RabbitMQ's type hashes the message's own routing key only; CC/BCC keys are not tried.
    only_first_routing_key: ClassVar[bool] = True

    def __init__(self, arguments: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.hash_header = hash_header(arguments or {})
        # Destination -> the binding that gave it buckets, and that binding's weight, in
        # the order the buckets sit in the row.
        self._holders: dict[Hashable, tuple[BindingId, int]] = {}
        # Derived from _holders by _rebuild, for route() and explain().
        self._shares: dict[Hashable, Share] = {}
        self._ends: list[int] = []  # one past each share's last bucket, ascending: bisect
        self._routes: list[tuple[Hashable]] = []  # route()'s answer for each share
        self._buckets = 0

    @classmethod
    def for_exchange(cls, arguments: Mapping[str, Any]) -> Self:
        return cls(arguments)  # the hash-header argument picks what is hashed

    @classmethod
    def validate_binding(cls, binding_key: str, arguments: Mapping[str, Any]) -> None:
        parse_weight(binding_key)

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> tuple[Hashable, ...]:
        if not self._buckets:
            return ()
        bucket = jump_hash(key_hash(self._hash_input(routing_key, headers)), self._buckets)
        return self._routes[bisect_right(self._ends, bucket)]

    def _hash_input(self, routing_key: str, headers: Mapping[str, Any] | None) -> bytes:
        if self.hash_header is None:
            return octets(routing_key)  # RabbitMQ hashes the key's octets
        if not headers or self.hash_header not in headers:
            return _NO_HEADER
        value = headers[self.hash_header]
        try:  # RabbitMQ hashes the typed value: "7" and 7 hash differently
            return repr(typed_form(value)).encode()
        except TypeError:  # not an AMQP value; cannot come off the wire
            return repr(value).encode()

    # -- the bucket row -------------------------------------------------------------------

    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination = binding_id[0]
        if destination not in self._holders:
            self._holders[destination] = (binding_id, parse_weight(binding_id[1]))
            self._rebuild()

    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        # Any of a destination's bindings going takes all of its buckets, as in RabbitMQ.
        if self._holders.pop(binding_id[0], None) is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        self._shares, self._ends, self._routes = {}, [], []
        first = 0
        for destination, (binding_id, weight) in self._holders.items():
            self._shares[destination] = Share(binding_id, first, weight)
            first += weight
            self._ends.append(first)
            self._routes.append((destination,))
        self._buckets = first

    # -- explanations ---------------------------------------------------------------------

    def locate(self, routing_key: str, headers: Mapping[str, Any] | None = None) -> Located:
        """What the message hashes on, and the bucket that picks."""
        if self.hash_header is None:
            subject = f"routing key {quote(routing_key)}"
        elif headers and self.hash_header in headers:
            subject = f"header {quote(self.hash_header)} = {headers[self.hash_header]!r}"
        else:
            subject = f"a message without header {quote(self.hash_header)} (all hash alike)"
        if not self._buckets:
            return Located(subject, None, 0)
        data = self._hash_input(routing_key, headers)
        return Located(subject, jump_hash(key_hash(data), self._buckets), self._buckets)

    def explain(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> list[BindingVerdict]:
        where = self.locate(routing_key, headers)  # hash once for every verdict
        return [self._judge(binding_id, args, where) for binding_id, args in self._bindings.items()]

    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict:
        binding_id = (destination, binding_key, freeze_arguments(arguments))
        return self._judge(binding_id, arguments, self.locate(routing_key, headers))

    def _judge(
        self, binding_id: BindingId, arguments: dict[str, Any], where: Located
    ) -> BindingVerdict:
        destination, binding_key, _ = binding_id
        share = self._shares.get(destination)

        def verdict(matched: bool, reason: str) -> BindingVerdict:
            return BindingVerdict(destination, binding_key, arguments, matched, reason)

        if share is None:
            return verdict(
                False,
                "holds no buckets: removing another binding to this destination took them "
                "all (RabbitMQ drops every bucket of a destination then); bind it again",
            )
        if share.binding != binding_id:
            held_by = quote(share.binding[1])
            return verdict(
                False,
                f"holds no buckets: its destination already has {share.describe()} through "
                f"binding key {held_by}, and only a destination's first binding counts",
            )
        assert where.bucket is not None, "a share exists, so the row is not empty"
        row = f"bucket {where.bucket} of 0-{where.buckets - 1}"
        holding = f"weight {share.weight} gives this binding {share.describe()}"
        if share.first <= where.bucket < share.first + share.weight:
            return verdict(True, f"{where.subject} hashed to {row}; {holding}, so it wins")
        return verdict(False, f"{where.subject} hashed to {row}; {holding}")
