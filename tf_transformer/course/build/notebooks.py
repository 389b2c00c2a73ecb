"""Build the exercise notebooks (lessons/) from the solutions and the library.

One source of truth: an exercise's answer lives once, in the library, and
the exercise is declared once, with `@exercise(...)` in
`tf_transformer.course.checks` (name, lesson, points, kind, reference,
methods). A solution notebook's *exercise cell* carries only the exercise's
name; `build` copies the reference's source into the cell, then writes the
lesson with the answer replaced by a stub.

Cell metadata in solutions/ (under the key ``"tf_transformer"``):

``{"exercise": NAME}``, NAME registered
    A library-backed exercise. The cell holds the reference's source. For a
    function, in the lesson its body (after the docstring and the input
    checks that open it) becomes the stub; for a class, the bodies of the
    declared `methods` become stubs and every other method stays as given.
``{"exercise": NAME}`` or ``{"exercise": NAME, "points": N}``, NAME not registered
    A notebook-only exercise: the cell marks its answer with
    ``### BEGIN SOLUTION`` / ``### END SOLUTION``. Without ``"points"`` it
    is a *practice* exercise: its check cell is locked but not graded, so
    nbgrader gives it no points; with ``"points"`` nbgrader grades it.
``{"answer": NAME}``
    A "predict, then run" answer: a markdown cell placed after a question
    and before the code cell that runs the experiment. Solutions keep the
    explanation; in the lesson `build` replaces it with an editable
    ``PREDICTION_STUB`` for the learner's prediction, so the answer appears
    in the solutions only.
``{"check": NAME}``
    The self-check cell after an exercise. For library-backed exercises
    `build` writes (or inserts) it; a notebook-only exercise's check cell is
    written by the author (and carries ``"points"`` when the exercise does).

`source`, `methods` or (for a registered exercise) `points` in the metadata
are an error: they belong to the declaration.

Lessons get an "Open in Colab" badge and a setup cell first, no outputs, and
nbgrader "release" metadata: exercise cells are solution cells, check cells
are locked grade cells with points, every other cell is locked read-only,
each with its checksum.

Usage: ``python -m tf_transformer.course build [--check]``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import hashlib
import importlib
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat

from tf_transformer.course.build.publishing import (
    CourseSource,
    read_setting,
    refresh_project_urls,
    refresh_readme,
    setup_source,
    write_setting,
)

METADATA_KEY = "tf_transformer"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
PREDICTION_STUB = (
    "**Your prediction** (write it here, *before* you run the next cell): …"
)
DEFAULT_METHODS = ("call",)
NBGRADER_SCHEMA = 3


class BuildError(ValueError):
    """A solution notebook cannot be built; the message names notebook and cell."""


# ------------------------------------------------------------------ sources


def resolve(dotted: str) -> tuple[Any, list[str]]:
    """Import `dotted` ("pkg.module.Object[.method]"); return (object, attributes)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        attributes = parts[split:]
        for attribute in attributes:
            if not hasattr(obj, attribute):
                raise BuildError(f"Cannot find {dotted!r}: no attribute {attribute!r}")
            obj = getattr(obj, attribute)
        return obj, attributes
    raise BuildError(f"Cannot import any module of {dotted!r}")


def library_source(dotted: str) -> str:
    """The dedented source of a library function or class, without trailing blanks."""
    obj, _ = resolve(dotted)
    return textwrap.dedent(inspect.getsource(obj)).rstrip()


@dataclasses.dataclass(frozen=True)
class ExerciseSpec:
    """What an exercise cell holds: a registered exercise's reference, or a
    notebook-only exercise."""

    name: str
    source: str | None  # dotted path of the class or function; None: notebook-only
    methods: tuple[str, ...]
    points: float | None

    @classmethod
    def from_metadata(cls, meta: dict, where: str) -> ExerciseSpec:
        """The spec of the cell whose metadata is `meta`: a registered
        exercise's source, methods and points come from its `@exercise`
        declaration; a notebook-only one may carry its `points`."""
        name = meta.get("exercise")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise BuildError(
                f"{where}: `exercise` must be a name like 'causal_mask'. Received: "
                f"{name!r}"
            )
        declared = sorted(key for key in ("source", "methods") if key in meta)
        if declared:
            raise BuildError(
                f"{where}: exercise {name!r} names {', '.join(declared)} in its "
                "metadata; these belong to its @exercise(...) declaration in "
                "tf_transformer.course.checks (the cell carries only the name)"
            )
        registered = _checks().EXERCISES.get(name)
        if registered is None:
            return cls(name, None, (), meta.get("points"))
        if "points" in meta:
            raise BuildError(
                f"{where}: exercise {name!r} is registered with "
                f"points={registered.points}; remove `points` from the metadata. "
                f"Received: points={meta['points']!r}"
            )
        # A registered practice exercise (0 points) is built as a notebook-only
        # one without points: checked in the lesson, never graded.
        points = registered.points if registered.graded else None
        return cls(name, registered.source, registered.methods, points)


# ----------------------------------------------------------- solution regions


def _line_indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _is_input_check(statement: ast.stmt) -> bool:
    """A bare call such as `validation.check_rank(...)`, `check_x(...)` or
    `self._check_x(...)`."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return False
    name = ast.unparse(statement.value.func)
    last = name.rsplit(".", 1)[-1]
    return last.startswith(("check_", "_check"))


def _body_region(
    lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef, last: int
) -> tuple[int, int]:
    """0-based [start, end) line range of the answer: the body after the
    docstring and after the input checks that open it (those stay in the
    lesson, so a student's wrong input still gets a clear error)."""
    body = list(node.body)
    has_doc = (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    given = body[:1] if has_doc else []
    while len(given) < len(body) - 1 and _is_input_check(body[len(given)]):
        given.append(body[len(given)])
    if given and len(body) > len(given):
        start = given[-1].end_lineno  # the line after them (0-based)
    elif has_doc:
        raise BuildError(
            f"function {node.name!r} has only a docstring: nothing to hide"
        )
    else:
        start = node.body[0].lineno - 1
        if node.body[0].lineno == node.lineno:
            raise BuildError(f"function {node.name!r} is written on one line")
    end = node.end_lineno  # exclusive, 0-based
    # Comments that close the body belong to it.
    indent = _line_indent(lines[node.body[-1].lineno - 1])
    while end < last and (
        lines[end].strip().startswith("#")
        and _line_indent(lines[end]).startswith(indent)
    ):
        end += 1
    while start < end and not lines[start].strip():
        start += 1
    return start, end


def mark_solution(source: str, spec: ExerciseSpec) -> str:
    """Wrap the answer part of a library source in BEGIN/END SOLUTION markers."""
    lines = source.split("\n")
    tree = ast.parse(source)
    if len(tree.body) != 1 or not isinstance(
        tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ):
        raise BuildError(f"exercise {spec.name!r}: the source is not one def or class")
    top = tree.body[0]
    regions = []
    if isinstance(top, ast.ClassDef):
        found = {}
        for node in top.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found[node.name] = node
        for method in spec.methods:
            if method not in found:
                raise BuildError(
                    f"exercise {spec.name!r}: method {method!r} not found in class "
                    f"{top.name} (it has {', '.join(found) or 'none'})"
                )
            regions.append(_body_region(lines, found[method], found[method].end_lineno))
    else:
        regions.append(_body_region(lines, top, len(lines)))
    for start, end in sorted(regions, reverse=True):
        indent = _line_indent(lines[start])
        lines[start:end] = [
            indent + BEGIN_SOLUTION,
            *lines[start:end],
            indent + END_SOLUTION,
        ]
    return "\n".join(lines)


def has_solution_region(source: str) -> bool:
    return BEGIN_SOLUTION in source


def clear_solution(source: str, cell_type: str) -> str:
    """Replace every BEGIN/END SOLUTION region with the stub, keeping the indent."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN_SOLUTION in line:
            if inside:
                raise BuildError("nested ### BEGIN SOLUTION")
            inside = True
            indent = _line_indent(line)
            stub = CODE_STUB if cell_type == "code" else (TEXT_STUB,)
            out.extend(indent + s for s in stub)
        elif END_SOLUTION in line:
            if not inside:
                raise BuildError("### END SOLUTION without ### BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise BuildError("### BEGIN SOLUTION without ### END SOLUTION")
    return "\n".join(out)


# ------------------------------------------------------------- nbgrader bits


def nbgrader_checksum(cell: dict) -> str:
    """The checksum nbgrader stores for a graded, solution or locked cell.

    MD5 over the source, the cell type, the three flags (as Python's str of
    a bool), the grade id and, for grade cells, the points as a float.
    """
    meta = cell["metadata"]["nbgrader"]
    digest = hashlib.md5()
    parts = [
        cell["source"],
        cell["cell_type"],
        str(bool(meta.get("grade"))),
        str(bool(meta.get("solution"))),
        str(bool(meta.get("locked"))),
        meta["grade_id"],
    ]
    if meta.get("grade"):
        parts.append(str(float(meta["points"])))
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _set_nbgrader(
    cell: dict, grade_id: str, *, grade=False, solution=False, locked=False, points=None
) -> None:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": NBGRADER_SCHEMA,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    cell["metadata"]["nbgrader"] = meta
    if solution:
        cell["metadata"]["deletable"] = False
    elif grade or locked:
        cell["metadata"]["deletable"] = False
        cell["metadata"]["editable"] = False


def _add_checksum(cell: dict) -> None:
    meta = cell["metadata"]["nbgrader"]
    if not (meta["grade"] or meta["solution"] or meta["locked"]):
        return  # a cell nbgrader does not track (a prediction), as nbgrader does
    meta["checksum"] = nbgrader_checksum(cell)
    meta["cell_type"] = cell["cell_type"]


# ---------------------------------------------------------------- notebooks


def _checks():
    from tf_transformer.course import checks

    return checks


def check_cell_source(name: str) -> str:
    exercise = _checks().EXERCISES[name]
    # Checked by nbval in solutions/. The CheckResult is assigned, not left as
    # the cell's value: the printed report is the output. (A trailing ";"
    # would not do: nbval runs cells without history, and IPython then
    # decides whether to hide the value by looking at the previous cell.)
    return (
        "# NBVAL_CHECK_OUTPUT\n"
        "from tf_transformer.course.checks import check\n\n"
        f'result = check("{name}", {exercise.object_name})'
    )


def course_source(root: Path | None = None) -> CourseSource:
    """The course's setting (`[tool.tf_transformer.course]` of the
    pyproject.toml in `root`, else in this package's checkout): where the
    lessons live."""
    pyproject = (root or default_root()) / "pyproject.toml"
    if not pyproject.exists():
        pyproject = default_root() / "pyproject.toml"
    try:
        return read_setting(pyproject)
    except (OSError, ValueError) as error:
        raise BuildError(str(error)) from None


def _meta(cell: dict) -> dict:
    value = cell.get("metadata", {}).get(METADATA_KEY, {})
    return value if isinstance(value, dict) else {}


def _new_cell(cell_type: str, source: str, cell_id: str, meta: dict) -> dict:
    cell = {
        "cell_type": cell_type,
        "id": cell_id,
        "metadata": {METADATA_KEY: meta},
        "source": source,
    }
    if cell_type == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


@dataclasses.dataclass
class Drift:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def refresh_solution(nb: dict, path: Path) -> tuple[dict, list[Drift]]:
    """Copy library sources into exercise cells; make sure check cells follow."""
    nb = copy.deepcopy(nb)
    drifts: list[Drift] = []
    cells = nb["cells"]
    index = 0
    while index < len(cells):
        cell = cells[index]
        meta = _meta(cell)
        if "exercise" not in meta:
            index += 1
            continue
        where = f"{path} cell {index}"
        spec = ExerciseSpec.from_metadata(meta, where)
        if spec.source is None:
            if not has_solution_region(cell["source"]):
                raise BuildError(
                    f"{where}: exercise {spec.name!r} is not registered in "
                    "tf_transformer.course.checks.EXERCISES, and as a notebook-only "
                    f"exercise its cell has no {BEGIN_SOLUTION} marker"
                )
            index += 1
            continue
        if cell["cell_type"] != "code":
            raise BuildError(f"{where}: exercise {spec.name!r} must be a code cell")
        wanted = library_source(spec.source)
        if cell["source"] != wanted:
            drifts.append(
                Drift(
                    path,
                    f"cell {index} ({spec.name}) differs from the library's "
                    f"{spec.source}",
                )
            )
            cell["source"] = wanted
        mark_solution(wanted, spec)  # fails early if methods are wrong
        check_source = check_cell_source(spec.name)
        following = cells[index + 1] if index + 1 < len(cells) else None
        if following is not None and _meta(following).get("check") == spec.name:
            if following["source"] != check_source:
                drifts.append(
                    Drift(path, f"cell {index + 1} (check of {spec.name}) is outdated")
                )
                following["source"] = check_source
        else:
            drifts.append(
                Drift(path, f"cell {index} ({spec.name}) has no check cell after it")
            )
            cells.insert(
                index + 1,
                _new_cell(
                    "code", check_source, f"check-{spec.name}", {"check": spec.name}
                ),
            )
        index += 2
    return nb, drifts


def make_lesson(
    solution: dict, lesson_path: str, source: CourseSource | None = None
) -> dict:
    """The student notebook for a (refreshed) solution notebook; its badge and
    setup cell say where the course lives (`source`, by default the
    repository's setting)."""
    source = source or course_source()
    lesson = {
        "cells": [],
        "metadata": copy.deepcopy(solution.get("metadata", {})),
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    cells = [
        _new_cell(
            "markdown", source.badge(lesson_path), "colab-badge", {"generated": "badge"}
        ),
        _new_cell("code", setup_source(source), "colab-setup", {"generated": "setup"}),
    ]
    for cell in solution["cells"]:
        if _meta(cell).get("generated"):
            continue
        cells.append(copy.deepcopy(cell))
    points_of: dict[str, float] = {}
    for index, cell in enumerate(cells):
        cell.pop("attachments", None) if cell["cell_type"] == "code" else None
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        metadata = cell.setdefault("metadata", {})
        for key in (
            "nbgrader",
            "deletable",
            "editable",
            "collapsed",
            "scrolled",
            "execution",
        ):
            metadata.pop(key, None)
        meta = _meta(cell)
        if "exercise" in meta:
            spec = ExerciseSpec.from_metadata(meta, f"{lesson_path} cell {index}")
            text = (
                cell["source"]
                if spec.source is None
                else mark_solution(cell["source"], spec)
            )
            cell["source"] = clear_solution(text, cell["cell_type"])
            if spec.points is not None:
                points_of[spec.name] = float(spec.points)
            else:  # a practice exercise: checked in the notebook, never graded
                points_of[spec.name] = None
            graded_markdown = cell["cell_type"] == "markdown"
            _set_nbgrader(
                cell,
                spec.name,
                solution=True,
                grade=graded_markdown,
                points=points_of[spec.name] if graded_markdown else None,
            )
        elif "answer" in meta:
            if cell["cell_type"] != "markdown":
                raise BuildError(
                    f"{lesson_path} cell {index}: a predict-then-run answer "
                    f"({meta['answer']!r}) must be a markdown cell"
                )
            cell["source"] = PREDICTION_STUB
            _set_nbgrader(cell, f"prediction_{meta['answer']}")  # editable, ungraded
        elif "check" in meta:
            name = meta["check"]
            points = meta.get("points", points_of.get(name, 1.0))
            if points is None:  # practice: a locked cell nbgrader does not grade
                _set_nbgrader(cell, f"check_{name}", locked=True)
            else:
                _set_nbgrader(
                    cell, f"check_{name}", grade=True, locked=True, points=float(points)
                )
        else:
            if has_solution_region(cell.get("source", "")):
                raise BuildError(
                    f"{lesson_path} cell {index}: {BEGIN_SOLUTION} in a cell without "
                    "`exercise` metadata"
                )
            _set_nbgrader(cell, f"cell_{index:03d}", locked=True)
        cell["id"] = cell["metadata"]["nbgrader"]["grade_id"].replace("_", "-")[:64]
        _add_checksum(cell)
    lesson["cells"] = cells
    return lesson


def nbgrader_source(
    solution: dict, lesson_path: str, source: CourseSource | None = None
) -> dict:
    """The instructor version for nbgrader: answers between BEGIN/END SOLUTION."""
    lesson = make_lesson(solution, lesson_path, source)
    by_id = {}
    for cell in solution["cells"]:
        meta = _meta(cell)
        if "exercise" in meta:
            spec = ExerciseSpec.from_metadata(meta, lesson_path)
            source = (
                cell["source"]
                if spec.source is None
                else mark_solution(cell["source"], spec)
            )
            by_id[spec.name] = source
    for cell in lesson["cells"]:
        meta = cell["metadata"]["nbgrader"]
        meta.pop("checksum", None)
        meta.pop("cell_type", None)
        for key in ("deletable", "editable"):
            cell["metadata"].pop(key, None)
        if meta["solution"]:
            cell["source"] = by_id[meta["grade_id"]]
    return lesson


def dumps(nb: dict) -> str:
    """Deterministic notebook JSON: sorted keys, one-space indent, newline at end."""
    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclasses.dataclass
class BuildReport:
    written: list[Path] = dataclasses.field(default_factory=list)
    drifts: list[Drift] = dataclasses.field(default_factory=list)


def build(
    solutions: Path,
    lessons: Path,
    *,
    check: bool = False,
    nbgrader_dir: Path | None = None,
    lessons_prefix: str = "lessons",
    source: CourseSource | None = None,
    root: Path | None = None,
) -> BuildReport:
    """Refresh solutions/ from the library and write lessons/; with `root`,
    also write where the course lives (`source`, by default the setting)
    into the repository's README course map and pyproject.toml.

    With `check=True` nothing is written; the report lists every drift.
    """
    report = BuildReport()
    source = source or course_source(root)
    if root is not None:
        _publish(root, source, check, report)
    paths = sorted(solutions.glob("*.ipynb")) if solutions.is_dir() else []
    for path in paths:
        original = read(path)
        solution, drifts = refresh_solution(original, path)
        text = dumps(solution)
        if text != path.read_text(encoding="utf-8") and not drifts:
            drifts.append(Drift(path, "is not in the canonical JSON layout"))
        report.drifts.extend(drifts)
        if not check and drifts:
            path.write_text(text, encoding="utf-8")
            report.written.append(path)
        target = lessons / path.name
        lesson_text = dumps(
            make_lesson(solution, f"{lessons_prefix}/{path.name}", source)
        )
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != lesson_text:
            report.drifts.append(
                Drift(
                    target,
                    "missing"
                    if current is None
                    else _first_difference(current, lesson_text),
                )
            )
            if not check:
                lessons.mkdir(parents=True, exist_ok=True)
                target.write_text(lesson_text, encoding="utf-8")
                report.written.append(target)
        if nbgrader_dir is not None and not check:
            nbgrader_dir.mkdir(parents=True, exist_ok=True)
            out = nbgrader_dir / path.name
            out.write_text(
                dumps(
                    nbgrader_source(solution, f"{lessons_prefix}/{path.name}", source)
                ),
                encoding="utf-8",
            )
            report.written.append(out)
    if lessons.is_dir():
        for stale in sorted(lessons.glob("*.ipynb")):
            if not (solutions / stale.name).exists():
                report.drifts.append(Drift(stale, "has no solution notebook"))
    return report


def _publish(root: Path, source: CourseSource, check: bool, report: BuildReport):
    """The README's Colab links, pyproject's [project.urls] and the setting
    itself, from `source`."""
    refreshers = {
        "README.md": lambda text: refresh_readme(text, source),
        "pyproject.toml": lambda text: write_setting(
            refresh_project_urls(text, source), source
        ),
    }
    for name, refresh in refreshers.items():
        path = root / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            wanted = refresh(text)
        except ValueError as error:
            raise BuildError(f"{path}: {error}") from None
        if wanted != text:
            report.drifts.append(
                Drift(path, "names another place than [tool.tf_transformer.course]")
            )
            if not check:
                path.write_text(wanted, encoding="utf-8")
                report.written.append(path)


def _first_difference(current: str, wanted: str) -> str:
    try:
        have, want = json.loads(current), json.loads(wanted)
    except json.JSONDecodeError:
        return "is not valid JSON"
    have_cells, want_cells = have.get("cells", []), want.get("cells", [])
    for index, (a, b) in enumerate(zip(have_cells, want_cells, strict=False)):
        if a != b:
            return f"cell {index} differs from what build writes"
    if len(have_cells) != len(want_cells):
        return f"has {len(have_cells)} cells, build writes {len(want_cells)}"
    return "differs from what build writes (notebook metadata or layout)"


def default_root() -> Path:
    import tf_transformer

    return Path(next(iter(tf_transformer.__path__))).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tf_transformer.course",
        description=(
            "Course notebooks: refresh solutions/ from the library, write lessons/."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "build", help="write lessons/ from solutions/ and the library"
    )
    command.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 on drift"
    )
    command.add_argument("--root", type=Path, default=None, help="repository root")
    command.add_argument("--solutions", type=Path, default=None)
    command.add_argument("--lessons", type=Path, default=None)
    command.add_argument(
        "--nbgrader-source",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "also write nbgrader instructor notebooks (answers between markers) to DIR"
        ),
    )
    where = command.add_argument_group(
        "where the course lives (default: [tool.tf_transformer.course] in "
        "pyproject.toml; a flag given here is written there too)"
    )
    where.add_argument("--repository", metavar="OWNER/NAME", default=None)
    where.add_argument("--branch", default=None)
    where.add_argument("--pypi", metavar="REQUIREMENT", default=None)
    where.add_argument("--wheel-url", metavar="URL", default=None)
    args = parser.parse_args(argv)
    root = args.root or default_root()
    solutions = args.solutions or root / "solutions"
    lessons = args.lessons or root / "lessons"
    # The repository's own files change only when its notebooks are built.
    own = args.root is not None or (args.solutions is None and args.lessons is None)
    try:
        source = course_source(root).replace(
            repository=args.repository,
            branch=args.branch,
            pypi=args.pypi,
            wheel_url=args.wheel_url,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = build(
            solutions,
            lessons,
            check=args.check,
            nbgrader_dir=args.nbgrader_source,
            source=source,
            root=root if own else None,
        )
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not solutions.is_dir() or not any(solutions.glob("*.ipynb")):
        print(f"no solution notebooks in {solutions}; nothing to build")
    if args.check:
        for drift in report.drifts:
            print(f"drift: {drift}")
        if report.drifts:
            print(
                "run `python -m tf_transformer.course build` to update", file=sys.stderr
            )
            return 1
        print("lessons and solutions are up to date")
        return 0
    for path in report.written:
        print(f"wrote {path}")
    return 0
