"""A Gradescope autograder for the course's lessons, ready to upload.

`build_gradescope` writes the zip Gradescope expects, with at its root:

- `setup.sh`: run once, as root, when Gradescope builds the autograder's
  image. It makes a virtual environment (`/opt/tf-transformer`) with the
  Python of the image (3.11 or newer: choose Gradescope's Ubuntu 24.04 base
  image) and installs the course into it, from the wheel bundled in
  `wheels/` if the zip has one, else from the pip requirement the zip was
  built with (`tf-transformer==VERSION` by default; a Git URL or an index
  works too). Bubblewrap is installed where apt has it.
- `run_autograder`: run for every submission. It grades the notebooks
  under `/autograder/submission` with the same checks and isolation as
  `tf-transformer grade`, and writes `/autograder/results/results.json`
  (`lms.gradescope_results`). `AUTOGRADER_ROOT` and `AUTOGRADER_PYTHON`
  move `/autograder` and the Python (tests run it in a temporary folder).
- `autograder.json`: the lessons, options and install source it was built
  with (`run_gradescope` reads it).

The assignment's total is the points of its lessons: a lesson the student
handed no notebook for scores its exercises `missing`. With one lesson
every notebook is graded as that lesson; with several, a notebook's lesson
is recognised by the answers it defines, and of two notebooks of one lesson
the better counts. A notebook of another lesson earns nothing and the
result says so. If the grader itself fails, `results.json` still gets
written (score 0, the reason in its output), so Gradescope never shows
"the autograder failed to execute correctly" without a reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from tf_transformer.course.grading import lms

VENV = "/opt/tf-transformer"
CONFIG = "autograder.json"

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
apt-get install -y --no-install-recommends python3-venv bubblewrap || true
PYTHON="${{AUTOGRADER_PYTHON:-python3}}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "tf-transformer needs Python 3.11 or newer: choose Gradescope's" \\
       "Ubuntu 24.04 base image" >&2
  exit 1
fi
"$PYTHON" -m venv {venv}
{venv}/bin/python -m pip install --upgrade pip
if compgen -G "wheels/*.whl" > /dev/null; then
  {venv}/bin/python -m pip install wheels/*.whl
else
  {venv}/bin/python -m pip install {requirement}
fi
{venv}/bin/python -c "import tf_transformer.course.checks"
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-{venv}/bin/python}}"
cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL="${{TF_CPP_MIN_LOG_LEVEL:-3}}"
exec "$PYTHON" -m tf_transformer.course.grading.autograder run --root "$ROOT"
"""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What `autograder.json` holds."""

    lessons: tuple[int, ...]
    execute: bool = False
    timeout: float = 600.0
    sandbox: str = "auto"
    memory_limit_gib: float = 4.0
    visibility: str = "visible"
    stdout_visibility: str = "hidden"
    requirement: str = ""
    wheel: str = ""

    def __post_init__(self):
        from tf_transformer.course import checks

        known = sorted({ex.lesson for ex in checks.EXERCISES.values()})
        if not self.lessons or any(n not in known for n in self.lessons):
            raise ValueError(
                "`lessons` must be lessons with exercises "
                f"({', '.join(f'{n:02d}' for n in known)}). "
                f"Received: lessons={list(self.lessons)!r}"
            )
        if self.sandbox not in ("auto", "bwrap", "none"):
            raise ValueError(
                "`sandbox` must be auto, bwrap or none. "
                f"Received: sandbox={self.sandbox!r}"
            )
        if not self.timeout > 0 or not self.memory_limit_gib > 0:
            raise ValueError(
                "`timeout` and `memory_limit_gib` must be positive. Received: "
                f"timeout={self.timeout!r}, memory_limit_gib={self.memory_limit_gib!r}"
            )
        for name in ("visibility", "stdout_visibility"):
            lms.check_choice(name, getattr(self, name), lms.GRADESCOPE_VISIBILITY)


def default_requirement() -> str:
    try:
        return f"tf-transformer=={metadata.version('tf-transformer')}"
    except metadata.PackageNotFoundError:
        return "tf-transformer"


def build_gradescope(
    out: Path | str,
    lessons: Sequence[int],
    *,
    wheel: Path | str | None = None,
    requirement: str | None = None,
    **options,
) -> Path:
    """Write Gradescope's autograder zip for `lessons` to `out`.

    `wheel`: a built wheel of the course to bundle (setup.sh installs it);
    otherwise setup.sh installs `requirement` with pip (default: this
    version from the package index). `options` are `Settings`' other fields.
    """
    if wheel is not None:
        wheel = Path(wheel)
        if not (wheel.is_file() and wheel.suffix == ".whl"):
            raise ValueError(
                f"`wheel` must be a .whl file. Received: wheel={str(wheel)!r}"
            )
    settings = Settings(
        lessons=tuple(int(n) for n in lessons),
        requirement=requirement or default_requirement(),
        wheel=wheel.name if wheel else "",
        **options,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    config = dataclasses.asdict(settings)
    config["lessons"] = list(settings.lessons)

    def executable(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # a regular file, rwxr-xr-x
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    quoted = "'" + settings.requirement.replace("'", "'\\''") + "'"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            executable("setup.sh"), SETUP.format(venv=VENV, requirement=quoted)
        )
        archive.writestr(executable("run_autograder"), RUN.format(venv=VENV))
        archive.writestr(CONFIG, json.dumps(config, indent=1) + "\n")
        if wheel is not None:
            archive.write(wheel, f"wheels/{wheel.name}")
    return out


def read_settings(path: Path | str) -> Settings:
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    config["lessons"] = tuple(config["lessons"])
    return Settings(**config)


def _choose(rows: list, settings: Settings) -> tuple[list, list[str]]:
    """The rows that count, relabelled as one submission, and notes on the
    notebooks left out."""
    from tf_transformer.course.grading import grade

    notes = []
    best: dict[int, list] = {}
    for submission, group in lms.by_submission(rows).items():
        lesson = group[0].lesson
        if lesson not in settings.lessons:
            what = f"lesson {lesson:02d}" if isinstance(lesson, int) else "no lesson"
            reason = next((r.message for r in group if not r.exercise), "")
            notes.append(
                f"{submission}: looks like {what}, which this assignment does not "
                f"grade{'; ' + reason if reason else ''}"
            )
            continue
        if lesson in best:
            score = sum(r.points for r in group)
            kept = best[lesson]
            if score > sum(r.points for r in kept):
                best[lesson], group = group, kept
            notes.append(
                f"{group[0].submission}: another notebook of lesson {lesson:02d} "
                "scored at least as much; this one does not count"
            )
            continue
        best[lesson] = group
    chosen = []
    for lesson in settings.lessons:
        if lesson in best:
            chosen += best[lesson]
        else:
            chosen += grade._rows_for_all(
                "submission",
                lesson,
                "missing",
                f"no notebook of lesson {lesson:02d} was found in the submission",
            )
    return [dataclasses.replace(r, submission="submission") for r in chosen], notes


def run_gradescope(root: Path | str = "/autograder") -> dict:
    """Grade `root/submission` and write `root/results/results.json`."""
    root = Path(root)
    start = time.monotonic()
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        settings = read_settings(root / "source" / CONFIG)
        from tf_transformer.course.grading import confine, grade

        limits = confine.Limits(memory=int(settings.memory_limit_gib * confine.GIB))
        # Starts Python as submission code will run; a failure ends in the
        # result's message below, before any row.
        sandbox = grade.resolve_sandbox(settings.sandbox, limits)
        print(sandbox.describe(), flush=True)
        submission = root / "submission"
        notebooks = grade.find_submissions([submission]) if submission.is_dir() else []
        rows = []
        if notebooks:
            rows = grade.grade(
                [submission],
                timeout=settings.timeout,
                execute=settings.execute,
                lesson=settings.lessons[0] if len(settings.lessons) == 1 else None,
                sandbox=sandbox,
                limits=limits,
                progress=lambda line: print(line, flush=True),
            )
        counted, notes = _choose(rows, settings)
        results = lms.gradescope_results(
            counted,
            execution_time=time.monotonic() - start,
            visibility=settings.visibility,
            stdout_visibility=settings.stdout_visibility,
        )
        if not notebooks:
            notes.append("the submission holds no notebook (.ipynb)")
        if notes:
            results["output"] += "\n" + "\n".join(notes)
    except Exception as error:  # noqa: BLE001 - Gradescope must get a reason
        traceback.print_exc()
        results = {
            "score": 0.0,
            "output": f"The autograder failed: {type(error).__name__}: {error}. "
            "Please tell your instructor.",
            "execution_time": round(time.monotonic() - start),
            "tests": [],
        }
    results_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {results_path}: {results['score']:g} points", flush=True)
    return results


# --- the command -----------------------------------------------------------


def _lesson_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a lesson number such as 05, got {text!r}"
        ) from None


def add_command(commands) -> None:
    """`tf-transformer autograder gradescope ...`"""
    from tf_transformer.course.grading.commands import add_grading_options

    parser = commands.add_parser(
        "autograder",
        help="build an autograder for a learning-management system",
        description="Build an autograder that grades the course's notebooks "
        "where students hand them in. See docs/grading.md.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    gradescope = kinds.add_parser(
        "gradescope",
        help="Gradescope's autograder zip (setup.sh, run_autograder)",
        description="Write the zip to upload as a Gradescope programming "
        "assignment's autograder: setup.sh installs the course, run_autograder "
        "grades /autograder/submission into /autograder/results/results.json. "
        "See docs/grading.md.",
    )
    gradescope.add_argument(
        "--lessons",
        nargs="+",
        type=_lesson_number,
        required=True,
        metavar="N",
        help="the lessons this assignment grades (05 08)",
    )
    gradescope.add_argument("--out", type=Path, required=True, metavar="ZIP")
    source = gradescope.add_mutually_exclusive_group()
    source.add_argument(
        "--wheel", type=Path, metavar="WHL", help="bundle this wheel of the course"
    )
    source.add_argument(
        "--requirement",
        metavar="SPEC",
        help="what setup.sh installs with pip (default tf-transformer==VERSION)",
    )
    add_grading_options(gradescope, execute_by_default=False)
    gradescope.add_argument(
        "--visibility", choices=lms.GRADESCOPE_VISIBILITY, default="visible"
    )
    gradescope.add_argument(
        "--stdout-visibility", choices=lms.GRADESCOPE_VISIBILITY, default="hidden"
    )
    gradescope.set_defaults(handler=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    try:
        out = build_gradescope(
            args.out,
            args.lessons,
            wheel=args.wheel,
            requirement=args.requirement,
            execute=args.execute,
            timeout=args.timeout,
            sandbox=args.sandbox,
            memory_limit_gib=args.memory_limit,
            visibility=args.visibility,
            stdout_visibility=args.stdout_visibility,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m " + __spec__.name)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="grade ROOT/submission (run_autograder)")
    run.add_argument("--root", type=Path, default=Path("/autograder"))
    args = parser.parse_args(argv)
    run_gradescope(args.root)
    return 0  # the result, even a failed one, is in results.json


if __name__ == "__main__":
    sys.exit(main())
