"""Interoperability with pika's own codec (a second, independent reading of the protocol):
what we write, pika reads and writes back identically, and we read pika's bytes back."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import pika.frame
import pika.spec
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_lite.wire import Properties, methods
from amqp_lite.wire.frames import FrameDecoder, encode_method
from amqp_lite.wire.properties import decode_properties, encode_properties
from amqp_lite.wire.spec import METHODS, PROPERTIES, MethodSpec
from tests.conftest import examples
from tests.test_wire_fields import field_keys, shortstrs

# pika normalizes Decimals when it writes them and reads "d" floats back as ints (1.4.4), so leave
# both out; everything else it writes exactly as we do.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.integers(0, 2**35).map(lambda s: dt.datetime.fromtimestamp(s, dt.UTC)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(field_keys, inner, max_size=3),
    max_leaves=8,
)
_tables = st.dictionaries(field_keys, _values, max_size=4)
_BY_TYPE = {
    "bit": st.booleans(),
    "octet": st.integers(0, 2**8 - 1),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**35),
    "shortstr": shortstrs,
    "longstr": st.binary(max_size=40),
    "table": _tables,
}


def _method(spec: MethodSpec) -> st.SearchStrategy[Any]:
    cls = methods.by_id[(spec.class_id, spec.method_id)]
    return st.builds(cls, **{f.attr: _BY_TYPE[f.type] for f in spec.fields if not f.reserved})


# pika 1.4 cannot decode connection.update-secret (its __init__ has no defaults).
_PIKA_DECODES = [m for m in METHODS if m.full_name != "connection.update-secret"]


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(_PIKA_DECODES).flatmap(_method), st.integers(0, 2**16 - 1))
def test_pika_reads_and_writes_our_methods(method: Any, channel: int) -> None:
    ours = encode_method(channel, method)
    consumed, frame = pika.frame.decode_frame(ours)
    assert consumed == len(ours)
    assert frame.method.INDEX == method.CLASS_ID << 16 | method.METHOD_ID
    theirs = pika.frame.Method(channel, frame.method).marshal()
    assert theirs == ours
    decoder = FrameDecoder()
    decoder.feed(theirs)
    assert [f.method for f in decoder.frames()] == [method]


def test_pika_knows_every_method_we_do() -> None:
    for m in METHODS:
        assert (m.class_id << 16 | m.method_id) in pika.spec.methods, m.full_name


_PROPERTY_VALUES = {
    "shortstr": shortstrs,
    "octet": st.integers(0, 255),
    "timestamp": st.integers(0, 2**35),
    "table": _tables,
}


@settings(max_examples=examples(150), deadline=None)
@given(st.fixed_dictionaries({}, optional={p.attr: _PROPERTY_VALUES[p.type] for p in PROPERTIES}))
def test_pika_reads_and_writes_our_properties(values: dict[str, Any]) -> None:
    raw = encode_properties(Properties(**values))
    theirs = pika.spec.BasicProperties()
    theirs.decode(raw)
    pika_raw = b"".join(theirs.encode())
    assert pika_raw == raw
    assert decode_properties(pika_raw) == Properties(**values)


def test_pika_header_frame_matches_ours() -> None:
    props = pika.spec.BasicProperties(content_type="text/plain", delivery_mode=2)
    data = pika.frame.Header(3, 12, props).marshal()
    decoder = FrameDecoder()
    decoder.feed(data)
    [header] = decoder.frames()
    assert (header.channel, header.class_id, header.body_size) == (3, 60, 12)
    assert header.properties == Properties(content_type="text/plain", delivery_mode=2)
    assert data[7:19] == struct.pack(">HHQ", 60, 0, 12)
