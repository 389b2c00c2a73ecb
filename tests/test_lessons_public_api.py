"""Lessons use the public API only: no `_private` name of tf_transformer.

A learner copies what a lesson does; a lesson that imports `_validation` or
`_DecoderCache` teaches them to depend on internals that may change. The
scan covers every code cell of lessons/ and solutions/ and the exercise
stubs that `build` generates from the library.
"""

import ast
import json
import re
from pathlib import Path

import pytest

from tf_transformer.course.build import notebooks

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "lessons").glob("*.ipynb")) + sorted(
    (REPO / "solutions").glob("*.ipynb")
)
LIBRARY = "tf_transformer"
# A dotted path into the library with a private part, e.g. in
# importlib.import_module("tf_transformer._validation").
PRIVATE_PATH = re.compile(rf"\b{LIBRARY}(\.\w+)*\._[A-Za-z]\w*")


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _parse(source):
    # IPython magics and shell escapes are not Python.
    lines = [
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines()
    ]
    return ast.parse("\n".join(lines))


def private_uses(sources):
    """The private tf_transformer names that the code cells `sources` use.

    Flags `from tf_transformer... import _x`, imports of a private module
    (`tf_transformer._validation`, `tf_transformer.layers._common`),
    `name._x` where `name` was bound by an import from tf_transformer (in any
    cell), and private dotted paths written in strings.
    """
    trees = [_parse(source) for source in sources]
    library_names, found = set(), []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] != LIBRARY:
                        continue
                    found += [alias.name] if any(map(_is_private, parts)) else []
                    library_names.add(alias.asname or parts[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != LIBRARY:
                    continue
                if any(map(_is_private, parts)):
                    found.append(node.module)
                for alias in node.names:
                    if _is_private(alias.name):
                        found.append(f"{node.module}.{alias.name}")
                    library_names.add(alias.asname or alias.name)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in library_names:
                    found.append(ast.unparse(node))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [m.group(0) for m in PRIVATE_PATH.finditer(node.value)]
    return found


def _code_sources(nb):
    return [cell["source"] for cell in nb["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_code_uses_no_private_library_names(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert private_uses(_code_sources(nb)) == []


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "solutions").glob("*.ipynb")),
    ids=lambda p: p.name,
)
def test_generated_exercise_stubs_use_no_private_library_names(path):
    solution, _ = notebooks.refresh_solution(notebooks.read(path), path)
    lesson = notebooks.make_lesson(solution, f"lessons/{path.name}")
    assert private_uses(_code_sources(lesson)) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from tf_transformer import _validation", ["tf_transformer._validation"]),
        (
            "from tf_transformer.layers._common import clone_initializer",
            ["tf_transformer.layers._common"],
        ),
        ("import tf_transformer._validation as v", ["tf_transformer._validation"]),
        (
            "from tf_transformer.inference.decoding import _write_column as w",
            ["tf_transformer.inference.decoding._write_column"],
        ),
        (
            "import tf_transformer as tt\ntt.layers.encoder._Stack",
            ["tt.layers.encoder._Stack"],
        ),
        (
            "import importlib\nimportlib.import_module('tf_transformer._validation')",
            ["tf_transformer._validation"],
        ),
    ],
)
def test_the_scan_finds_private_names(source, expected):
    assert private_uses([source]) == expected


def test_the_scan_spans_cells_and_passes_public_code():
    cells = [
        "import tf_transformer as tt\nfrom tf_transformer import validation",
        "tt.validation.check_int('n', 3)\nprint(tt.__version__)",
        "x_validation = 1\nclass A:\n    def f(self):\n        return self._dense",
        "%matplotlib inline\n!pip list",
    ]
    assert private_uses(cells) == []
    assert private_uses([*cells, "tt._validation"]) == ["tt._validation"]
