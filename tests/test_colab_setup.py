"""The Colab path, offline: a fake `google.colab`, a fresh virtual
environment, and the real setup cell of the lessons installing the course
from a local wheel; then lesson 05's checks run on what it installed."""

import os
import zipfile
from pathlib import Path

import pytest

from tests.fresh_install import (
    build_distributions,
    clean_env,
    fresh_environment,
    lesson_check_cells,
    run_python,
)
from tf_transformer.course.build.publishing import CourseSource, setup_source

pytestmark = pytest.mark.slow

FAKE_COLAB = Path(__file__).resolve().parent / "fake_colab"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_distributions(tmp_path_factory.mktemp("colab-dist"))[0]


def colab_run(tmp_path, source, before="", upload=(), drive=None):
    """Run, in a fresh environment under a fake Colab: `before`, the lessons'
    setup cell for `source`, then lesson 05's check cells if the course is
    importable. Returns the process's output."""
    python = fresh_environment(tmp_path / "venv")
    work = tmp_path / "content"
    work.mkdir()
    cell = setup_source(source)
    # The mount point lies in the test's folder instead of /content/drive.
    cell = cell.replace('DRIVE = "/content/drive"', f'DRIVE = "{work}/drive"')
    script = "\n\n".join(
        [
            "import google.colab",
            before,
            cell,
            "import importlib.util\n"
            "if importlib.util.find_spec('tf_transformer') is None:\n"
            "    raise SystemExit(0)",
            *lesson_check_cells("05_masking"),
            "import tf_transformer, os\n"
            "print('imported from', tf_transformer.__file__)\n"
            "print('workbook at', os.environ.get('TF_TRANSFORMER_WORKBOOK'))",
        ]
    )
    env = clean_env(
        PYTHONPATH=str(FAKE_COLAB),
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        FAKE_COLAB_UPLOAD=os.pathsep.join(map(str, upload)),
    )
    env.pop("TF_TRANSFORMER_WORKBOOK")
    if drive is not None:
        env["FAKE_COLAB_DRIVE"] = str(drive)
    done = run_python(python, script, cwd=work, env=env, timeout=400)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    return done.stdout, tmp_path / "venv"


def missing_wheel(tmp_path):
    return CourseSource(
        "nobody/nothing",
        wheel_url=(
            tmp_path / "gone" / "tf_transformer-0.1.0-py3-none-any.whl"
        ).as_uri(),
    )


def test_setup_cell_installs_the_configured_wheel_and_lesson_05_checks_pass(
    tmp_path, wheel
):
    out, venv = colab_run(tmp_path, CourseSource("me/course", wheel_url=wheel.as_uri()))
    assert "Installed. No restart needed" in out, out
    assert out.count("all checks passed") == 2, out
    assert f"imported from {venv}" in out, out
    assert "Google Drive is not mounted (mount failed)" in out
    assert "lessons 08-09 will use the library's classes" in out


def test_failing_source_says_one_sentence_and_offers_the_fallbacks(tmp_path, wheel):
    out, _ = colab_run(tmp_path, missing_wheel(tmp_path))
    lines = [line for line in out.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("The course could not be")]
    assert len(failed) == 1 and failed[0].endswith(").")
    assert "Fallbacks: upload the course wheel" in out
    assert "Google Drive folder MyDrive/tf_transformer" in out
    assert "The course is not installed (no wheel was given)" in out
    assert "all checks passed" not in out
    assert not any(line.startswith(("ERROR", "  File ")) for line in lines), out


def test_a_wheel_in_drive_is_the_fallback_and_keeps_the_workbook(tmp_path, wheel):
    drive = tmp_path / "my_drive"
    (drive / "tf_transformer").mkdir(parents=True)
    (drive / "tf_transformer" / wheel.name).write_bytes(wheel.read_bytes())
    out, _ = colab_run(tmp_path, missing_wheel(tmp_path), drive=drive)
    assert "Your workbook is kept in Google Drive" in out
    assert "Installing the wheel in your Drive instead" in out
    assert out.count("all checks passed") == 2, out
    assert "tf_transformer/workbook" in out.split("workbook at", 1)[1]


def fake_wheel(folder, name, version):
    """A wheel of distribution `name` that holds only its metadata."""
    info = f"{name}-{version}.dist-info"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


def test_an_uploaded_wheel_is_the_fallback_and_a_changed_package_asks_for_a_restart(
    tmp_path, wheel
):
    newer_keras = fake_wheel(tmp_path, "keras", "99.0")
    out, venv = colab_run(
        tmp_path,
        missing_wheel(tmp_path),
        before="import keras",
        upload=[wheel, newer_keras],
    )
    assert "The course could not be installed" in out
    assert "keras changed version while loaded: restart the runtime" in out, out
    assert out.count("all checks passed") == 2, out
    assert f"imported from {venv}" in out
