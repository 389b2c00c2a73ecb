"""`tf-transformer grade`: statuses, robustness and tampering, on tiny notebooks.

Kernels and TensorFlow imports cost seconds, so the crafted submissions are
graded in a few batches with two jobs each. Lessons: 2 positional encoding,
5 masks, 8 training (the only lesson with three exercises, so one notebook
can show three outcomes), 9 greedy decoding.
"""

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from tf_transformer import cli
from tf_transformer.course.grading import grade

FIXTURES = Path(__file__).parent / "fixtures" / "grade"
COLUMNS = [
    "submission",
    "lesson",
    "exercise",
    "points",
    "max_points",
    "status",
    "message",
    "same_as_library",
    "notebook_sha256",
]
MASKS = ["padding_mask", "causal_mask"]  # lesson 5
TRAINING = [
    "masked_loss",
    "masked_accuracy",
    "transformer_schedule",
    "transformer",
]  # lesson 8


def grades(paths, **kwargs):
    """{(submission, exercise): row} from grading `paths` (helper for other tests).

    For example, once solutions/ and lessons/ exist:
    ``assert {r.status for r in grades([REPO / "solutions"]).values()} == {"passed"}``.
    """
    rows = grade.grade(paths, jobs=2, **kwargs)
    return {(row.submission, row.exercise): row for row in rows}


def expect(rows, submission, lesson, statuses, message_parts=None):
    """Exact statuses and points for one submission; messages contain the parts.

    The exercise "" is the notebook's own row (a run that did not finish).
    """
    from tf_transformer.course.checks import EXERCISES

    for exercise, status in statuses.items():
        if exercise == "":
            row = rows[(submission, "")]
            assert (row.lesson, row.status, row.points, row.max_points) == (
                lesson,
                status,
                0,
                0,
            ), row
            assert "graded from the notebook's definitions" in row.message, row
            assert (message_parts or {}).get("", "") in row.message, row
            continue
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
    # 20 s: a kernel starting on a busy machine can take 10.
    return grades([FIXTURES / n for n in names], timeout=20)


@pytest.fixture(scope="module")
def checked():
    """Answers graded without running the notebook (the kernel adds nothing here)."""
    names = ["alice", "bob", "carol", "dave", "leo", "nina"]
    return grades([FIXTURES / n for n in names], timeout=10, execute=False)


@pytest.fixture(scope="module")
def decoded():
    """The heaviest check (it builds and runs a Transformer), with time to spare."""
    return grades([FIXTURES / "mia"], timeout=120, execute=False)


def test_lessons_of_the_fixtures_are_the_course_numbering():
    from tf_transformer.course.checks import exercises_of_lesson

    # The registry orders a lesson's exercises by name.
    assert [ex.name for ex in exercises_of_lesson(5)] == sorted(MASKS)
    assert [ex.name for ex in exercises_of_lesson(8)] == sorted(TRAINING)
    assert [ex.name for ex in exercises_of_lesson(9)] == [
        "cached_decoder_step",
        "greedy_decode",
    ]
    assert [ex.name for ex in exercises_of_lesson(2)] == ["positional_encoding"]


@pytest.mark.slow
def test_correct_answers_get_full_marks(checked, decoded):
    expect(checked, "alice/05_masks.ipynb", 5, dict.fromkeys(MASKS, "passed"))
    # A greedy decoder that re-runs the model (no cache) and uses the
    # notebook's constants, checked in the sandbox.
    expect(
        decoded,
        "09_decoding.ipynb",
        9,
        {
            "greedy_decode": "passed",
            "cached_decoder_step": "missing",
        },  # written before lesson 09 had it
    )


@pytest.mark.slow
def test_renamed_reordered_notebook_grades_each_status(checked):
    expect(
        checked,
        "bob/my work (final).ipynb",
        8,
        {
            "masked_loss": "not_attempted",
            "masked_accuracy": "failed",
            "transformer_schedule": "missing",
            "transformer": "missing",  # written before lesson 08 had it
        },
        {
            "masked_accuracy": "padding positions are counted",
            "transformer_schedule": "TransformerSchedule is not defined",
        },
    )


@pytest.mark.slow
def test_top_level_tampering_gains_nothing(checked):
    # Redefined `check`, patched checks module (run_check, and `close`, which
    # the masked_accuracy check uses), the library's answer replaced by the
    # wrong one, fake nbgrader points, printed "passed", and an answer that
    # calls the library's reference.
    expect(
        checked,
        "carol/08_training.ipynb",
        8,
        {
            "masked_loss": "error",
            "masked_accuracy": "failed",
            "transformer_schedule": "passed",
            "transformer": "missing",  # written before lesson 08 had it
        },
        {
            "masked_loss": "your notebook must define its own",
            "masked_accuracy": "padding positions are counted",
        },
    )


@pytest.mark.slow
def test_tampering_from_inside_an_answer_changes_nothing(checked):
    # padding_mask patches the checks' `close` in the process that runs it;
    # the checks run in the judge, so its wrong mask still fails and the
    # right causal_mask still passes.
    expect(
        checked,
        "dave/05_masks.ipynb",
        5,
        {"padding_mask": "failed", "causal_mask": "passed"},
        {"padding_mask": "expected (2, 1, 5)"},
    )


@pytest.mark.slow
def test_tampering_when_defined_changes_nothing(checked):
    # Default arguments run when a def runs: nina's swap the code of the
    # padding_mask check and the registry's causal_mask entry for no-ops in
    # the process that runs her answers; the judge's checks still see that
    # both are wrong.
    expect(
        checked,
        "nina/05_masks.ipynb",
        5,
        dict.fromkeys(MASKS, "failed"),
    )


def test_snapshot_sees_grading_code_changed_in_place(monkeypatch):
    import tf_transformer
    from tf_transformer.course.checks import EXERCISES, _core, causal_mask
    from tf_transformer.course.grading import answers

    def no_check(ctx, student, reference):
        return None

    entry = dataclasses.replace(EXERCISES["causal_mask"], checker=no_check)
    changes = [
        (
            causal_mask.check_causal_mask,
            "__code__",
            no_check.__code__,
            "causal_mask.check_causal",
        ),
        (_core.close, "__defaults__", (1.0, 1.0), "_core.close"),
        (tf_transformer.Transformer, "call", no_check, "Transformer"),
        (_core, "REUSE_BETWEEN_CHECKS", False, "REUSE_BETWEEN_CHECKS"),
        (EXERCISES, "causal_mask", entry, "EXERCISES['causal_mask']"),
    ]
    before = answers._snapshot()
    assert answers._changed(before) is None
    for target, name, value, reported in changes:
        if isinstance(target, dict):
            monkeypatch.setitem(target, name, value)
        else:
            monkeypatch.setattr(target, name, value)
        assert reported in (answers._changed(before) or ""), name
        monkeypatch.undo()
        assert answers._changed(before) is None


@pytest.mark.slow
def test_answers_that_crash_or_hang_the_checker(checked):
    # Each failure restarts the checking process; the next answer still gets
    # its own result.
    expect(
        checked,
        "leo/08_training.ipynb",
        8,
        {
            "masked_loss": "error",
            "masked_accuracy": "timeout",
            "transformer_schedule": "error",
            "transformer": "missing",  # written before lesson 08 had it
        },
        {
            "masked_loss": "checking process died",
            "masked_accuracy": "took longer than 10 s",
            "transformer_schedule": "TypeError",
        },
    )


@pytest.mark.slow
def test_wrong_lesson_is_graded_as_the_lesson_it_contains(executed):
    expect(
        executed,
        "erin/04_multi_head_attention.ipynb",
        2,
        {"positional_encoding": "passed"},
    )


@pytest.mark.slow
def test_invalid_json_is_one_error_row(executed):
    row = executed[("frank/05_masks.ipynb", "")]
    assert (row.status, row.lesson, row.points) == ("error", "", 0)
    assert "not a readable notebook" in row.message


@pytest.mark.slow
def test_never_ending_notebook_gets_a_timeout_row_and_its_answers_graded(executed):
    statuses = {"": "timeout", "padding_mask": "missing", "causal_mask": "passed"}
    expect(executed, "gina/05_masks.ipynb", 5, statuses)


@pytest.mark.slow
def test_sys_exit_and_huge_output_do_not_stop_grading(executed):
    statuses = {"padding_mask": "missing", "causal_mask": "passed"}
    expect(executed, "hank/05_masks.ipynb", 5, statuses)
    expect(executed, "kim/05_masks.ipynb", 5, statuses)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ivan", "judy"])
def test_kernel_crash_is_an_error_row_and_its_answers_graded(executed, name):
    statuses = {"": "error", "padding_mask": "missing", "causal_mask": "passed"}
    expect(executed, f"{name}/05_masks.ipynb", 5, statuses, {"": "kernel died"})


@pytest.mark.slow
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
            "5",
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
    erin = "erin/04_multi_head_attention.ipynb"
    assert rows == [  # a lesson's exercises in registry order: by name
        ("alice/05_masks.ipynb", "5", "causal_mask", "1", "1", "passed"),
        ("alice/05_masks.ipynb", "5", "padding_mask", "1", "1", "passed"),
        (erin, "5", "causal_mask", "0", "1", "missing"),
        (erin, "5", "padding_mask", "0", "1", "missing"),
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["points"] for s in report["submissions"]] == [2, 0]
    assert {
        item["exercise"]: item["pass_rate"] for item in report["summary"]
    } == dict.fromkeys(MASKS, 0.5)
    feedback = sorted(p.name for p in (tmp_path / "feedback").iterdir())
    assert feedback == ["alice__05_masks.md", "erin__04_multi_head_attention.md"]
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
        [FIXTURES / "bob", FIXTURES / "alice" / "05_masks.ipynb"]
    )
    assert [identity for identity, _ in found] == [
        "bob/my work (final).ipynb",
        "05_masks.ipynb",
    ]


def test_grading_threads_never_parse_at_the_same_time(monkeypatch):
    """Two `ast.parse` calls must not interleave (CPython 3.11 bug).

    On 3.11 the parser's depth counter is shared by all threads: if a
    garbage-collection finalizer lets a second thread parse in the middle of
    a first parse, the first fails with "SystemError: AST constructor
    recursion depth mismatch" (a CI failure of the grader). Here every parse
    yields the GIL halfway, so without `answers.parse`'s lock the four
    threads below would overlap at once.
    """
    import ast
    import threading
    import time

    from tf_transformer.course.grading import answers

    real_parse, active, most = ast.parse, [0], [0]

    def yielding_parse(*args, **kwargs):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.001)
        try:
            return real_parse(*args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(ast, "parse", yielding_parse)
    cells = [f"def f{i}(x):\n    return x + {i}" for i in range(20)]
    found = []

    def work():
        found.append(answers.defined_names(cells))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [({f"f{i}" for i in range(20)}, {})] * 4
    assert most[0] == 1


def test_plain_cells_skip_ipython_and_magics_are_still_transformed():
    """A plain-Python cell is kept as it is (no IPython import needed); a
    cell with IPython syntax is still turned into Python."""
    from tf_transformer.course.grading import answers

    plain = "import numpy as np\n\ndef f(x):\n    return np.abs(x)"
    assert answers.python_source(plain) == plain
    magic = "%matplotlib inline\n!echo hi\ndef g(x):\n    return x"
    turned = answers.python_source(magic)
    assert "get_ipython()" in turned and "def g(x):" in turned
    assert answers.defined_names([magic]) == ({"g"}, {})


def test_packages_skipped_at_start_import_again_afterwards():
    """While the answers' process starts, the packages Keras imports only
    for features no check uses raise ImportError; afterwards a notebook's
    own import of them works."""
    import sys

    from tf_transformer.course.grading import answers

    name = "tf_transformer_never_installed_package"
    assert "json" in sys.modules
    with answers._without([name, "json"]):
        with pytest.raises(ImportError):
            __import__(name)
        __import__("json")  # imported before the block: left alone
    assert name not in sys.modules and sys.modules["json"] is not None
    assert set(answers.SKIPPED_AT_START) == {"sklearn", "IPython", "matplotlib"}


# ------------------------------------------------------------ the real course

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_solutions_get_full_marks_and_lessons_none():
    """The repository's notebooks, graded from their definitions (not run).

    With `execute=False` the notebooks are not run: the checking process
    takes their imports, defs, classes and constants and checks those.
    """
    from tf_transformer.course.checks import EXERCISES, exercises_of_lesson

    rows = grades([REPO / "solutions", REPO / "lessons"], timeout=120, execute=False)
    # The solutions hold the library's code (the build fills them from it):
    # every answer is flagged as the library's; no unanswered one is.
    expected_flag = {"solutions": "yes", "lessons": "no"}
    for (submission, _), row in rows.items():
        assert row.same_as_library == expected_flag[submission.split("/")[0]], row
    for folder, status in (("solutions", "passed"), ("lessons", "not_attempted")):
        notebooks = sorted(p.name for p in (REPO / folder).glob("*.ipynb"))
        assert len(notebooks) >= 11, folder
        seen = []
        for name in notebooks:
            identity, lesson = f"{folder}/{name}", int(name[:2])
            exercises = [ex.name for ex in exercises_of_lesson(lesson)]
            if exercises:
                expect(rows, identity, lesson, dict.fromkeys(exercises, status))
                seen.extend(exercises)
            else:  # lessons 00 and 01 have nothing to grade: no rows
                assert not [row for key, row in rows.items() if key[0] == identity]
        graded = [name for name, ex in EXERCISES.items() if ex.graded]  # not practice
        assert sorted(seen) == sorted(graded), folder
    assert {submission for submission, _ in rows} <= {
        f"{folder}/{p.name}"
        for folder in ("solutions", "lessons")
        for p in (REPO / folder).glob("*.ipynb")
    }


@pytest.mark.slow
def test_a_solution_run_end_to_end_gets_full_marks():
    rows = grades([REPO / "solutions" / "05_masking.ipynb"], timeout=300)
    expect(rows, "05_masking.ipynb", 5, dict.fromkeys(MASKS, "passed"))
