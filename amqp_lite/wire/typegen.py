"""Write amqp_lite/wire/spec_types.pyi: the spec-built classes as a type checker sees them.

The codec makes `Properties` and one class per method from spec/amqp-0-9-1.toml at run time, so a
checker cannot see their fields. This renders the same classes, from the same spec records, as a
stub that methods.py and properties.py import under TYPE_CHECKING. A test fails when the stub is
stale; regenerate it with

    python -m amqp_lite.wire.typegen          (or --check to only compare)
"""

from __future__ import annotations

import sys
from pathlib import Path

from amqp_lite.wire.spec import METHODS, PROPERTIES, FieldSpec, MethodSpec

STUB = Path(__file__).with_name("spec_types.pyi")

# Wire primitive -> the Python type its decoded value has.
_PYTHON_TYPES = {
    "bit": "bool",
    "octet": "int",
    "short": "int",
    "long": "int",
    "longlong": "int",
    "timestamp": "int",
    "shortstr": "str",
    "longstr": "bytes",
    "table": "dict[str, Any]",
}

_HEADER = '''\
# Generated from spec/amqp-0-9-1.toml by `python -m amqp_lite.wire.typegen`: do not edit.
"""Types of the classes amqp_lite.wire builds from the spec at run time, for type checkers only."""

from typing import Any

from amqp_lite.wire.method_base import Method
'''


def _init(params: list[str]) -> list[str]:
    if not params:
        return ["    def __init__(self) -> None: ..."]
    return [
        "    def __init__(",
        "        self,",
        *(f"        {p}," for p in params),
        "    ) -> None: ...",
    ]


def _properties(fields: tuple[FieldSpec, ...]) -> list[str]:
    typed = [(f.attr, f"{_PYTHON_TYPES[f.type]} | None") for f in fields]
    return [
        "class Properties:",
        '    """The basic content properties, in spec order; None means not set."""',
        "",
        *(f"    {attr}: {t}" for attr, t in typed),
        *_init([f"{attr}: {t} = None" for attr, t in typed]),
    ]


def _method(spec: MethodSpec) -> list[str]:
    typed = [(f.attr, _PYTHON_TYPES[f.type]) for f in spec.fields]
    doc = f"{spec.full_name} ({spec.class_id}, {spec.method_id})"
    return [
        f"class {spec.class_attr}(Method):",
        f'    """{doc}"""',
        "",
        *(f"    {attr}: {t}" for attr, t in typed),
        *_init([f"{attr}: {t} = ..." for attr, t in typed]),
    ]


def render() -> str:
    # Only the method classes are in __all__: methods.py star-imports them, properties.py takes
    # Properties by name.
    exported = ["__all__ = [", *(f'    "{n}",' for n in sorted(m.class_attr for m in METHODS)), "]"]
    blocks = [exported, _properties(PROPERTIES), *(_method(m) for m in METHODS)]
    return _HEADER + "".join("\n" + "\n".join(block) + "\n" for block in blocks)


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if STUB.read_text(encoding="utf-8") != text:
            print(f"{STUB} is stale: run python -m amqp_lite.wire.typegen", file=sys.stderr)
            return 1
        return 0
    STUB.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
