"""`tf-transformer` prints its own lines, not TensorFlow's, unless asked to.

The commands run through the entry point that pyproject.toml declares, as
the installed `tf-transformer` script runs them, with no
`TF_CPP_MIN_LOG_LEVEL` in the environment (as on a user's machine).
"""

import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tf_transformer.cli import library_logs_shown
from tf_transformer_cli import startup_lines_kept, wants_verbose

ROOT = Path(__file__).resolve().parents[1]

# What TensorFlow 2.21 writes while it is imported, on a machine without a GPU.
STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n"
    "I0000 00:00:1796473427.003556    5956 port.cc:153] oneDNN custom operations "
    "are on.\n"
    "I0000 00:00:1796473427.003894    5956 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.\n"
    "I0000 00:00:1796473427.089820    5956 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized to use available CPU instructions.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.\n"
)
ERROR_RECORD = (
    "E0000 00:00:1796473591.509264    8772 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error\n"
)
PYTHON_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "x.py", line 1, in <module>\n'
    "ImportError: libcudnn.so.9: cannot open shared object file\n"
)


def test_startup_records_are_dropped_and_python_errors_kept():
    text = STARTUP + ERROR_RECORD + PYTHON_ERROR
    assert startup_lines_kept(text, min_level=3) == PYTHON_ERROR
    assert startup_lines_kept(text, min_level=2) == ERROR_RECORD + PYTHON_ERROR
    assert startup_lines_kept(text, min_level=0) == text


def entry_point_command():
    """`python -c` running the `tf-transformer` entry point as its script does."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["tf-transformer"].split(":")
    code = (
        f"import sys; from {module} import {function}; "
        f"sys.argv[0] = 'tf-transformer'; sys.exit({function}())"
    )
    return [sys.executable, "-c", code]


def run_command(*args, **env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_TRANSFORMER_VERBOSE")
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), environment.get("PYTHONPATH", "")]
    )
    environment.update(env)
    return subprocess.run(
        entry_point_command() + list(args),
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_held_back_lines_still_show_an_error_raised_while_importing():
    # Without TensorFlow: what the import writes to file descriptor 2.
    code = (
        "import os, sys\n"
        "from tf_transformer_cli import startup_lines_held_back\n"
        "with startup_lines_held_back(3):\n"
        f"    os.write(2, {STARTUP.encode()!r})\n"
        "    raise ImportError('libcudnn.so.9: cannot open shared object file')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr
    assert result.stderr.startswith("Traceback")
    assert "ImportError: libcudnn.so.9" in result.stderr


@pytest.mark.slow
def test_a_command_prints_only_its_own_error(tmp_path):
    missing = tmp_path / "nothing-here"
    result = run_command("translate", "--model", str(missing), "seven")
    assert result.returncode == 2
    assert result.stderr == f"error: No run directory at {str(missing)!r}.\n"
    assert result.stdout == ""


@pytest.mark.slow
def test_verbose_shows_tensorflows_own_lines(tmp_path):
    missing = tmp_path / "nothing-here"
    result = run_command("translate", "--model", str(missing), "seven", "--verbose")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == f"error: No run directory at {str(missing)!r}."
    assert any("InitializeLog" in line or "] " in line for line in lines[:-1]), lines


def test_verbose_is_asked_by_the_option_or_the_environment(monkeypatch):
    monkeypatch.delenv("TF_TRANSFORMER_VERBOSE", raising=False)
    assert wants_verbose(["train", "--verbose"])
    assert wants_verbose(["--verbose", "train"])
    assert not wants_verbose(["translate", "--model", "m", "--", "--verbose"])
    assert not wants_verbose(["train"])
    monkeypatch.setenv("TF_TRANSFORMER_VERBOSE", "1")
    assert wants_verbose(["train"])
    monkeypatch.setenv("TF_TRANSFORMER_VERBOSE", "0")
    assert not wants_verbose(["train"])


@pytest.mark.slow
def test_library_warnings_are_held_back_during_a_command_unless_verbose():
    logger = logging.getLogger("absl")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    level = logger.level
    try:
        with library_logs_shown(verbose=False):
            logger.warning("Variant folder x has no dataset_info.json")
            logger.error("a real error")
        with library_logs_shown(verbose=True):
            logger.warning("shown")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["a real error", "shown"]
    assert logger.level == level
