"""The `tf-transformer` command.

Subcommands register themselves in `build_parser`; each sets `handler` to a
function taking the parsed arguments and returning an exit code. `grade`,
the main job's `train`, `evaluate` and `translate`, and the image
captioner's `train-captioner` and `caption` (tf_transformer.jobs) share the
same parser.

A command prints its own lines only: TensorFlow's start-up lines are held
back by the entry point (`tf_transformer_cli`), and TensorFlow's, absl's and
TFDS's Python log records below ERROR by `main`. `--verbose` (or
`TF_TRANSFORMER_VERBOSE=1`) shows them all. Errors always surface.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import sys
from pathlib import Path

from tf_transformer import jobs
from tf_transformer.cli_types import positive_int
from tf_transformer_cli.verbosity import VERBOSE_ENV, verbose_from_environment

# Python loggers whose INFO and WARNING records are TensorFlow's, not ours.
LIBRARY_LOGGERS = ("absl", "tensorflow", "tensorflow_datasets", "h5py")


def _shard(text: str) -> tuple[int, int]:
    from tf_transformer.course.grading import shards

    try:
        return shards.parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _grading_commands():
    from tf_transformer.course.grading import commands

    return commands


def add_grade_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grade",
        help="grade submitted notebooks with the installed checks",
        description=(
            "Run each submitted notebook in a fresh kernel, then check the student's "
            "definitions with the installed checks in a separate process. Writes one "
            "CSV row per submission and exercise: "
            "submission,lesson,exercise,points,max_points,status,message,"
            "same_as_library,notebook_sha256. `tf-transformer grade merge PART... "
            "--out CSV` joins the parts of a run split with --shard. "
            "See docs/grading.md."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a notebook, or a folder searched for notebooks",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="CSV", help="grades CSV"
    )
    _grading_commands().add_output_options(parser)
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="grade only shard I (0 to N-1) of N; join the parts with "
        "`tf-transformer grade merge PART... --out CSV`",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of --out for the notebooks that did not change",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="submissions graded in parallel (default 1)",
    )
    _grading_commands().add_grading_options(parser)
    parser.set_defaults(handler=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    from tf_transformer.course.grading import grade, reports, shards

    commands = _grading_commands()
    if args.paths[0] == Path("merge") and not args.paths[0].exists():
        return commands.run_merge(args, args.paths[1:])
    for path in args.paths:
        if not path.exists():
            print(
                f"error: no such file or folder. Received: PATH={str(path)!r}",
                file=sys.stderr,
            )
            return 2
    problem = commands.prepare_outputs(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    confinement = commands.confinement(args)
    if confinement is None:
        return 2
    mode, limits = confinement
    submissions = grade.find_submissions(args.paths)
    if args.shard:
        submissions = shards.select(submissions, *args.shard)
        shards.write_manifest(args.out, *args.shard, [s for s, _ in submissions])
    done = {}
    if args.resume:
        records = shards.reusable_rows(args.out, submissions)
        done = {s: commands.rows_from_csv(group) for s, group in records.items()}
        print(
            f"resuming: {len(done)} submission(s) kept from {args.out}", file=sys.stderr
        )
    # Rows go to --out as submissions finish: a run that is killed keeps them.
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, reports.CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()

        def append(rows):
            writer.writerows(row.as_csv() for row in rows)
            handle.flush()

        for rows in done.values():
            append(rows)
        rows = grade.grade(
            args.paths,
            timeout=args.timeout,
            jobs=args.jobs,
            execute=args.execute,
            lesson=args.lesson,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            sandbox=mode,
            limits=limits,
            shard=args.shard,
            done=done,
            on_submission=append,
        )
    commands.report_starts()
    reports.write_csv(rows, args.out)  # in submission order
    for path in commands.write_outputs(rows, args):
        print(f"wrote {path}")
    print(reports.format_summary(rows))
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-transformer",
        description=(
            "The Transformer course and library: training, evaluation, translation, "
            "image captioning and grading. Without a command: train the default "
            "translator on the offline corpus, evaluate it and show translations "
            "(same as `train`)."
        ),
    )
    _add_verbose(parser, default=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    jobs.add_commands(commands)
    add_grade_command(commands)
    from tf_transformer.course.grading import autograder

    autograder.add_command(commands)
    _grading_commands().add_check_command(commands)
    for command in commands.choices.values():
        # Before or after the command; a subcommand's default must not
        # overwrite the value given before it.
        _add_verbose(command, default=argparse.SUPPRESS)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help=f"also show TensorFlow's own log lines (or set {VERBOSE_ENV}=1)",
    )


@contextlib.contextmanager
def library_logs_shown(verbose: bool):
    """Without `verbose`, the libraries' Python log records below ERROR are
    dropped while the command runs; their levels are restored afterwards."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not verbose:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the main job: `train` with its defaults
        args = parser.parse_args(["train", *(argv or sys.argv[1:])])
    verbose = args.verbose or verbose_from_environment()
    with library_logs_shown(verbose):
        return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
