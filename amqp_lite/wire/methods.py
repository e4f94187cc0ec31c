"""AMQP methods: one attrs class per method of the spec, with a construct codec for its arguments.

Classes are generated from spec/amqp-0-9-1.toml, lazily: `methods.BasicPublish`,
`methods.by_id[(60, 40)]` and `methods.by_name["basic.publish"]` build the class on first use
(making all ~60 attrs classes and construct codecs up front would cost ~20 ms + ~60 ms of every
broker start-up).  Each class has the spec's fields as attributes (all with defaults) and

    CLASS_ID, METHOD_ID, NAME ("basic.publish"), SYNCHRONOUS, HAS_CONTENT,
    RESPONSES (tuple of classes' NAMEs), SPEC (the MethodSpec record).

The general codec is a compiled construct `Struct` per method, also built on first use.  Runs of
`bit` fields are one `Int8ub` each, split into bools here (first bit = least significant).  A few
hot methods have hand-written `struct` codecs in `_fast`; tests check they agree byte for byte
with the general path.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO
from typing import TYPE_CHECKING, Any, cast

import attrs

from amqp_lite.errors import BrokerError, FrameError, NotImplementedFeature
from amqp_lite.wire import _fast
from amqp_lite.wire.method_base import Method
from amqp_lite.wire.spec import METHODS, METHODS_BY_ID, METHODS_BY_NAME, MethodSpec

__all__ = ["Method", "by_id", "by_name", "decode_method", "encode_args"]

if TYPE_CHECKING:
    # The method classes this module builds, typed; typegen.py writes them from the same spec.
    from amqp_lite.wire.spec_types import *  # noqa: F403

_pack = struct.pack


_DEFAULTS: dict[str, Any] = {
    "bit": False,
    "octet": 0,
    "short": 0,
    "long": 0,
    "longlong": 0,
    "timestamp": 0,
    "shortstr": "",
    "longstr": b"",
}


def _make_class(spec: MethodSpec) -> type[Method]:
    attribs: dict[str, Any] = {}
    for f in spec.fields:
        if f.type == "table":
            attribs[f.attr] = attrs.field(factory=dict)
        else:
            attribs[f.attr] = attrs.field(default=_DEFAULTS[f.type])
    cls = cast(
        type[Method], attrs.make_class(spec.class_attr, attribs, bases=(Method,), slots=True)
    )
    cls.__module__ = __name__
    cls.__qualname__ = spec.class_attr
    cls.__doc__ = f"{spec.full_name} ({spec.class_id}, {spec.method_id})"
    cls.CLASS_ID = spec.class_id
    cls.METHOD_ID = spec.method_id
    cls.NAME = spec.full_name
    cls.SYNCHRONOUS = spec.synchronous
    cls.HAS_CONTENT = spec.content
    cls.RESPONSES = spec.responses
    cls.SPEC = spec
    fast = _fast.ENCODERS.get((spec.class_id, spec.method_id))
    if fast is not None:
        cls._FAST_ENCODE = staticmethod(fast)
    return cls


_classes: dict[tuple[int, int], type[Method]] = {}
_ATTR_TO_KEY = {m.class_attr: (m.class_id, m.method_id) for m in METHODS}


_class_lock = threading.Lock()  # a broker thread and its caller must not get two classes


def _class_for(key: tuple[int, int]) -> type[Method]:
    cls = _classes.get(key)
    if cls is None:
        with _class_lock:
            cls = _classes.get(key)
            if cls is None:
                cls = _make_class(METHODS_BY_ID[key])
                globals()[cls.SPEC.class_attr] = cls
                _classes[key] = cls
    return cls


class _LazyClasses(Mapping[Any, type[Method]]):
    """A read-only mapping over every method of the spec that makes classes on demand."""

    def __init__(self, keys: dict[Any, tuple[int, int]]) -> None:
        self._keys = keys

    def __getitem__(self, key: Any) -> type[Method]:
        return _class_for(self._keys[key])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


by_id: Mapping[tuple[int, int], type[Method]] = _LazyClasses({k: k for k in METHODS_BY_ID})
by_name: Mapping[str, type[Method]] = _LazyClasses(
    {n: (m.class_id, m.method_id) for n, m in METHODS_BY_NAME.items()}
)


def __getattr__(name: str) -> type[Method]:
    key = _ATTR_TO_KEY.get(name)
    if key is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _class_for(key)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ATTR_TO_KEY))


# -- the general codec, built from the spec with construct ----------------------------------------


class _Codec:
    """Compiled construct Struct of one method's arguments, and the bit-field bookkeeping."""

    __slots__ = ("bits", "build", "cls", "longstrs", "parse", "plain", "utf8_shortstrs")

    def __init__(self, cls: type[Method]) -> None:
        import construct as c

        from amqp_lite.wire.fields import _table_construct

        table = _table_construct()
        types = {
            "octet": c.Int8ub,
            "short": c.Int16ub,
            "long": c.Int32ub,
            "longlong": c.Int64ub,
            "timestamp": c.Int64ub,
            "shortstr": _shortstr_construct(),
            "longstr": c.Prefixed(c.Int32ub, c.GreedyBytes),
            "table": table,
        }
        subcons = []
        self.cls = cls
        self.plain: list[tuple[str, bool]] = []  # (attr, reserved) of non-bit fields
        self.bits: list[tuple[str, list[tuple[str, bool]]]] = []  # (octet name, [(attr, reserved)])
        self.longstrs = [f.attr for f in cls.SPEC.fields if f.type == "longstr"]
        # The shortstrs a server must find UTF-8 in (see ANY_OCTETS_IN_SHORTSTRS).
        self.utf8_shortstrs: list[str] = []
        if (cls.CLASS_ID, cls.METHOD_ID) not in ANY_OCTETS_IN_SHORTSTRS:
            self.utf8_shortstrs = [
                f.attr for f in cls.SPEC.fields if f.type == "shortstr" and not f.reserved
            ]
        run: list[tuple[str, bool]] | None = None
        for f in cls.SPEC.fields:
            if f.type == "bit":
                if run is None or len(run) == 8:
                    run = []
                    name = f"bits_{len(self.bits)}"
                    self.bits.append((name, run))
                    subcons.append(name / c.Int8ub)
                run.append((f.attr, f.reserved))
            else:
                run = None
                subcons.append(f.attr / types[f.type])
                self.plain.append((f.attr, f.reserved))
        compiled = c.Struct(*subcons).compile()
        self.parse: Callable[[BytesIO], Any] = compiled.parse_stream
        self.build: Callable[[dict[str, Any]], bytes] = compiled.build

    def decode(self, payload: bytes) -> Method:
        stream = BytesIO(payload)
        stream.seek(4)
        parsed = self.parse(stream)
        if stream.tell() != len(payload):
            raise IndexError("junk after the method arguments")
        kwargs = {attr: parsed[attr] for attr, reserved in self.plain if not reserved}
        for name, run in self.bits:
            octet = parsed[name]
            for i, (attr, reserved) in enumerate(run):
                if not reserved:
                    kwargs[attr] = bool(octet >> i & 1)
        return self.cls(**kwargs)

    def encode(self, method: Method) -> bytes:
        values = {attr: getattr(method, attr) for attr, _ in self.plain}
        for attr in self.longstrs:
            if type(values[attr]) is str:
                values[attr] = values[attr].encode("utf-8", "surrogateescape")
        for name, run in self.bits:
            octet = 0
            for i, (attr, _) in enumerate(run):
                if getattr(method, attr):
                    octet |= 1 << i
            values[name] = octet
        return self.build(values)


# Shortstrs decode to str, with surrogate escapes (PEP 383) for octets that are not UTF-8, so
# they encode back unchanged. A server takes such octets only in basic.publish's exchange and
# routing key, as RabbitMQ 3.10.8 does (an exchange of such a name is just not found): in any
# other method a client sends, it closes the connection with 501 MALFORMED_SHORTSTR.
ANY_OCTETS_IN_SHORTSTRS = frozenset({(60, 40)})
MALFORMED_SHORTSTR = "FRAME_ERROR - Malformed UTF-8 in shortstr"


def _shortstr_construct() -> Any:
    """A construct class for shortstrs: one length octet, then that many octets of text.

    Like `TableConstruct`, it is linked into the compiled Struct rather than compiled.
    """
    import construct

    class ShortstrConstruct(construct.Construct):  # type: ignore[misc]  # construct is untyped
        def _parse(self, stream: Any, context: Any, path: Any) -> str:
            (n,) = construct.stream_read(stream, 1, path)
            text: str = construct.stream_read(stream, n, path).decode("utf-8", "surrogateescape")
            return text

        def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
            data = obj.encode("utf-8", "surrogateescape")
            if len(data) > 255:
                raise construct.StringError(f"shortstr of {len(data)} octets", path=path)
            construct.stream_write(stream, bytes((len(data),)) + data, len(data) + 1, path)
            return obj

    return ShortstrConstruct()


_codecs: dict[type[Method], _Codec] = {}


def _codec(cls: type[Method]) -> _Codec:
    codec = _codecs.get(cls)
    if codec is None:
        codec = _codecs[cls] = _Codec(cls)
    return codec


def encode_args(method: Method) -> bytes:
    """The argument octets of `method` (after class-id and method-id), by the general codec."""
    try:
        return _codec(type(method)).encode(method)
    except BrokerError:
        raise
    except Exception as e:  # construct's errors: a value that has no wire form
        raise BrokerError(f"cannot encode {method!r}: {e}") from None


def decode_general(payload: bytes) -> Method:
    """Decode a whole method frame payload (class-id, method-id, arguments) by the general codec,
    as a server receives it: shortstrs must be UTF-8 but where ANY_OCTETS_IN_SHORTSTRS says."""
    return _decode_general(payload, strict=True)


def _decode_general(payload: bytes, *, strict: bool) -> Method:
    if len(payload) < 4:
        raise FrameError(f"FRAME_ERROR - method frame of {len(payload)} octets")
    class_id, method_id = struct.unpack_from(">HH", payload)
    if (class_id, method_id) not in METHODS_BY_ID:
        err = NotImplementedFeature(f"NOT_IMPLEMENTED - unknown method {class_id}.{method_id}")
        err.class_id, err.method_id = class_id, method_id
        raise err
    cls = _class_for((class_id, method_id))
    codec = _codec(cls)
    try:
        method = codec.decode(payload)
    except Exception as e:
        raise _cannot_decode(cls, e) from None
    if strict:
        for attr in codec.utf8_shortstrs:
            text = getattr(method, attr)
            if not text.isascii() and _has_escapes(text):
                # RabbitMQ's words; it blames no method, but for the handshake's (connection.*).
                malformed = FrameError(MALFORMED_SHORTSTR)
                if class_id == 10:
                    malformed.class_id, malformed.method_id = class_id, method_id
                raise malformed
    return method


def _has_escapes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _cannot_decode(cls: type[Method], cause: BaseException) -> FrameError:
    err = FrameError(f"FRAME_ERROR - cannot decode {cls.NAME} arguments: {cause}")
    err.class_id, err.method_id = cls.CLASS_ID, cls.METHOD_ID
    return err


# -- decoding dispatch: general codec for all, hand-written for the hot ones -----------------------

_Decoder = Callable[[bytes], Method]
# first four payload octets (class-id, method-id) -> decoder of the whole payload
_decoders: dict[bytes, _Decoder] = {_pack(">HH", *key): decode_general for key in METHODS_BY_ID}


def decode_method(payload: bytes) -> Method:
    """Decode a method frame payload as a server receives it: FrameError 501 when it does not
    decode, NotImplementedFeature 540 for an unknown class/method id."""
    decoder = _decoders.get(payload[:4])
    if decoder is None:
        return decode_general(payload)  # raises the right error
    return decoder(payload)


def decode_method_any_shortstrs(payload: bytes) -> Method:
    """Decode a method frame payload as a client receives it: a server's shortstrs may hold any
    octets (RabbitMQ's 404 for a publish names the exchange octet for octet)."""
    decoder = _decoders.get(payload[:4])
    if decoder is None or decoder is decode_general:
        return _decode_general(payload, strict=False)
    return decoder(payload)


def _fast_decoder(key: tuple[int, int], make: Callable[..., _Decoder]) -> _Decoder:
    """Stands in for a hand-written decoder until its first use makes it (and its class)."""

    def first_call(payload: bytes) -> Method:
        decoder = make(_class_for(key), _cannot_decode)
        _decoders[payload[:4]] = decoder
        return decoder(payload)

    return first_call


for _key, _make in _fast.DECODERS.items():
    _decoders[_pack(">HH", *_key)] = _fast_decoder(_key, _make)
