"""nbgrader itself grades lesson 05: the flow of docs/instructors.md, end to end.

`build --nbgrader-source` writes the instructor notebook into a throwaway
course directory; `nbgrader generate_assignment` must give back exactly
lessons/05_masking.ipynb; three students submit (every answer right, nothing
answered, one answer wrong); `TF_TRANSFORMER_GRADING=1 nbgrader autograde`
runs their notebooks; the scores are read from nbgrader's gradebook.

nbgrader runs as a command, as an instructor would run it, with its own
nbgrader_config.py and with no user or system Jupyter configuration.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

import nbformat  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402

from tf_transformer.course.build import notebooks  # noqa: E402
from tf_transformer.course.checks import EXERCISES, exercises_of_lesson  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LESSON = 5
NOTEBOOK = "05_masking.ipynb"
ASSIGNMENT = "masking"
STUDENTS = ("complete", "blank", "wrong")
UNSET = "blank_without_grading_env"  # autograded without TF_TRANSFORMER_GRADING
# The wrong answer: a causal mask that hides the diagonal (a query may not
# see its own position).
RIGHT_LINE = "return key_positions <= query_positions"
WRONG_LINE = "return key_positions < query_positions"


def nbgrader(course, *args, grading=True):
    """Run `python -m nbgrader ARGS` in `course`; fail with its output if it fails."""
    scratch = course.parent / "scratch"
    env = dict(os.environ)
    for name in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "TF_TRANSFORMER_GRADING"):
        env.pop(name, None)
    env.update(
        HOME=str(scratch / "home"),
        JUPYTER_NO_CONFIG="1",  # only the course's nbgrader_config.py counts
        JUPYTER_CONFIG_DIR=str(scratch / "jupyter_config"),
        JUPYTER_DATA_DIR=str(scratch / "jupyter_data"),
        JUPYTER_RUNTIME_DIR=str(scratch / "jupyter_runtime"),
        IPYTHONDIR=str(scratch / "ipython"),
        MPLCONFIGDIR=str(scratch / "matplotlib"),
        TMPDIR=str(scratch / "tmp"),
        TF_CPP_MIN_LOG_LEVEL="3",
        # The kernels import this checkout's library.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    for name in ("HOME", "TMPDIR"):
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    if grading:
        env["TF_TRANSFORMER_GRADING"] = "1"
    process = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{output}"
    return output


def answers_of_the_solution():
    """{exercise name: answered cell source} from solutions/05_masking.ipynb."""
    solution = json.loads((REPO / "solutions" / NOTEBOOK).read_text(encoding="utf-8"))
    answers = {}
    for cell in solution["cells"]:
        name = cell["metadata"].get(notebooks.METADATA_KEY, {}).get("exercise")
        if name is not None:
            answers[name] = cell["source"]
    return answers


def submit(course, student, release, answer):
    """Write the release notebook with `answer(name, stub)` in each solution cell."""
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answer(meta["grade_id"], cell.source)
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / NOTEBOOK)


def scores(course, student):
    """(total score, {grade cell: score}) of `student` in nbgrader's gradebook."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        assert not submission.needs_manual_grade
        notebook = gradebook.find_submission_notebook(
            Path(NOTEBOOK).stem, ASSIGNMENT, student
        )
        return submission.score, {grade.name: grade.score for grade in notebook.grades}


def errors(course, student):
    """(grade id, exception name) of every error output in the autograded notebook."""
    path = course / "autograded" / student / ASSIGNMENT / NOTEBOOK
    notebook = nbformat.read(path, as_version=4)
    return [
        (cell.metadata.nbgrader["grade_id"], output.ename)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course directory after generate_assignment and autograde."""
    root = tmp_path_factory.mktemp("nbgrader")
    course = root / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        'c.CourseDirectory.course_id = "tf_transformer"\n'
        "# Importing TensorFlow in a fresh kernel on a busy machine is slow.\n"
        "c.Execute.timeout = 300\n",
        encoding="utf-8",
    )
    # Build from a copy: the repository's solutions/ and lessons/ stay untouched.
    (root / "solutions").mkdir()
    shutil.copy(REPO / "solutions" / NOTEBOOK, root / "solutions" / NOTEBOOK)
    code = notebooks.main(
        [
            "build",
            "--solutions",
            str(root / "solutions"),
            "--lessons",
            str(root / "lessons"),
            "--nbgrader-source",
            str(course / "source" / ASSIGNMENT),
        ]
    )
    assert code == 0
    nbgrader(course, "generate_assignment", ASSIGNMENT)

    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    answers = answers_of_the_solution()

    def wrong(name, stub):
        if name != "causal_mask":
            return answers[name]
        assert RIGHT_LINE in answers[name]
        return answers[name].replace(RIGHT_LINE, WRONG_LINE)

    submit(course, "complete", release, lambda name, stub: answers[name])
    submit(course, "blank", release, lambda name, stub: stub)
    submit(course, "wrong", release, wrong)
    nbgrader(course, "autograde", ASSIGNMENT, grading=True)
    # What docs/instructors.md warns about: without TF_TRANSFORMER_GRADING the checks
    # only print, so nothing raises and a blank notebook gets full marks.
    submit(course, UNSET, release, lambda name, stub: stub)
    nbgrader(course, "autograde", ASSIGNMENT, f"--student={UNSET}", grading=False)
    return course


def test_the_exercises_of_the_lesson_are_the_solution_cells():
    release = nbformat.read(REPO / "lessons" / NOTEBOOK, as_version=4)
    solution_cells = {
        cell.metadata.nbgrader["grade_id"]
        for cell in release.cells
        if cell.metadata.nbgrader["solution"]
    }
    names = {ex.name for ex in exercises_of_lesson(LESSON)}
    assert names == {"padding_mask", "causal_mask"}
    assert solution_cells == names == set(answers_of_the_solution())


def test_generate_assignment_gives_back_the_lesson(course):
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    for cell in source.cells:
        if cell.metadata.nbgrader["solution"]:
            assert notebooks.BEGIN_SOLUTION in cell.source
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    lesson = nbformat.read(REPO / "lessons" / NOTEBOOK, as_version=4)
    assert len(release.cells) == len(lesson.cells)
    for index, (ours, theirs) in enumerate(
        zip(lesson.cells, release.cells, strict=True)
    ):
        assert theirs == ours, f"cell {index}"
    assert release == lesson


def test_autograde_gives_full_marks_nothing_and_the_right_part(course):
    full = sum(ex.points for ex in exercises_of_lesson(LESSON))
    points = {name: EXERCISES[name].points for name in ("padding_mask", "causal_mask")}
    assert scores(course, "complete") == (
        full,
        {
            "check_padding_mask": points["padding_mask"],
            "check_causal_mask": points["causal_mask"],
        },
    )
    assert scores(course, "blank") == (
        0,
        {"check_padding_mask": 0, "check_causal_mask": 0},
    )
    assert scores(course, "wrong") == (
        points["padding_mask"],
        {"check_padding_mask": points["padding_mask"], "check_causal_mask": 0},
    )
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert gradebook.find_assignment(ASSIGNMENT).max_score == full
        assert sorted(s.id for s in gradebook.students) == sorted([*STUDENTS, UNSET])


def test_failing_checks_raise_and_nothing_else_does(course):
    # The whole lesson runs under nbgrader; only failed checks raise, and
    # they raise because of TF_TRANSFORMER_GRADING=1.
    assert errors(course, "complete") == []
    assert errors(course, "blank") == [
        ("check_padding_mask", "CheckFailed"),
        ("check_causal_mask", "CheckFailed"),
    ]
    assert errors(course, "wrong") == [("check_causal_mask", "CheckFailed")]


def test_without_the_grading_variable_a_blank_notebook_gets_full_marks(course):
    full = sum(ex.points for ex in exercises_of_lesson(LESSON))
    assert scores(course, UNSET)[0] == full
    assert errors(course, UNSET) == []
