"""Lessons 05-09 run to the end unanswered; every self-check says so.

(Two files so that pytest-xdist runs the two halves in parallel.)
"""

import pytest

from tests.lesson_running import LESSONS, assert_runs_unanswered


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [p for p in LESSONS if p.name >= "05"], ids=lambda p: p.stem
)
def test_unanswered_lesson_runs_to_the_end(path, tmp_path):
    assert_runs_unanswered(path, tmp_path)
