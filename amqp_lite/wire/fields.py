"""Field tables and field arrays: AMQP's typed dictionaries (decoded to dict) and lists.

Decoding accepts every type tag RabbitMQ uses, and gives values that encode back to the very
octets they came from (a broker that rewrites a header, to add x-death or drop BCC, must send
the rest on unchanged):

    t bool   I int   l int, or Int64 when it would fit I   L as l (RabbitMQ reads it signed and
    sends it back as l, see rabbitmq-common#166)   b B s u i: Int8 UInt8 Int16 UInt16 UInt32
    d float   f Float32   D decimal.Decimal   V None   x bytes   A list   F dict
    S str   T datetime.datetime in UTC (tz-aware); a value outside datetime's range is a Timestamp

Strings (S values and table keys) are octets to RabbitMQ, which takes any: octets that are not
UTF-8 decode to surrogate escapes (PEP 383, "surrogateescape") and encode back to themselves.

Int8 ... Int64 and Timestamp are ints, Float32 a float: they compare, hash and compute as
such, and only remember their wire type (arithmetic on them gives plain numbers).

Encoding picks the tag from the Python type: bool t, int I (or l beyond 32 bits), the typed
ints their own tag, float d, Float32 f, Decimal D, str S, bytes/bytearray/memoryview x,
datetime T (naive means UTC, fractions of a second dropped), dict F, list/tuple A, None V.
Table keys are shortstrs. A str encodes with surrogateescape.

Tables and arrays nest at most MAX_DEPTH deep: deeper is refused (501) when decoding, so that
whatever decoded can always be encoded again, from however deep a call it happens.

These are hand-written with `struct` (they sit on the publish path through the headers
property); `TableConstruct` wraps them for the construct-built method codecs.

`decode_table` / `decode_array` take one whole length-prefixed value and raise FrameError (501).
The `read_*` functions (buf, offset) -> (value, next offset) raise any of DECODE_ERRORS; their
callers turn those into FrameError.  Encoders raise BrokerError (541) for values that
have no AMQP form: that is a bug on our side, not the peer's.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from amqp_lite.errors import BrokerError, FrameError

__all__ = [
    "DECODE_ERRORS",
    "MAX_DEPTH",
    "Float32",
    "Int8",
    "Int16",
    "Int64",
    "Timestamp",
    "UInt8",
    "UInt16",
    "UInt32",
    "decode_array",
    "decode_table",
    "encode_array",
    "encode_table",
    "read_array",
    "read_table",
    "table_items",
]

_unpack_from = struct.unpack_from
_pack = struct.pack
_UTC = _dt.UTC
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_T = TypeVar("_T")
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class _Malformed(Exception):
    pass


# Anything a decoder may raise on hostile input; the frame layer maps these to FrameError 501.
DECODE_ERRORS = (
    _Malformed,
    struct.error,
    IndexError,
    ValueError,  # includes UnicodeDecodeError
    KeyError,
    OverflowError,
    RecursionError,
)


def _decode_longstr(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


MAX_DEPTH = 100  # tables and arrays within tables and arrays; RabbitMQ sets no limit


class TypedInt(int):
    """An int that goes back on the wire with the type it came with, not the I or l a plain
    int gets. `amqp_type` is its tag; arithmetic gives plain ints."""

    __slots__ = ()
    amqp_type: ClassVar[str]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Int8(TypedInt):
    __slots__ = ()
    amqp_type = "b"


class UInt8(TypedInt):
    __slots__ = ()
    amqp_type = "B"


class Int16(TypedInt):
    __slots__ = ()
    amqp_type = "s"


class UInt16(TypedInt):
    __slots__ = ()
    amqp_type = "u"


class UInt32(TypedInt):
    __slots__ = ()
    amqp_type = "i"


class Int64(TypedInt):
    __slots__ = ()
    amqp_type = "l"


class Timestamp(TypedInt):
    """Seconds since the epoch, for a timestamp beyond what datetime holds (past year 9999)."""

    __slots__ = ()
    amqp_type = "T"


class Float32(float):
    """A single-precision float; one decoded from the wire keeps its four octets, so even a NaN's
    payload goes back as it came."""

    __slots__ = ("wire",)
    amqp_type = "f"
    wire: bytes

    def __new__(cls, value: float, wire: bytes | None = None) -> Float32:
        self = super().__new__(cls, value)
        self.wire = wire if wire is not None else _pack(">f", value)
        return self

    def __repr__(self) -> str:
        return f"Float32({float(self)!r})"


# tag -> struct format of a typed value (tag octet, then the value)
_TYPED_FORMATS = {
    "b": ">cb",
    "B": ">cB",
    "s": ">ch",
    "u": ">cH",
    "i": ">cI",
    "l": ">cq",
    "T": ">cQ",
}


def _timestamp(seconds: int) -> _dt.datetime | int:
    try:
        return _EPOCH + _dt.timedelta(seconds=seconds)
    except OverflowError:
        return Timestamp(seconds)


def _long(value: int) -> int:
    """An l (or L): a plain int where encoding would pick l again, else one that remembers."""
    return Int64(value) if _I32_MIN <= value <= _I32_MAX else value


def _finite(value: float, what: str) -> float:
    """RabbitMQ cannot hold an infinity or a NaN: it drops the connection. We refuse it as
    malformed, saying what it was (see the README's differences)."""
    if value - value != 0.0:  # inf - inf and nan - nan are nan; a finite number gives 0
        raise _Malformed(f"non-finite {what} {value}")
    return value


def _value(buf: bytes, off: int, depth: int) -> tuple[Any, int]:
    """Decode one tagged value at `off`, inside `depth` tables or arrays; return it and the
    offset after it."""
    tag = buf[off]
    off += 1
    if tag == 0x53:  # S
        (n,) = _unpack_from(">I", buf, off)
        off += 4
        end = off + n
        if end > len(buf):
            raise _Malformed("longstr overruns")
        return _decode_longstr(buf[off:end]), end
    if tag == 0x49:  # I
        return _unpack_from(">i", buf, off)[0], off + 4
    if tag == 0x74:  # t
        return buf[off] != 0, off + 1
    if tag == 0x46:  # F
        return read_table(buf, off, depth + 1)
    if tag == 0x6C:  # l
        return _long(_unpack_from(">q", buf, off)[0]), off + 8
    if tag == 0x41:  # A
        return read_array(buf, off, depth + 1)
    if tag == 0x64:  # d
        return _finite(_unpack_from(">d", buf, off)[0], "double"), off + 8
    if tag == 0x54:  # T
        return _timestamp(_unpack_from(">Q", buf, off)[0]), off + 8
    if tag == 0x56:  # V
        return None, off
    if tag == 0x78:  # x
        (n,) = _unpack_from(">I", buf, off)
        off += 4
        end = off + n
        if end > len(buf):
            raise _Malformed("byte array overruns")
        return buf[off:end], end
    if tag == 0x62:  # b
        return Int8(_unpack_from(">b", buf, off)[0]), off + 1
    if tag == 0x42:  # B
        return UInt8(buf[off]), off + 1
    if tag == 0x73:  # s
        return Int16(_unpack_from(">h", buf, off)[0]), off + 2
    if tag == 0x75:  # u
        return UInt16(_unpack_from(">H", buf, off)[0]), off + 2
    if tag == 0x69:  # i
        return UInt32(_unpack_from(">I", buf, off)[0]), off + 4
    if tag == 0x4C:  # L: signed, as RabbitMQ reads it (same as l; rabbitmq-common#166)
        return _long(_unpack_from(">q", buf, off)[0]), off + 8
    if tag == 0x66:  # f
        wire = buf[off : off + 4]
        return Float32(_finite(_unpack_from(">f", wire)[0], "float"), wire), off + 4
    if tag == 0x44:  # D
        scale = buf[off]
        (unscaled,) = _unpack_from(">i", buf, off + 1)
        return Decimal(unscaled).scaleb(-scale), off + 5
    raise _Malformed(f"unknown field type {chr(tag)!r}")


def read_table(buf: bytes, off: int, depth: int = 0) -> tuple[dict[str, Any], int]:
    """Decode the length-prefixed table at `off` of `buf`; return it and the offset after it.

    `depth`: how many tables or arrays it is inside of (0 for a whole headers table)."""
    if depth >= MAX_DEPTH:
        raise _Malformed(f"tables and arrays nested more than {MAX_DEPTH} deep")
    (n,) = _unpack_from(">I", buf, off)
    off += 4
    end = off + n
    if end > len(buf):
        raise _Malformed("table overruns")
    table: dict[str, Any] = {}
    while off < end:
        klen = buf[off]
        off += 1
        key = buf[off : off + klen].decode("utf-8", "surrogateescape")
        off += klen
        table[key], off = _value(buf, off, depth)
    if off != end:
        raise _Malformed("table entries overrun the table length")
    return table, end


def table_items(data: bytes) -> list[tuple[str, str, Any]]:
    """The entries of one whole length-prefixed table, in order and with their type tags, a
    repeated key as often as it comes (a login reads its fields this way). Raises one of
    DECODE_ERRORS if `data` is not exactly one table."""
    (n,) = _unpack_from(">I", data, 0)
    if 4 + n != len(data):
        raise _Malformed("table length does not match the data")
    items: list[tuple[str, str, Any]] = []
    off = 4
    while off < len(data):
        klen = data[off]
        key = data[off + 1 : off + 1 + klen].decode("utf-8", "surrogateescape")
        off += 1 + klen
        tag = chr(data[off])
        value, off = _value(data, off, 0)
        items.append((key, tag, value))
    if off != len(data):
        raise _Malformed("table entries overrun the table length")
    return items


def read_array(buf: bytes, off: int, depth: int = 0) -> tuple[list[Any], int]:
    if depth >= MAX_DEPTH:
        raise _Malformed(f"tables and arrays nested more than {MAX_DEPTH} deep")
    (n,) = _unpack_from(">I", buf, off)
    off += 4
    end = off + n
    if end > len(buf):
        raise _Malformed("array overruns")
    items: list[Any] = []
    while off < end:
        v, off = _value(buf, off, depth)
        items.append(v)
    if off != end:
        raise _Malformed("array items overrun the array length")
    return items, end


def _whole(reader: Callable[[bytes, int], tuple[_T, int]], data: bytes, what: str) -> _T:
    try:
        value, off = reader(data, 0)
        if off != len(data):
            raise _Malformed(f"junk after the {what}")
    except DECODE_ERRORS as e:
        raise FrameError(f"FRAME_ERROR - cannot decode field {what}: {e}") from None
    return value


def decode_table(data: bytes) -> dict[str, Any]:
    """Decode `data`, exactly one table with its long length prefix. FrameError if it is not."""
    return _whole(read_table, bytes(data), "table")


def decode_array(data: bytes) -> list[Any]:
    """Decode `data`, exactly one array with its long length prefix. FrameError if it is not."""
    return _whole(read_array, bytes(data), "array")


# -- encoding -----------------------------------------------------------------------------------


def _encode_value(v: Any, out: list[bytes]) -> None:
    t = type(v)
    if t is str:
        b = v.encode("utf-8", "surrogateescape")
        out.append(_pack(">cI", b"S", len(b)))
        out.append(b)
    elif t is bool:
        out.append(b"t\x01" if v else b"t\x00")
    elif t is int:
        if _I32_MIN <= v <= _I32_MAX:
            out.append(_pack(">ci", b"I", v))
        elif _I64_MIN <= v <= _I64_MAX:
            out.append(_pack(">cq", b"l", v))
        else:
            raise BrokerError(f"integer {v} does not fit a field table")
    elif t is dict:
        out.append(b"F")
        out.append(_table(v))
    elif v is None:
        out.append(b"V")
    elif t is float:
        if v - v != 0.0:  # RabbitMQ has no infinities or NaNs (see _finite)
            raise BrokerError(f"double {v} has no AMQP form")
        out.append(_pack(">cd", b"d", v))
    elif t is bytes or t is bytearray or t is memoryview:
        out.append(_pack(">cI", b"x", len(v)))
        out.append(bytes(v))
    elif t is list or t is tuple:
        out.append(b"A")
        out.append(_array(v))
    elif isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_UTC)
        seconds = (v - _EPOCH) // _dt.timedelta(seconds=1)
        if not 0 <= seconds < 2**64:
            raise BrokerError(f"timestamp {v} out of range")
        out.append(_pack(">cQ", b"T", seconds))
    elif isinstance(v, Decimal):
        out.append(_encode_decimal(v))
    elif isinstance(v, bool):
        out.append(b"t\x01" if v else b"t\x00")
    elif (tag := getattr(v, "amqp_type", None)) in _TYPED_FORMATS and isinstance(v, int):
        out.append(_pack(_TYPED_FORMATS[tag], tag.encode(), v))  # typed ints, the domain's too
    elif t is Float32:
        if v - v != 0.0:
            raise BrokerError(f"float {v} has no AMQP form")
        out.append(b"f" + v.wire)
    elif isinstance(v, int):
        _encode_value(int(v), out)
    elif isinstance(v, str):
        _encode_value(str(v), out)
    elif isinstance(v, dict):
        _encode_value(dict(v), out)
    elif isinstance(v, float):
        _encode_value(float(v), out)
    else:
        raise BrokerError(f"cannot put a {t.__name__} into a field table")


def _encode_decimal(v: Decimal) -> bytes:
    sign, digits, exponent = v.as_tuple()
    if not isinstance(exponent, int):
        raise BrokerError(f"decimal {v} has no AMQP form")
    unscaled = int("".join(map(str, digits)) or "0")
    if sign:
        unscaled = -unscaled
    if exponent > 0:
        unscaled *= 10**exponent
        exponent = 0
    if not (exponent >= -255 and _I32_MIN <= unscaled <= _I32_MAX):
        raise BrokerError(f"decimal {v} does not fit an AMQP decimal")
    return _pack(">cBi", b"D", -exponent, unscaled)


_ENCODE_ERRORS = (struct.error, UnicodeEncodeError, OverflowError, RecursionError, ValueError)


def encode_table(table: dict[str, Any] | None) -> bytes:
    """Encode a table with its long length prefix; BrokerError (541) for what has no AMQP form."""
    try:
        return _table(table)
    except _ENCODE_ERRORS as e:
        raise BrokerError(f"cannot encode a field table: {e}") from None


def encode_array(items: list[Any] | tuple[Any, ...]) -> bytes:
    """Encode an array with its long length prefix; BrokerError (541) for what has no AMQP form."""
    try:
        return _array(items)
    except _ENCODE_ERRORS as e:
        raise BrokerError(f"cannot encode a field array: {e}") from None


def _table(table: dict[str, Any] | None) -> bytes:
    if not table:
        return b"\x00\x00\x00\x00"
    out: list[bytes] = [b""]
    for key, value in table.items():
        if type(key) is not str:
            raise BrokerError(f"field table key {key!r} is not a str")
        k = key.encode("utf-8", "surrogateescape")
        if len(k) > 255:
            raise BrokerError(f"field table key {key[:40]!r}... longer than 255 octets")
        out.append(bytes((len(k),)))
        out.append(k)
        _encode_value(value, out)
    body = b"".join(out)
    return _pack(">I", len(body)) + body


def _array(items: list[Any] | tuple[Any, ...]) -> bytes:
    out: list[bytes] = [b""]
    for v in items:
        _encode_value(v, out)
    body = b"".join(out)
    return _pack(">I", len(body)) + body


def _table_construct() -> Any:
    """A construct class for field tables, built from the functions above.

    construct's compiler has no code template for it and links the instance in instead
    (`linkedparsers[...]`), which works in 2.10.70 and costs one extra call.
    """
    import construct

    class TableConstruct(construct.Construct):  # type: ignore[misc]  # construct is untyped
        def _parse(self, stream: Any, context: Any, path: Any) -> dict[str, Any]:
            head = construct.stream_read(stream, 4, path)
            (n,) = _unpack_from(">I", head)
            data = head + construct.stream_read(stream, n, path)
            table, _ = read_table(data, 0)  # errors: handled by the caller of the Struct
            return table

        def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
            data = encode_table(obj)
            construct.stream_write(stream, data, len(data), path)
            return obj

    return TableConstruct()
