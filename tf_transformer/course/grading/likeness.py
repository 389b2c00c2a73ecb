"""Is an answer the library's reference, copied? (information for the instructor)

The library is the answer key, and every student has it installed: copying
its source cannot be prevented, only noticed. An answer counts as the same
as the library's when both parse to the same syntax tree after

- docstrings, comments, formatting and type annotations are dropped, and
  string constants (error messages) emptied, and
- the names the definition binds (its own name, arguments, local variables,
  loop and comprehension variables, nested functions) are renamed in order
  of first appearance.

Names it uses but does not bind (`tf`, `np`, attributes such as
`tf.linalg.band_part`) stay as they are. The flag is information, never a
change of points: two students can write the same three lines.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from tf_transformer.course.grading.answers import parse, python_source


class _Canonical(ast.NodeTransformer):
    def __init__(self, bound: set[str]):
        self.bound = bound
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.names.setdefault(name, f"_{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._rename(node.id)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):  # messages, names in error texts
            return ast.Constant(value="")
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node

    def _definition(self, node):
        node.name = self._rename(node.name)
        node.decorator_list = []
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:] or [ast.Pass()]
        node.body = body
        if not isinstance(node, ast.ClassDef):
            node.returns = None
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        return self.visit(ast.Assign(targets=[node.target], value=node.value))


def _bound_names(node: ast.AST) -> set[str]:
    bound = {node.name}
    for item in ast.walk(node):
        if isinstance(item, ast.arg):
            bound.add(item.arg)
        elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            bound.add(item.id)
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(item.name)
    return bound


def normalised(definition: ast.AST) -> str:
    """A text that two definitions share when they differ only in names,
    docstrings, comments, strings, annotations and formatting."""
    tree = _Canonical(_bound_names(definition)).visit(definition)
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _definitions(cells: list[str]) -> dict[str, ast.AST]:
    """The last top-level def/class of each name in the cells."""
    found: dict[str, ast.AST] = {}
    for source in cells:
        try:
            tree = parse(python_source(source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[node.name] = node
    return found


def reference_tree(ex) -> ast.AST | None:
    try:
        source = inspect.getsource(inspect.unwrap(ex.load_reference()))
    except (OSError, TypeError):
        return None
    return parse(textwrap.dedent(source)).body[0]


def same_as_library(cells: list[str], exercises) -> dict[str, str]:
    """`yes`/`no` by exercise name, for the answers the cells define."""
    definitions = _definitions(cells)
    flags = {}
    for ex in exercises:
        answer = definitions.get(ex.object_name)
        reference = reference_tree(ex)
        if answer is None or reference is None:
            continue
        same = normalised(answer) == normalised(reference)
        flags[ex.name] = "yes" if same else "no"
    return flags
