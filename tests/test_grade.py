"""`tf-transformer grade`: statuses, robustness and tampering, on tiny notebooks.

Kernels and TensorFlow imports cost seconds, so the crafted submissions are
graded in three batches with two jobs each.
"""

import csv
import json
from pathlib import Path

import pytest

from tf_transformer import cli
from tf_transformer.course import grade

FIXTURES = Path(__file__).parent / "fixtures" / "grade"
COLUMNS = [
    "submission",
    "lesson",
    "exercise",
    "points",
    "max_points",
    "status",
    "message",
]
LESSON_2 = ["scaled_dot_product_attention", "padding_mask", "causal_mask"]


def grades(paths, **kwargs):
    """{(submission, exercise): row} from grading `paths` (helper for other tests).

    For example, once solutions/ and lessons/ exist:
    ``assert {r.status for r in grades([REPO / "solutions"]).values()} == {"passed"}``.
    """
    rows = grade.grade(paths, jobs=2, **kwargs)
    return {(row.submission, row.exercise): row for row in rows}


def expect(rows, submission, lesson, statuses, message_parts=None):
    """Exact statuses and points for one submission; messages contain the parts."""
    from tf_transformer.course.checks import EXERCISES

    for exercise, status in statuses.items():
        row = rows[(submission, exercise)]
        points = EXERCISES[exercise].points if status == "passed" else 0
        assert (row.lesson, row.status, row.points, row.max_points) == (
            lesson,
            status,
            points,
            EXERCISES[exercise].points,
        ), (submission, exercise, row)
        part = (message_parts or {}).get(exercise)
        if part:
            assert part in row.message, row.message
    assert {e for s, e in rows if s == submission} == set(statuses)


@pytest.fixture(scope="module")
def executed():
    """Notebooks that break the notebook run itself (no TensorFlow in them)."""
    names = ["erin", "frank", "gina", "hank", "ivan", "judy", "kim"]
    return grades([FIXTURES / n for n in names], timeout=10)


@pytest.fixture(scope="module")
def checked():
    """Answers graded without running the notebook (the kernel adds nothing here)."""
    names = ["alice", "bob", "carol", "dave", "leo"]
    return grades([FIXTURES / n for n in names], timeout=10, execute=False)


def test_correct_answers_get_full_marks(checked):
    statuses = dict.fromkeys(LESSON_2, "passed")
    expect(checked, "alice/02_attention.ipynb", 2, statuses)


def test_renamed_reordered_notebook_grades_each_status(checked):
    expect(
        checked,
        "bob/my work (final).ipynb",
        2,
        {
            "scaled_dot_product_attention": "missing",
            "padding_mask": "not_attempted",
            "causal_mask": "failed",
        },
        {
            "causal_mask": "include the diagonal",
            "scaled_dot_product_attention": "not defined",
        },
    )


def test_top_level_tampering_gains_nothing(checked):
    # Redefined `check`, patched checks module, fake nbgrader points, printed
    # "passed", and an answer that calls the library's reference.
    expect(
        checked,
        "carol/02_attention.ipynb",
        2,
        {
            "scaled_dot_product_attention": "error",
            "padding_mask": "passed",
            "causal_mask": "failed",
        },
        {"scaled_dot_product_attention": "your notebook must define its own"},
    )


def test_tampering_from_inside_an_answer_voids_the_results(checked):
    row = checked[("dave/02_attention.ipynb", "padding_mask")]
    assert (row.status, row.points) == ("error", 0)
    assert "changed grading code" in row.message
    assert checked[
        ("dave/02_attention.ipynb", "scaled_dot_product_attention")
    ].status in (
        "missing",
        "error",
    )


def test_answers_that_crash_or_hang_the_checker(checked):
    expect(
        checked,
        "leo/02_attention.ipynb",
        2,
        {
            "scaled_dot_product_attention": "error",
            "padding_mask": "timeout",
            "causal_mask": "error",
        },
        {
            "scaled_dot_product_attention": "checking process died",
            "padding_mask": "took longer than 10 s",
            "causal_mask": "TypeError",
        },
    )


def test_wrong_lesson_is_graded_as_the_lesson_it_contains(executed):
    expect(
        executed,
        "erin/03_multi_head_attention.ipynb",
        1,
        {"positional_encoding": "passed"},
    )


def test_invalid_json_is_one_error_row(executed):
    row = executed[("frank/02_attention.ipynb", "")]
    assert (row.status, row.lesson, row.points) == ("error", "", 0)
    assert "not a readable notebook" in row.message


def test_never_ending_notebook_times_out(executed):
    statuses = dict.fromkeys(LESSON_2, "timeout")
    expect(executed, "gina/02_attention.ipynb", 2, statuses)


def test_sys_exit_and_huge_output_do_not_stop_grading(executed):
    statuses = {
        "scaled_dot_product_attention": "missing",
        "padding_mask": "missing",
        "causal_mask": "passed",
    }
    expect(executed, "hank/02_attention.ipynb", 2, statuses)
    expect(executed, "kim/02_attention.ipynb", 2, statuses)


@pytest.mark.parametrize("name", ["ivan", "judy"])
def test_kernel_crash_is_an_error(executed, name):
    statuses = dict.fromkeys(LESSON_2, "error")
    expect(
        executed,
        f"{name}/02_attention.ipynb",
        2,
        statuses,
        {"causal_mask": "kernel died"},
    )


def test_command_writes_csv_json_feedback_and_summary(tmp_path, capsys):
    out = tmp_path / "grades.csv"
    code = cli.main(
        [
            "grade",
            str(FIXTURES / "alice"),
            str(FIXTURES / "erin"),
            "--out",
            str(out),
            "--json",
            str(tmp_path / "report.json"),
            "--feedback",
            str(tmp_path / "feedback"),
            "--lesson",
            "2",
            "--no-execute",
            "--jobs",
            "2",
            "--timeout",
            "30",
        ]
    )
    assert code == 0
    with open(out, newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == COLUMNS
        rows = [tuple(r[:6]) for r in reader]
    assert rows == [
        (
            "alice/02_attention.ipynb",
            "2",
            "scaled_dot_product_attention",
            "2",
            "2",
            "passed",
        ),
        ("alice/02_attention.ipynb", "2", "padding_mask", "1", "1", "passed"),
        ("alice/02_attention.ipynb", "2", "causal_mask", "1", "1", "passed"),
        (
            "erin/03_multi_head_attention.ipynb",
            "2",
            "scaled_dot_product_attention",
            "0",
            "2",
            "missing",
        ),
        (
            "erin/03_multi_head_attention.ipynb",
            "2",
            "padding_mask",
            "0",
            "1",
            "missing",
        ),
        ("erin/03_multi_head_attention.ipynb", "2", "causal_mask", "0", "1", "missing"),
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["points"] for s in report["submissions"]] == [4, 0]
    assert {
        item["exercise"]: item["pass_rate"] for item in report["summary"]
    } == dict.fromkeys(LESSON_2, 0.5)
    feedback = sorted(p.name for p in (tmp_path / "feedback").iterdir())
    assert feedback == ["alice__02_attention.md", "erin__03_multi_head_attention.md"]
    assert (
        "| causal_mask | 1/1 | ✅ passed |"
        in (tmp_path / "feedback" / feedback[0]).read_text()
    )
    captured = capsys.readouterr()
    assert "causal_mask" in captured.out and "50%" in captured.out
    assert "[2/2]" in captured.err


def test_command_rejects_a_missing_path(tmp_path, capsys):
    code = cli.main(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "g.csv")])
    assert code == 2
    assert "PATH=" in capsys.readouterr().err


def test_find_submissions_identities_are_relative_to_the_root():
    found = grade.find_submissions([FIXTURES / "bob"])
    assert [identity for identity, _ in found] == ["my work (final).ipynb"]
    found = grade.find_submissions(
        [FIXTURES / "bob", FIXTURES / "alice" / "02_attention.ipynb"]
    )
    assert [identity for identity, _ in found] == [
        "bob/my work (final).ipynb",
        "02_attention.ipynb",
    ]
