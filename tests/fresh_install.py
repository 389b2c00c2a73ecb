"""The course as a student's machine gets it: a wheel built from this
repository, installed (not editable) in a fresh virtual environment.

No network: the wheel is built with the build tools already installed
(`python -m build --no-isolation`), and the fresh environment finds the
course's dependencies through a `.pth` file naming this interpreter's
site-packages, listed after its own (so the installed wheel, not the
editable checkout, is what `import tf_transformer` finds there).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a distribution is built from: the sdist must hold the rest.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "tf_transformer",
    "tf_transformer_cli",
)


def build_distributions(out: Path) -> tuple[Path, Path]:
    """Build the sdist, then the wheel from that sdist; returns (wheel, sdist).

    A copy of the sources is built, so the checkout gains no build folders.
    """
    source = out / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(
                path, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    dist = out / "dist"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    return wheel, sdist


def fresh_environment(where: Path) -> Path:
    """A new virtual environment (no pip, no course package) whose Python
    also sees this interpreter's installed packages; returns its python."""
    venv.EnvBuilder(with_pip=False, clear=True).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A plain path line: the outer site-packages' own .pth files (among them
    # the editable install of this checkout) are not run.
    outer = sysconfig.get_paths()["purelib"]
    Path(purelib, "outer_packages.pth").write_text(outer + "\n")
    return python


def pip_install(python: Path, *requirements: str) -> subprocess.CompletedProcess:
    """`pip install` into the environment of `python`, offline, no dependencies."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a student's process: no checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TF_TRANSFORMER_WORKBOOK="off", **extra)
    env.pop("TF_TRANSFORMER_GRADING", None)
    return env


def lesson_check_cells(stem: str) -> list[str]:
    """The code a student runs up to and including each self-check of a
    lesson: its first code cell (imports), then each exercise (answered, from
    solutions/) followed by its check cell, each check cell asserting that it
    passed."""
    notebook = json.loads((ROOT / "solutions" / f"{stem}.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    cells = ["".join(code[0]["source"])]
    for cell in code:
        meta = cell.get("metadata", {}).get("tf_transformer", {})
        if "exercise" in meta:
            cells.append("".join(cell["source"]))
        elif "check" in meta:
            cells.append("".join(cell["source"]) + "\nassert result.passed, result\n")
    return cells


def run_python(python: Path, script: str, cwd: Path, env: dict, timeout: int = 300):
    return subprocess.run(
        [str(python), "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
