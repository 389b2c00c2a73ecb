"""Every module of the package imports, and no two modules import each other.

The import graph is read from the source with `ast`, not from what one
interpreter happened to import, so a circle is found even where the order
of imports hides it today:

- A node is a module of `tf_transformer` or `tf_transformer_cli` (a package
  is its `__init__.py`).
- An edge A → B is an `import` or `from ... import` statement in A, at the
  top level or inside a function or class: an import deferred into a
  function is still a dependency, only a later one (the CLI's circle with
  its jobs ran through such an import). `from P import name` points at the
  module `P.name` when there is one, else at `P`; relative imports are
  resolved; imports under `if TYPE_CHECKING:` never run and are left out.
- Importing `P.M` also runs the package `P`'s `__init__.py`, but that is
  no edge M → P: a package's face importing its own modules is what a
  package is, and counting it would make every package a circle. An import
  of the package itself (`from tf_transformer.data import normalize`) is an
  edge to `P`, and so to whatever `P/__init__.py` imports.

A circle is a strongly connected component of more than one module (or a
module importing itself).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tf_transformer", "tf_transformer_cli")


def module_files() -> dict[str, Path]:
    """Module name → source file, for every module of the packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth, outside `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules) -> set[str]:
    """The modules of `modules` that the module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from .x import y, from .. import z
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            targets.add(full if full in modules else base)
    return {target for target in targets if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {
        name: imported_modules(name, path, modules) for name, path in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_package_has_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(
        " ↔ ".join(component) for component in found
    )


def test_a_circle_through_a_deferred_import_is_found(tmp_path):
    # The graph reader sees function-level imports and resolves `from P
    # import module`; the circle finder reports the pair and nothing else.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.leaf import VALUE\n")
    (package / "leaf.py").write_text("VALUE = 1\n")
    (package / "a.py").write_text("from pkg import b, leaf\n")
    (package / "b.py").write_text("def late():\n    from pkg import a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n"
    )
    (package / "d.py").write_text("from . import c\n")
    files = {
        "pkg": package / "__init__.py",
        **{f"pkg.{n}": package / f"{n}.py" for n in ("leaf", "a", "b", "c", "d")},
    }
    graph = {name: imported_modules(name, path, files) for name, path in files.items()}
    assert graph["pkg.a"] == {"pkg.b", "pkg.leaf"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.c"] == set()  # TYPE_CHECKING imports never run
    assert graph["pkg.d"] == {"pkg.c"}
    assert circles(graph) == [["pkg.a", "pkg.b"]]


# `__main__` modules run their command when imported: they are in the graph only.
@pytest.mark.parametrize(
    "name", [name for name in sorted(module_files()) if not name.endswith("__main__")]
)
def test_every_module_imports(name):
    importlib.import_module(name)
