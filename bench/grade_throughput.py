"""Grading throughput: notebooks per minute on a synthetic class.

The class: for each lesson, STUDENTS copies of each kind of submission —
`correct` (the solution notebook), `blank` (the exercise notebook, nothing
answered) and `buggy` (the solution with one comparison or arithmetic
operator of each answer flipped). Each configuration grades the whole
class with `tf_transformer.course.grading.grade.grade` and reports the wall-clock
time and notebooks per minute, with and without running the notebooks.

Besides the wall-clock time, each configuration reports the CPU seconds
per notebook (user + system, of this process and every process it starts,
sampled from /proc: on a shared machine load inflates them much less than
the wall-clock time) and how they split between the processes' roles
(judge, answers' process, notebook runner and kernel, bwrap, the grader).

It also measures the fixed cost of a notebook: starting Python and
importing TensorFlow (what each process that runs submission code pays),
and a blank notebook graded alone (`--skip-fixed` skips both).

    python bench/grade_throughput.py [--lessons 2 5 8] [--students 2]
        [--jobs 1 2] [--sandbox auto] [--fork-server on off]
        [--no-execute-only] [--skip-fixed] [--checkout DIR]

`--fork-server on off` runs each configuration with the answers' processes
forked from the judges' fork servers and started afresh, one after the
other (see docs/grading.md, "The fork server").

`--checkout DIR` grades with the `tf_transformer` of another clone (an
older grader, for a before/after comparison on the same class); a grader
without sandbox options runs as it is.
"""

import argparse
import ast
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import machine
import nbformat
import process_tree

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--checkout" in sys.argv:  # before anything imports tf_transformer
    CHECKOUT = pathlib.Path(sys.argv[sys.argv.index("--checkout") + 1]).resolve()
    sys.path.insert(0, str(CHECKOUT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")])
    )

from tf_transformer.course.checks import exercises_of_lesson  # noqa: E402
from tf_transformer.course.grading import grade  # noqa: E402

FLIPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.LtE: ast.Gt,
    ast.Gt: ast.LtE,
    ast.GtE: ast.Lt,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}


class _FlipFirst(ast.NodeTransformer):
    """Flips the first comparison or arithmetic operator it meets."""

    def __init__(self):
        self.done = False

    def visit_Compare(self, node):
        if not self.done and type(node.ops[0]) in FLIPS:
            node.ops[0] = FLIPS[type(node.ops[0])]()
            self.done = True
        return self.generic_visit(node)

    def visit_BinOp(self, node):
        if not self.done and type(node.op) in FLIPS:
            node.op = FLIPS[type(node.op)]()
            self.done = True
        return self.generic_visit(node)


def buggy(source: str, names: set[str]) -> str:
    """`source` with one operator flipped in each definition named in `names`."""
    tree = ast.parse(source)
    changed = False
    for node in tree.body:
        if getattr(node, "name", None) in names:
            flip = _FlipFirst()
            flip.visit(node)
            if not flip.done:  # nothing to flip: a plain wrong answer
                node.body.insert(0, ast.parse("raise ValueError('bug')").body[0])
            changed = True
    return ast.unparse(tree) if changed else source


def notebook_of(folder: str, lesson: int) -> pathlib.Path:
    return next((ROOT / folder).glob(f"{lesson:02d}_*.ipynb"))


def synthetic_class(root: pathlib.Path, lessons, students: int) -> int:
    count = 0
    for lesson in lessons:
        names = {ex.object_name for ex in exercises_of_lesson(lesson)}
        solution = notebook_of("solutions", lesson)
        wrong = nbformat.read(solution, as_version=4)
        for cell in wrong.cells:
            if cell.cell_type == "code":
                try:
                    cell.source = buggy(cell.source, names)
                except SyntaxError:  # IPython syntax: leave the cell
                    pass
        for number in range(students):
            for kind in ("correct", "blank", "buggy"):
                target = root / f"{kind}{number}" / solution.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if kind == "correct":
                    shutil.copyfile(solution, target)
                elif kind == "blank":
                    shutil.copyfile(notebook_of("lessons", lesson), target)
                else:
                    nbformat.write(wrong, target)
                count += 1
    return count


def tensorflow_start() -> float:
    """Seconds to start Python and import TensorFlow, best of 3."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import tensorflow"],
            check=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        times.append(time.perf_counter() - start)
    return min(times)


def own_cpu() -> float:
    """User + system CPU seconds of this process (the grader's threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def close_judges() -> None:
    """End the idle judges: the next configuration starts its own."""
    pool = getattr(grade, "_JUDGES", None)
    if pool is not None:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, nargs="+", default=[2, 5, 8])
    parser.add_argument("--students", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--no-execute-only",
        action="store_true",
        help="only grade from definitions (skip the runs that execute notebooks)",
    )
    parser.add_argument(
        "--fork-server",
        nargs="+",
        choices=("on", "off"),
        default=["on"],
        help="answers' processes forked from a fork server (on) or started "
        "afresh (off); both: each configuration runs with each",
    )
    parser.add_argument("--checkout", help="grade with this clone's tf_transformer")
    parser.add_argument(
        "--skip-fixed",
        action="store_true",
        help="skip the fixed-cost measurements (TensorFlow start, one blank notebook)",
    )
    args = parser.parse_args()
    print(machine.header())
    print(f"grader: {pathlib.Path(grade.__file__).parents[2]}")
    options = {}
    if "sandbox" in grade.grade.__code__.co_varnames:
        from tf_transformer.course.grading import confine

        choose = getattr(grade, "resolve_sandbox", confine.resolve)
        options["sandbox"] = choose(args.sandbox)
        print(options["sandbox"].describe())
    else:
        print("sandbox: this grader has none")
    if not args.skip_fixed:
        print(f"python + import tensorflow: {tensorflow_start():.1f} s (best of 3)")
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder) / "class"
        count = synthetic_class(root, args.lessons, args.students)
        lessons = " ".join(f"{n:02d}" for n in args.lessons)
        print(f"class: {count} notebooks (lessons {lessons}; correct, blank, buggy)")
        blank = notebook_of("lessons", args.lessons[0])
        for execute in () if args.skip_fixed else (False, True):
            start = time.perf_counter()
            grade.grade([blank], timeout=args.timeout, execute=execute, **options)
            what = "run + checked" if execute else "checked"
            print(
                f"one blank notebook ({blank.name}), {what}: "
                f"{time.perf_counter() - start:.1f} s"
            )
        print()
        print(
            "| notebooks run | jobs | fork server | wall-clock s | notebooks/min "
            "| CPU s per notebook | load average before |"
        )
        print("|---|---|---|---|---|---|---|")
        breakdowns = []
        configurations = [
            (execute, jobs, fork)
            for execute in ((False,) if args.no_execute_only else (False, True))
            for jobs in args.jobs
            for fork in args.fork_server
        ]
        for execute, jobs, fork in configurations:
            # Read by the judges' requests (grade.fork_server_enabled).
            os.environ["TF_TRANSFORMER_FORK_SERVER"] = fork
            close_judges()
            load = os.getloadavg()[0]
            sampler = process_tree.CpuSampler(os.getpid())
            sampler.start()
            own = own_cpu()
            start = time.perf_counter()
            rows = grade.grade(
                [root],
                timeout=args.timeout,
                jobs=jobs,
                execute=execute,
                **options,
            )
            seconds = time.perf_counter() - start
            close_judges()
            by_role = sampler.stop()
            by_role["grader (this process)"] = (1, own_cpu() - own)
            cpu = sum(total for _, total in by_role.values())
            breakdowns.append((execute, jobs, fork, by_role))
            graded = len({row.submission for row in rows})
            assert graded == count, (graded, count)
            print(
                f"| {'yes' if execute else 'no'} | {jobs} | {fork} | {seconds:.0f} | "
                f"{60 * count / seconds:.1f} | {cpu / count:.1f} | {load:.1f} |",
                flush=True,
            )
        print()
        print("CPU seconds per notebook by process role (processes started):")
        for execute, jobs, fork, by_role in breakdowns:
            parts = ", ".join(
                f"{name} {total / count:.2f} ({started})"
                for name, (started, total) in sorted(
                    by_role.items(), key=lambda item: -item[1][1]
                )
            )
            print(
                f"- notebooks run: {'yes' if execute else 'no'}, jobs {jobs}, "
                f"fork server {fork}: {parts}"
            )


if __name__ == "__main__":
    main()
