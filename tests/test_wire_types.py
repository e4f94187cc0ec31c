"""The typed view of the spec-built classes (amqp_lite/wire/spec_types.pyi) that `make test`'s
type checker reads: generated from the current spec, and the same classes the codec builds."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

from amqp_lite.wire import Properties, methods, typegen
from amqp_lite.wire.spec import METHODS


def test_stub_is_generated_from_the_current_spec() -> None:
    stale = "stale: regenerate it with `python -m amqp_lite.wire.typegen`"
    assert typegen.STUB.read_text(encoding="utf-8") == typegen.render(), stale


def test_check_mode_tells_a_stale_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = tmp_path / "spec_types.pyi"
    monkeypatch.setattr(typegen, "STUB", stub)
    assert typegen.main([]) == 0
    assert typegen.main(["--check"]) == 0
    stub.write_text(stub.read_text().replace("routing_key: str", "routing_key: bytes", 1))
    assert typegen.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


def _stub_classes() -> dict[str, tuple[list[str], list[str]]]:
    """Class name -> (annotated attributes, __init__ parameters), in order."""
    tree = ast.parse(typegen.STUB.read_text(encoding="utf-8"))
    classes = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            fields = [
                s.target.id
                for s in node.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            ]
            init = next(s for s in node.body if isinstance(s, ast.FunctionDef))
            classes[node.name] = (fields, [a.arg for a in init.args.args[1:]])
    return classes


def test_stub_has_every_class_with_the_codecs_fields_in_order() -> None:
    stub = _stub_classes()
    runtime = {m.class_attr: getattr(methods, m.class_attr) for m in METHODS}
    runtime["Properties"] = Properties
    assert stub.keys() == runtime.keys()
    for name, cls in runtime.items():
        names = [f.name for f in attrs.fields(cls)]
        assert stub[name] == (names, names), name
