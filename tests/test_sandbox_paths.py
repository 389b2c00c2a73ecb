"""The grader's sandbox finds Python and the library wherever they live.

bubblewrap gives submission code an empty /tmp of its own. The tests here
build, under /tmp and with spaces in every folder name, a virtual
environment (its site-packages pointing at the packages installed for
this test run) and a copy of the package, and grade from there: inside the
sandbox, the answers' process and the notebook runner must still find the
interpreter, its prefixes, `sys.path` and the package, while a submission
sees neither the other submissions nor their folders. A Python the sandbox
cannot show (one under /dev, which bubblewrap makes anew) stops grading
before any row, with one error line from the command.
"""

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

import tf_transformer
from tests.grade_submissions import write_notebook
from tf_transformer.course.grading import confine, grade

needs_bwrap = pytest.mark.skipif(
    not confine.bwrap_works(), reason="bubblewrap is not available"
)

# A submission checks what it can see from inside the sandbox, and answers
# right only when it sees no other submission's folder or notebook; its
# notebook's kernel kills itself if it does (a row says the kernel died).
ANSWERS = """
import os

def _alone(peer):
    here = os.getcwd()
    folders = [name for name in os.listdir(os.path.dirname(here))
               if name.startswith("tf-transformer-grade-")]
    return folders == [os.path.basename(here)] and not os.path.exists(peer)

def padding_mask(token_ids, pad_id=0):
    import tensorflow as tf
    assert _alone({peer!r}), "another submission is visible"
    return tf.not_equal(token_ids, pad_id)[:, tf.newaxis, :]

def causal_mask(length):
    import tensorflow as tf
    return tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)
"""
CHECK_CELL = "if not _alone({peer!r}):\n    os._exit(1)"


def make_venv(folder: Path) -> Path:
    """A virtual environment in `folder` whose site-packages points at the
    packages this test run uses (a .pth file); its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        check=True,
        capture_output=True,
    )
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    installed = [
        path
        for path in dict.fromkeys([*site.getsitepackages(), *sys.path])
        if path.endswith(("site-packages", "dist-packages")) and os.path.isdir(path)
    ]
    Path(purelib, "tf_transformer_test_deps.pth").write_text(
        "\n".join(installed) + "\n"
    )
    return python


def copy_package(checkout: Path) -> Path:
    """The package and its command's entry point, copied into `checkout`."""
    root = Path(tf_transformer.__file__).resolve().parents[1]
    for name in ("tf_transformer", "tf_transformer_cli"):
        shutil.copytree(
            root / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    return checkout


def layout_env(checkout: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


GRADE = """
import dataclasses, json, sys
import tf_transformer
from tf_transformer.course.grading import grade
rows = grade.grade([sys.argv[1]], jobs=2, timeout=300, sandbox="bwrap")
print(json.dumps({
    "package": tf_transformer.__file__,
    "prefix": sys.prefix,
    "rows": [dataclasses.asdict(row) for row in rows],
}))
"""


@pytest.fixture(scope="module")
def graded_from_tmp():
    if not confine.bwrap_works():
        pytest.skip("bubblewrap is not available")
    base = Path(tempfile.mkdtemp(prefix="tf transformer ", dir="/tmp"))
    try:
        python = make_venv(base / "the venv")
        checkout = copy_package(base / "a checkout")
        folder = base / "class of 2026"
        for student in ("ada lovelace", "grace hopper"):
            peer = folder / "ada lovelace" / "05 masking.ipynb"
            cells = [ANSWERS.format(peer=str(peer)), CHECK_CELL.format(peer=str(peer))]
            write_notebook(folder / student / "05 masking.ipynb", cells)
        done = subprocess.run(
            [str(python), "-c", GRADE, str(folder)],
            cwd=checkout,
            env=layout_env(checkout),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return base, report


@pytest.mark.slow
@needs_bwrap
def test_a_venv_and_a_checkout_under_tmp_with_spaces_are_used(graded_from_tmp):
    base, report = graded_from_tmp
    assert report["package"].startswith(str(base / "a checkout"))
    assert report["prefix"] == str(base / "the venv")


@pytest.mark.slow
@needs_bwrap
def test_answers_and_notebooks_from_tmp_pass_inside_the_sandbox(graded_from_tmp):
    _, report = graded_from_tmp
    # No row with an empty exercise: each notebook ran to its end in a
    # kernel started inside the sandbox, from the venv under /tmp.
    table = {(row["submission"], row["exercise"]): row for row in report["rows"]}
    expected = {
        (f"{student}/05 masking.ipynb", exercise)
        for student in ("ada lovelace", "grace hopper")
        for exercise in ("padding_mask", "causal_mask")
    }
    assert set(table) == expected, table
    for key, row in table.items():
        assert row["status"] == "passed", (key, row["message"])


@pytest.mark.slow
@needs_bwrap
def test_a_python_the_sandbox_cannot_show_stops_grading_with_one_error(tmp_path):
    """A venv under /dev (bubblewrap makes /dev anew): the interpreter is
    missing inside the sandbox. The command says so once, before any row,
    and exits with status 2; before, every exercise got an error row."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)):
        pytest.skip("no writable /dev/shm to put a venv the sandbox cannot show")
    venv = shm / f"tf-transformer-test-{uuid.uuid4().hex}"
    try:
        python = make_venv(venv)
        checkout = copy_package(tmp_path / "a checkout")
        folder = tmp_path / "class"
        write_notebook(folder / "ada" / "05_masking.ipynb", [ANSWERS.format(peer="")])
        out = tmp_path / "grades.csv"
        entry_point = (
            "import sys, tf_transformer_cli; sys.exit(tf_transformer_cli.main())"
        )
        done = subprocess.run(
            [
                str(python),
                "-c",
                entry_point,
                "grade",
                str(folder),
                "--out",
                str(out),
                "--sandbox",
                "bwrap",
                "--no-execute",
            ],
            cwd=tmp_path,
            env=layout_env(checkout),
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(errors) == 1 and errors == lines[-1:], lines
    error = errors[0]
    assert "sandbox='bwrap'" in error and "--sandbox none" in error, error
    assert str(venv / "bin" / "python") in error, error  # the cause, named
    assert "made anew in the sandbox" in error, error  # and why
    assert not out.exists()
    assert not any(line.startswith("[1/1]") for line in lines)  # no row graded


# ------------------------------------------------------------ no processes


@pytest.fixture
def fake_bwrap(monkeypatch):
    monkeypatch.setattr(confine, "bwrap_works", lambda: True)


def test_auto_falls_back_with_the_reason_where_python_cannot_start_in_bwrap(
    fake_bwrap,
):
    def failure(mode):
        return "Python cannot start in it (exit status 1)" if mode == "bwrap" else None

    sandbox = confine.resolve("auto", failure)
    assert sandbox.mode == "none"
    assert "Python cannot start in it (exit status 1)" in sandbox.describe()
    assert confine.resolve(sandbox, failure) is sandbox  # resolved once


@pytest.mark.parametrize(
    ("asked", "fails", "part"),
    [
        ("bwrap", {"bwrap"}, "--sandbox none"),
        ("auto", {"bwrap", "none"}, "Without a sandbox"),
        ("none", {"none"}, "Without a sandbox"),
    ],
)
def test_a_sandbox_that_cannot_start_python_is_one_error(
    fake_bwrap, asked, fails, part
):
    def failure(mode):
        return f"it cannot start in {mode} (exit status 127)" if mode in fails else None

    with pytest.raises(confine.SandboxError) as raised:
        confine.resolve(asked, failure)
    message = str(raised.value)
    assert "exit status 127" in message and part in message, message
    assert "\n" not in message


def test_the_sandbox_shows_needed_paths_under_tmp_but_keeps_submissions_apart(
    monkeypatch, tmp_path
):
    venv = tmp_path / "v env"
    (venv / "tmp").mkdir(parents=True)
    monkeypatch.setattr(confine, "needed_paths", lambda: ("/tmp", str(venv), "/usr"))

    def mounts(temp):
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
        args = confine.wrap(["python"], str(temp / "work"))
        return args[: args.index("--bind")]

    if not str(tmp_path.resolve()).startswith("/tmp/"):
        pytest.skip("the test's folder is not under /tmp (TMPDIR is set)")
    bound = str(venv.resolve())
    # TMPDIR beside the venv: the venv is bound into the private /tmp;
    # /tmp itself (holding the others' folders) and /usr (visible) are not.
    beside = mounts(tmp_path)
    assert beside[-5:] == ["--tmpfs", "/tmp", "--ro-bind", bound, bound]
    # TMPDIR inside the venv: emptied again after the venv is bound.
    assert mounts(venv / "tmp")[-2:] == ["--tmpfs", f"{bound}/tmp"]
    # TMPDIR a needed path (the current folder on sys.path): emptied again,
    # and the venv inside it bound back.
    (tmp_path / "v env").rename(tmp_path / "job")
    (tmp_path / "job" / "v env").mkdir()
    job, inner = str(tmp_path.resolve() / "job"), str(tmp_path.resolve() / "job/v env")
    monkeypatch.setattr(confine, "needed_paths", lambda: (job, inner))
    assert mounts(tmp_path / "job")[-8:] == [
        *("--ro-bind", job, job),
        *("--tmpfs", job),
        *("--ro-bind", inner, inner),
    ]
    # TMPDIR outside /tmp: private too.
    outside = Path("/var/tmp") / f"tf-transformer-test-{uuid.uuid4().hex}"
    outside.mkdir(parents=True)
    try:
        args = mounts(outside)
    finally:
        outside.rmdir()
    at = args.index("/tmp")
    assert args[at - 1 : at + 3] == ["--tmpfs", "/tmp", "--tmpfs", str(outside)]


@pytest.mark.slow
def test_a_process_that_dies_is_reported_with_its_signal_and_last_lines():
    script = (
        "import os, signal, sys\n"
        "print('first words', file=sys.stderr)\n"
        "print('last words', file=sys.stderr, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    process, tail = confine.start_with_tail([sys.executable, "-c", script])
    process.wait(timeout=60)
    assert confine.ended(process.returncode, tail.text()) == (
        "killed by SIGKILL; it wrote: first words | last words"
    )
    assert confine.exit_status(128 + signal.SIGSEGV) == (
        "exit status 139 (= 128 + SIGSEGV)"
    )
    assert confine.ended(3, "") == "exit status 3"


def test_private_paths_keep_what_python_needs_visible(monkeypatch, tmp_path):
    needed = tmp_path / "class" / "venv"
    needed.mkdir(parents=True)
    other = tmp_path / "other class"
    other.mkdir()
    monkeypatch.setattr(confine, "needed_paths", lambda: (str(needed),))
    private = grade.private_paths([tmp_path / "class", other])
    assert str(other.resolve()) in private
    assert str((tmp_path / "class").resolve()) not in private
