"""The package's import graph has no cycle, and the rooms import only downwards.

Every import counts, at module level or inside a function (an import moved into a function to
dodge a cycle is still a cycle); only ``if TYPE_CHECKING:`` blocks, which never run, are left
out. A package's ``__init__`` is a module of its own: ``from metakit.methods import x`` is an
edge to ``metakit.methods``.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "metakit"

# Rooms from the top down: a module may import its own room and any room below it.
ROOMS = ["cli", "teaching", "plots", "studies", "probes", "experiments", "methods", "schedules", "learners", "meta", "models", "data",
         "distributed", "device", "io", "options"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The metakit modules ``path`` imports anywhere (resolving ``from pkg import submodule``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.split(".")[0] == "metakit")
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("metakit"):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.add(sub if sub in modules else child.module)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) - {module_name(p)} for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None.

    Example:
        >>> find_cycle({"a": {"b"}, "b": {"a"}})
        ['a', 'b', 'a']
        >>> find_cycle({"a": {"b"}, "b": set()}) is None
        True
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "metakit"


def test_find_cycle_catches_a_long_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_import_graph_sees_function_level_imports(tmp_path):
    (tmp_path / "metakit").mkdir()
    src = tmp_path / "metakit" / "x.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import metakit.y\n"
                   "def f():\n    from metakit import z\n")
    global ROOT
    old, ROOT = ROOT, tmp_path / "metakit"
    try:
        assert imports_of(src, {"metakit.x", "metakit.y", "metakit.z"}) == {"metakit.z"}
    finally:
        ROOT = old


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_rooms_import_downwards():
    upward = {}
    for module, imported in import_graph().items():
        mine = room(module)
        if mine in ROOMS:
            up = [m for m in imported if room(m) in ROOMS and ROOMS.index(room(m)) < ROOMS.index(mine)]
            upward.update({module: sorted(up)} if up else {})
    assert not upward, f"modules that import a room above their own ({' > '.join(ROOMS)}): {upward}"


def test_the_training_loop_imports_no_concrete_method_or_schedule():
    loop = import_graph()["metakit.experiments.loop"]
    concrete = [m for m in loop if (m.startswith("metakit.methods.") and m != "metakit.methods.base")
                or m.startswith("metakit.schedules")]
    assert not concrete, f"the loop imports {concrete}"


def test_at_most_eight_plain_modules_at_the_top():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 8, top
