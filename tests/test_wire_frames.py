"""Frames and content: properties, the incremental decoder under any chunking, body splitting,
and the one-shot delivery encoder."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_lite.errors import BrokerError, FrameError, UnexpectedFrame
from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import (
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    BodyFrame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    encode_content,
    encode_deliver,
    encode_delivery,
    encode_method,
)
from amqp_lite.wire.properties import decode_properties, encode_properties, with_long_header
from amqp_lite.wire.spec import METHODS_BY_NAME, PROPERTIES
from tests.conftest import examples
from tests.test_wire_fields import field_tables, same, shortstrs
from tests.test_wire_methods import any_method, method_strategy

# -- properties -----------------------------------------------------------------------------------

_PROPERTY_VALUES = {
    "shortstr": shortstrs,
    "octet": st.integers(0, 255),
    "timestamp": st.integers(0, 2**64 - 1),
    "table": field_tables,
}
properties = st.fixed_dictionaries(
    {}, optional={p.attr: _PROPERTY_VALUES[p.type] for p in PROPERTIES}
).map(lambda kw: Properties(**kw))


@settings(max_examples=examples(150), deadline=None)
@given(properties)
def test_properties_round_trip(props: Any) -> None:
    raw = encode_properties(props)
    decoded = decode_properties(raw)
    for p in PROPERTIES:
        assert same(getattr(decoded, p.attr), getattr(props, p.attr)), p.attr
    assert encode_properties(decoded) == raw


@settings(max_examples=150, deadline=None)
@given(properties, st.integers(-(2**63), 2**63 - 1))
def test_a_long_header_is_spliced_into_encoded_properties(props: Any, value: int) -> None:
    """What a stream does to each message it keeps: x-stream-offset added last, the rest as it
    was; properties that already have the header are left to be encoded anew."""
    raw = encode_properties(props)
    spliced = with_long_header(raw, "x-stream-offset", value)
    if props.headers and "x-stream-offset" in props.headers:
        assert spliced is None
        return
    assert spliced is not None
    decoded = decode_properties(spliced)
    offset = decoded.headers.pop("x-stream-offset")
    assert (offset, getattr(offset, "amqp_type", "l")) == (value, "l")  # l in int32: Int64
    assert same(decoded.headers, dict(props.headers or {}))
    assert list(decode_properties(spliced).headers)[-1] == "x-stream-offset"
    for p in PROPERTIES:
        if p.attr != "headers":
            assert same(getattr(decoded, p.attr), getattr(props, p.attr)), p.attr


def test_property_flags_are_spec_order_msb_first() -> None:
    assert encode_properties(None) == encode_properties(Properties()) == b"\x00\x00"
    assert encode_properties(Properties(content_type="a")) == b"\x80\x00\x01a"
    assert encode_properties(Properties(cluster_id="c")) == b"\x00\x04\x01c"
    assert encode_properties(Properties(delivery_mode=2, priority=9)) == b"\x18\x00\x02\x09"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x80",
        b"\x80\x00",  # content-type flagged, not there
        b"\x80\x00\x05ab",  # cut short
        b"\x00\x01",  # continuation flag: no 15th property in 0-9-1
        b"\x00\x02",  # unassigned bit
        b"\x00\x00junk",
        b"\x20\x00\x00\x00\x00\x04\x01kZ\x00",  # headers with an unknown tag
    ],
)
def test_bad_properties_are_501(raw: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_properties(raw)
    assert info.value.reply_code == 501


# -- decoding a stream in any chunking ------------------------------------------------------------


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for c in cuts:
        chunks.append(data[pos : pos + c])
        pos += c
    chunks.append(data[pos:])
    return chunks


def _decode(chunks: list[bytes], frame_max: int = 131072) -> list[Any]:
    decoder = FrameDecoder(frame_max=frame_max)
    frames = []
    for chunk in chunks:
        decoder.feed(chunk)
        frames.extend(decoder.frames())
    return frames


content = st.tuples(properties, st.binary(max_size=300))
frame_items = st.one_of(
    any_method.map(lambda m: ("method", m)),
    content.map(lambda c: ("content", c)),
    st.just(("heartbeat", None)),
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Any], int]:
    """A valid frame stream, the frames it holds, and a frame_max for decoding it."""
    body_max = draw(st.sampled_from([9, 16, 100, 4096]))  # bodies are cut to fit this
    data, expected = [], []
    for kind, item in draw(st.lists(frame_items, max_size=6)):
        channel = draw(st.integers(0, 3))
        if kind == "method":
            data.append(encode_method(channel, item))
            expected.append(MethodFrame(channel, item))
        elif kind == "content":
            props, body = item
            data.append(encode_content(channel, 60, body, body_max, props))
            raw = encode_properties(props)
            expected.append(HeaderFrame(channel, 60, len(body), decode_properties(raw), raw))
            for i in range(0, len(body), body_max - 8):
                expected.append(BodyFrame(channel, body[i : i + body_max - 8]))
        else:
            data.append(HEARTBEAT_FRAME)
            expected.append(HeartbeatFrame(0))
    return b"".join(data), expected, 131072


@settings(max_examples=examples(120), deadline=None)
@given(streams(), st.lists(st.integers(0, 40), max_size=30))
def test_any_chunking_yields_the_same_frames(stream: Any, cuts: list[int]) -> None:
    data, expected, frame_max = stream
    assert _decode(_chunked(data, cuts), frame_max) == expected


@settings(max_examples=examples(80), deadline=None)
@given(streams(), st.data())
def test_truncated_stream_waits_for_more(stream: Any, data: st.DataObject) -> None:
    raw, expected, frame_max = stream
    cut = data.draw(st.integers(0, len(raw)))
    decoder = FrameDecoder(frame_max=frame_max)
    decoder.feed(raw[:cut])
    got = list(decoder.frames())
    assert got == expected[: len(got)]
    decoder.feed(raw[cut:])
    assert got + list(decoder.frames()) == expected
    assert decoder.buffered == 0


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 30), max_size=10))
def test_random_bytes_raise_only_broker_errors(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(BrokerError):
        _decode(_chunked(data, cuts))


@settings(max_examples=examples(200), deadline=None)
@given(streams(), st.data())
def test_corrupted_streams_raise_only_broker_errors(stream: Any, data: st.DataObject) -> None:
    raw = bytearray(stream[0] or HEARTBEAT_FRAME)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(BrokerError):
        _decode(_chunked(bytes(raw), data.draw(st.lists(st.integers(0, 40), max_size=8))))


def test_frame_break_mid_iteration_keeps_the_rest() -> None:
    decoder = FrameDecoder()
    decoder.feed(HEARTBEAT_FRAME * 3)
    for _frame in decoder.frames():
        break
    decoder.feed(HEARTBEAT_FRAME[:3])
    assert len(list(decoder.frames())) == 2
    decoder.feed(HEARTBEAT_FRAME[3:])
    assert list(decoder.frames()) == [HeartbeatFrame(0)]


# -- frame-level errors ---------------------------------------------------------------------------


def _frame(ftype: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (_frame(1, 1, b"\x00\x5a\x00\x0a", end=0), FrameError, 501),  # bad frame-end
        (_frame(7, 1, b"abc"), FrameError, 501),  # unknown frame type
        (_frame(8, 0, b"ab"), FrameError, 501),  # heartbeat with a payload
        (_frame(1, 1, b"\x00\x3c"), FrameError, 501),  # method payload < 4 octets
        (_frame(2, 1, b"\x00\x3c\x00"), FrameError, 501),  # header payload < 14 octets
        (_frame(2, 1, struct.pack(">HHQH", 60, 5, 0, 0)), UnexpectedFrame, 505),  # weight
        (_frame(2, 1, struct.pack(">HHQH", 60, 0, 0, 0x8000)), FrameError, 501),  # props
        (_frame(1, 1, struct.pack(">HH", 60, 99)), BrokerError, 540),  # unknown method
    ],
)
def test_frame_errors(data: bytes, error: type[BrokerError], code: int) -> None:
    with pytest.raises(error) as info:
        _decode([data])
    assert info.value.reply_code == code


def test_frame_over_frame_max_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(frame_max=4096)
    decoder.feed(struct.pack(">BHI", 3, 1, 4097))  # payload over frame_max; none sent yet
    with pytest.raises(FrameError) as info:
        list(decoder.frames())
    assert info.value.reply_code == 501
    ok = FrameDecoder(frame_max=4096)
    ok.feed(_frame(3, 1, b"x" * 4096))  # RabbitMQ's slack: a payload of frame_max passes
    assert list(ok.frames()) == [BodyFrame(1, b"x" * 4096)]
    ok.frame_max = 1000  # settable after tune
    ok.feed(_frame(3, 1, b"x" * 1001))
    with pytest.raises(FrameError):
        list(ok.frames())


def test_header_of_a_non_content_class_is_left_to_the_connection() -> None:
    # RabbitMQ answers 505 for it, after comparing with the method's class.
    [frame] = _decode([_frame(2, 1, struct.pack(">HHQH", 99, 0, 3, 0xFFFF))])
    assert (frame.class_id, frame.body_size, frame.properties) == (99, 3, Properties())


def test_constants() -> None:
    assert PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"
    assert HEARTBEAT_FRAME == b"\x08\x00\x00\x00\x00\x00\x00\xce"


# -- content encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("frame_max", [4096, 131072])
@pytest.mark.parametrize("extra", [0, 1, -1])
@pytest.mark.parametrize("pieces", [0, 1, 2, 3])
def test_bodies_split_at_frame_max(frame_max: int, pieces: int, extra: int) -> None:
    size = max(0, pieces * (frame_max - 8) + extra)
    body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = encode_content(5, 60, body, frame_max, Properties(content_type="x"))
    frames = _decode([data], frame_max)
    header, bodies = frames[0], frames[1:]
    assert header.body_size == size
    assert b"".join(f.payload for f in bodies) == body
    assert len(bodies) == -(-size // (frame_max - 8))  # none for an empty body
    assert all(0 < len(f.payload) <= frame_max - 8 for f in bodies)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.sampled_from(["basic.deliver", "basic.get-ok", "basic.return"]).flatmap(
        lambda name: method_strategy(METHODS_BY_NAME[name])
    ),
    st.integers(0, 2**16 - 1),
    properties,
    st.binary(max_size=600),
    st.sampled_from([0, 9, 10, 100, 4096, 131072]),
)
def test_encode_delivery_is_method_plus_content(
    method: Any, channel: int, props: Any, body: bytes, frame_max: int
) -> None:
    raw = encode_properties(props)
    expected = encode_method(channel, method) + encode_content(
        channel, 60, body, frame_max, raw_properties=raw
    )
    assert encode_delivery(channel, method, raw, body, frame_max) == expected
    assert encode_content(channel, 60, body, frame_max, props) == encode_content(
        channel, 60, body, frame_max, raw_properties=raw
    )


def _outcome(encode: Any, *args: Any) -> Any:
    """What an encoder gives: its bytes, or its error's type and text."""
    try:
        return encode(*args)
    except BrokerError as e:
        return type(e), str(e)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(shortstrs, st.text(min_size=250, max_size=300)),  # some too long for a shortstr
    st.one_of(st.integers(0, 2**64 - 1), st.just(2**64)),  # the last too big for a longlong
    st.booleans(),
    shortstrs,
    st.one_of(shortstrs, st.just("k" * 256), st.just("\ud800")),  # unencodable ones too
    st.one_of(st.integers(0, 2**16 - 1), st.just(2**16)),
    properties,
    st.binary(max_size=600),
    st.sampled_from([0, 9, 10, 100, 4096, 131072]),
)
def test_encode_deliver_is_encode_delivery_of_a_basic_deliver(
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    channel: int,
    props: Any,
    body: bytes,
    frame_max: int,
) -> None:
    """The delivery hot path's encoder gives the same octets, or the same error, as the
    general one given the method."""
    raw = encode_properties(props)
    fields = (consumer_tag, delivery_tag, redelivered, exchange, routing_key)
    method = methods.BasicDeliver(
        consumer_tag=consumer_tag,
        delivery_tag=delivery_tag,
        redelivered=redelivered,
        exchange=exchange,
        routing_key=routing_key,
    )
    assert _outcome(encode_deliver, channel, *fields, raw, body, frame_max) == _outcome(
        encode_delivery, channel, method, raw, body, frame_max
    )


def test_encode_delivery_general_path_for_other_methods() -> None:
    m = methods.BasicPublish(exchange="e", routing_key="r")
    assert encode_delivery(1, m, b"\x00\x00", b"abc", 4096) == encode_method(1, m) + encode_content(
        1, 60, b"abc", 4096
    )


def test_frame_max_too_small_for_a_body_is_a_broker_error() -> None:
    with pytest.raises(BrokerError):
        encode_content(1, 60, b"abc", 8)


def test_property_octets_that_are_not_utf8_are_taken_and_sent_back_as_they_came() -> None:
    """RabbitMQ 3.10.8 takes any octets in a content_type (and in header keys and values)."""
    raw = b"\x80\x00\x03t\xffx"
    properties = decode_properties(raw)
    assert properties.content_type == "t\udcffx"  # a surrogate escape stands for the octet
    assert encode_properties(properties) == raw
