"""How AMQP field values compare, mirroring RabbitMQ (observed on 3.10).

Two different notions are needed:

* ``typed_form``: identity.  RabbitMQ keeps the wire type next to every value, so
  ``1``, ``True``, ``1.0`` and ``"1"`` are different binding arguments, ``"x"`` (longstr)
  differs from ``b"x"`` (binary), and nested tables keep their key order.  Nested values
  are also matched this way by the headers exchange.
* ``loose_form``: the headers exchange compares *top-level* values by value only
  (Erlang ``==``): any integer equals a float of the same value, a timestamp is an integer,
  ``str`` and ``bytes`` are both binaries, but booleans and decimals never equal numbers.

Python loses the exact integer width (signedint vs long), so integers of different widths
that RabbitMQ would tell apart inside arrays/tables are equal here.
"""

from __future__ import annotations

import calendar
import datetime
import decimal
from collections.abc import Mapping
from typing import Any

Form = tuple[Any, ...]


def octets(text: str) -> bytes:
    """The octets a string stands for. Strings off the wire hold octets that are not UTF-8 as
    surrogate escapes (PEP 383), and RabbitMQ compares, hashes and prints the octets."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no wire could have sent (from JSON, say)
        return text.encode("utf-8", "surrogatepass")


def epoch_seconds(value: datetime.datetime) -> int:
    # AMQP timestamps are whole seconds, UTC; naive datetimes are taken as UTC like pika does.
    return calendar.timegm(value.utctimetuple())


def decimal_parts(value: decimal.Decimal) -> tuple[int, int] | None:
    """(scale, unscaled) as AMQP carries a decimal, or None for NaN/infinity."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        return None
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > 0:  # the wire has no negative scale; 1E+2 travels as scale 0, 100
        return 0, unscaled * 10**exponent
    return -exponent, unscaled


def _decimal_form(value: decimal.Decimal) -> Form:
    parts = decimal_parts(value)
    return ("decimal", str(value)) if parts is None else ("decimal", *parts)


def typed_form(value: Any) -> Form:
    """Hashable form that is equal only when RabbitMQ would call the typed values equal."""
    # bool before int: bool is an int subclass in Python, a distinct type on the wire.
    if value is None:
        return ("void",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if value != value else value)
    if isinstance(value, str):
        return ("longstr", octets(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return ("binary", bytes(value))
    if isinstance(value, decimal.Decimal):
        return _decimal_form(value)
    if isinstance(value, datetime.datetime):
        return ("timestamp", epoch_seconds(value))
    # Tables and arrays are both Erlang lists, so an empty table equals an empty array.
    if isinstance(value, Mapping):
        return ("list", tuple(("kv", str(k), typed_form(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(typed_form(v) for v in value))
    raise TypeError(f"not an AMQP field value: {value!r}")


def loose_form(value: Any) -> Form:
    """Hashable form for top-level header matching (Erlang ``==`` on the bare values)."""
    if isinstance(value, str):
        return ("bin", octets(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        # ("num", 1) == ("num", 1.0) just as Erlang's 1 == 1.0
        return ("num", "nan" if value != value else value)
    if isinstance(value, datetime.datetime):
        return ("num", epoch_seconds(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bin", bytes(value))
    return typed_form(value)


def freeze_arguments(arguments: Mapping[str, Any]) -> Form:
    """Identity of a binding's arguments: top level sorted by key (RabbitMQ sorts it),
    nested tables keep their order (RabbitMQ does not sort those)."""
    return tuple(sorted((str(k), typed_form(v)) for k, v in arguments.items()))


def kind_name(value: Any) -> str:
    """A learner-friendly name for a value's type, used in explanations."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, Mapping):
        return "table"
    return "array"
