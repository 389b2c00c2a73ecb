"""Grade submitted notebooks with the installed checks.

For each submission (a notebook; a folder is searched for notebooks):

1. The JSON is read; an unreadable notebook grades as `error`.
2. The lesson is recognised by content: the exercise answers the notebook
   defines (`def causal_mask`, `class MultiHeadAttention`), not its file
   name or metadata. A notebook of another lesson grades as that lesson
   (the `lesson` column says which); `--lesson N` grades every submission
   as lesson N instead (absent answers are then `missing`).
3. The notebook runs top to bottom in a fresh kernel in its own process
   group, errors in a cell not stopping the rest (at the same time as step
   4, which does not depend on it). If it does not finish
   within the timeout (`timeout`) or its kernel dies (`os._exit`, a
   segfault, a kill: `error`), one extra row with an empty `exercise` says
   so, and the exercises are still graded from the notebook's definitions.
4. The student's definitions are taken from the notebook's cells and
   checked by the installed `tf_transformer.course.checks`: the checks run
   in a judge process that holds the references, the answers in a separate
   process that never has them (see `judge` and `answers`). Each exercise
   has its own timeout; the notebook's check cells, outputs, metadata and
   any monkeypatching count for nothing.

Both processes that run submission code (the notebook's kernel and the
answers' process) run with resource limits (`confine.Limits`) and, where
`bwrap` works, in a bubblewrap sandbox (`sandbox="auto"`).

CSV columns: `submission,lesson,exercise,points,max_points,status,message,
same_as_library,notebook_sha256` (`same_as_library`: `yes` where the
answer's code is the library's reference up to names, comments and
formatting, see `likeness`; `notebook_sha256`: the SHA-256 of the file
graded, which `--resume` compares).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import functools
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from tf_transformer.course.grading import confine, wire
from tf_transformer.course.grading.confine import Limits
from tf_transformer.course.grading.likeness import same_as_library
from tf_transformer.course.grading.reports import Row

DEFAULT_TIMEOUT = 600.0


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
    from tf_transformer.course.grading.answers import defined_names

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


RUNNER = Path(__file__).with_name("runner.py")
ANSWERS = Path(__file__).with_name("answers.py")
STARTUP_ALLOWANCE = 180.0  # seconds for a process to import TensorFlow


@dataclasses.dataclass(frozen=True)
class Confinement:
    """Where and how submission code runs: `mode` is `bwrap` or `none`."""

    mode: str
    limits: Limits
    workdir: str
    private: tuple[str, ...] = ()  # hidden from submission code (bwrap)

    def command(self, script: Path, args=(), hide=()) -> list[str]:
        # Run as a script: the notebook runner then starts without importing
        # tf_transformer (and TensorFlow); the answers' process imports what
        # it needs after hiding the references.
        command = confine.unprivileged([sys.executable, str(script), *args])
        if self.mode == "bwrap":
            return confine.wrap(command, self.workdir, hide=[*self.private, *hide])
        return command


def resolve_sandbox(
    sandbox: str | confine.Sandbox = "auto", limits: Limits | None = None
) -> confine.Sandbox:
    """The sandbox `sandbox` asks for (`auto`: bubblewrap where the
    processes that run submission code start in it); see `confine.resolve`.

    Starts the very command those processes run (`answers.py --probe`, as
    their account, with their limits, inside bubblewrap for `bwrap`), once
    per mode and limits. Raises `confine.SandboxError`, naming the cause and
    the way out, where the chosen mode cannot start them.
    """
    return confine.resolve(
        sandbox, lambda mode: _start_failure(mode, limits or Limits())
    )


@functools.cache
def _start_failure(mode: str, limits: Limits) -> str | None:
    """Why `answers.py --probe` does not start in `mode`, or None."""
    with tempfile.TemporaryDirectory(prefix="tf-transformer-grade-") as workdir:
        confine.hand_over(workdir)
        where = Confinement(mode, limits, os.path.realpath(workdir))
        env = confine.submission_env(where.workdir, limits, STARTUP_ALLOWANCE)
        process = _spawn(where.command(ANSWERS, ["--probe"]), where.workdir, env)
        try:
            process.communicate("", timeout=STARTUP_ALLOWANCE)
        except subprocess.TimeoutExpired:
            return (
                "the processes that run submission code did not start within "
                f"{STARTUP_ALLOWANCE:g} s"
            )
        finally:
            _kill(process)
    if process.returncode == 0:
        return None
    inside = " inside bubblewrap" if mode == "bwrap" else ""
    return (
        f"the processes that run submission code cannot start{inside} "
        f"({confine.ended(process.returncode, process.tail.text())})"
    )


FORK_SERVER_ENV = "TF_TRANSFORMER_FORK_SERVER"
# How the answers' processes of this process's grading runs started.
STARTS = {"forked": 0, "fresh": 0, "fork_failure": ""}
_STARTS_LOCK = threading.Lock()


def fork_server_enabled() -> bool:
    """Whether answers' processes in bubblewrap are forked from a fork
    server (`forks`; the default) rather than started afresh:
    `TF_TRANSFORMER_FORK_SERVER=off` (the command's `--no-fork-server`)
    turns it off."""
    return os.environ.get(FORK_SERVER_ENV, "on").lower() not in ("off", "0", "no")


def _count_starts(done: wire.Done) -> None:
    with _STARTS_LOCK:
        STARTS["forked"] += done.forked
        STARTS["fresh"] += done.fresh
        STARTS["fork_failure"] = done.fork_failure or STARTS["fork_failure"]


def private_paths(paths: Iterable[Path | str]) -> tuple[str, ...]:
    """What submission code must not read, where bubblewrap can hide it: the
    submissions being graded (each notebook is copied into its own folder
    first), and the course's solutions and git history when the library is
    used from a clone of the course. A path that holds what Python needs to
    start (`confine.needed_paths`) stays visible (hiding it would stop it)."""
    package_root = confine.package_root()
    candidates = [Path(p).resolve() for p in paths]
    candidates += [package_root / "solutions", package_root / ".git"]
    needed = confine.needed_paths()
    private = []
    for path in map(str, candidates):
        if os.path.exists(path) and not any(
            confine.inside(item, path) for item in needed
        ):
            private.append(path)
    return tuple(dict.fromkeys(private))


def _spawn(command: list[str], cwd: str, env: dict) -> subprocess.Popen:
    """`command` in its own session; its stderr's last lines in `.tail`."""
    process, tail = confine.start_with_tail(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
        text=True,
    )
    process.tail = tail
    return process


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel and anything it started
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def run_checks(
    cells: list[str],
    exercises: list[str],
    timeout: float,
    where: Confinement,
) -> dict[str, wire.Verdict]:
    """Judge the student's definitions; one verdict per exercise.

    The judge (`judge`, trusted, no submission code) gives each exercise
    `timeout` seconds and restarts the answers' process after a failure. If
    the judge itself stops (a grader bug), the exercise in progress gets
    `error` and a new judge takes the rest.
    """
    from tf_transformer.course.grading.judge import answer_groups

    results: dict[str, wire.Verdict] = {}
    remaining = list(exercises)
    env = confine.submission_env(where.workdir, where.limits, timeout * len(exercises))
    while remaining:
        nonce = secrets.token_hex(16)
        groups = answer_groups(remaining)
        hides = [[*where.private, *_answer_files(g)] for g in groups]
        commands = [where.command(ANSWERS, hide=h) for h in hides]
        layouts = None
        if where.mode == "bwrap" and fork_server_enabled():
            layouts = [confine.layout(where.workdir, hide=h) for h in hides]
        request = wire.JudgeRequest(
            nonce=nonce,
            cells=cells,
            groups=groups,
            timeout=timeout,
            commands=commands,
            env=env,
            cwd=where.workdir,
            layouts=layouts,
        )
        judge = _JUDGES.acquire()
        # The judge enforces each exercise's timeout; this is its backstop.
        allowance = 2 * STARTUP_ALLOWANCE + timeout + 60
        finished = False
        if judge.send(request.dumps()):
            while True:
                line = judge.line(allowance)
                if line is None:
                    break
                if not line.startswith(nonce):
                    continue
                payload = json.loads(line[len(nonce) :])
                if "done" in payload:
                    _count_starts(wire.Done.from_dict(payload))
                    finished = True
                    break
                verdict = wire.Verdict.from_dict(payload)
                if verdict.exercise in remaining:
                    results[verdict.exercise] = verdict
        if finished:
            _JUDGES.release(judge)
        else:
            judge.close()
        remaining = [name for name in remaining if name not in results]
        if not remaining:
            break
        culprit = remaining.pop(0)
        results[culprit] = wire.Verdict(
            culprit,
            "error",
            f"grader error: the judge stopped while checking {culprit}",
        )
    return results


class _Judge:
    """One judge process (`judge`), reused for many submissions."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tf_transformer.course.grading.judge"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=os.getcwd(),
            env=confine.child_env(),
            start_new_session=True,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()

        def pump(stream=self.process.stdout, sink=self.lines) -> None:
            for line in stream:
                sink.put(line)
            sink.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def send(self, text: str) -> bool:
        try:
            self.process.stdin.write(text)
            self.process.stdin.flush()
            return True
        except OSError:
            return False

    def line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        _kill(self.process)


class _JudgePool:
    """Idle judges, shared by all grading threads and calls of this process.

    A judge runs no submission code, so reusing it costs no isolation and
    saves a Python + TensorFlow start per notebook. Idle judges end with
    this process (their stdin closes).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list[_Judge] = []

    def acquire(self) -> _Judge:
        with self.lock:
            while self.idle:
                judge = self.idle.pop()
                if judge.process.poll() is None:
                    return judge
        return _Judge()

    def release(self, judge: _Judge) -> None:
        with self.lock:
            self.idle.append(judge)

    def close(self) -> None:
        with self.lock:
            judges, self.idle = self.idle, []
        for judge in judges:
            judge.close()


_JUDGES = _JudgePool()
atexit.register(_JUDGES.close)


def _answer_files(exercises: list[str]) -> list[str]:
    """The files that hold the graded answers' code (source and caches)."""
    import importlib.util
    import inspect

    from tf_transformer.course import checks

    files = set()
    for name in exercises:
        ex = checks.EXERCISES[name]
        source = inspect.getsourcefile(inspect.unwrap(ex.load_reference()))
        if source:
            files.add(os.path.realpath(source))
            for level in ("", 1, 2):
                files.add(importlib.util.cache_from_source(source, optimization=level))
    return sorted(f for f in files if os.path.isfile(f))


def grade_notebook(
    identity: str,
    path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    execute: bool = True,
    lesson: int | None = None,
    sandbox: str = "none",
    limits: Limits | None = None,
    private: tuple[str, ...] = (),
) -> list[Row]:
    """All rows of one submission. Never raises for anything the notebook does.

    `sandbox` is `bwrap` or `none` here (`grade` resolves `auto`); `private`
    are paths the sandbox hides (`private_paths`).
    """
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
    rows = []
    with tempfile.TemporaryDirectory(prefix="tf-transformer-grade-") as workdir:
        confine.hand_over(workdir)
        where = Confinement(
            sandbox, limits or Limits(), os.path.realpath(workdir), private
        )
        # The checks take the answers from the cells, not from the run, so
        # the run and the checks go side by side (each in its own processes).
        running = None
        if execute:
            running = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            outcome = running.submit(_execute, path, timeout, where)
        names = [ex.name for ex in exercises]
        results = run_checks(cells, names, timeout, where)
        if running is not None:
            running.shutdown()
            outcome = outcome.result()
            if outcome.status != "ok":
                status, message = _execution_failure(outcome, timeout)
                message += "; the exercises are graded from the notebook's definitions"
                rows.append(Row(identity, found, "", 0.0, 0.0, status, message))
    copied = same_as_library(cells, exercises)
    for ex in exercises:
        verdict = results[ex.name]
        row = _row(identity, found, ex, verdict.status, verdict.message)
        row.same_as_library = copied.get(ex.name, "")
        rows.append(row)
    return rows


def _execute(path: Path, timeout: float, where: Confinement) -> wire.NotebookRun:
    """Run the notebook in a fresh kernel; the whole run has `timeout` seconds.

    The notebook is copied into the submission's folder first: inside the
    sandbox nothing else is guaranteed to be visible.
    """
    copy = os.path.join(where.workdir, "submission.ipynb")
    shutil.copyfile(path, copy)
    process = _spawn(
        where.command(RUNNER, [copy, str(timeout)]),
        where.workdir,
        confine.submission_env(
            where.workdir, where.limits, timeout + STARTUP_ALLOWANCE
        ),
    )
    try:
        stdout, _ = process.communicate("", timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        return wire.NotebookRun("timeout")
    finally:
        _kill(process)
    for line in reversed(stdout.splitlines()):
        try:
            return wire.NotebookRun.loads(line)
        except ValueError:  # JSON's errors included
            continue
    return wire.NotebookRun(
        "error",
        message="the notebook runner ended without a result: "
        + confine.ended(code, process.tail.text()),
    )


def _execution_failure(outcome: wire.NotebookRun, timeout: float) -> tuple[str, str]:
    cell = outcome.cell
    where = (
        f" (code cell at index {cell})" if isinstance(cell, int) and cell >= 0 else ""
    )
    if outcome.status == "timeout":
        return "timeout", f"the notebook did not finish within {timeout:g} s{where}"
    if outcome.status == "dead":
        return "error", f"the kernel died while running the notebook{where}"
    return "error", f"the notebook could not be run: {outcome.message}"


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
    sandbox: str | confine.Sandbox = "auto",
    limits: Limits | None = None,
    shard: tuple[int, int] | None = None,
    done: dict[str, list[Row]] | None = None,
    on_submission: Callable[[list[Row]], None] | None = None,
) -> list[Row]:
    """Grade every submission under `paths`; rows in submission order.

    `sandbox`: `auto` (bubblewrap where Python starts in it), `bwrap` or
    `none`, or a `confine.Sandbox` the caller resolved already (see
    `resolve_sandbox`: where submission code cannot start, it raises
    `confine.SandboxError` before any row);
    `limits`: the children's resource limits (defaults: `Limits()`);
    `shard=(I, N)`: only the submissions of shard I of N
    (`grading.shards.select`); `done`: rows, by submission, graded before
    (a resumed run): those submissions are not graded again;
    `on_submission(rows)`: called with each submission's rows as soon as
    they are graded, one call at a time.
    """
    from tf_transformer.course.grading import shards

    paths = list(paths)
    submissions = find_submissions(paths)
    if shard is not None:
        submissions = shards.select(submissions, *shard)
    done = done or {}
    remaining = sum(identity not in done for identity, _ in submissions)
    # Before any row: grading stops here if submission code cannot start.
    if remaining:
        mode = resolve_sandbox(sandbox, limits).mode
    else:
        mode = confine.resolve(sandbox).mode
    private = private_paths(paths)
    results: dict[str, list[Row]] = {}
    lock = threading.Lock()
    graded = [0]

    def one(item: tuple[str, Path]) -> None:
        identity, path = item
        if identity in done:
            with lock:
                results[identity] = done[identity]
            return
        try:
            digest = shards.file_sha256(path)
        except OSError:
            digest = ""
        try:
            rows = grade_notebook(
                identity,
                path,
                timeout=timeout,
                execute=execute,
                lesson=lesson,
                sandbox=mode,
                limits=limits,
                private=private,
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
        for row in rows:
            row.notebook_sha256 = digest
        with lock:
            results[identity] = rows
            if on_submission:
                on_submission(rows)
            graded[0] += 1
            if progress:
                earned = sum(r.points for r in rows)
                total = sum(r.max_points for r in rows)
                progress(f"[{graded[0]}/{remaining}] {identity}: {earned:g}/{total:g}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, submissions))
    return [row for identity, _ in submissions for row in results[identity]]
