"""Render field values the way RabbitMQ's error texts print them (Erlang ``~p``), so our
406 replies read exactly like a real broker's, e.g. ``<<"foo">>`` or ``{1,15}``."""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Mapping
from typing import Any

from exchanges.values import decimal_parts, epoch_seconds, octets

# Bytes Erlang's ~p accepts inside a quoted binary (latin-1 printable range) and the
# escapes it uses for control characters; anything else prints the binary as integers.
_ESCAPES = {
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    0x0B: b"\\v",
    0x08: b"\\b",
    0x0C: b"\\f",
    0x1B: b"\\e",
    ord('"'): b'\\"',
    ord("\\"): b"\\\\",
}


def _printable(byte: int) -> bool:
    return 32 <= byte <= 126 or byte >= 160 or byte in _ESCAPES


def binary(data: bytes) -> str:
    if not data:
        return "<<>>"
    if all(_printable(b) for b in data):
        body = b"".join(_ESCAPES.get(b, bytes((b,))) for b in data)
        # RabbitMQ writes the raw bytes into the reply: UTF-8 stays readable text, and other
        # octets go back as they came (surrogate escapes, which the wire encodes back).
        return '<<"' + body.decode("utf-8", "surrogateescape") + '">>'
    return "<<" + ",".join(str(b) for b in data) + ">>"


def erlang_float(value: float) -> str:
    """Erlang's shortest form: the fewest digits that read back, in the shorter of plain and
    scientific notation (plain when they tie), e.g. 0.001, 1.0e3, 123456.5, 1.2e-4."""
    if value == 0:
        return "-0.0" if str(value).startswith("-") else "0.0"
    if not math.isfinite(value):
        return repr(value)  # Erlang has no such float; a text all the same, not a crash
    sign, digits, exponent = decimal.Decimal(repr(float(value))).as_tuple()  # a subclass too
    assert isinstance(exponent, int)  # only infinities and NaNs have a letter here
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = exponent + len(digits) - 1
    scientific = f"{text[0]}.{text[1:] or '0'}e{power}"
    if power >= 0:
        whole = text[: power + 1].ljust(power + 1, "0")
        plain = f"{whole}.{text[power + 1 :] or '0'}"
    else:
        plain = "0." + "0" * (-power - 1) + text
    return ("-" if sign else "") + (plain if len(plain) <= len(scientific) else scientific)


# The type names of values that remember the tag they were sent with (`amqp_type`).
_TAGGED_TYPE_NAMES = {
    "b": "byte",
    "B": "unsignedbyte",
    "s": "short",
    "u": "unsignedshort",
    "i": "unsignedint",
    "l": "long",
    "T": "timestamp",
    "f": "float",
}


def type_name(value: Any) -> str:
    """The AMQP field type RabbitMQ would name for a value decoded into Python."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    tagged = _TAGGED_TYPE_NAMES.get(getattr(value, "amqp_type", ""))
    if tagged is not None:
        return tagged
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, bytes | bytearray | memoryview):
        return "binary"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, Mapping):
        return "table"
    return "array"


def term(value: Any) -> str:
    """The Erlang term RabbitMQ holds for a decoded field value."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return erlang_float(value)
    if isinstance(value, str):
        return binary(octets(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return binary(bytes(value))
    if isinstance(value, decimal.Decimal):
        parts = decimal_parts(value)
        return str(value) if parts is None else "{{{},{}}}".format(*parts)
    if isinstance(value, datetime.datetime):
        return str(epoch_seconds(value))
    if isinstance(value, Mapping):
        items = (f"{{{binary(octets(str(k)))},{type_name(v)},{term(v)}}}" for k, v in value.items())
        return "[" + ",".join(items) + "]"
    return "[" + ",".join(f"{{{type_name(v)},{term(v)}}}" for v in value) + "]"
