"""Grade submitted notebooks with the installed checks.

For each submission (a notebook; a folder is searched for notebooks):

1. The JSON is read; an unreadable notebook grades as `error`.
2. The lesson is recognised by content: the exercise answers the notebook
   defines (`def causal_mask`, `class MultiHeadAttention`), not its file
   name or metadata. A notebook of another lesson grades as that lesson
   (the `lesson` column says which); `--lesson N` grades every submission
   as lesson N instead (absent answers are then `missing`).
3. The notebook runs top to bottom in a fresh kernel in its own process
   group, errors in a cell not stopping the rest. If it does not finish
   within the timeout every exercise is `timeout`; if the kernel dies
   (`os._exit`, a segfault, a kill) every exercise is `error`.
4. The student's definitions are taken from the notebook's cells and
   checked by the installed `tf_transformer.course.checks` in a separate,
   fresh process (see `tf_transformer.course._sandbox`): the notebook's
   check cells, outputs, metadata and any monkeypatching count for nothing.

CSV columns: `submission,lesson,exercise,points,max_points,status,message`.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CSV_COLUMNS = (
    "submission",
    "lesson",
    "exercise",
    "points",
    "max_points",
    "status",
    "message",
)
DEFAULT_TIMEOUT = 600.0


@dataclasses.dataclass
class Row:
    """One CSV row: a submission's result on one exercise."""

    submission: str
    lesson: int | str
    exercise: str
    points: float
    max_points: float
    status: str
    message: str

    def as_csv(self) -> dict[str, str]:
        return {
            "submission": self.submission,
            "lesson": str(self.lesson),
            "exercise": self.exercise,
            "points": f"{self.points:g}",
            "max_points": f"{self.max_points:g}",
            "status": self.status,
            "message": self.message,
        }


def find_submissions(paths: Iterable[Path | str]) -> list[tuple[str, Path]]:
    """(identity, path) of every notebook under `paths`.

    With one PATH the identity is the notebook's path relative to it; with
    several, it starts with the PATH's own name (`alice/01_attention.ipynb`).
    """
    roots = [Path(p) for p in paths]
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(
                f"No such file or folder. Received: PATH={str(root)!r}"
            )
        if root.is_dir():
            notebooks = [
                p
                for p in sorted(root.rglob("*.ipynb"))
                if ".ipynb_checkpoints" not in p.parts
            ]
            items = [(p.relative_to(root).as_posix(), p) for p in notebooks]
            if len(roots) > 1:
                items = [(f"{root.name}/{identity}", p) for identity, p in items]
        else:
            items = [(root.name, root)]
        for identity, path in items:
            unique, number = identity, 2
            while unique in seen:
                unique, number = f"{identity} ({number})", number + 1
            seen.add(unique)
            found.append((unique, path))
    return found


def _code_cells(notebook: dict) -> list[str]:
    cells = []
    for cell in notebook.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def identify_lesson(cells: list[str], filename: str = "") -> int | None:
    """The lesson whose exercise answers the cells define most (ties: earliest).

    Falls back to the number the file name starts with (`03_...`), also for
    the course's lessons without exercises (00 and 01), which then grade as
    no rows at all.
    """
    from tf_transformer.course import checks
    from tf_transformer.course._sandbox import defined_names

    names, _ = defined_names(cells)
    votes: dict[int, int] = {}
    for ex in checks.EXERCISES.values():
        if ex.object_name in names:
            votes[ex.lesson] = votes.get(ex.lesson, 0) + 1
    if votes:
        return min(votes, key=lambda lesson: (-votes[lesson], lesson))
    match = re.match(r"(\d+)", Path(filename).name)
    last_lesson = max(ex.lesson for ex in checks.EXERCISES.values())
    if match and int(match.group(1)) <= last_lesson:
        return int(match.group(1))
    return None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    import tf_transformer

    package_root = str(Path(next(iter(tf_transformer.__path__))).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_root, env.get("PYTHONPATH")])
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("TF_TRANSFORMER_GRADING", None)
    env["PYTHONHASHSEED"] = "0"
    return env


SANDBOX = Path(__file__).with_name("_sandbox.py")
STARTUP_ALLOWANCE = 180.0  # seconds for the checking process to import TensorFlow


def _spawn(args: list[str], cwd: str) -> subprocess.Popen:
    return subprocess.Popen(
        # Run as a script: the notebook runner then starts without importing
        # tf_transformer (and TensorFlow); the checker imports what it needs.
        [sys.executable, str(SANDBOX), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=_child_env(),
        start_new_session=True,
        text=True,
    )


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel and anything it started
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def run_checks(
    cells: list[str], exercises: list[str], timeout: float, cwd: str
) -> dict[str, dict]:
    """Check the student's definitions in fresh processes; one result per exercise.

    Each exercise's check has `timeout` seconds. If the checking process
    hangs or dies, the exercise in progress gets `timeout` or `error` and
    a new process checks the rest.
    """
    results: dict[str, dict] = {}
    remaining = list(exercises)
    while remaining:
        nonce = secrets.token_hex(16)
        request = json.dumps({"nonce": nonce, "cells": cells, "exercises": remaining})
        process = _spawn(["check"], cwd)
        lines: queue.Queue = queue.Queue()

        def pump(stream=process.stdout, sink=lines) -> None:
            for line in stream:
                sink.put(line)
            sink.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            process.stdin.write(request)
            process.stdin.close()
        except OSError:
            pass
        started, timed_out = None, False
        deadline = time.monotonic() + STARTUP_ALLOWANCE + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                timed_out = True
                break
            if line is None:
                break
            if not line.startswith(nonce):
                continue
            payload = json.loads(line[len(nonce) :])
            if "start" in payload:
                started = payload["start"]
                deadline = time.monotonic() + timeout
            elif payload.get("exercise") in remaining:
                results[payload["exercise"]] = payload
                if payload.get("tampered"):
                    for name in remaining:
                        results.setdefault(name, dict(payload, exercise=name))
        _kill(process)
        reader.join(timeout=5)
        code = process.returncode
        remaining = [name for name in remaining if name not in results]
        if not remaining:
            break
        culprit = started if started in remaining else remaining[0]
        if timed_out:
            message = f"checking {culprit} took longer than {timeout:g} s"
            results[culprit] = {"status": "timeout", "message": message}
        else:
            message = (
                f"the checking process died while checking {culprit} (exit code {code})"
            )
            results[culprit] = {"status": "error", "message": message}
        remaining.remove(culprit)
    return results


def grade_notebook(
    identity: str,
    path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    execute: bool = True,
    lesson: int | None = None,
) -> list[Row]:
    """All rows of one submission. Never raises for anything the notebook does."""
    from tf_transformer.course import checks

    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(notebook, dict) or not isinstance(
            notebook.get("cells"), list
        ):
            raise ValueError("no list of cells")
    except (OSError, ValueError, UnicodeDecodeError) as error:
        reason = f"not a readable notebook ({type(error).__name__}: {str(error)[:120]})"
        return _rows_for_all(identity, lesson, "error", reason)
    cells = _code_cells(notebook)
    found = lesson if lesson is not None else identify_lesson(cells, path.name)
    if found is None:
        return _rows_for_all(
            identity, None, "error", "no exercise of any lesson is defined"
        )
    exercises = checks.exercises_of_lesson(found)
    if not exercises:
        return []  # a lesson without exercises: nothing to grade
    with tempfile.TemporaryDirectory(prefix="tf-transformer-grade-") as workdir:
        if execute:
            outcome = _execute(path, timeout, workdir)
            if outcome["status"] != "ok":
                status, message = _execution_failure(outcome, timeout)
                return [_row(identity, found, ex, status, message) for ex in exercises]
        results = run_checks(cells, [ex.name for ex in exercises], timeout, workdir)
    rows = []
    for ex in exercises:
        result = results[ex.name]
        rows.append(_row(identity, found, ex, result["status"], result["message"]))
    return rows


def _execute(path: Path, timeout: float, workdir: str) -> dict:
    """Run the notebook in a fresh kernel; the whole run has `timeout` seconds."""
    process = _spawn(["execute", str(Path(path).resolve()), str(timeout)], workdir)
    try:
        stdout, _ = process.communicate("", timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "cell": None}
    finally:
        _kill(process)
    for line in reversed(stdout.splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {
        "status": "error",
        "message": f"the notebook runner exited with code {code}",
    }


def _execution_failure(outcome: dict, timeout: float) -> tuple[str, str]:
    cell = outcome.get("cell")
    where = (
        f" (code cell at index {cell})" if isinstance(cell, int) and cell >= 0 else ""
    )
    if outcome["status"] == "timeout":
        return "timeout", f"the notebook did not finish within {timeout:g} s{where}"
    if outcome["status"] == "dead":
        return "error", f"the kernel died while running the notebook{where}"
    return "error", f"the notebook could not be run: {outcome.get('message', '')}"


def _row(identity: str, lesson: int, ex, status: str, message: str) -> Row:
    points = float(ex.points) if status == "passed" else 0.0
    return Row(
        identity, lesson, ex.name, points, float(ex.points), status, _one_line(message)
    )


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 500 else text[:497] + "..."


def _rows_for_all(
    identity: str, lesson: int | None, status: str, message: str
) -> list[Row]:
    from tf_transformer.course import checks

    if lesson is None:
        return [Row(identity, "", "", 0.0, 0.0, status, message)]
    return [
        _row(identity, lesson, ex, status, message)
        for ex in checks.exercises_of_lesson(lesson)
    ]


def grade(
    paths: Iterable[Path | str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int = 1,
    execute: bool = True,
    lesson: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Grade every submission under `paths`; rows in submission order."""
    submissions = find_submissions(paths)
    results: dict[str, list[Row]] = {}
    lock = threading.Lock()
    done = [0]

    def one(item: tuple[str, Path]) -> None:
        identity, path = item
        try:
            rows = grade_notebook(
                identity, path, timeout=timeout, execute=execute, lesson=lesson
            )
        except Exception as error:  # noqa: BLE001 - a grader bug must not lose the others
            rows = [
                Row(
                    identity,
                    "",
                    "",
                    0.0,
                    0.0,
                    "error",
                    f"grader error: {error!r}"[:300],
                )
            ]
        with lock:
            results[identity] = rows
            done[0] += 1
            if progress:
                earned = sum(r.points for r in rows)
                total = sum(r.max_points for r in rows)
                progress(
                    f"[{done[0]}/{len(submissions)}] {identity}: {earned:g}/{total:g}"
                )

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, submissions))
    return [row for identity, _ in submissions for row in results[identity]]


def write_csv(rows: list[Row], path: Path | str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())


def summary(rows: list[Row]) -> list[dict]:
    """Per exercise: submissions, mean score, pass rate."""
    table: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.exercise:
            table.setdefault((row.lesson, row.exercise), []).append(row)
    out = []
    for (lesson, exercise), group in table.items():
        out.append(
            {
                "lesson": lesson,
                "exercise": exercise,
                "submissions": len(group),
                "mean_points": sum(r.points for r in group) / len(group),
                "max_points": group[0].max_points,
                "pass_rate": sum(r.status == "passed" for r in group) / len(group),
            }
        )
    return out


def format_summary(rows: list[Row]) -> str:
    lines = [f"{'lesson':>6}  {'exercise':<30} {'n':>4} {'mean':>9} {'passed':>7}"]
    for item in summary(rows):
        mean = f"{item['mean_points']:.2f}/{item['max_points']:g}"
        lines.append(
            f"{item['lesson']!s:>6}  {item['exercise']:<30} {item['submissions']:>4} "
            f"{mean:>9} {item['pass_rate']:>7.0%}"
        )
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path | str) -> None:
    report = {
        "columns": list(CSV_COLUMNS),
        "submissions": _by_submission(rows),
        "summary": summary(rows),
    }
    Path(path).write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _by_submission(rows: list[Row]) -> list[dict]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.submission, []).append(row)
    return [
        {
            "submission": identity,
            "lesson": group[0].lesson,
            "points": sum(r.points for r in group),
            "max_points": sum(r.max_points for r in group),
            "exercises": [dataclasses.asdict(r) for r in group],
        }
        for identity, group in grouped.items()
    ]


STATUS_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "timeout": "⏱️",
    "missing": "❔",
    "not_attempted": "⏳",
}


def write_feedback(rows: list[Row], folder: Path | str) -> list[Path]:
    """One Markdown file per submission, named after its identity."""
    folder = Path(folder)
    written = []
    for item in _by_submission(rows):
        name = (
            re.sub(r"[^A-Za-z0-9._-]+", "__", item["submission"]).strip("_")
            or "submission"
        )
        path = folder / f"{Path(name).stem if name.endswith('.ipynb') else name}.md"
        lines = [
            f"# Feedback: {item['submission']}",
            "",
            f"Lesson {item['lesson']} — {item['points']:g}/{item['max_points']:g} "
            "points.",
            "",
            "| exercise | points | status | what to look at |",
            "|---|---|---|---|",
        ]
        for row in item["exercises"]:
            icon = STATUS_ICONS.get(row["status"], "")
            message = row["message"].replace("|", "\\|")
            lines.append(
                f"| {row['exercise'] or '—'} | {row['points']:g}/{row['max_points']:g} "
                f"| {icon} {row['status']} | {message} |"
            )
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written
