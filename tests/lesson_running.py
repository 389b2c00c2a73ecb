"""Run a lesson notebook unanswered and report what its self-checks said."""

import json
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def cell_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


def run_unanswered(path, tmp_path, timeout=300):
    """Execute the lesson as a student who answered nothing would.

    Returns (errors, check_reports): the cells that raised, and for each
    self-check cell the text it printed.
    """
    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors, reports = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("tf_transformer", {})
        if "check" in meta:
            reports.append((meta["check"], cell_text(cell)))
        elif "exercise" not in meta and any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            # Exercise cells hold the stubs; every other cell must run.
            errors.append((cell.source[:80], cell_text(cell)[-500:]))
    return errors, reports


def library_exercises(path):
    notebook = json.loads(Path(path).read_text())
    names = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("tf_transformer", {})
        if "exercise" in meta and "source" in meta:
            names.append(meta["exercise"])
    return names


def assert_runs_unanswered(path, tmp_path):
    """The lesson runs to the end and each library self-check says "not
    implemented yet" (no traceback)."""
    errors, reports = run_unanswered(path, tmp_path)
    assert not errors, errors
    exercises = library_exercises(path)
    for exercise in exercises:
        assert any(name == exercise for name, _ in reports), exercise
    for name, text in reports:
        if name in exercises:
            assert "not implemented yet" in text, (name, text)
            assert "Traceback" not in text
