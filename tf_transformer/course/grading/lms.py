"""The grader's rows in the formats of the places instructors grade.

Every writer here takes the rows of one grading run (a `Row` per submission
and exercise, plus a notebook row with an empty `exercise` where the run did
not finish) and writes them for one system:

- `gradescope_results`: Gradescope's autograder `results.json` (one test per
  exercise, the check's hint as the test's output);
- `prairielearn_results`: PrairieLearn's external-grader `results.json`
  (score in [0, 1], per-test points and messages; a notebook that could not
  be read is `gradable: false`, which costs the student no attempt);
- `junit_xml`: JUnit XML (a test suite per submission, a test case per
  exercise, the hint in each failure) for CodeGrade, GitHub Classroom and CI;
- `write_canvas`: a Canvas gradebook CSV (one row per student, one column per
  lesson);
- `write_long_csv`: one row per student and exercise, for any LMS.

Canvas and the long CSV need the student behind each submission. It is read
from the submission's name by a regular expression (`StudentPattern`); the
default reads the names Canvas gives the files of "Download Submissions"
(`doejane_LATE_12345_67890_05_masking.ipynb`: the student's sortable name,
`LATE_` for a late one, the Canvas user ID, the submission ID, the file name
the student uploaded).

The rows are `reports.Row`s.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from tf_transformer.course.grading.reports import CSV_COLUMNS

GRADESCOPE_VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
NOTEBOOK_TEST = "notebook run"  # the name of the notebook row's test case
# Statuses that mean "the answer is wrong" (JUnit: failure); the others that
# earn nothing mean "it could not be judged" (JUnit: error).
WRONG = ("failed", "missing", "not_attempted")
# Canvas's download name: sortable name, LATE_ if late, user ID, submission ID,
# then the name the student's file had.
CANVAS_DOWNLOAD = r"(?:^|/)(?P<name>[^/_]+)_(?:LATE_)?(?P<id>\d+)_\d+_[^/]+$"
CANVAS_IDENTITY_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
STUDENT_COLUMNS = ("student", "student_id", "sis_user_id", "sis_login_id", "section")
LONG_CSV_COLUMNS = (*STUDENT_COLUMNS, *CSV_COLUMNS)


def by_submission(rows: Iterable) -> dict[str, list]:
    """The rows grouped by submission, in the order they first appear."""
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.submission, []).append(row)
    return grouped


def _lesson_label(lesson) -> str:
    return f"{lesson:02d}" if isinstance(lesson, int) else str(lesson or "?")


def _test_name(row) -> str:
    name = row.exercise or NOTEBOOK_TEST
    return f"Lesson {_lesson_label(row.lesson)}: {name}"


def _only_one(rows: Sequence, what: str) -> list:
    groups = by_submission(rows)
    if len(groups) != 1:
        raise ValueError(
            f"{what} describes one submission; the rows have {len(groups)}. "
            f"Received: submissions={list(groups)[:5]!r}"
        )
    return next(iter(groups.values()))


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(choices)}. Received: {name}={value!r}"
        )


def _summary_line(rows: Sequence) -> str:
    earned = sum(r.points for r in rows)
    possible = sum(r.max_points for r in rows)
    passed = sum(r.status == "passed" for r in rows if r.exercise)
    graded = sum(1 for r in rows if r.exercise)
    return f"{earned:g}/{possible:g} points; {passed} of {graded} exercises passed."


# --- Gradescope ------------------------------------------------------------


def gradescope_results(
    rows: Sequence,
    *,
    execution_time: float | None = None,
    visibility: str = "visible",
    stdout_visibility: str = "hidden",
) -> dict:
    """Gradescope's `results.json` for the rows of one submission.

    One test per exercise (`max_score` its points, `output` the check's
    message, `status` passed or failed), and a test for the notebook row if
    there is one (worth nothing). `score` is the sum of the tests'.
    `visibility` applies to the whole result and each test;
    `stdout_visibility` to what the autograder printed.
    """
    check_choice("visibility", visibility, GRADESCOPE_VISIBILITY)
    check_choice("stdout_visibility", stdout_visibility, GRADESCOPE_VISIBILITY)
    rows = _only_one(rows, "A Gradescope results.json")
    tests = []
    for number, row in enumerate(rows, start=1):
        tests.append(
            {
                "name": _test_name(row),
                "number": str(number),
                "score": float(row.points),
                "max_score": float(row.max_points),
                "status": "passed" if row.status == "passed" else "failed",
                "output": f"{row.status}: {row.message}",
                "visibility": visibility,
            }
        )
    results = {
        "score": float(sum(row.points for row in rows)),
        "output": _summary_line(rows),
        "visibility": visibility,
        "stdout_visibility": stdout_visibility,
        "tests": tests,
    }
    if execution_time is not None:
        results["execution_time"] = max(0, round(execution_time))
    return results


# --- PrairieLearn ----------------------------------------------------------


def prairielearn_results(rows: Sequence) -> dict:
    """PrairieLearn's external-grader `results.json` for one submission.

    `score` is the fraction of the points earned. A notebook that could not
    be read, or whose lesson could not be recognised (rows without an
    exercise, nothing else), is `gradable: false` with the reason in
    `format_errors`.
    """
    rows = _only_one(rows, "A PrairieLearn results.json")
    exercises = [row for row in rows if row.exercise]
    if not exercises:
        return {
            "gradable": False,
            "format_errors": [row.message for row in rows],
            "message": "The submission could not be graded.",
        }
    possible = sum(row.max_points for row in exercises)
    earned = sum(row.points for row in exercises)
    tests = [
        {
            "name": _test_name(row),
            "description": f"status: {row.status}",
            "points": float(row.points),
            "max_points": float(row.max_points),
            "message": row.message,
        }
        for row in rows
    ]
    return {
        "gradable": True,
        "score": earned / possible if possible else 0.0,
        "message": _summary_line(rows),
        "tests": tests,
    }


# --- JUnit -----------------------------------------------------------------


def junit_xml(rows: Iterable, *, name: str = "tf-transformer grade") -> str:
    """JUnit XML: a `testsuite` per submission, a `testcase` per exercise.

    A wrong answer (failed, missing, not attempted) is a `failure`, an answer
    that could not be judged (error, timeout) an `error`; either carries the
    check's message. The notebook row is a test case of its own.
    """
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite_id, (submission, group) in enumerate(by_submission(rows).items()):
        counts = {"tests": len(group), "failures": 0, "errors": 0}
        suite = ET.SubElement(root, "testsuite", name=submission, id=str(suite_id))
        properties = ET.SubElement(suite, "properties")
        for key, value in (
            ("lesson", _lesson_label(group[0].lesson)),
            ("points", f"{sum(r.points for r in group):g}"),
            ("max_points", f"{sum(r.max_points for r in group):g}"),
        ):
            ET.SubElement(properties, "property", name=key, value=value)
        for row in group:
            case = ET.SubElement(
                suite,
                "testcase",
                name=row.exercise or NOTEBOOK_TEST,
                classname=f"lesson{_lesson_label(row.lesson)}",
                time="0",
            )
            if row.status == "passed":
                continue
            kind = "failure" if row.status in WRONG else "error"
            counts["failures" if kind == "failure" else "errors"] += 1
            outcome = ET.SubElement(case, kind, message=row.message, type=row.status)
            outcome.text = row.message
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("skipped", "0")
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(rows: Iterable, path: Path | str) -> Path:
    path = Path(path)
    path.write_text(junit_xml(rows), encoding="utf-8")
    return path


# --- one JSON per submission ----------------------------------------------


def _file_name(identity: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "__", identity).strip("_") or "submission"
    return name.removesuffix(".ipynb")


def write_per_submission(rows: Sequence, path: Path | str, results) -> list[Path]:
    """`results(rows_of_one_submission)` as JSON: to `path` itself when the
    rows hold one submission, else to `path/<submission>.json` each."""
    path = Path(path)
    groups = by_submission(rows)
    if len(groups) == 1 and not path.is_dir():
        targets = {path: next(iter(groups.values()))}
    else:
        targets = {path / f"{_file_name(s)}.json": g for s, g in groups.items()}
    written = []
    for target, group in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results(group), indent=1) + "\n", encoding="utf-8")
        written.append(target)
    return written


# --- students: Canvas and the long CSV -------------------------------------


@dataclasses.dataclass(frozen=True)
class Student:
    """Who handed a submission in, as far as its name tells."""

    name: str
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


class StudentPattern:
    """Reads the student from a submission's name (its path in the graded
    folder, `alice/05_masking.ipynb`) with a regular expression searched in
    it. Named groups fill the fields: `name`, `id` (Canvas user ID),
    `sis_user_id`, `sis_login_id`, `section`; at least one of them must be
    present. A submission the pattern does not match is named after its
    first folder (`alice`), or, with no folder, after its file name; its
    IDs stay empty (`unmatched` lists them).

    The default reads Canvas's download names (`CANVAS_DOWNLOAD`).
    """

    FIELDS = ("name", "id", "sis_user_id", "sis_login_id", "section")

    def __init__(self, pattern: str = CANVAS_DOWNLOAD):
        try:
            self.regex = re.compile(pattern)
        except re.error as error:
            raise ValueError(
                f"`pattern` is not a regular expression ({error}). "
                f"Received: pattern={pattern!r}"
            ) from None
        if not set(self.regex.groupindex) & set(self.FIELDS):
            raise ValueError(
                "`pattern` must name at least one group of "
                f"{', '.join(self.FIELDS)} (as in (?P<id>\\d+)). "
                f"Received: pattern={pattern!r}"
            )
        self.unmatched: list[str] = []

    def student(self, submission: str) -> Student:
        match = self.regex.search(submission)
        if match is None:
            self.unmatched.append(submission)
            parts = submission.split("/")
            name = parts[0] if len(parts) > 1 else parts[0].removesuffix(".ipynb")
            return Student(name=name)
        fields = {k: v for k, v in match.groupdict().items() if k in self.FIELDS}
        fields = {k: v or "" for k, v in fields.items()}
        ids = ("sis_login_id", "sis_user_id", "id")
        fields.setdefault(
            "name", next((fields[k] for k in ids if fields.get(k)), submission)
        )
        return Student(**fields)


def _students(rows: Iterable, pattern: StudentPattern) -> dict[str, Student]:
    return {
        submission: pattern.student(submission) for submission in by_submission(rows)
    }


def write_long_csv(
    rows: Sequence, path: Path | str, *, pattern: StudentPattern | None = None
) -> Path:
    """The grades CSV's rows with the student's identity in front
    (`LONG_CSV_COLUMNS`); the notebook row keeps its empty `exercise`."""
    pattern = pattern or StudentPattern()
    students = _students(rows, pattern)
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LONG_CSV_COLUMNS)
        for row in rows:
            who = students[row.submission]
            writer.writerow(
                [
                    who.name,
                    who.id,
                    who.sis_user_id,
                    who.sis_login_id,
                    who.section,
                    *(row.as_csv()[column] for column in CSV_COLUMNS),
                ]
            )
    return path


def canvas_gradebook(
    rows: Sequence,
    *,
    pattern: StudentPattern | None = None,
    column: str = "Lesson {lesson:02d}",
) -> list[list[str]]:
    """The Canvas gradebook's rows: a header, a `Points Possible` row, one row
    per student.

    Columns: `Student, ID, SIS User ID, SIS Login ID, Section` (Canvas
    matches a row to its student by `ID` or the SIS IDs), then one per graded
    lesson, named by `column` (`{lesson}` is the lesson's number; name it
    after the Canvas assignment, or add its ID, `Lesson {lesson:02d}
    (12345)`, for Canvas to update that assignment rather than create one).
    A student with several submissions of one lesson gets the best. Rows
    without a lesson are left out.
    """
    pattern = pattern or StudentPattern()
    try:
        column.format(lesson=1)
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            "`column` must be a format string using only {lesson}. "
            f"Received: column={column!r} ({type(error).__name__}: {error})"
        ) from None
    students = _students(rows, pattern)
    possible: dict[int, float] = {}
    table: dict[Student, dict[int, float]] = {}
    for submission, group in by_submission(rows).items():
        who = students[submission]
        table.setdefault(who, {})
        lesson = group[0].lesson
        if not isinstance(lesson, int):
            continue
        possible[lesson] = max(
            possible.get(lesson, 0.0), sum(r.max_points for r in group)
        )
        earned = sum(r.points for r in group)
        table[who][lesson] = max(table[who].get(lesson, 0.0), earned)
    lessons = sorted(possible)
    header = [*CANVAS_IDENTITY_COLUMNS, *(column.format(lesson=n) for n in lessons)]
    out = [header]
    out.append(
        ["Points Possible", "", "", "", "", *(f"{possible[n]:g}" for n in lessons)]
    )
    for who, scores in sorted(
        table.items(), key=lambda item: (item[0].name, item[0].id)
    ):
        out.append(
            [
                who.name,
                who.id,
                who.sis_user_id,
                who.sis_login_id,
                who.section,
                *(f"{scores[n]:g}" if n in scores else "" for n in lessons),
            ]
        )
    return out


def write_canvas(rows: Sequence, path: Path | str, **options) -> Path:
    """`canvas_gradebook(rows, **options)` as a CSV file."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            canvas_gradebook(rows, **options)
        )
    return path
