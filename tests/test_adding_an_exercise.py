"""The recipe of docs/instructors.md, "Adding an exercise", followed in a copy
of the package: the worked example's module (taken from the page) and a
solution cell that names only the exercise are all the build, the checks and
the catalogue need."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_predictions import _cell as cell
from tests.test_predictions import _notebook as notebook

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tf_transformer/course/checks/combine_masks.py"


def worked_example() -> str:
    """The Python blocks of the recipe that belong to the example's module."""
    page = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
    section = page[page.index("## Adding an exercise") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    parts = [b for b in blocks if b.startswith(f"# {MODULE}")]
    assert len(parts) == 2, "the page shows the check, then the catalogue"
    return "\n\n".join(parts)


def solution_notebook() -> dict:
    return notebook(
        cell("markdown", "# 05 · Masking (toy)", cell_id="intro"),
        cell("code", "import tensorflow as tf", cell_id="imports"),
        cell("markdown", "## Exercise: combine masks", cell_id="ask"),
        # Step 4: the cell carries only the exercise's name.
        cell("code", "", {"exercise": "combine_masks"}, cell_id="combine"),
    )


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tf_transformer
    from tf_transformer.course.build import notebooks

    root = sys.argv[1]
    assert tf_transformer.__file__.startswith(root), tf_transformer.__file__
    built = notebooks.main(["build", "--root", root])
    checked = notebooks.main(["build", "--check", "--root", root])
    from tf_transformer.course import checks

    ex = checks.EXERCISES["combine_masks"]
    reference = checks.run_check("combine_masks", ex.load_reference())
    bugs = [
        [b.make.__name__, b.hint, checks.run_check(b.exercise, b.make()).hint()]
        for b in checks.BUGS
        if b.exercise == "combine_masks"
    ]
    alternatives = [
        checks.run_check(a.exercise, a.make()).passed
        for a in checks.ALTERNATIVES
        if a.exercise == "combine_masks"
    ]
    print(json.dumps({
        "built": built,
        "checked": checked,
        "lesson_5": [e.name for e in checks.exercises_of_lesson(5)],
        "source": ex.source,
        "reference": reference.passed,
        "bugs": bugs,
        "alternatives": alternatives,
    }))
    """
)


@pytest.mark.slow
def test_recipe_adds_an_exercise_that_build_check_and_catalogue_pick_up(tmp_path):
    shutil.copytree(
        ROOT / "tf_transformer",
        tmp_path / "tf_transformer",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):  # the course setting, the map
        shutil.copy(ROOT / name, tmp_path / name)
    assert not (tmp_path / MODULE).exists()
    (tmp_path / MODULE).write_text(worked_example(), encoding="utf-8")
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "05_masking.ipynb").write_text(
        json.dumps(solution_notebook()), encoding="utf-8"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])

    assert (found["built"], found["checked"]) == (0, 0)
    assert found["lesson_5"] == ["causal_mask", "combine_masks", "padding_mask"]
    assert found["source"] == "tf_transformer.layers.masks.combine_masks"
    assert found["reference"]
    assert len(found["bugs"]) == 2 and found["alternatives"] == [True]
    for name, hint, message in found["bugs"]:
        assert hint in message, (name, message)

    solution = json.loads((tmp_path / "solutions" / "05_masking.ipynb").read_text())
    filled, check = solution["cells"][3:5]
    assert filled["source"].startswith("def combine_masks(*masks):")
    assert check["metadata"]["tf_transformer"] == {"check": "combine_masks"}
    lesson = json.loads((tmp_path / "lessons" / "05_masking.ipynb").read_text())
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: c for c in lesson["cells"]}
    stub = by_id["combine_masks"]["source"]
    assert stub.startswith("def combine_masks(*masks):")
    assert "tf.logical_and" not in stub
    assert stub.endswith("# YOUR CODE HERE\n    raise NotImplementedError()")
    graded = by_id["check_combine_masks"]["metadata"]["nbgrader"]
    assert (graded["grade"], graded["points"]) == (True, 1.0)
    assert (
        'check("combine_masks", combine_masks)'
        in by_id["check_combine_masks"]["source"]
    )
