"""`python -m tf_transformer.course build`: one source of truth, nbgrader lessons."""

import inspect
import json
import shutil
import textwrap
from pathlib import Path

import pytest

import tf_transformer
from tf_transformer.course.build import notebooks

FIXTURE = Path(__file__).parent / "fixtures" / "course" / "solutions"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def course(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "solutions")
    return tmp_path


def run(course, *extra):
    return notebooks.main(
        [
            "build",
            "--solutions",
            str(course / "solutions"),
            "--lessons",
            str(course / "lessons"),
            *extra,
        ]
    )


def lesson_cells(course, name="99_masks.ipynb"):
    return json.loads((course / "lessons" / name).read_text())["cells"]


def body_lines(obj):
    """Distinctive lines of an object's answer: not its def line, docstring or
    opening input checks (those stay in the lesson)."""
    source = textwrap.dedent(inspect.getsource(obj))
    doc = inspect.getdoc(obj) or ""
    lines = []
    for line in source.splitlines()[1:]:
        text = line.strip()
        given = text.startswith(
            ("validation.check", "check_", "_check", "self._check", "self.check_")
        )
        skipped = text.startswith(('"""', "def ")) or given
        if len(text) > 12 and text not in doc and not skipped:
            lines.append(text)
    return lines


def test_build_refreshes_solution_cells_from_the_library(course):
    assert run(course) == 0
    solution = json.loads((course / "solutions" / "99_masks.ipynb").read_text())
    by_id = {cell["id"]: cell for cell in solution["cells"]}
    assert by_id["causal"]["source"] == notebooks.library_source(
        "tf_transformer.layers.masks.causal_mask"
    )
    assert "class FeedForward" in by_id["ffn"]["source"]
    check_source = by_id["check-causal_mask"]["source"]
    assert check_source.endswith('result = check("causal_mask", causal_mask)')
    assert check_source.startswith("# NBVAL_CHECK_OUTPUT")  # solutions prove it passes


def test_lesson_has_badge_setup_and_no_outputs(course):
    run(course)
    cells = lesson_cells(course)
    assert "colab.research.google.com/github/" in cells[0]["source"]
    assert "lessons/99_masks.ipynb" in cells[0]["source"]
    setup = cells[1]["source"]
    assert '"google.colab" in sys.modules' in setup
    assert "tensorflow-text=={tf_major_minor}.*" in setup
    assert notebooks.course_source().requirement in setup
    for cell in cells:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert any("A causal mask lets position" in c["source"] for c in cells)


def test_lesson_keeps_signatures_and_docstrings_but_not_answers(course):
    run(course)
    cells = {c["metadata"]["nbgrader"]["grade_id"]: c for c in lesson_cells(course)}
    causal = cells["causal_mask"]["source"]
    assert causal.startswith("def causal_mask(length):")
    assert "Look-ahead mask" in causal
    assert causal.endswith("    # YOUR CODE HERE\n    raise NotImplementedError()")
    for line in body_lines(tf_transformer.causal_mask):
        assert line not in causal
    ffn = cells["feed_forward"]["source"]
    assert "def call(self, inputs, training=None):" in ffn
    for line in body_lines(tf_transformer.FeedForward.call):
        assert line not in ffn
    # The declaration's methods (build and call) become stubs (a method that
    # is not part of the exercise stays as given: see the next test).
    assert "def build(self, input_shape):" in ffn
    assert "self.intermediate_dense = " not in ffn
    by_hand = cells["score_by_hand"]["source"]
    assert "np.dot" not in by_hand and "raise NotImplementedError()" in by_hand
    everything = json.dumps(lesson_cells(course))
    assert "BEGIN SOLUTION" not in everything


def test_lesson_metadata_is_valid_nbgrader_release_metadata(course):
    run(course)
    cells = lesson_cells(course)
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells]
    assert len(ids) == len(set(ids))
    for cell in cells:
        meta = cell["metadata"]["nbgrader"]
        assert meta["schema_version"] == 3
        assert meta["checksum"] == notebooks.nbgrader_checksum(cell)
        assert meta["cell_type"] == cell["cell_type"]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells}
    exercise = by_id["causal_mask"]["metadata"]["nbgrader"]
    assert (exercise["solution"], exercise["grade"], exercise["locked"]) == (
        True,
        False,
        False,
    )
    graded = by_id["check_feed_forward"]["metadata"]
    assert graded["nbgrader"]["grade"] and graded["nbgrader"]["locked"]
    assert graded["nbgrader"]["points"] == 1.0 and graded["editable"] is False
    prose = by_id["cell_002"]["metadata"]["nbgrader"]
    assert (prose["locked"], prose["grade"], prose["solution"]) == (True, False, False)


def nbgrader_generate(source):
    """The cells nbgrader's generate-assignment steps make of an instructor
    notebook (an nbformat node)."""
    import nbformat
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    resources = {}
    for step in (
        CheckCellMetadata,
        ClearSolutions,
        ClearOutput,
        LockCells,
        ComputeChecksums,
    ):
        source, resources = step().preprocess(source, resources)
    return json.loads(nbformat.writes(source))["cells"]


def test_nbgrader_accepts_the_lessons_and_agrees_on_checksums(course, tmp_path):
    pytest.importorskip("nbgrader")
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.utils import compute_checksum

    assert run(course, "--nbgrader-source", str(tmp_path / "source")) == 0
    lesson = nbformat.read(course / "lessons" / "99_masks.ipynb", as_version=4)
    MetadataValidator().validate_nb(lesson)
    for cell in lesson.cells:
        assert cell.metadata.nbgrader.checksum == compute_checksum(cell)
    # nbgrader's own generate-assignment steps turn our instructor version
    # into exactly our lesson.
    source = nbformat.read(tmp_path / "source" / "99_masks.ipynb", as_version=4)
    assert nbgrader_generate(source) == json.loads(nbformat.writes(lesson))["cells"]


def test_rebuild_is_byte_identical_and_check_passes(course, capsys):
    run(course)
    first = {p.name: p.read_bytes() for p in (course / "lessons").iterdir()}
    solution = (course / "solutions" / "99_masks.ipynb").read_bytes()
    assert run(course) == 0
    assert {p.name: p.read_bytes() for p in (course / "lessons").iterdir()} == first
    assert (course / "solutions" / "99_masks.ipynb").read_bytes() == solution
    assert solution.endswith(b"}\n")
    assert run(course, "--check") == 0
    assert "up to date" in capsys.readouterr().out


def test_check_reports_solution_drift_and_changes_nothing(course, capsys):
    run(course)
    path = course / "solutions" / "99_masks.ipynb"
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if c["id"] == "causal")
    cell["source"] = cell["source"].replace("<= query_positions", "< query_positions")
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True) + "\n")
    before = path.read_bytes()
    assert run(course, "--check") == 1
    out = capsys.readouterr().out
    assert "99_masks.ipynb: cell 3 (causal_mask) differs from the library" in out
    assert path.read_bytes() == before


def test_check_reports_a_hand_edited_lesson(course, capsys):
    run(course)
    path = course / "lessons" / "99_masks.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][3]["source"] += "\nprint('edited')"
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True) + "\n")
    assert run(course, "--check") == 1
    assert "lessons/99_masks.ipynb: cell 3 differs from what build writes" in (
        capsys.readouterr().out
    )


def test_missing_solutions_folder_builds_nothing(tmp_path, capsys):
    assert notebooks.main(["build", "--root", str(tmp_path)]) == 0
    assert notebooks.main(["build", "--check", "--root", str(tmp_path)]) == 0
    assert not (tmp_path / "lessons").exists()
    assert "nothing to build" in capsys.readouterr().out


def test_unregistered_exercise_is_an_error_naming_the_cell(course, capsys):
    path = course / "solutions" / "99_masks.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][3]["metadata"]["tf_transformer"]["exercise"] = "causal_masks"
    path.write_text(json.dumps(notebook))
    assert run(course) == 2
    assert (
        "cell 3: exercise 'causal_masks' is not registered" in capsys.readouterr().err
    )


def test_a_class_exercise_stubs_the_methods_its_declaration_names():
    spec = notebooks.ExerciseSpec.from_metadata(
        {"exercise": "multi_head_attention"}, "test"
    )
    assert spec.source == "tf_transformer.layers.attention.MultiHeadAttention"
    assert spec.methods == ("split_heads", "merge_heads", "call")
    assert spec.points == 3
    marked = notebooks.mark_solution(notebooks.library_source(spec.source), spec)
    stubbed = notebooks.clear_solution(marked, "code")
    assert "def split_heads(self, x, depth):" in stubbed
    assert "self.output_dense(self.merge_heads(attended))" not in stubbed
    assert "        # YOUR CODE HERE\n        raise NotImplementedError()" in stubbed
    # A method the declaration does not name stays as given.
    spec = notebooks.ExerciseSpec.from_metadata(
        {"exercise": "transformer_schedule"}, "test"
    )
    assert spec.methods == ("__call__",)
    marked = notebooks.mark_solution(notebooks.library_source(spec.source), spec)
    stubbed = notebooks.clear_solution(marked, "code")
    assert "def get_config(self):" in stubbed
    assert "raise NotImplementedError()" in stubbed
    assert stubbed.count("YOUR CODE HERE") == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"source": "tf_transformer.layers.masks.causal_mask"},
        {"methods": ["call"]},
        {"points": 3},
    ],
)
def test_metadata_that_repeats_the_declaration_is_an_error(course, capsys, extra):
    path = course / "solutions" / "99_masks.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][3]["metadata"]["tf_transformer"].update(extra)
    path.write_text(json.dumps(notebook))
    assert run(course) == 2
    err = capsys.readouterr().err
    assert "cell 3: exercise 'causal_mask'" in err
    assert next(iter(extra)) in err


def test_repository_lessons_match_solutions_and_library():
    """The drift test of the real course (passes trivially until solutions exist)."""
    assert notebooks.main(["build", "--check", "--root", str(REPO)]) == 0


@pytest.mark.parametrize(
    "path", sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem
)
def test_nbgrader_points_of_a_lesson_are_its_graded_exercises_only(path):
    # Practice exercises are checked in the notebook but never graded: their
    # check cells carry no nbgrader points, and a lesson's points add up to
    # those of its graded exercises.
    from tf_transformer.course.checks import EXERCISES, exercises_of_lesson

    cells = json.loads(path.read_text())["cells"]
    graded = {
        c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
        for c in cells
        if c["metadata"]["nbgrader"].get("grade")
    }
    lesson = int(path.name[:2])
    expected = {f"check_{e.name}": float(e.points) for e in exercises_of_lesson(lesson)}
    assert graded == expected
    practice = [
        c["metadata"]["tf_transformer"]["exercise"]
        for c in cells
        if "exercise" in c["metadata"].get("tf_transformer", {})
        and (
            c["metadata"]["tf_transformer"]["exercise"] not in EXERCISES
            or not EXERCISES[c["metadata"]["tf_transformer"]["exercise"]].graded
        )
    ]
    for name in practice:
        assert f"check_{name}" not in graded


def test_input_checks_that_open_an_answer_stay_in_the_lesson():
    # The lessons ask students to keep the input checks: the stub shows them.
    source = textwrap.dedent(
        '''
        def f(x):
            """Doc."""
            validation.check_rank("x", x, {2})
            _check_inputs(x)
            check_attention_inputs(x, x, x, None)
            y = x + 1
            validation.check_rank("y", y, {2})
            return y
        '''
    ).strip()
    spec = notebooks.ExerciseSpec("f", "module.f", (), None)
    stub = notebooks.clear_solution(notebooks.mark_solution(source, spec), "code")
    assert 'validation.check_rank("x", x, {2})' in stub
    assert "_check_inputs(x)" in stub
    assert "check_attention_inputs(x, x, x, None)" in stub
    assert "y = x + 1" not in stub and '"y"' not in stub
    assert stub.index("_check_inputs(x)") < stub.index("# YOUR CODE HERE")


def test_a_body_of_input_checks_only_keeps_its_last_statement_hidden():
    source = 'def f(x):\n    """Doc."""\n    _check_inputs(x)\n    _check_more(x)\n'
    spec = notebooks.ExerciseSpec("f", "module.f", (), None)
    stub = notebooks.clear_solution(notebooks.mark_solution(source, spec), "code")
    assert "_check_inputs(x)" in stub and "_check_more" not in stub


def _run_setup_in_fake_colab(monkeypatch, capsys, versions_after):
    import importlib.metadata
    import subprocess
    import sys
    import types

    installs = []
    versions = {"keras": "3.0.0", "numpy": "1.26.0", "tensorflow": "2.19.0"}
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=lambda mountpoint: None)
    colab.files = types.SimpleNamespace(upload=dict)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: versions[name])

    def fake_pip(command, capture_output, text):
        installs.append(command)
        versions.update(versions_after)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    setup = notebooks.setup_source(notebooks.course_source())
    # Drive "mounts" nowhere: the workbook line is all it changes.
    monkeypatch.setattr("os.makedirs", lambda *args, **kwargs: None)
    monkeypatch.setenv("TF_TRANSFORMER_WORKBOOK", "unchanged")
    exec(setup, {})
    return installs, capsys.readouterr().out


@pytest.mark.slow
def test_colab_setup_says_no_restart_when_nothing_loaded_changed(monkeypatch, capsys):
    installs, out = _run_setup_in_fake_colab(monkeypatch, capsys, {})
    assert any("tf-transformer @ git+" in part for part in installs[0])
    tf_version = ".".join(__import__("tensorflow").__version__.split(".")[:2])
    assert f"tensorflow-text=={tf_version}.*" in installs[0]
    assert "No restart needed" in out


@pytest.mark.slow
def test_colab_setup_asks_for_a_restart_when_a_loaded_package_changed(
    monkeypatch, capsys
):
    _, out = _run_setup_in_fake_colab(monkeypatch, capsys, {"keras": "3.15.0"})
    assert "keras changed version" in out and "restart the runtime" in out
