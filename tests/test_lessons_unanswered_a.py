"""Lessons 00-04 run to the end unanswered; every self-check says so.

(Two files so that pytest-xdist runs the two halves in parallel.)
"""

import nbformat
import pytest

from tests.lesson_running import (
    LESSONS,
    ROOT,
    SHORTER_TRAINING,
    assert_runs_unanswered,
    shorten_training,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [p for p in LESSONS if p.name < "05"], ids=lambda p: p.stem
)
def test_unanswered_lesson_runs_to_the_end(path, tmp_path):
    assert_runs_unanswered(path, tmp_path)


@pytest.mark.parametrize("stem", sorted(SHORTER_TRAINING))
def test_the_shortened_training_texts_are_in_their_lessons(stem):
    notebook = nbformat.read(ROOT / "lessons" / f"{stem}.ipynb", as_version=4)
    shorten_training(notebook, stem)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    for old, new in SHORTER_TRAINING[stem]:
        assert old not in code and code.count(new) == 1


def test_a_missing_training_text_is_an_error():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(AssertionError, match="occurs 0 times"):
        shorten_training(notebook, "08_training")
