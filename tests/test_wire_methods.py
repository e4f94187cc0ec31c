"""Methods: every method of the spec round-trips; the hand-written fast paths agree with the
spec-built construct codec byte for byte; malformed arguments get RabbitMQ's reply codes."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_lite.errors import BrokerError, FrameError, NotImplementedFeature
from amqp_lite.wire import _fast, methods
from amqp_lite.wire.frames import FrameDecoder, MethodFrame, encode_method
from amqp_lite.wire.spec import METHODS, MethodSpec
from tests.conftest import examples
from tests.test_wire_fields import field_tables, same, shortstrs

# -- strategies built from the spec data ----------------------------------------------------------

_BY_TYPE = {
    "bit": st.booleans(),
    "octet": st.integers(0, 2**8 - 1),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1),
    "shortstr": shortstrs,
    "longstr": st.binary(max_size=60),
    "table": field_tables,
}


def method_strategy(spec: MethodSpec) -> st.SearchStrategy[Any]:
    """Instances of the method with every non-reserved field drawn (reserved keep defaults)."""
    cls = methods.by_id[(spec.class_id, spec.method_id)]
    return st.builds(cls, **{f.attr: _BY_TYPE[f.type] for f in spec.fields if not f.reserved})


any_method = st.sampled_from(METHODS).flatmap(method_strategy)
channels = st.integers(0, 2**16 - 1)


def _payload(method: Any) -> bytes:
    """class-id, method-id and arguments by the general (construct) codec."""
    return struct.pack(">HH", method.CLASS_ID, method.METHOD_ID) + methods.encode_args(method)


# -- every method round-trips ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", METHODS, ids=[m.full_name for m in METHODS])
@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), channel=channels)
def test_every_method_round_trips(spec: MethodSpec, data: st.DataObject, channel: int) -> None:
    method = data.draw(method_strategy(spec))
    decoder = FrameDecoder(frame_max=0)
    decoder.feed(encode_method(channel, method))
    [frame] = list(decoder.frames())
    assert frame == MethodFrame(channel, method)
    for f in spec.fields:  # and of the same types, not just equal
        assert same(getattr(frame.method, f.attr), getattr(method, f.attr)), f.attr
    assert decoder.buffered == 0


def test_reserved_fields_are_ignored_on_receipt() -> None:
    m = methods.QueueDeclare(ticket=7, queue="q")
    decoded = methods.decode_method(_payload(m))
    assert decoded == methods.QueueDeclare(queue="q")
    assert decoded.ticket == 0


def test_bits_pack_lsb_first_into_one_octet() -> None:
    m = methods.QueueDeclare(queue="q", passive=True, exclusive=True, no_wait=True)
    # ticket(2) queue(1+1) bits(1) arguments(4)
    assert methods.encode_args(m) == b"\x00\x00\x01q" + bytes([0b10101]) + b"\x00\x00\x00\x00"
    m2 = methods.ExchangeDeclare(exchange="e", type="topic", durable=True, internal=True)
    assert methods.encode_args(m2)[-5] == 0b01010


def test_longstr_fields_accept_str_when_encoding() -> None:
    m = methods.ConnectionStart(mechanisms="PLAIN AMQPLAIN", locales="en_US")
    decoded = methods.decode_method(_payload(m))
    assert decoded.mechanisms == b"PLAIN AMQPLAIN"
    assert decoded.locales == b"en_US"


# -- fast paths agree with the general codec ------------------------------------------------------

_FAST_DECODED = [m for m in METHODS if (m.class_id, m.method_id) in _fast.DECODERS]
_FAST_ENCODED = [m for m in METHODS if (m.class_id, m.method_id) in _fast.ENCODERS]


def test_the_hot_methods_have_fast_paths() -> None:
    assert {m.full_name for m in _FAST_DECODED} == {
        "basic.publish", "basic.ack", "basic.reject", "basic.nack"
    }  # fmt: skip
    assert {m.full_name for m in _FAST_ENCODED} == {
        "basic.deliver", "basic.get-ok", "basic.return", "basic.ack", "basic.nack"
    }  # fmt: skip


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FrameError as e:
        return ("FrameError", e.reply_code, e.class_id, e.method_id)


@pytest.mark.parametrize("spec", _FAST_DECODED, ids=lambda m: m.full_name)
@settings(max_examples=examples(80), deadline=None)
@given(data=st.data())
def test_fast_decoders_match_general(spec: MethodSpec, data: st.DataObject) -> None:
    payload = _payload(data.draw(method_strategy(spec)))
    # valid, truncated, extended, or with any octet changed
    cut = data.draw(st.integers(4, len(payload)))
    variants = [payload, payload[:cut], payload + data.draw(st.binary(min_size=1, max_size=3))]
    i = data.draw(st.integers(4, len(payload) - 1))
    variants.append(payload[:i] + bytes([data.draw(st.integers(0, 255))]) + payload[i + 1 :])
    variants.append(payload[:4] + data.draw(st.binary(max_size=40)))
    for p in variants:
        fast = _outcome(methods.decode_method, p)
        general = _outcome(methods.decode_general, p)
        assert fast == general
        if not isinstance(fast, tuple):
            assert type(fast) is type(general)


@pytest.mark.parametrize("spec", _FAST_ENCODED, ids=lambda m: m.full_name)
@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), channel=channels)
def test_fast_encoders_match_general(spec: MethodSpec, data: st.DataObject, channel: int) -> None:
    method = data.draw(method_strategy(spec))
    assert type(method)._FAST_ENCODE is not None
    general = struct.pack(">BHI", 1, channel, len(_payload(method))) + _payload(method) + b"\xce"
    assert encode_method(channel, method) == general


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_method_is_540_with_its_ids() -> None:
    # RabbitMQ 3.x drops the TCP connection without a close; we close with NOT_IMPLEMENTED.
    for payload in (struct.pack(">HH", 60, 99), struct.pack(">HH", 99, 1) + b"args"):
        with pytest.raises(NotImplementedFeature) as info:
            methods.decode_method(payload)
        assert info.value.reply_code == 540
        assert (info.value.class_id, info.value.method_id) == struct.unpack(">HH", payload[:4])


def test_method_payload_shorter_than_ids_is_501() -> None:
    with pytest.raises(FrameError) as info:
        methods.decode_method(b"\x00\x3c")
    assert (info.value.reply_code, info.value.class_id, info.value.method_id) == (501, 0, 0)


_QD = struct.pack(">HH", 50, 10)


@pytest.mark.parametrize(
    "payload",
    [
        _QD + b"\x00",  # truncated: RabbitMQ "FRAME_ERROR - cannot decode <<0>>", ids 50/10
        _QD + b"\x00\x00\x01q\x00\x00\x00\x00\x00junk",  # trailing junk: same
        _QD + b"\x00\x00\x01q\x00\x00\x00\x00\x04\x01kZ\x00",  # unknown field-table tag
        _QD + b"\x00\x00\x01q\x00\x00\x00\x00\x09\x01kS\x00\x00\x00\x09ab",  # table cut short
        struct.pack(">HH", 60, 40) + b"\x00",  # basic.publish (fast path) truncated
        struct.pack(">HH", 60, 80) + b"\x00" * 10,  # basic.ack too long
        struct.pack(">HH", 10, 11) + b"\x00\x00\x00\x00\x05PLAIN",  # start-ok cut short
    ],
)
def test_undecodable_arguments_are_501_with_method_ids(payload: bytes) -> None:
    with pytest.raises(FrameError) as info:
        methods.decode_method(payload)
    e = info.value
    assert (e.reply_code, e.class_id, e.method_id) == (501, *struct.unpack(">HH", payload[:4]))


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(METHODS), st.binary(max_size=50))
def test_random_arguments_never_raise_anything_else(spec: MethodSpec, args: bytes) -> None:
    try:
        methods.decode_method(struct.pack(">HH", spec.class_id, spec.method_id) + args)
    except FrameError as e:
        if e.text == methods.MALFORMED_SHORTSTR and spec.class_id != 10:
            assert (e.class_id, e.method_id) == (0, 0)
        else:
            assert (e.class_id, e.method_id) == (spec.class_id, spec.method_id)


@pytest.mark.parametrize(
    ("payload", "ids"),
    [
        (_QD + b"\x00\x00\x02\xff\xfe\x00\x00\x00\x00\x00", (0, 0)),
        (struct.pack(">HH", 60, 20) + b"\x00\x00\x01q\x01\xff\x00\x00\x00\x00\x00", (0, 0)),
        (struct.pack(">HH", 10, 40) + b"\x02/\xff\x00\x00", (10, 40)),
    ],
)
def test_a_shortstr_that_is_not_utf8_is_rabbitmqs_501(payload: bytes, ids: tuple[int, int]) -> None:
    """Observed on RabbitMQ 3.10.8: the text, and method ids only for the handshake's methods."""
    with pytest.raises(FrameError) as info:
        methods.decode_method(payload)
    e = info.value
    assert (e.reply_code, e.text, (e.class_id, e.method_id)) == (
        501,
        "FRAME_ERROR - Malformed UTF-8 in shortstr",
        ids,
    )


def test_a_publish_takes_any_octets_in_its_exchange_and_routing_key() -> None:
    """RabbitMQ routes such a key, and names such an exchange in its 404, octet for octet."""
    publish = struct.pack(">HH", 60, 40) + b"\x00\x00\x02x\xff\x03k\xc3(\x00"
    for decode in (methods.decode_method, methods.decode_general):
        method = decode(publish)
        assert (method.exchange, method.routing_key) == ("x\udcff", "k\udcc3(")
    deliver = methods.BasicDeliver(consumer_tag="c", exchange="x\udcff", routing_key="k\udcc3(")
    assert deliver._FAST_ENCODE(1, deliver).endswith(b"\x02x\xff\x03k\xc3(\xce")


@pytest.mark.parametrize(
    "method",
    [
        methods.BasicDeliver(consumer_tag="t" * 256),
        methods.BasicGetOk(exchange="é" * 200),
        methods.BasicReturn(reply_text="x" * 300),
        methods.BasicAck(delivery_tag=2**64),
        methods.BasicNack(delivery_tag=-1),
        methods.QueueDeclare(queue="q" * 256),
        methods.QueueDeclare(arguments={"k": object()}),
        methods.ConnectionTune(frame_max=2**32),
        methods.ChannelClose(reply_text=None),
    ],
)
def test_unencodable_values_raise_broker_error(method: Any) -> None:
    with pytest.raises(BrokerError) as info:
        encode_method(1, method)
    assert info.value.reply_code == 541
