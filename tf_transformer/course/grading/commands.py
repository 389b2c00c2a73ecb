"""What the grading commands share, and the commands that are not `grade`
itself: the output options (`--json`, `--feedback` and the formats of
`lms`), `grade merge PART...` (joins the parts of a sharded run, see
`shards`) and `check NOTEBOOK` (a student's own run of the grader)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from tf_transformer.cli_types import positive_float, positive_int
from tf_transformer.course.grading import lms, reports, shards

# Options of `grade` that mean nothing to `grade merge` (default values).
GRADING_ONLY = {"shard": None, "resume": False, "lesson": None}


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The reports a run (or a merge) can write besides its `--out` CSV."""
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write a full JSON report"
    )
    parser.add_argument(
        "--feedback",
        type=Path,
        metavar="DIR",
        help="write one Markdown feedback file per submission",
    )
    group = parser.add_argument_group(
        "learning-management systems (see docs/grading.md)"
    )
    for flag, metavar, help in (
        (
            "--gradescope",
            "PATH",
            "Gradescope results.json (a folder of them for several submissions)",
        ),
        (
            "--prairielearn",
            "PATH",
            "PrairieLearn results.json (a folder of them for several submissions)",
        ),
        ("--junit", "FILE", "JUnit XML"),
        ("--canvas", "FILE", "Canvas gradebook CSV"),
        ("--long-csv", "FILE", "one row per student and exercise, for any LMS"),
    ):
        group.add_argument(flag, type=Path, metavar=metavar, help=help)
    group.add_argument(
        "--student-pattern",
        default=lms.CANVAS_DOWNLOAD,
        metavar="REGEX",
        help="reads the student from a submission's name (default: Canvas's "
        "download names, doejane_12345_67890_file.ipynb)",
    )
    group.add_argument(
        "--canvas-column",
        default="Lesson {lesson:02d}",
        metavar="TEMPLATE",
        help="name of a lesson's Canvas column (default 'Lesson {lesson:02d}')",
    )


def prepare_outputs(args: argparse.Namespace) -> str | None:
    """Checks the output options before any grading; the error, or None."""
    try:
        args.students = lms.StudentPattern(args.student_pattern)
        lms.canvas_gradebook([], column=args.canvas_column)
    except ValueError as error:
        return str(error)
    return None


def write_outputs(rows: list, args: argparse.Namespace) -> list[Path]:
    """Every report `args` asks for; the paths written."""
    written = []
    if args.json:
        reports.write_json(rows, args.json)
        written.append(args.json)
    if args.feedback:
        reports.write_feedback(rows, args.feedback)
        written.append(args.feedback)
    if args.gradescope:
        written += lms.write_per_submission(
            rows, args.gradescope, lms.gradescope_results
        )
    if args.prairielearn:
        written += lms.write_per_submission(
            rows, args.prairielearn, lms.prairielearn_results
        )
    if args.junit:
        written.append(lms.write_junit(rows, args.junit))
    if args.canvas:
        written.append(
            lms.write_canvas(
                rows, args.canvas, pattern=args.students, column=args.canvas_column
            )
        )
    if args.long_csv:
        written.append(lms.write_long_csv(rows, args.long_csv, pattern=args.students))
    unmatched = sorted(set(args.students.unmatched))
    if unmatched:
        print(
            f"warning: --student-pattern does not match {len(unmatched)} "
            f"submission(s), named by their folder or file instead: "
            f"{', '.join(unmatched[:5])}{', ...' if len(unmatched) > 5 else ''}",
            file=sys.stderr,
        )
    return written


def rows_from_csv(records: list[dict[str, str]]) -> list:
    """`Row`s from the grades CSV's records."""
    fields = {f.name for f in dataclasses.fields(reports.Row)}
    rows = []
    for record in records:
        values = {k: v for k, v in record.items() if k in fields}
        lesson = values.get("lesson", "")
        values["lesson"] = int(lesson) if lesson.isdigit() else lesson
        values["points"] = float(values["points"])
        values["max_points"] = float(values["max_points"])
        rows.append(reports.Row(**values))
    return rows


def run_merge(args: argparse.Namespace, parts: list[Path]) -> int:
    """`grade merge PART... --out CSV [outputs]`."""
    extra = [
        f"--{name.replace('_', '-')}"
        for name, default in GRADING_ONLY.items()
        if getattr(args, name, default) != default
    ]
    if extra:
        print(f"error: grade merge takes no {', '.join(extra)}", file=sys.stderr)
        return 2
    problem = prepare_outputs(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        columns, records = shards.merge(parts)
    except (shards.MergeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    shards.write_rows(args.out, columns, records)
    rows = rows_from_csv(records)
    for path in write_outputs(rows, args):
        print(f"wrote {path}")
    print(reports.format_summary(rows))
    print(f"wrote {args.out}: {len({r.submission for r in rows})} submissions")
    return 0


def add_grading_options(
    parser: argparse.ArgumentParser, *, execute_by_default: bool = True
) -> None:
    """How submissions are graded: `--timeout`, `--no-execute` (or, where
    notebooks are not run by default, `--execute`), `--sandbox`,
    `--memory-limit`, and `--lesson` where they run by default."""
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=600.0,
        metavar="SECONDS",
        help="limit for running one notebook, and for checking it (default 600)",
    )
    if execute_by_default:
        parser.add_argument(
            "--lesson",
            type=positive_int,
            metavar="N",
            help="grade every submission as lesson N (default: recognise by content)",
        )
        parser.add_argument(
            "--no-execute",
            dest="execute",
            action="store_false",
            help="skip running the notebooks; only check their definitions",
        )
    else:
        parser.add_argument(
            "--execute",
            action="store_true",
            help="also run each notebook top to bottom (more memory and time)",
        )
    parser.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="run submission code in bubblewrap: auto (where Python starts in "
        "it, the default), bwrap (required) or none (resource limits only)",
    )
    parser.add_argument(
        "--no-fork-server",
        action="store_true",
        help="start every answers' process afresh instead of forking it from a "
        "server that imported TensorFlow once (bubblewrap only; same isolation, "
        "about 3 CPU s more per notebook)",
    )
    parser.add_argument(
        "--memory-limit",
        type=positive_float,
        default=4.0,
        metavar="GIB",
        help="data memory of each process running submission code (default 4)",
    )


def confinement(args: argparse.Namespace):
    """`(confine.Sandbox, Limits)` from the options, its line printed to stderr;
    None (the error printed) where the sandbox asked for cannot run."""
    from tf_transformer.course.grading import confine, grade

    limits = confine.Limits(memory=int(args.memory_limit * confine.GIB))
    if getattr(args, "no_fork_server", False):
        os.environ[grade.FORK_SERVER_ENV] = "off"  # read by the grading threads
    try:
        # Starts Python as submission code will run: stops before any row.
        sandbox = grade.resolve_sandbox(args.sandbox, limits)
    except (ValueError, confine.SandboxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    print(sandbox.describe(), file=sys.stderr, flush=True)
    return sandbox, limits


def report_starts() -> None:
    """On stderr, where the fork server could not serve: why, and how many
    answers' processes were started afresh instead (same isolation,
    slower)."""
    from tf_transformer.course.grading import grade

    if grade.STARTS["fork_failure"]:
        print(
            f"note: {grade.STARTS['fork_failure']}; {grade.STARTS['fresh']} "
            "answers' process(es) were started afresh instead (the same "
            "isolation, about 3 CPU s more each)",
            file=sys.stderr,
        )


def add_check_command(commands) -> None:
    parser = commands.add_parser(
        "check",
        help="grade your own notebook as the instructor's run will",
        description="Grade one notebook exactly as `tf-transformer grade` does "
        "(the same installed checks, processes and sandbox) and print its "
        "exercises: points, status and what to look at.",
    )
    parser.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    add_grading_options(parser)
    parser.set_defaults(handler=run_check)


def format_rows(rows: list) -> str:
    """One notebook's rows as a table a student reads."""
    width = max([len(r.exercise or "notebook run") for r in rows] + [8])
    earned = sum(r.points for r in rows)
    possible = sum(r.max_points for r in rows)
    lesson = rows[0].lesson
    title = f"lesson {lesson:02d}" if isinstance(lesson, int) else "no lesson"
    lines = [
        f"{rows[0].submission} ({title}): {earned:g}/{possible:g} points",
        f"{'exercise':<{width}}  {'points':>6}  {'status':<15} what to look at",
    ]
    for row in rows:
        icon = reports.STATUS_ICONS.get(row.status, "")
        points = f"{row.points:g}/{row.max_points:g}"
        lines.append(
            f"{row.exercise or 'notebook run':<{width}}  {points:>6}  "
            f"{icon} {row.status:<13} {row.message}"
        )
    return "\n".join(lines)


def run_check(args: argparse.Namespace) -> int:
    from tf_transformer.course.grading import grade

    if not args.notebook.is_file():
        print(
            f"error: no such notebook. Received: NOTEBOOK={str(args.notebook)!r}",
            file=sys.stderr,
        )
        return 2
    chosen = confinement(args)
    if chosen is None:
        return 2
    mode, limits = chosen
    rows = grade.grade(
        [args.notebook],
        timeout=args.timeout,
        execute=args.execute,
        lesson=args.lesson,
        sandbox=mode,
        limits=limits,
    )
    report_starts()
    if not rows:
        print(f"{args.notebook.name}: this lesson has no graded exercises")
        return 0
    print(format_rows(rows))
    return 0
