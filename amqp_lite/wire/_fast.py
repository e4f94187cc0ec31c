"""Hand-written `struct` codecs for the methods on the message hot path.

Decoding: basic.publish, basic.ack, basic.nack, basic.reject (what publishers and consumers send
per message).  Encoding (a whole method frame): basic.deliver, basic.get-ok, basic.return and
basic.ack / basic.nack (publisher confirms).

Each must give exactly what the spec-built construct codec in methods.py gives, errors included
(tests/test_wire_methods.py checks that with hypothesis).  Layouts are checked against the spec
at import, so a change to the TOML that would make one wrong fails loudly instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqp_lite.errors import BrokerError
from amqp_lite.wire.fields import DECODE_ERRORS
from amqp_lite.wire.spec import METHODS_BY_ID

if TYPE_CHECKING:
    from amqp_lite.wire.spec_types import (
        BasicAck,
        BasicDeliver,
        BasicGetOk,
        BasicNack,
        BasicReturn,
    )

_pack = struct.pack
_unpack_from = struct.unpack_from


def _layout(key: tuple[int, int]) -> list[tuple[str, str]]:
    return [(f.attr, f.type) for f in METHODS_BY_ID[key].fields]


# The field layouts the code below is written for.
_EXPECTED = {
    (60, 40): "ticket:short exchange:shortstr routing_key:shortstr mandatory:bit immediate:bit",
    (60, 50): "reply_code:short reply_text:shortstr exchange:shortstr routing_key:shortstr",
    (60, 60): "consumer_tag:shortstr delivery_tag:longlong redelivered:bit exchange:shortstr "
    "routing_key:shortstr",
    (60, 71): "delivery_tag:longlong redelivered:bit exchange:shortstr routing_key:shortstr "
    "message_count:long",
    (60, 80): "delivery_tag:longlong multiple:bit",
    (60, 90): "delivery_tag:longlong requeue:bit",
    (60, 120): "delivery_tag:longlong multiple:bit requeue:bit",
}
for _key, _fields in _EXPECTED.items():
    _actual = " ".join(f"{a}:{t}" for a, t in _layout(_key))
    if _actual != _fields:
        raise ImportError(f"spec of {_key} changed ({_actual}); update amqp_lite/wire/_fast.py")


# -- decoders: payload (class-id, method-id, arguments) -> method instance -----------------------
# methods.py makes each on first use, from the method class and its error for an undecodable
# payload (so this module needs nothing from methods.py, which uses it).

DecodeError = Callable[[Any, BaseException], BaseException]  # (method class, cause) -> error


def make_basic_publish(cls: Any, cannot: DecodeError) -> Callable[[bytes], Any]:
    def decode_basic_publish(p: bytes) -> Any:
        try:
            a = 7 + p[6]
            # Any octets, as RabbitMQ takes them here (and only here): see methods.py.
            exchange = p[7:a].decode("utf-8", "surrogateescape")
            b = a + 1 + p[a]
            routing_key = p[a + 1 : b].decode("utf-8", "surrogateescape")
            bits = p[b]
            if b + 1 != len(p):
                raise IndexError("junk after the method arguments")
        except DECODE_ERRORS as e:
            raise cannot(cls, e) from None
        return cls(0, exchange, routing_key, bits & 1 != 0, bits & 2 != 0)

    return decode_basic_publish


def make_tag_bit(cls: Any, cannot: DecodeError) -> Callable[[bytes], Any]:
    """basic.ack (multiple) and basic.reject (requeue): delivery-tag longlong, one bit."""

    def decode_tag_bit(p: bytes) -> Any:
        if len(p) != 13:
            raise cannot(cls, IndexError(f"{len(p) - 4} argument octets, want 9"))
        tag, bits = _unpack_from(">QB", p, 4)
        return cls(tag, bits & 1 != 0)

    return decode_tag_bit


def make_basic_nack(cls: Any, cannot: DecodeError) -> Callable[[bytes], Any]:
    def decode_basic_nack(p: bytes) -> Any:
        if len(p) != 13:
            raise cannot(cls, IndexError(f"{len(p) - 4} argument octets, want 9"))
        tag, bits = _unpack_from(">QB", p, 4)
        return cls(tag, bits & 1 != 0, bits & 2 != 0)

    return decode_basic_nack


DECODERS: dict[tuple[int, int], Callable[[Any, DecodeError], Callable[[bytes], Any]]] = {
    (60, 40): make_basic_publish,
    (60, 80): make_tag_bit,
    (60, 90): make_tag_bit,
    (60, 120): make_basic_nack,
}


# -- encoders: (channel, method) -> the whole method frame ----------------------------------------


def _too_long(method: object, e: Exception) -> BrokerError:
    return BrokerError(f"cannot encode {method!r}: {e}")


def encode_basic_deliver(channel: int, m: BasicDeliver) -> bytes:
    try:
        ctag = m.consumer_tag.encode("utf-8", "surrogateescape")
        ex = m.exchange.encode("utf-8", "surrogateescape")
        rk = m.routing_key.encode("utf-8", "surrogateescape")
        n = len(ctag)
        e = len(ex)
        return b"".join(
            (
                _pack(">BHIHHB", 1, channel, 16 + n + e + len(rk), 60, 60, n),
                ctag,
                _pack(">QBB", m.delivery_tag, 1 if m.redelivered else 0, e),
                ex,
                _pack(">B", len(rk)),
                rk,
                b"\xce",
            )
        )
    except (struct.error, AttributeError, TypeError, UnicodeEncodeError) as e:
        raise _too_long(m, e) from None


def encode_basic_get_ok(channel: int, m: BasicGetOk) -> bytes:
    try:
        ex = m.exchange.encode("utf-8", "surrogateescape")
        rk = m.routing_key.encode("utf-8", "surrogateescape")
        e = len(ex)
        r = len(rk)
        return b"".join(
            (
                _pack(
                    ">BHIHHQBB",
                    1,
                    channel,
                    19 + e + r,
                    60,
                    71,
                    m.delivery_tag,
                    1 if m.redelivered else 0,
                    e,
                ),
                ex,
                _pack(">B", r),
                rk,
                _pack(">IB", m.message_count, 0xCE),
            )
        )
    except (struct.error, AttributeError, TypeError, UnicodeEncodeError) as e:
        raise _too_long(m, e) from None


def encode_basic_return(channel: int, m: BasicReturn) -> bytes:
    try:
        text = m.reply_text.encode("utf-8", "surrogateescape")
        ex = m.exchange.encode("utf-8", "surrogateescape")
        rk = m.routing_key.encode("utf-8", "surrogateescape")
        t = len(text)
        e = len(ex)
        r = len(rk)
        return b"".join(
            (
                _pack(">BHIHHHB", 1, channel, 9 + t + e + r, 60, 50, m.reply_code, t),
                text,
                _pack(">B", e),
                ex,
                _pack(">B", r),
                rk,
                b"\xce",
            )
        )
    except (struct.error, AttributeError, TypeError, UnicodeEncodeError) as e:
        raise _too_long(m, e) from None


def encode_basic_ack(channel: int, m: BasicAck) -> bytes:
    try:
        return _pack(
            ">BHIHHQBB", 1, channel, 13, 60, 80, m.delivery_tag, 1 if m.multiple else 0, 0xCE
        )
    except struct.error as e:
        raise _too_long(m, e) from None


def encode_basic_nack(channel: int, m: BasicNack) -> bytes:
    try:
        bits = (1 if m.multiple else 0) | (2 if m.requeue else 0)
        return _pack(">BHIHHQBB", 1, channel, 13, 60, 120, m.delivery_tag, bits, 0xCE)
    except struct.error as e:
        raise _too_long(m, e) from None


ENCODERS: dict[tuple[int, int], Callable[[int, Any], bytes]] = {
    (60, 60): encode_basic_deliver,
    (60, 71): encode_basic_get_ok,
    (60, 50): encode_basic_return,
    (60, 80): encode_basic_ack,
    (60, 120): encode_basic_nack,
}
