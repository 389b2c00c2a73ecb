"""The fast tier: `pytest -m "not slow"` leaves out what trains, executes
notebooks or starts processes, and the `slow` marks stay where they belong."""

import ast
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What makes a test slow when a test, its fixture or a helper function of its
# module does it: start a process (`subprocess.*(...)`, `sys.executable`),
# fit a model (`.fit(...)`), grade notebooks (`.grade(...)`: a kernel and
# judges per submission) or run a lesson.
SLOW_CALLS = {"assert_runs_unanswered"}
SLOW_METHODS = {"fit", "grade"}


def test_the_slow_marker_is_registered(pytestconfig):
    markers = pytestconfig.getini("markers")
    assert any(line.startswith("slow:") for line in markers), markers


def test_every_solution_notebook_cell_is_marked_slow(pytestconfig):
    conftest = pytestconfig.pluginmanager.get_plugin(str(ROOT / "conftest.py"))

    def item(path):
        marks = []
        return types.SimpleNamespace(
            path=Path(path), nodeid=path, marks=marks, add_marker=marks.append
        )

    cell, test = item("solutions/03_attention.ipynb"), item("tests/test_x.py")
    conftest.pytest_collection_modifyitems([cell, test])
    assert [mark.name for mark in cell.marks] == ["slow"] and test.marks == []


def _is_slow(function: ast.FunctionDef) -> bool:
    return any("mark.slow" in ast.unparse(d) for d in function.decorator_list)


def _does_slow_work(function: ast.FunctionDef, slow_functions: set[str]) -> bool:
    arguments = {a.arg for a in function.args.args}
    if arguments & slow_functions:  # a fixture that does it
        return True
    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) == ("sys", "executable"):
                return True
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        if isinstance(called, ast.Name) and called.id in SLOW_CALLS | slow_functions:
            return True
        if isinstance(called, ast.Attribute) and (
            called.attr in SLOW_METHODS
            or (isinstance(called.value, ast.Name) and called.value.id == "subprocess")
        ):
            return True
    return False


def unmarked_slow_tests(source: str) -> list[str]:
    """Tests of a module that do slow work (directly, through a fixture or a
    helper function of the module) without the `slow` mark."""
    tree = ast.parse(source)
    if any("mark.slow" in ast.unparse(n) for n in tree.body if _is_pytestmark(n)):
        return []
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    slow_functions: set[str] = set()
    while True:  # helpers and fixtures calling helpers, to a fixed point
        found = {
            f.name
            for f in functions
            if not f.name.startswith("test_") and _does_slow_work(f, slow_functions)
        }
        if found <= slow_functions:
            break
        slow_functions |= found
    return [
        f.name
        for f in functions
        if f.name.startswith("test_")
        and not _is_slow(f)
        and _does_slow_work(f, slow_functions)
    ]


def _is_pytestmark(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
    )


def test_tests_that_start_processes_or_fit_models_are_marked_slow():
    unmarked = {
        path.name: names
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        if path.name != Path(__file__).name
        if (names := unmarked_slow_tests(path.read_text()))
    }
    assert unmarked == {}, "mark these @pytest.mark.slow: " + str(unmarked)


def test_the_slow_work_finder_follows_fixtures_and_helpers():
    source = (
        "import subprocess, pytest\n"
        "def helper():\n    subprocess.run(['true'])\n"
        "@pytest.fixture\ndef trained(model):\n    model.fit(1, 2)\n"
        "def test_direct():\n    helper()\n"
        "def test_through_a_fixture(trained):\n    pass\n"
        "@pytest.mark.slow\ndef test_marked():\n    helper()\n"
        "def test_fast(monkeypatch):\n"
        "    monkeypatch.setattr(subprocess, 'run', print)\n"
    )
    assert unmarked_slow_tests(source) == ["test_direct", "test_through_a_fixture"]
    assert (
        unmarked_slow_tests("import pytest\npytestmark = pytest.mark.slow\n" + source)
        == []
    )
