"""Frames: the envelope (type octet, channel short, size long, payload, frame-end 0xCE).

`FrameDecoder` turns a byte stream into frame objects; `encode_*` build whole frames.

Errors (what RabbitMQ 3.x does, probed with raw sockets; see spec/amqp-0-9-1.toml):
  FrameError 501          bad frame-end, unknown frame type, frame over frame_max, heartbeat
                          with a payload, method payload < 4 octets, header payload < 14 octets,
                          undecodable method arguments or properties (class/method ids set when
                          the method is known)
  NotImplementedFeature 540  unknown class/method id (RabbitMQ just drops the connection)
  UnexpectedFrame 505     content header with a non-zero weight (RabbitMQ does not take it as a
                          content header at all)
The decoder does not check channels (heartbeat off channel 0 is 505 in RabbitMQ, but that and
frame ordering are the connection's business).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from amqp_lite.errors import BrokerError, FrameError, UnexpectedFrame
from amqp_lite.wire import methods as _methods
from amqp_lite.wire.properties import Properties, decode_properties, encode_properties
from amqp_lite.wire.spec import (
    CONTENT_CLASS_IDS,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    PROTOCOL_HEADER,
)

__all__ = [
    "FRAME_MIN_SIZE",
    "HEARTBEAT_FRAME",
    "PROTOCOL_HEADER",
    "BodyFrame",
    "Frame",
    "FrameDecoder",
    "HeaderFrame",
    "HeartbeatFrame",
    "MethodFrame",
    "encode_body",
    "encode_content",
    "encode_deliver",
    "encode_delivery",
    "encode_header",
    "encode_method",
]

_pack = struct.pack
_unpack_from = struct.unpack_from
_END = bytes((FRAME_END,))
assert (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT, FRAME_END) == (1, 2, 3, 8, 0xCE)

HEARTBEAT_FRAME = _pack(">BHI", FRAME_HEARTBEAT, 0, 0) + _END
_OCTETS = [bytes((i,)) for i in range(256)]  # a shortstr's length, without a struct call


class _Frame:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # equal by value, so not hashable

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({args})"


class MethodFrame(_Frame):
    __slots__ = ("channel", "method")

    def __init__(self, channel: int, method: _methods.Method) -> None:
        self.channel = channel
        self.method = method


class HeaderFrame(_Frame):
    """A content header. `raw_properties` (flags + values) is what gets re-sent on delivery."""

    __slots__ = ("body_size", "channel", "class_id", "properties", "raw_properties")

    def __init__(
        self,
        channel: int,
        class_id: int,
        body_size: int,
        properties: Properties,
        raw_properties: bytes,
    ) -> None:
        self.channel = channel
        self.class_id = class_id
        self.body_size = body_size
        self.properties = properties
        self.raw_properties = raw_properties


class BodyFrame(_Frame):
    __slots__ = ("channel", "payload")

    def __init__(self, channel: int, payload: bytes) -> None:
        self.channel = channel
        self.payload = payload


class HeartbeatFrame(_Frame):
    __slots__ = ("channel",)

    def __init__(self, channel: int) -> None:
        self.channel = channel


Frame = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame


_decode_method = _methods.decode_method


def _header_frame(channel: int, payload: bytes) -> HeaderFrame:
    if len(payload) < 14:
        raise FrameError(f"FRAME_ERROR - content header of {len(payload)} octets")
    class_id, weight, body_size = _unpack_from(">HHQ", payload)
    if weight:
        raise UnexpectedFrame(f"UNEXPECTED_FRAME - content header with weight {weight}")
    raw = payload[12:]
    # Not a content class: the connection answers 505 (as RabbitMQ does) when it checks the
    # class against the method's, so do not fail here on properties we cannot read.
    properties = decode_properties(raw) if class_id in CONTENT_CLASS_IDS else Properties()
    return HeaderFrame(channel, class_id, body_size, properties, raw)


class FrameDecoder:
    """Incremental frame parser.

    feed() only stores the bytes; frames() yields every complete frame and keeps the rest.  A
    frame that is not complete yet costs nothing until enough bytes for it have been fed, so
    many small feeds of a big frame do not copy it over and over.
    """

    __slots__ = ("_buf", "_decode_method", "_extra", "_have", "_need", "_pos", "frame_max")

    def __init__(self, frame_max: int = 131072, *, client: bool = False) -> None:
        """`client`: decode what a server sends, whose shortstrs may hold any octets; a server's
        decoder holds a client to UTF-8 where RabbitMQ does (see methods.py)."""
        self.frame_max = frame_max  # 0: no limit
        self._decode_method = _methods.decode_method_any_shortstrs if client else _decode_method
        self._buf = b""  # bytes being parsed, from _pos on
        self._pos = 0
        self._extra: list[bytes] = []  # fed after _buf
        self._have = 0  # unparsed octets in _buf[_pos:] and _extra
        self._need = 7  # octets needed before the next frame can be looked at

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._extra.append(data if type(data) is bytes else bytes(data))
            self._have += len(data)

    @property
    def buffered(self) -> int:
        """Octets fed but not yet returned as frames."""
        return self._have

    def frames(self) -> Iterator[Frame]:
        decode_method = self._decode_method
        while self._have >= self._need:
            if self._extra:
                if self._pos < len(self._buf):
                    self._extra.insert(0, self._buf[self._pos :])
                self._buf = self._extra[0] if len(self._extra) == 1 else b"".join(self._extra)
                self._extra = []
                self._pos = 0
            buf = self._buf
            pos = self._pos
            n = len(buf)
            # RabbitMQ refuses only payloads larger than frame_max itself (8 octets of slack
            # beyond the spec's frame_max - 8), and clients have come to rely on that.
            limit = self.frame_max if self.frame_max else 1 << 32
            while n - pos >= 7:
                ftype, channel, size = _unpack_from(">BHI", buf, pos)
                if size > limit:
                    raise FrameError(
                        f"FRAME_ERROR - type {ftype}: frame_too_large {size} > {limit}"
                    )
                end = pos + 7 + size
                if end >= n:
                    self._need = size + 8
                    break
                if buf[end] != FRAME_END:
                    raise FrameError(f"FRAME_ERROR - type {ftype}: invalid frame end {buf[end]}")
                if ftype == FRAME_METHOD:
                    frame: Frame = MethodFrame(channel, decode_method(buf[pos + 7 : end]))
                elif ftype == FRAME_BODY:
                    frame = BodyFrame(channel, buf[pos + 7 : end])
                elif ftype == FRAME_HEADER:
                    frame = _header_frame(channel, buf[pos + 7 : end])
                elif ftype == FRAME_HEARTBEAT:
                    if size:
                        raise FrameError(f"FRAME_ERROR - heartbeat frame with {size} octets")
                    frame = HeartbeatFrame(channel)
                else:
                    raise FrameError(f"FRAME_ERROR - type {ftype}: unknown frame")
                pos = end + 1
                self._pos = pos
                self._have -= size + 8
                self._need = 7  # the caller may stop iterating here: leave no stale need
                yield frame
            else:
                self._need = 7
            if pos == n and not self._extra:  # all consumed: let go of the buffer
                self._buf = b""
                self._pos = 0


# -- encoding -----------------------------------------------------------------------------------


def encode_method(channel: int, method: _methods.Method) -> bytes:
    """One method frame."""
    fast = method._FAST_ENCODE
    if fast is not None:
        return fast(channel, method)
    args = _methods.encode_args(method)
    try:
        head = _pack(
            ">BHIHH", FRAME_METHOD, channel, 4 + len(args), method.CLASS_ID, method.METHOD_ID
        )
    except struct.error as e:
        raise BrokerError(f"cannot encode a method frame on channel {channel}: {e}") from None
    return head + args + _END


def encode_header(channel: int, class_id: int, body_size: int, raw_properties: bytes) -> bytes:
    try:
        head = _pack(
            ">BHIHHQ", FRAME_HEADER, channel, 12 + len(raw_properties), class_id, 0, body_size
        )
    except struct.error as e:
        raise BrokerError(f"cannot encode a content header: {e}") from None
    return head + raw_properties + _END


def encode_body(channel: int, body: bytes, frame_max: int) -> bytes:
    """The body frames of a content: none for an empty body, else pieces of frame_max - 8."""
    n = len(body)
    if not n:
        return b""
    chunk = frame_max - 8 if frame_max else n
    if chunk < 1:
        raise BrokerError(f"frame_max {frame_max} leaves no room for a body")
    try:
        if n <= chunk:
            return b"".join((_pack(">BHI", FRAME_BODY, channel, n), body, _END))
        view = memoryview(body)
        parts: list[bytes | memoryview] = []
        for start in range(0, n, chunk):
            piece = view[start : start + chunk]
            parts.append(_pack(">BHI", FRAME_BODY, channel, len(piece)))
            parts.append(piece)
            parts.append(_END)
        return b"".join(parts)
    except struct.error as e:
        raise BrokerError(f"cannot encode a body frame on channel {channel}: {e}") from None


def encode_content(
    channel: int,
    class_id: int,
    body: bytes,
    frame_max: int,
    properties: Properties | None = None,
    raw_properties: bytes | None = None,
) -> bytes:
    """Content header frame + body frames; raw_properties, when given, is sent verbatim."""
    if raw_properties is None:
        raw_properties = encode_properties(properties)
    return encode_header(channel, class_id, len(body), raw_properties) + encode_body(
        channel, body, frame_max
    )


def encode_delivery(
    channel: int, method: _methods.Method, raw_properties: bytes, body: bytes, frame_max: int
) -> bytes:
    """basic.deliver / basic.get-ok / basic.return + header + body frames, as one bytes."""
    fast = method._FAST_ENCODE
    frame = fast(channel, method) if fast is not None else encode_method(channel, method)
    n = len(body)
    try:
        header = _pack(
            ">BHIHHQ", FRAME_HEADER, channel, 12 + len(raw_properties), method.CLASS_ID, 0, n
        )
        if n and (not frame_max or n <= frame_max - 8):
            return b"".join(
                (
                    frame,
                    header,
                    raw_properties,
                    _pack(">BBHI", FRAME_END, FRAME_BODY, channel, n),
                    body,
                    _END,
                )
            )
    except struct.error as e:
        raise BrokerError(f"cannot encode a delivery on channel {channel}: {e}") from None
    return b"".join((frame, header, raw_properties, _END, encode_body(channel, body, frame_max)))


# What encode_deliver's struct calls and lookups raise for a field out of range (or of the
# wrong type): it then leaves the field to encode_delivery, which says what is wrong.
_DELIVER_FIELD_ERRORS = (struct.error, IndexError, AttributeError, TypeError, UnicodeEncodeError)


def encode_deliver(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    raw_properties: bytes,
    body: bytes,
    frame_max: int,
) -> bytes:
    """basic.deliver + header + body frames, as `encode_delivery` makes them of a
    `BasicDeliver` with these fields, but without making one: the delivery hot path."""
    n = len(body)
    if n and (not frame_max or n <= frame_max - 8):  # one body frame (else, the general way)
        try:
            tag = consumer_tag.encode("utf-8", "surrogateescape")
            ex = exchange.encode("utf-8", "surrogateescape")
            rk = routing_key.encode("utf-8", "surrogateescape")
            t, e, r = len(tag), len(ex), len(rk)
            return b"".join(
                (
                    _pack(">BHIHHB", FRAME_METHOD, channel, 16 + t + e + r, 60, 60, t),
                    tag,
                    _pack(">QBB", delivery_tag, 1 if redelivered else 0, e),
                    ex,
                    _OCTETS[r],
                    rk,
                    _pack(
                        ">BBHIHHQ",
                        FRAME_END,
                        FRAME_HEADER,
                        channel,
                        12 + len(raw_properties),
                        60,
                        0,
                        n,
                    ),
                    raw_properties,
                    _pack(">BBHI", FRAME_END, FRAME_BODY, channel, n),
                    body,
                    _END,
                )
            )
        except _DELIVER_FIELD_ERRORS:
            pass
    method = _methods.BasicDeliver(
        consumer_tag=consumer_tag,
        delivery_tag=delivery_tag,
        redelivered=redelivered,
        exchange=exchange,
        routing_key=routing_key,
    )
    return encode_delivery(channel, method, raw_properties, body, frame_max)
