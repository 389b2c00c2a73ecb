"""The wheel is the course: built offline, installed (not editable) in a
fresh virtual environment, it runs a lesson's self-checks."""

import subprocess
import sys
import zipfile

import pytest

from tests.fresh_install import (
    build_distributions,
    clean_env,
    fresh_environment,
    lesson_check_cells,
    pip_install,
    run_python,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    return build_distributions(tmp_path_factory.mktemp("course-dist"))


def test_wheel_holds_what_the_lessons_read_at_run_time(distributions):
    wheel, _ = distributions
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "tf_transformer/course/checks/__init__.py",
        "tf_transformer/course/checks/multi_head_attention.py",  # check + catalogue
        "tf_transformer/course/build/__init__.py",
        "tf_transformer/course/build/diagrams.py",
        "tf_transformer/course/workbook.py",
        "tf_transformer/course/grading/answers.py",
        "tf_transformer/data/corpora.py",
        "tf_transformer_cli/__init__.py",
    ):
        assert needed in names, needed
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Project-URL: Source, https://github.com/" in text
    assert "Description-Content-Type: text/markdown" in text


def test_twine_check_passes(distributions):
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, distributions)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_installed_wheel_runs_lesson_05_checks(distributions, tmp_path):
    wheel, _ = distributions
    python = fresh_environment(tmp_path / "venv")
    installed = pip_install(python, str(wheel))
    assert installed.returncode == 0, installed.stderr
    script = "\n\n".join(lesson_check_cells("05_masking")) + (
        "\nimport tf_transformer\nprint('imported from', tf_transformer.__file__)\n"
    )
    done = run_python(python, script, cwd=tmp_path, env=clean_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("all checks passed") == 2, done.stdout
    assert f"imported from {tmp_path / 'venv'}" in done.stdout, done.stdout
