"""The AMQP 0-9-1 protocol facts, loaded from spec/amqp-0-9-1.toml.

Everything the codec knows about classes, methods, fields, properties and reply codes comes from
that file; this module only turns it into small immutable records.
"""

from __future__ import annotations

import keyword
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "CLASSES",
    "CONTENT_CLASS_IDS",
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "FRAME_MIN_SIZE",
    "METHODS",
    "METHODS_BY_ID",
    "METHODS_BY_NAME",
    "PRIMITIVES",
    "PROPERTIES",
    "PROTOCOL_HEADER",
    "RAW",
    "REPLY_CODES",
    "SPEC",
    "ClassSpec",
    "FieldSpec",
    "MethodSpec",
    "ReplyCode",
    "Spec",
    "attr_name",
    "load_raw",
]

_FILE = "amqp-0-9-1.toml"


def load_raw() -> dict[str, Any]:
    """The parsed TOML: from the source tree when there is one, else from the installed package."""
    source = Path(__file__).resolve().parents[2] / "spec" / _FILE
    try:
        data = source.read_bytes()
    except OSError:
        from importlib.resources import files

        data = files("amqp_lite.spec").joinpath(_FILE).read_bytes()
    return tomllib.loads(data.decode("utf-8"))


class FieldSpec(NamedTuple):
    name: str  # as in the spec: "routing-key"
    attr: str  # Python attribute: "routing_key"
    domain: str
    type: str  # wire primitive: octet short long longlong bit shortstr longstr timestamp table
    reserved: bool


class MethodSpec(NamedTuple):
    class_name: str
    class_id: int
    name: str  # "publish"
    method_id: int
    full_name: str  # "basic.publish"
    class_attr: str  # "BasicPublish"
    fields: tuple[FieldSpec, ...]
    synchronous: bool
    responses: tuple[str, ...]  # full names
    content: bool
    sent_by: str  # "client", "server" or "both"
    extension: str | None


class ClassSpec(NamedTuple):
    name: str
    class_id: int
    methods: tuple[MethodSpec, ...]
    properties: tuple[FieldSpec, ...]


class ReplyCode(NamedTuple):
    value: int  # 404
    name: str  # "NOT_FOUND", as reply texts spell it
    kind: str  # "hard" (connection.close), "soft" (channel.close) or "ok"
    extension: str | None

    @property
    def hard(self) -> bool:
        return self.kind == "hard"

    @property
    def soft(self) -> bool:
        return self.kind == "soft"


class Spec(NamedTuple):
    """Everything at once: `SPEC.reply_codes`, `SPEC.methods`, ..."""

    protocol: dict[str, Any]  # the [protocol] table as loaded
    classes: tuple[ClassSpec, ...]
    methods: tuple[MethodSpec, ...]
    properties: tuple[FieldSpec, ...]
    reply_codes: tuple[ReplyCode, ...]


def attr_name(spec_name: str) -> str:
    name = spec_name.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


RAW: dict[str, Any] = load_raw()
PRIMITIVES: frozenset[str] = frozenset(RAW["primitives"])
_DOMAINS: dict[str, str] = RAW["domains"]


def _field(raw: dict[str, Any]) -> FieldSpec:
    domain = raw["domain"]
    return FieldSpec(
        raw["name"], attr_name(raw["name"]), domain, _DOMAINS[domain], raw.get("reserved", False)
    )


def _build() -> tuple[tuple[ClassSpec, ...], tuple[MethodSpec, ...]]:
    classes = []
    all_methods = []
    for c in RAW["classes"]:
        cname = c["name"]
        ms = []
        for m in c["methods"]:
            ms.append(
                MethodSpec(
                    class_name=cname,
                    class_id=c["id"],
                    name=m["name"],
                    method_id=m["id"],
                    full_name=f"{cname}.{m['name']}",
                    class_attr=_camel(cname) + _camel(m["name"]),
                    fields=tuple(_field(f) for f in m["fields"]),
                    synchronous=m["synchronous"],
                    responses=tuple(f"{cname}.{r}" for r in m.get("responses", ())),
                    content=m.get("content", False),
                    sent_by=m["sent_by"],
                    extension=m.get("extension"),
                )
            )
        props = tuple(_field(p) for p in c.get("properties", ()))
        classes.append(ClassSpec(cname, c["id"], tuple(ms), props))
        all_methods.extend(ms)
    return tuple(classes), tuple(all_methods)


CLASSES, METHODS = _build()
METHODS_BY_ID: dict[tuple[int, int], MethodSpec] = {(m.class_id, m.method_id): m for m in METHODS}
METHODS_BY_NAME: dict[str, MethodSpec] = {m.full_name: m for m in METHODS}
CONTENT_CLASS_IDS: frozenset[int] = frozenset(c.class_id for c in CLASSES if c.properties)
# The content properties of class basic (the only content class RabbitMQ has), in flag order.
PROPERTIES: tuple[FieldSpec, ...] = next(c.properties for c in CLASSES if c.name == "basic")
REPLY_CODES: dict[int, ReplyCode] = {
    r["code"]: ReplyCode(
        r["code"], r["name"].upper().replace("-", "_"), r["kind"], r.get("extension")
    )
    for r in RAW["reply_codes"]
}
SPEC = Spec(RAW["protocol"], CLASSES, METHODS, PROPERTIES, tuple(REPLY_CODES.values()))

_P = RAW["protocol"]
PROTOCOL_HEADER: bytes = bytes(_P["header"])
FRAME_END: int = _P["frame_end"]
FRAME_MIN_SIZE: int = _P["frame_min_size"]
FRAME_METHOD: int = _P["frame_types"]["method"]
FRAME_HEADER: int = _P["frame_types"]["header"]
FRAME_BODY: int = _P["frame_types"]["body"]
FRAME_HEARTBEAT: int = _P["frame_types"]["heartbeat"]
