"""Every third-party package the code imports is declared in pyproject.toml.

The package, the lessons and solutions (their code cells) and the benchmarks
may import only runtime requirements; the tests may also import the `dev`
extra. An import is matched to the distribution that installs it
(`importlib.metadata.packages_distributions`), so `import sklearn` needs
`scikit-learn`, `import yaml` needs `pyyaml`. An import inside a `try`
whose `except` catches `ImportError` (or anything broader) is optional and
not required.
"""

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def distribution_name(requirement: str) -> str:
    """`"keras-hub>=0.32"` -> `"keras-hub"`, normalized as PEP 503 does."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def declared():
    """(runtime, dev) distribution names from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {distribution_name(r) for r in project["dependencies"]}
    dev = {distribution_name(r) for r in project["optional-dependencies"]["dev"]}
    return runtime, dev


def _is_optional(node: ast.Try) -> bool:
    """Whether the `try` catches a failed import (`ImportError` or broader)."""
    broad = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = (
            handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        )
        if {t.id for t in types if isinstance(t, ast.Name)} & broad:
            return True
    return False


def _only_in_colab(node) -> bool:
    """An `if "google.colab" in sys.modules:` block (the setup cell's Colab
    branch): what it imports, Colab provides."""
    return isinstance(node, ast.If) and any(
        isinstance(part, ast.Constant) and part.value == "google.colab"
        for part in ast.walk(node.test)
    )


def imported_packages(source: str) -> set[str]:
    """Top-level names of the absolute imports in `source`, optional ones
    (and those of Colab's own branch) aside."""
    names = set()

    def visit(node, optional):
        if _only_in_colab(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, optional)
            return
        if isinstance(node, ast.Try) and _is_optional(node):
            for child in node.body:
                visit(child, True)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, optional)
            return
        if not optional and isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        if not optional and isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(ast.parse(source), False)
    return names


def notebook_source(path: Path) -> str:
    """The code cells of a notebook, IPython's `!` and `%` lines left out."""
    cells = json.loads(path.read_text())["cells"]
    lines = [
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("!", "%"))
    ]
    return "\n".join(lines)


def local_modules() -> set[str]:
    """Names the repository itself provides (packages, scripts, test helpers)."""
    names = {p.name for p in ROOT.iterdir() if p.is_dir()}  # tf_transformer, tests
    # The grader's process scripts (grading/answers.py, runner.py) run by path
    # and import their neighbours by name.
    scripts = ROOT / "tf_transformer" / "course" / "grading"
    for folder in (ROOT, ROOT / "bench", ROOT / "tests", scripts):
        names |= {p.stem for p in folder.glob("*.py")}
    return names


def undeclared(sources, allowed, distributions=None) -> list[str]:
    """`"file: import x (distributions)"` for each import not in `allowed`.

    `sources` maps a file name to its Python source; `distributions` maps an
    import name to the distributions that install it (default: this
    environment's).
    """
    if distributions is None:
        distributions = importlib.metadata.packages_distributions()
    ignored = set(sys.stdlib_module_names) | local_modules() | {"__future__"}
    problems = []
    for name, source in sorted(sources.items()):
        for package in sorted(imported_packages(source) - ignored):
            installed_by = {
                distribution_name(d) for d in distributions.get(package, ())
            }
            if not installed_by & allowed:
                problems.append(
                    f"{name}: import {package} "
                    f"({', '.join(sorted(installed_by)) or 'not installed'})"
                )
    return problems


def sources_under(*patterns):
    sources = {}
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            text = (
                notebook_source(path) if path.suffix == ".ipynb" else path.read_text()
            )
            sources[str(path.relative_to(ROOT))] = text
    return sources


def test_package_lessons_and_bench_import_only_runtime_requirements():
    runtime, _ = declared()
    sources = sources_under(
        "tf_transformer*/**/*.py",
        "lessons/*.ipynb",
        "solutions/*.ipynb",
        "bench/*.py",
    )
    assert any(name.startswith("lessons/") for name in sources)
    problems = undeclared(sources, runtime)
    assert not problems, "declare in pyproject.toml [project] dependencies:\n" + (
        "\n".join(problems)
    )


def test_tests_import_only_runtime_or_dev_requirements():
    runtime, dev = declared()
    sources = sources_under("tests/*.py", "conftest.py")
    problems = undeclared(sources, runtime | dev)
    assert not problems, "declare in pyproject.toml (dev extra):\n" + "\n".join(
        problems
    )


def test_an_undeclared_import_is_reported_with_its_distribution():
    source = (
        "import os\n"
        "import numpy as np\n"
        "from sklearn.metrics import f1_score\n"
        "from . import sibling\n"
        "try:\n"
        "    import fancy_optional\n"
        "except ImportError:\n"
        "    fancy_optional = None\n"
        "def later():\n"
        "    import yaml\n"
        'if "google.colab" in sys.modules:\n'
        "    from google.colab import files\n"
        "else:\n"
        "    import requests\n"
    )
    distributions = {
        "numpy": ["numpy"],
        "sklearn": ["scikit-learn"],
        "yaml": ["PyYAML"],
        "requests": ["requests"],
    }
    problems = undeclared({"x.py": source}, {"numpy"}, distributions)
    assert problems == [
        "x.py: import requests (requests)",
        "x.py: import sklearn (scikit-learn)",
        "x.py: import yaml (pyyaml)",
    ]
    assert (
        undeclared(
            {"x.py": source},
            {"numpy", "scikit-learn", "pyyaml", "requests"},
            distributions,
        )
        == []
    )
