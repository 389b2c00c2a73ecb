"""The install instructions agree with each other: pyproject, conda, README, CI."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_exactly_the_pyproject_requirements():
    project = pyproject()["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(
        d["pip"] for d in environment["dependencies"] if isinstance(d, dict)
    )
    listed = {line for line in pip_section if not line.startswith("--editable")}
    assert listed == wanted, (
        f"only in pyproject: {sorted(wanted - listed)}; "
        f"only in environment.yml: {sorted(listed - wanted)}"
    )
    assert "--editable ." in pip_section


def test_environment_yml_python_satisfies_requires_python():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(
        d
        for d in environment["dependencies"]
        if isinstance(d, str) and d.startswith("python=")
    )
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    version = tuple(int(p) for p in python.split("=")[1].split("."))
    assert version >= tuple(int(p) for p in minimum.split("."))


def readme_command(title):
    """The shell command in the README code block right after `title`."""
    text = (ROOT / "README.md").read_text()
    match = re.search(re.escape(title) + r".*?```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert match, f"README has no command block after {title!r}"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_command("Run the tests")
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci
    assert "pip install -e" in command and "pytest" in command


def test_readme_main_job_is_the_bare_command():
    command = readme_command("Run the main job")
    assert command.endswith("&& tf-transformer")
    assert "pip install -e ." in command


def test_readme_has_no_unfilled_placeholders():
    text = (ROOT / "README.md").read_text()
    placeholders = ("COURSE_MAP", "BENCHMARKS", "DATA_SECTION", "TODO", "RT0", "DATE_")
    for placeholder in placeholders:
        assert placeholder not in text, placeholder


def test_code_is_ruff_clean():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_readme_course_map_links_every_lesson_to_colab():
    from tf_transformer.course.build import notebooks

    text = (ROOT / "README.md").read_text()
    lessons = sorted(p.name for p in (ROOT / "lessons").glob("[0-9]*.ipynb"))
    assert len(lessons) >= 11
    for name in lessons:
        assert f"(lessons/{name})" in text, name
        assert f"[Colab]({notebooks.colab_url(f'lessons/{name}')})" in text, name
