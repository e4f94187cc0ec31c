"""Field tables and arrays: every type tag decodes; Python values round-trip exactly."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import struct
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_lite.errors import BrokerError, FrameError
from amqp_lite.wire.fields import (
    MAX_DEPTH,
    Float32,
    decode_array,
    decode_table,
    encode_array,
    encode_table,
)
from tests.conftest import examples

UTC = dt.UTC

# -- strategies (also used by the other test_wire_* files) --------------------------------------

shortstrs = st.text(max_size=40)  # at most 160 octets of UTF-8
field_keys = st.text(max_size=20)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),  # RabbitMQ has no others
    st.builds(
        lambda unscaled, scale: Decimal(unscaled).scaleb(-scale),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 20),
    ),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(UTC),
    ).map(lambda d: d.replace(microsecond=0)),
)
field_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(field_keys, inner, max_size=4),
    max_leaves=12,
)
field_tables = st.dictionaries(field_keys, field_values, max_size=6)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (True == 1 would hide a wrong tag)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- round trips ----------------------------------------------------------------------------------


@settings(max_examples=examples(150), deadline=None)
@given(field_tables)
def test_table_round_trip(table: dict[str, Any]) -> None:
    assert same(decode_table(encode_table(table)), table)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(field_values, max_size=6))
def test_array_round_trip(items: list[Any]) -> None:
    assert same(decode_array(encode_array(items)), items)


# The other way round: octets as any peer may send them, of every type tag.
def _prefixed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _fixed(tag: bytes, size: int) -> st.SearchStrategy[tuple[bytes, bytes]]:
    return st.binary(min_size=size, max_size=size).map(lambda v: (tag + v, tag + v))


wire_scalars = st.one_of(
    st.sampled_from([b"t\x00", b"t\x01", b"V"]).map(lambda v: (v, v)),
    *(_fixed(tag, size) for tag, size in [(b"b", 1), (b"B", 1), (b"s", 2), (b"u", 2)]),
    *(_fixed(tag, size) for tag, size in [(b"I", 4), (b"i", 4), (b"l", 8)]),
    *(_fixed(tag, size) for tag, size in [(b"D", 5), (b"T", 8)]),
    _fixed(b"f", 4).filter(lambda v: math.isfinite(struct.unpack(">f", v[0][1:])[0])),
    _fixed(b"d", 8).filter(lambda v: math.isfinite(struct.unpack(">d", v[0][1:])[0])),
    # L is read signed and sent back as l, as RabbitMQ 3.10.8 does.
    st.binary(min_size=8, max_size=8).map(lambda v: (b"L" + v, b"l" + v)),
    st.binary(max_size=8).map(lambda v: (b"S" + _prefixed(v),) * 2),  # UTF-8 or not
    st.binary(max_size=8).map(lambda v: (b"x" + _prefixed(v),) * 2),
)


def _wire_array(items: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    return (
        b"A" + _prefixed(b"".join(sent for sent, _ in items)),
        b"A" + _prefixed(b"".join(back for _, back in items)),
    )


def _wire_table(entries: dict[bytes, tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    def body(index: int) -> bytes:
        return b"".join(bytes((len(k),)) + k + pair[index] for k, pair in entries.items())

    return b"F" + _prefixed(body(0)), b"F" + _prefixed(body(1))


wire_values = st.recursive(
    wire_scalars,
    lambda inner: (
        st.lists(inner, max_size=3).map(_wire_array)
        | st.dictionaries(st.binary(max_size=5), inner, max_size=3).map(_wire_table)
    ),
    max_leaves=12,
)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(st.binary(max_size=5), wire_values, max_size=5).map(_wire_table))
def test_whatever_decodes_encodes_back_to_the_same_octets(wire: tuple[bytes, bytes]) -> None:
    """A header the broker must send on after rewriting another one goes as it came."""
    sent, expected = wire[0][1:], wire[1][1:]  # without the F tag
    assert encode_table(decode_table(sent)) == expected


def test_nesting_as_deep_as_decoding_allows_encodes_from_deep_in_a_call_stack() -> None:
    data = b"V"
    for _ in range(MAX_DEPTH):
        data = b"A" + _prefixed(data)
    value = decode_array(data[1:])  # MAX_DEPTH arrays, the outermost being the whole value

    def deep(n: int) -> bytes:
        return deep(n - 1) if n else encode_array(value)

    assert deep(sys.getrecursionlimit() - 2 * MAX_DEPTH - 100) == data[1:]
    with pytest.raises(FrameError):
        decode_array(_prefixed(b"A" + data[1:]))  # one level more


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        (True, "t"),
        (7, "I"),
        (-(2**31), "I"),
        (2**31, "l"),
        (1.5, "d"),
        (Decimal("1.25"), "D"),
        ("é", "S"),
        (b"\x00", "x"),
        (bytearray(b"ab"), "x"),
        (dt.datetime(2024, 1, 2, tzinfo=UTC), "T"),
        ({}, "F"),
        ([], "A"),
        ((), "A"),
        (None, "V"),
    ],
)
def test_encoding_picks_the_tag_from_the_type(value: Any, tag: str) -> None:
    encoded = encode_table({"k": value})
    assert chr(encoded[4 + 2]) == tag


def _entry(key: bytes, tag: bytes, value: bytes) -> bytes:
    return bytes((len(key),)) + key + tag + value


def _table(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


def test_decodes_every_rabbitmq_tag() -> None:
    data = _table(
        _entry(b"t", b"t", b"\x01"),
        _entry(b"b", b"b", b"\xff"),
        _entry(b"B", b"B", b"\xff"),
        _entry(b"s", b"s", b"\xff\xfe"),
        _entry(b"u", b"u", b"\xff\xfe"),
        _entry(b"I", b"I", struct.pack(">i", -5)),
        _entry(b"i", b"i", struct.pack(">I", 2**32 - 1)),
        _entry(b"l", b"l", struct.pack(">q", -(2**40))),
        _entry(b"L", b"L", struct.pack(">q", -3)),  # RabbitMQ reads L signed, like l
        _entry(b"f", b"f", struct.pack(">f", 0.5)),
        _entry(b"d", b"d", struct.pack(">d", -2.25)),
        _entry(b"D", b"D", b"\x02" + struct.pack(">i", -12345)),
        _entry(b"S", b"S", struct.pack(">I", 2) + "é".encode()),
        _entry(b"S-binary", b"S", struct.pack(">I", 2) + b"\xff\x00"),
        _entry(b"x", b"x", struct.pack(">I", 3) + b"abc"),
        _entry(b"A", b"A", struct.pack(">I", 8) + b"I" + struct.pack(">i", 1) + b"V" + b"t\x00"),
        _entry(b"T", b"T", struct.pack(">Q", 86400)),
        _entry(b"T-huge", b"T", struct.pack(">Q", 2**63)),
        _entry(b"F", b"F", _table(_entry(b"k", b"V", b""))),
        _entry(b"V", b"V", b""),
    )
    assert decode_table(data) == {
        "t": True,
        "b": -1,
        "B": 255,
        "s": -2,
        "u": 65534,
        "I": -5,
        "i": 2**32 - 1,
        "l": -(2**40),
        "L": -3,
        "f": 0.5,
        "d": -2.25,
        "D": Decimal("-123.45"),
        "S": "é",
        "S-binary": "\udcff\x00",  # not UTF-8: surrogate escapes, which encode back
        "x": b"abc",
        "A": [1, None, False],
        "T": dt.datetime(1970, 1, 2, tzinfo=UTC),
        "T-huge": 2**63,  # beyond datetime: stays an int
        "F": {"k": None},
        "V": None,
    }


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x05\x01k",  # table length beyond the data
        _table(_entry(b"k", b"Z", b"")),  # unknown tag
        _table(_entry(b"k", b"d", struct.pack(">d", float("inf")))),  # not a finite number
        _table(_entry(b"k", b"A", b"\x00\x00\x00\x09d" + struct.pack(">d", float("nan")))),
        _table(_entry(b"k", b"f", struct.pack(">f", float("-inf")))),
        _table(_entry(b"k", b"I", b"\x00\x00")),  # value cut short inside the table
        _table(_entry(b"k", b"S", b"\x00\x00\x00\x09ab")),  # longstr beyond the table
        _table(_entry(b"k", b"F", _table(_entry(b"j", b"V", b""))[:-1])),
        _table(_entry(b"k", b"V", b"")) + b"junk",
    ],
)
def test_malformed_tables_raise_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_table(data)
    assert info.value.reply_code == 501


def test_deep_nesting_is_a_frame_error_not_a_crash() -> None:
    data = b"V"
    for _ in range(5000):
        data = b"A" + struct.pack(">I", len(data)) + data
    with pytest.raises(FrameError):
        decode_array(data[1:])


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_decode_or_raise_frame_error(data: bytes) -> None:
    for decode in (decode_table, decode_array):
        with contextlib.suppress(FrameError):
            decode(struct.pack(">I", len(data)) + data)


@pytest.mark.parametrize(
    "value",
    [
        *(2**64, {1: "non-str key"}, {"k" * 256: 1}, object(), Decimal("NaN"), "\ud800", {1, 2}),
        *(float("inf"), float("-inf"), float("nan"), Float32(float("inf"))),
    ],
)
def test_values_without_amqp_form_raise_broker_error(value: Any) -> None:
    table = value if isinstance(value, dict) else {"k": value}
    with pytest.raises(BrokerError) as info:
        encode_table(table)
    assert info.value.reply_code == 541


def test_keys_and_strings_that_are_not_utf8_come_back_as_they_were_sent() -> None:
    """RabbitMQ takes any octets there (they are binaries to it)."""
    data = _table(_entry(b"\xff\xfek", b"S", struct.pack(">I", 3) + b"v\xc3("))
    assert decode_table(data) == {"\udcff\udcfek": "v\udcc3("}
    assert encode_table(decode_table(data)) == data


def test_tuple_and_naive_datetime_encode() -> None:
    assert decode_table(encode_table({"a": (1, "x")})) == {"a": [1, "x"]}
    naive = dt.datetime(2020, 5, 6, 7, 8, 9)
    assert decode_table(encode_table({"t": naive})) == {"t": naive.replace(tzinfo=UTC)}
