"""Where the course lives: one setting that the notebook build writes into
every Colab badge, every lesson's setup cell, the README's course map and the
package's project URLs.

The setting is the table `[tool.tf_transformer.course]` of pyproject.toml::

    [tool.tf_transformer.course]
    repository = "owner/name"  # the GitHub repository that holds lessons/
    branch = "main"            # the branch Colab opens the lessons from
    # pypi = "tf-transformer"  # optional: Colab installs this PyPI project
    # wheel_url = "https://…/tf_transformer-0.1.0-py3-none-any.whl"  # optional

`python -m tf_transformer.course build --repository owner/name` (and
`--branch`, `--pypi`, `--wheel-url`) overrides it for one build. The setup
cell installs from `wheel_url` when given, else from `pypi`, else from the
repository with git; when that fails it says so in one sentence and offers
the fallbacks (a wheel the student uploads, or one in their Google Drive).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

SETTING = ("tool", "tf_transformer", "course")
DISTRIBUTION = "tf-transformer"
COLAB_URL = "https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_BRANCH = re.compile(r"[A-Za-z0-9._/-]+")
_PYPI = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\s*[=<>!~]=?\s*[A-Za-z0-9.*+!_-]+)?")
# Colab links to lessons, whichever repository and branch they name.
_COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^\s)]+?/"
    r"(lessons/[^\s)]+\.ipynb)"
)


@dataclasses.dataclass(frozen=True)
class CourseSource:
    """Where students open the lessons and install the course from.

    Args:
        repository: the GitHub repository `owner/name` that holds lessons/.
        branch: the branch Colab opens. Defaults to `"main"`.
        pypi: a PyPI requirement (`"tf-transformer"`, `"tf-transformer==0.1.0"`)
            to install instead of the repository. Defaults to None.
        wheel_url: the address of a course wheel to install instead: https://,
            or file:// on a machine that sees the file (a JupyterHub, the
            tests). Defaults to None.
    """

    repository: str
    branch: str = "main"
    pypi: str | None = None
    wheel_url: str | None = None

    def __post_init__(self):
        if not isinstance(self.repository, str) or not _REPOSITORY.fullmatch(
            self.repository
        ):
            raise ValueError(
                "`repository` must be a GitHub repository 'owner/name'. "
                f"Received: repository={self.repository!r}"
            )
        if not isinstance(self.branch, str) or not _BRANCH.fullmatch(self.branch):
            raise ValueError(
                f"`branch` must be a branch name. Received: branch={self.branch!r}"
            )
        if self.pypi is not None and not (
            isinstance(self.pypi, str) and _PYPI.fullmatch(self.pypi)
        ):
            raise ValueError(
                "`pypi` must be a PyPI project name, optionally with a version "
                f"(e.g. 'tf-transformer==0.1.0'). Received: pypi={self.pypi!r}"
            )
        if self.wheel_url is not None and not (
            isinstance(self.wheel_url, str)
            and re.fullmatch(r"(https?|file)://\S+\.whl", self.wheel_url)
        ):
            raise ValueError(
                "`wheel_url` must be an https:// (or file://) address ending in "
                ".whl. "
                f"Received: wheel_url={self.wheel_url!r}"
            )

    @property
    def repository_url(self) -> str:
        return f"https://github.com/{self.repository}"

    def colab_url(self, lesson_path: str) -> str:
        """Where Colab opens `lesson_path` (relative to the repository root)."""
        return COLAB_URL.format(
            repository=self.repository, branch=self.branch, path=lesson_path
        )

    def badge(self, lesson_path: str) -> str:
        return f"[![Open In Colab]({BADGE_IMAGE})]({self.colab_url(lesson_path)})"

    @property
    def requirement(self) -> str:
        """What the setup cell gives `pip install`."""
        if self.wheel_url:
            return f"{DISTRIBUTION} @ {self.wheel_url}"
        if self.pypi:
            return self.pypi
        return f"{DISTRIBUTION} @ git+{self.repository_url}@{self.branch}"

    def project_urls(self) -> dict[str, str]:
        """pyproject's `[project.urls]`."""
        return {
            "Homepage": self.repository_url,
            "Source": self.repository_url,
            "Documentation": f"{self.repository_url}#readme",
            "Issues": f"{self.repository_url}/issues",
        }

    def replace(self, **overrides: str | None) -> CourseSource:
        """This source with the given (not None) fields replaced."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **given)


def read_setting(pyproject: Path) -> CourseSource:
    """The `[tool.tf_transformer.course]` setting of `pyproject`.

    Raises:
        ValueError: the file has no such table, or a value is malformed.
    """
    table = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))
    for key in SETTING:
        table = table.get(key) if isinstance(table, dict) else None
    if not isinstance(table, dict) or "repository" not in table:
        raise ValueError(
            f"{pyproject} must set `repository` in [{'.'.join(SETTING)}]. "
            f"Received: {table!r}"
        )
    fields = {field.name for field in dataclasses.fields(CourseSource)}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(
            f"[{'.'.join(SETTING)}] knows {sorted(fields)}. Received: {unknown}"
        )
    return CourseSource(**table)


def refresh_readme(text: str, source: CourseSource) -> str:
    """`text` with every Colab link to a lesson pointing where `source` says."""
    return _COLAB_LINK.sub(lambda match: source.colab_url(match.group(1)), text)


def _replace_table(text: str, header: str, values: dict[str, str]) -> str:
    """TOML `text` with the table `[header]` (its lines up to the next blank
    line or table) holding exactly `values`, as strings."""
    lines = [f'{key} = "{value}"' for key, value in values.items()]
    block = f"[{header}]\n" + "\n".join(lines) + "\n"
    pattern = re.escape(f"[{header}]") + r"\n(?:[^\[\n][^\n]*\n)*"
    updated, count = re.subn(pattern, lambda _: block, text)
    if count != 1:
        raise ValueError(f"pyproject.toml must have exactly one [{header}] table")
    return updated


def refresh_project_urls(text: str, source: CourseSource) -> str:
    """pyproject.toml's text with its `[project.urls]` table from `source`."""
    return _replace_table(text, "project.urls", source.project_urls())


def write_setting(text: str, source: CourseSource) -> str:
    """pyproject.toml's text with `[tool.tf_transformer.course]` = `source`."""
    values = {
        field.name: getattr(source, field.name)
        for field in dataclasses.fields(source)
        if getattr(source, field.name) is not None
    }
    return _replace_table(text, ".".join(SETTING), values)


SETUP_TEMPLATE = """\
# Setup. In Google Colab: install the course (TensorFlow stays as Colab ships
# it; tensorflow-text is pinned to its version), offer to keep your workbook
# in Google Drive, and say whether the runtime must restart. If the install
# fails, one line says why and offers the fallbacks. Elsewhere: check that
# the package is installed.
import sys

COURSE = "COURSE_REQUIREMENT"  # where the course installs from
KEEP_WORKBOOK_IN_DRIVE = True  # keep the classes you write for lessons 08-09
DRIVE_FOLDER = "tf_transformer"  # your Drive folder: the workbook, a course wheel
DRIVE = "/content/drive"

if "google.colab" in sys.modules:
    import glob
    import importlib.metadata
    import os
    import subprocess

    import tensorflow as tf
    from google.colab import drive, files

    def installed(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    def pip_install(*requirements):
        # "" when pip installed them, else pip's last error line.
        tf_major_minor = ".".join(tf.__version__.split(".")[:2])
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet",
             f"tensorflow-text=={tf_major_minor}.*", *requirements],
            capture_output=True, text=True,
        )
        if done.returncode == 0:
            return ""
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        return (errors[-1] if errors else f"pip exit status {done.returncode}")[:300]

    loaded = {name: installed(name) for name in ("keras", "numpy", "tensorflow")}
    folder = None
    if KEEP_WORKBOOK_IN_DRIVE:
        try:
            drive.mount(DRIVE)
            folder = os.path.join(DRIVE, "MyDrive", DRIVE_FOLDER)
            os.makedirs(folder, exist_ok=True)
            os.environ["TF_TRANSFORMER_WORKBOOK"] = os.path.join(folder, "workbook")
            print(f"Your workbook is kept in Google Drive: {folder}/workbook.")
        except Exception as error:  # declined, or no Drive
            folder = None
            print(f"Google Drive is not mounted ({error}): lessons 08-09 will use "
                  "the library's classes in place of the ones you saved.")
    else:
        print("Your workbook stays on this machine: lessons 08-09 will use the "
              "library's classes in place of the ones you saved.")

    problem = pip_install(COURSE)
    if problem:
        print(f"The course could not be installed from {COURSE} ({problem}).")
        wheels = sorted(glob.glob(os.path.join(folder or "", "tf_transformer-*.whl")))
        if folder and wheels:
            print(f"Installing the wheel in your Drive instead: {wheels[-1]}.")
            wheels = wheels[-1:]
        else:
            print("Fallbacks: upload the course wheel (tf_transformer-*.whl, from "
                  "your instructor) below, or put it in your Google Drive folder "
                  f"MyDrive/{DRIVE_FOLDER} and run this cell again.")
            try:
                wheels = [name for name in files.upload() if name.endswith(".whl")]
            except Exception:  # the upload was cancelled
                wheels = []
        problem = pip_install(*wheels) if wheels else "no wheel was given"
        if problem:
            print(f"The course is not installed ({problem}): ask your instructor "
                  "for the course wheel and run this cell again.")
    if not problem:
        changed = [
            name
            for name, version in loaded.items()
            if name in sys.modules and installed(name) != version
        ]
        if changed:
            print(
                f"Installed. {', '.join(changed)} changed version while loaded: "
                "restart the runtime (Runtime > Restart session) and run the "
                "notebook again from the top."
            )
        else:
            print("Installed. No restart needed: run the next cells.")
else:
    try:
        import tf_transformer  # noqa: F401
    except ImportError:
        raise ImportError(
            "The course package is not installed in this kernel's Python. "
            "In a terminal, in the repository folder, run `pip install -e .` "
            "(see the README), then restart the kernel."
        ) from None"""


def setup_source(source: CourseSource) -> str:
    """The first code cell of every lesson."""
    return SETUP_TEMPLATE.replace("COURSE_REQUIREMENT", source.requirement)
