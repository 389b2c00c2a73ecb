"""`tf-transformer autograder gradescope`: the zip, and the autograder run end
to end in a temporary folder laid out like Gradescope's `/autograder`."""

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from test_grading_lms import GRADESCOPE_SCHEMA

from tf_transformer.course.checks import exercises_of_lesson
from tf_transformer.course.grading import autograder

REPO = Path(__file__).resolve().parents[1]


def entry_point(*argv, **kwargs):
    """`tf-transformer ARGV...` in a subprocess, with this checkout's package."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **kwargs.pop("env", {}))
    command = "import sys, tf_transformer_cli; sys.exit(tf_transformer_cli.main())"
    return subprocess.run(
        [sys.executable, "-c", command, *argv],
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )


@pytest.mark.slow
def test_the_zip_has_gradescope_files_at_its_root(tmp_path):
    wheel = tmp_path / "tf_transformer-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    out = autograder.build_gradescope(
        tmp_path / "autograder.zip", [5, 8], wheel=wheel, visibility="after_due_date"
    )
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert names == {
            "setup.sh",
            "run_autograder",
            "autograder.json",
            f"wheels/{wheel.name}",
        }
        for name in ("setup.sh", "run_autograder"):
            mode = archive.getinfo(name).external_attr >> 16
            assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, oct(mode)
            script = tmp_path / name
            script.write_bytes(archive.read(name))
            subprocess.run(["bash", "-n", str(script)], check=True)
        config = json.loads(archive.read("autograder.json"))
        setup = archive.read("setup.sh").decode()
    assert config["lessons"] == [5, 8] and config["visibility"] == "after_due_date"
    assert config["wheel"] == wheel.name
    assert "pip install wheels/*.whl" in setup


def test_the_zip_installs_a_requirement_without_a_wheel(tmp_path):
    out = autograder.build_gradescope(
        tmp_path / "a.zip", [5], requirement="git+https://example.org/course.git@v1"
    )
    with zipfile.ZipFile(out) as archive:
        assert not any(n.startswith("wheels/") for n in archive.namelist())
        assert "pip install 'git+https://example.org/course.git@v1'" in (
            archive.read("setup.sh").decode()
        )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"lessons": [99]}, "lessons=[99]"),
        ({"lessons": []}, "lessons=[]"),
        ({"lessons": [5], "visibility": "public"}, "visibility='public'"),
        ({"lessons": [5], "sandbox": "docker"}, "sandbox='docker'"),
        ({"lessons": [5], "wheel": "course.tar.gz"}, "wheel='course.tar.gz'"),
    ],
)
def test_bad_settings_are_refused(tmp_path, arguments, message):
    with pytest.raises(
        ValueError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        autograder.build_gradescope(tmp_path / "a.zip", **arguments)


def fake_autograder_root(tmp_path, zip_path, notebooks):
    """/autograder as Gradescope lays it out: source/ (the zip), run_autograder,
    submission/ (the student's files), results/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    for notebook in notebooks:
        shutil.copy(notebook, root / "submission" / notebook.name)
    (root / "submission" / "notes.txt").write_text("not a notebook")
    return root


@pytest.mark.slow
def test_gradescope_autograder_end_to_end(tmp_path):
    built = entry_point(
        "autograder",
        "gradescope",
        "--lessons",
        "05",
        "08",
        "--out",
        str(tmp_path / "autograder.zip"),
        "--sandbox",
        "none",
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    solution = next((REPO / "solutions").glob("05_*.ipynb"))
    root = fake_autograder_root(tmp_path, tmp_path / "autograder.zip", [solution])
    run = subprocess.run(
        [str(root / "run_autograder")],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(
            os.environ,
            AUTOGRADER_ROOT=str(root),
            AUTOGRADER_PYTHON=sys.executable,
            PYTHONPATH=str(REPO),
        ),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    masks = exercises_of_lesson(5)
    training = exercises_of_lesson(8)
    assert results["score"] == sum(ex.points for ex in masks) > 0
    tests = {t["name"]: t for t in results["tests"]}
    assert set(tests) == {
        *(f"Lesson 05: {ex.name}" for ex in masks),
        *(f"Lesson 08: {ex.name}" for ex in training),
    }
    for ex in training:
        test = tests[f"Lesson 08: {ex.name}"]
        assert (test["score"], test["max_score"]) == (0, ex.points)
        assert test["output"].startswith("missing: no notebook of lesson 08")
    assert results["execution_time"] >= 1
    assert "wrote" in run.stdout


def test_a_broken_configuration_still_writes_a_result(tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "autograder.json").write_text('{"lessons": [99]}')
    results = autograder.run_gradescope(root)
    assert results["score"] == 0
    assert "lessons=[99]" in results["output"]
    written = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(written, GRADESCOPE_SCHEMA)
