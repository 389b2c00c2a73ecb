""" "Predict, then run": the lesson asks, the solution answers, build hides it."""

import json
from pathlib import Path

import pytest

from tests.test_course_build import nbgrader_generate
from tf_transformer.course.build import notebooks

REPO = Path(__file__).resolve().parent.parent
LIB = "tf_transformer"
# Lessons that end with two or three "predict, then run" questions.
WITH_PREDICTIONS = [
    "00_big_picture.ipynb",
    "01_tokens_and_embeddings.ipynb",
    "02_positional_encoding.ipynb",
    "04_multi_head_attention.ipynb",
    "05_masking.ipynb",
    "06_encoder.ipynb",
]


def _cell(cell_type, source, meta=None, cell_id="c"):
    cell = {
        "cell_type": cell_type,
        "id": cell_id,
        "metadata": {"tf_transformer": meta} if meta else {},
        "source": source,
    }
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_lesson_shows_a_prediction_placeholder_instead_of_the_answer():
    solution = _notebook(
        _cell("markdown", "What does doubling x do?", cell_id="q"),
        _cell("markdown", "It doubles y: the map is linear.", {"answer": "x2"}, "a"),
        _cell("code", "print(2 * 3)", cell_id="run"),
    )
    lesson = notebooks.make_lesson(solution, "lessons/99_x.ipynb")
    sources = [cell["source"] for cell in lesson["cells"]]
    assert "It doubles y" not in json.dumps(lesson)
    assert notebooks.PREDICTION_STUB in sources
    placeholder = lesson["cells"][sources.index(notebooks.PREDICTION_STUB)]
    grading = placeholder["metadata"]["nbgrader"]
    assert not (grading["locked"] or grading["grade"] or grading["solution"])
    assert placeholder["metadata"].get("editable", True)
    assert "print(2 * 3)" in sources  # the experiment stays


def test_nbgrader_generates_the_same_lesson_with_predictions():
    pytest.importorskip("nbgrader")
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator

    solution = _notebook(
        _cell("markdown", "What does doubling x do?", cell_id="q"),
        _cell("markdown", "It doubles y.", {"answer": "x2"}, "a"),
        _cell("code", "print(2 * 3)", cell_id="run"),
    )
    lesson = nbformat.from_dict(notebooks.make_lesson(solution, "lessons/99_x.ipynb"))
    MetadataValidator().validate_nb(lesson)
    source = nbformat.from_dict(
        notebooks.nbgrader_source(solution, "lessons/99_x.ipynb")
    )
    assert nbgrader_generate(source) == json.loads(nbformat.writes(lesson))["cells"]


def test_a_prediction_answer_in_a_code_cell_is_refused():
    solution = _notebook(_cell("code", "x = 1", {"answer": "x"}))
    with pytest.raises(notebooks.BuildError, match="must be a markdown cell"):
        notebooks.make_lesson(solution, "lessons/99_x.ipynb")


@pytest.mark.parametrize("name", WITH_PREDICTIONS)
def test_lesson_ends_with_predict_then_run_questions(name):
    solution = json.loads((REPO / "solutions" / name).read_text(encoding="utf-8"))
    cells = solution["cells"]
    answers = [i for i, c in enumerate(cells) if "answer" in c["metadata"].get(LIB, {})]
    assert 2 <= len(answers) <= 3
    for i in answers:
        assert cells[i - 1]["cell_type"] == "markdown"  # the question
        assert cells[i + 1]["cell_type"] == "code"  # the experiment
        assert cells[i + 1]["outputs"], "the solution stores the experiment's result"
    lesson = (REPO / "lessons" / name).read_text(encoding="utf-8")
    for i in answers:
        assert cells[i]["source"][:60] not in lesson
