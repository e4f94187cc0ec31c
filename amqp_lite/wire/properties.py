"""Content header properties (class basic): the `Properties` class and its wire form.

"Raw properties" are what follows class-id, weight and body-size in a content header frame: the
property flags word(s), then the values of the flagged properties in spec order.  The broker
keeps the raw form of a published message and sends it back verbatim on delivery.

Types: shortstr properties are str, headers a dict (see fields.py), delivery_mode and priority
ints, timestamp an int (seconds since the epoch).  Unset properties are None.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import attrs

from amqp_lite.errors import BrokerError, FrameError
from amqp_lite.wire.fields import DECODE_ERRORS, encode_table, read_table
from amqp_lite.wire.spec import PROPERTIES

__all__ = ["EMPTY_RAW_PROPERTIES", "Properties", "decode_properties", "encode_properties"]

_unpack_from = struct.unpack_from
_pack = struct.pack

if TYPE_CHECKING:
    # Typed from the same spec by typegen.py.
    from amqp_lite.wire.spec_types import Properties
else:
    Properties = attrs.make_class(
        "Properties",
        {p.attr: attrs.field(default=None) for p in PROPERTIES},
        slots=True,
    )
    Properties.__module__ = __name__
    Properties.__doc__ = "The basic content properties, in spec order; None means not set."

EMPTY_RAW_PROPERTIES = b"\x00\x00"  # no flags set


# -- decoding: one reader per wire type --------------------------------------------------------


def _r_shortstr(buf: bytes, off: int) -> tuple[Any, int]:
    end = off + 1 + buf[off]
    if end > len(buf):
        raise IndexError("shortstr overruns")
    return buf[off + 1 : end].decode("utf-8", "surrogateescape"), end


def _r_octet(buf: bytes, off: int) -> tuple[Any, int]:
    return buf[off], off + 1


def _r_short(buf: bytes, off: int) -> tuple[Any, int]:
    return _unpack_from(">H", buf, off)[0], off + 2


def _r_long(buf: bytes, off: int) -> tuple[Any, int]:
    return _unpack_from(">I", buf, off)[0], off + 4


def _r_longlong(buf: bytes, off: int) -> tuple[Any, int]:
    return _unpack_from(">Q", buf, off)[0], off + 8


def _r_longstr(buf: bytes, off: int) -> tuple[Any, int]:
    (n,) = _unpack_from(">I", buf, off)
    end = off + 4 + n
    if end > len(buf):
        raise IndexError("longstr overruns")
    return buf[off + 4 : end], end


_READERS = {
    "shortstr": _r_shortstr,
    "octet": _r_octet,
    "short": _r_short,
    "long": _r_long,
    "longlong": _r_longlong,
    "timestamp": _r_longlong,
    "longstr": _r_longstr,
    "table": read_table,
}

# 0-9-1's 14 properties fit one flags word: property i is flagged by bit 15 - i; bit 0 would
# announce a further flags word, which nothing in 0-9-1 needs.
assert len(PROPERTIES) <= 15
# (flag bit, attribute, reader) in spec order.
_DECODE_PLAN = tuple((1 << (15 - i), p.attr, _READERS[p.type]) for i, p in enumerate(PROPERTIES))
_KNOWN_FLAGS = sum(bit for bit, _, _ in _DECODE_PLAN)
# flags word -> ((attribute, reader), ...) of the properties it flags; filled as flags are seen.
# The reader is None for a shortstr and 1 for an octet: those two are decoded inline.
_plans: dict[int, tuple[tuple[str, Any], ...]] = {}


def _plan(flags: int) -> tuple[tuple[str, Any], ...]:
    if flags & ~_KNOWN_FLAGS:
        # Continuation bit or an unassigned bit: properties that 0-9-1 does not have.
        raise IndexError(f"unknown property flags {flags:#06x}")
    inline = {_r_shortstr: None, _r_octet: 1}
    plan = tuple(
        (attr, inline.get(reader, reader)) for bit, attr, reader in _DECODE_PLAN if flags & bit
    )
    if len(_plans) < 1024:
        _plans[flags] = plan
    return plan


def decode_properties(raw: bytes, off: int = 0) -> Properties:
    """Decode flags + values starting at `off` of `raw`; everything up to the end must be used.

    Raises FrameError (501) when they do not decode.
    """
    try:
        flags = raw[off] << 8 | raw[off + 1]
        off += 2
        if not flags:
            if off != len(raw):
                raise IndexError("junk after properties")
            return Properties()
        plan = _plans.get(flags)
        if plan is None:
            plan = _plan(flags)
        kwargs: dict[str, Any] = {}
        for attr, reader in plan:
            if reader is None:
                end = off + 1 + raw[off]
                if end > len(raw):
                    raise IndexError("shortstr overruns")
                kwargs[attr] = raw[off + 1 : end].decode("utf-8", "surrogateescape")
                off = end
            elif reader == 1:
                kwargs[attr] = raw[off]
                off += 1
            else:
                kwargs[attr], off = reader(raw, off)
        if off != len(raw):
            raise IndexError("junk after properties")
    except DECODE_ERRORS as e:
        raise FrameError(f"FRAME_ERROR - cannot decode content properties: {e}") from None
    return Properties(**kwargs)


# -- encoding -----------------------------------------------------------------------------------


def _w_shortstr(v: Any) -> bytes:
    b = v.encode("utf-8", "surrogateescape") if type(v) is str else bytes(v)
    if len(b) > 255:
        raise BrokerError(f"shortstr property longer than 255 octets: {b[:40]!r}...")
    return bytes((len(b),)) + b


def _w_longstr(v: Any) -> bytes:
    b = v.encode("utf-8", "surrogateescape") if type(v) is str else bytes(v)
    return _pack(">I", len(b)) + b


_WRITERS = {
    "shortstr": _w_shortstr,
    "octet": lambda v: _pack(">B", v),
    "short": lambda v: _pack(">H", v),
    "long": lambda v: _pack(">I", v),
    "longlong": lambda v: _pack(">Q", v),
    "timestamp": lambda v: _pack(">Q", v),
    "longstr": _w_longstr,
    "table": encode_table,
}
_ENCODE_PLAN = tuple((1 << (15 - i), p.attr, _WRITERS[p.type]) for i, p in enumerate(PROPERTIES))


def encode_properties(properties: Properties | None) -> bytes:
    """Flags word + values of the properties that are not None."""
    if properties is None:
        return EMPTY_RAW_PROPERTIES
    flags = 0
    parts = [b""]
    try:
        for bit, attr, writer in _ENCODE_PLAN:
            v = getattr(properties, attr)
            if v is not None:
                flags |= bit
                parts.append(writer(v))
    except (struct.error, TypeError, AttributeError, UnicodeEncodeError) as e:
        raise BrokerError(f"cannot encode content properties: {e}") from None
    parts[0] = _pack(">H", flags)
    return b"".join(parts)


_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS = 0x8000, 0x4000, 0x2000


def with_long_header(raw: bytes, key: str, value: int) -> bytes | None:
    """Encoded properties `raw` with one more header, `key` as a signed 64-bit integer (l),
    last in the table: a splice of bytes, without decoding the rest. None when the properties
    already name `key` (or have flags 0-9-1 lacks): encode them anew then."""
    name = key.encode()
    entry = bytes((len(name),)) + name + b"l" + _pack(">q", value)
    flags = raw[0] << 8 | raw[1]
    if flags & ~_KNOWN_FLAGS or (flags & _HEADERS and entry[: len(name) + 1] in raw):
        return None
    at = 2
    if flags & _CONTENT_TYPE:
        at += 1 + raw[at]
    if flags & _CONTENT_ENCODING:
        at += 1 + raw[at]
    if not flags & _HEADERS:
        return (
            _pack(">H", flags | _HEADERS) + raw[2:at] + _pack(">I", len(entry)) + entry + raw[at:]
        )
    (size,) = _unpack_from(">I", raw, at)
    end = at + 4 + size
    return raw[:at] + _pack(">I", size + len(entry)) + raw[at + 4 : end] + entry + raw[end:]
