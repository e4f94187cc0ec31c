"""The import graph of our packages: no cycles, and the layers point one way.

Built from the source with `ast`, so it sees every import: module level, inside functions, and
under `if TYPE_CHECKING:` (a type-only import is still a dependency a reader has to follow; a
narrow Protocol is the way to name something from a layer above).

    exchanges   pure routing: imports nothing of ours
    vhosts      the domain: never amqp_lite, never trio or sockets
    amqp_lite   the protocol core (the connection, and everything it imports, does no I/O),
                then the trio server, management and CLI on top
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("amqp_lite", "exchanges", "vhosts")
IO_MODULES = ("trio", "socket", "ssl", "asyncio", "selectors", "anyio")

Graph = dict[str, set[str]]  # module -> what it imports, both dotted names


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        # A stub with no module beside it (the spec-built classes' types) is read like one.
        stubs = [p for p in (root / package).rglob("*.pyi") if not p.with_suffix(".py").exists()]
        for path in sorted([*(root / package).rglob("*.py"), *stubs]):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported_names(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the module reaches."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # `from package import submodule` depends on the submodule, not the package.
                yield submodule if submodule in modules else base


def build_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> tuple[Graph, Graph]:
    """(edges between our modules, the top-level outside packages each module imports)."""
    modules = _modules(root, packages)
    ours: Graph = {name: set() for name in modules}
    external: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        for imported in _imported_names(name, path, modules):
            if imported in modules:
                if imported != name:
                    ours[name].add(imported)
            elif imported.split(".")[0] not in packages:
                external[name].add(imported.split(".")[0])
    return ours, external


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == 1:
                return [*path[path.index(successor) :], successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def closure(graph: Graph, start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for successor in graph[todo.pop()]:
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


OURS, EXTERNAL = build_graph(ROOT)


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    assert "amqp_lite.connection" in OURS and "vhosts.queue" in OURS
    assert "amqp_lite.channel" in OURS["amqp_lite.connection"]
    assert "trio" in EXTERNAL["amqp_lite.server"]


def test_no_import_cycles() -> None:
    cycle = find_cycle(OURS)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("exchanges", ("amqp_lite", "vhosts")),
        ("vhosts", ("amqp_lite",)),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} -> {imported}"
        for module, imports in OURS.items()
        if _in(layer, module)
        for imported in imports
        if any(_in(package, imported) for package in forbidden)
    )
    assert not wrong


def test_the_domain_and_the_codec_do_no_io() -> None:
    # The sans-IO core: the connection and whatever it imports, the codec included.
    core = closure(OURS, "amqp_lite.connection")
    assert "amqp_lite.wire.frames" in core
    checked = core | {m for m in OURS if _in("vhosts", m) or _in("exchanges", m)}
    checked |= {m for m in OURS if _in("amqp_lite.wire", m)}
    wrong = sorted(
        f"{module} -> {imported}"
        for module in checked
        for imported in EXTERNAL[module]
        if imported in IO_MODULES
    )
    assert not wrong


# -- the checker itself finds what it is for -----------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_type_checking_and_function_level_imports_make_cycles(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import thing\n",
            "pkg/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import Other\n"
            ),
            "pkg/c.py": "def late():\n    from . import a\n    import trio\n",
        },
    )
    graph, external = build_graph(root, ("pkg",))
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert external["pkg.c"] == {"trio"}


def test_a_submodule_imported_from_its_package_is_not_an_edge_to_the_package(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "from pkg import b\nA = 1\n",
            "pkg/b.py": "",
        },
    )
    graph, _ = build_graph(root, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"}
    assert find_cycle(graph) is None
