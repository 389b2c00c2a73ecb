"""One setting says where the course lives; every address comes from it."""

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from tf_transformer.course.build import notebooks
from tf_transformer.course.build.publishing import (
    CourseSource,
    read_setting,
    setup_source,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "course" / "solutions"
# An address a student may follow or install from: Colab, GitHub, git, wheels.
ADDRESS = re.compile(
    r"(?:git\+)?https?://(?:colab\.research\.google\.com/github|github\.com)[^\s)\"'\]]*"
    r"|(?:https?|file)://[^\s)\"']+\.whl"
)


def setting():
    return read_setting(REPO / "pyproject.toml")


def produced(source, lessons):
    """Every address the setting produces."""
    addresses = {source.repository_url, source.requirement}
    addresses |= set(source.project_urls().values())
    for lesson in lessons:
        addresses.add(source.colab_url(f"lessons/{lesson}"))
    if source.wheel_url:
        addresses.add(source.wheel_url)
    return addresses


def test_no_badge_setup_cell_or_readme_address_the_setting_did_not_produce():
    source = setting()
    lessons = sorted(p.name for p in (REPO / "lessons").glob("[0-9]*.ipynb"))
    allowed = produced(source, lessons) | {source.requirement.split(" @ ")[-1]}
    for name in lessons:
        cells = json.loads((REPO / "lessons" / name).read_text())["cells"]
        assert cells[0]["source"] == source.badge(f"lessons/{name}"), name
        assert cells[1]["source"] == setup_source(source), name
        for cell in cells:
            for address in ADDRESS.findall(cell["source"]):
                assert address.rstrip(".,") in allowed, (name, address)
    readme = (REPO / "README.md").read_text()
    found = ADDRESS.findall(readme)
    assert any("colab.research.google.com/github" in a for a in found)
    for address in found:
        assert address.rstrip(".,") in allowed, address
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert urls == source.project_urls()


def test_build_flags_override_and_write_the_setting(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "solutions")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text(
        "[Colab](https://colab.research.google.com/github/someone/else/blob/dev/"
        "lessons/99_masks.ipynb)\n"
    )
    wheel = "https://example.org/course/tf_transformer-0.1.0-py3-none-any.whl"
    flags = ["--repository", "teacher/course-fork", "--branch", "spring"]
    build = ["build", "--root", str(tmp_path)]
    assert notebooks.main([*build, *flags, "--wheel-url", wheel]) == 0
    source = read_setting(tmp_path / "pyproject.toml")
    assert source == CourseSource("teacher/course-fork", "spring", wheel_url=wheel)
    cells = json.loads((tmp_path / "lessons" / "99_masks.ipynb").read_text())["cells"]
    assert (
        "github/teacher/course-fork/blob/spring/lessons/99_masks.ipynb"
        in (cells[0]["source"])
    )
    assert f'COURSE = "tf-transformer @ {wheel}"' in cells[1]["source"]
    assert source.colab_url("lessons/99_masks.ipynb") in (
        (tmp_path / "README.md").read_text()
    )
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Source"] == "https://github.com/teacher/course-fork"
    assert notebooks.main([*build, "--check"]) == 0
    (tmp_path / "README.md").write_text(
        "[Colab](https://colab.research.google.com/github/a/b/blob/main/"
        "lessons/99_masks.ipynb)\n"
    )
    assert notebooks.main([*build, "--check"]) == 1


def test_the_setup_cell_installs_from_pypi_when_set():
    source = CourseSource("teacher/course", pypi="tf-transformer==0.1.0")
    assert 'COURSE = "tf-transformer==0.1.0"' in setup_source(source)
    assert CourseSource("a/b").requirement == (
        "tf-transformer @ git+https://github.com/a/b@main"
    )


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"repository": "no-slash"}, "repository='no-slash'"),
        ({"repository": "a/b", "wheel_url": "ftp://x/y.whl"}, "wheel_url='ftp"),
        ({"repository": "a/b", "pypi": "two words"}, "pypi='two words'"),
    ],
)
def test_a_bad_setting_is_refused_by_name(fields, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        CourseSource(**fields)


def test_a_bad_flag_is_one_line_and_exit_status_2(tmp_path, capsys):
    shutil.copytree(FIXTURE, tmp_path / "solutions")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    status = notebooks.main(["build", "--root", str(tmp_path), "--repository", "x"])
    assert status == 2
    assert "Received: repository='x'" in capsys.readouterr().err
    assert not (tmp_path / "lessons").exists()
