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
import logging
import sys
from pathlib import Path

from tf_transformer_cli import VERBOSE_ENV, verbose_from_environment

# Python loggers whose INFO and WARNING records are TensorFlow's, not ours.
LIBRARY_LOGGERS = ("absl", "tensorflow", "tensorflow_datasets", "h5py")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def add_grade_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grade",
        help="grade submitted notebooks with the installed checks",
        description=(
            "Run each submitted notebook in a fresh kernel, then check the student's "
            "definitions with the installed checks in a separate process. Writes one "
            "CSV row per submission and exercise: "
            "submission,lesson,exercise,points,max_points,status,message,"
            "same_as_library. See docs/grading.md."
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
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write a full JSON report"
    )
    parser.add_argument(
        "--feedback",
        type=Path,
        metavar="DIR",
        help="write one Markdown feedback file per submission",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=600.0,
        metavar="SECONDS",
        help="limit for running one notebook, and for checking it (default 600)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="submissions graded in parallel (default 1)",
    )
    parser.add_argument(
        "--lesson",
        type=_positive_int,
        metavar="N",
        help="grade every submission as lesson N (default: recognise by content)",
    )
    parser.add_argument(
        "--no-execute",
        dest="execute",
        action="store_false",
        help="skip running the notebooks; only check their definitions",
    )
    parser.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="run submission code in bubblewrap: auto (where bwrap works, the "
        "default), bwrap (required) or none (resource limits only)",
    )
    parser.add_argument(
        "--memory-limit",
        type=_positive_float,
        default=4.0,
        metavar="GIB",
        help="data memory of each process running submission code (default 4)",
    )
    parser.set_defaults(handler=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    from tf_transformer.course.grading import grade, reports

    for path in args.paths:
        if not path.exists():
            print(
                f"error: no such file or folder. Received: PATH={str(path)!r}",
                file=sys.stderr,
            )
            return 2
    from tf_transformer.course.grading import confine

    try:
        sandbox = confine.resolve(args.sandbox)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(sandbox.describe(), file=sys.stderr, flush=True)
    rows = grade.grade(
        args.paths,
        timeout=args.timeout,
        jobs=args.jobs,
        execute=args.execute,
        lesson=args.lesson,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        sandbox=sandbox,
        limits=confine.Limits(memory=int(args.memory_limit * confine.GIB)),
    )
    reports.write_csv(rows, args.out)
    if args.json:
        reports.write_json(rows, args.json)
    if args.feedback:
        reports.write_feedback(rows, args.feedback)
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
    from tf_transformer import jobs

    jobs.add_commands(commands)
    add_grade_command(commands)
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
