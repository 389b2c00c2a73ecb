"""The fork server (`grading.forkserver`, `grading.forks`): answers'
processes forked from a server that imported TensorFlow once, with the
isolation a process started afresh in bubblewrap has.

One module-scoped grading run, without running the notebooks, of lesson-5
notebooks whose answers return the right mask only where the isolation
holds (their /proc shows no other process, /tmp holds nothing of another
submission, no capability is left, nothing outside their folder is
writable), and of two notebooks graded one after the other by the same
judge, the first of which changes NumPy, TensorFlow and `sys.modules`
from inside its answer: the second finds them untouched (each child is a
copy of a server that no submission ever touched).
"""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.grade_submissions import write_class
from tf_transformer.course.grading import confine, forks, forkserver, grade

RIGHT = "return (token_ids != pad_id)[:, None, :]"
RIGHT_CAUSAL = (
    "import tensorflow as tf; "
    "return tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)"
)
CORRECT_CAUSAL = f"def causal_mask(length):\n    {RIGHT_CAUSAL}"
ISOLATED = """
import os
import numpy as np

def padding_mask(token_ids, pad_id=0):
    others = [name for name in os.listdir("/proc") if name.isdigit()]
    with open("/proc/self/status") as status:
        caps = [line.split()[1] for line in status if line.startswith("Cap")]
    here = os.getcwd()
    in_tmp = set(os.listdir("/tmp"))
    wrong = []
    if others:
        wrong.append(f"sees processes {others}")
    if any(int(value, 16) for value in caps):
        wrong.append(f"holds capabilities {caps}")
    if any(name.startswith("tf-transformer-forkserver") for name in in_tmp):
        wrong.append("sees the fork server's folder")
    if len([n for n in in_tmp if n.startswith("tf-transformer-grade-")]) > 1:
        wrong.append(f"sees other submissions' folders {sorted(in_tmp)}")
    for place in ("/tmp", "/proc", os.path.dirname(here)):
        try:
            open(os.path.join(place, "written"), "w").close()
            wrong.append(f"wrote to {place}")
        except OSError:
            pass
    open(os.path.join(here, "mine"), "w").close()  # its own folder: writable
    if wrong:
        raise RuntimeError("; ".join(wrong))
    RIGHT_LINE
""".replace("RIGHT_LINE", RIGHT)
TAMPERING = """
import sys
import types
import numpy as np
import tensorflow as tf

def padding_mask(token_ids, pad_id=0):
    np.tampered_by_a_submission = True
    tf.tampered_by_a_submission = True
    sys.modules["tampered_by_a_submission"] = types.ModuleType("planted")
    RIGHT_LINE
""".replace("RIGHT_LINE", RIGHT)
CHECKING = """
import sys
import numpy as np
import tensorflow as tf

def padding_mask(token_ids, pad_id=0):
    found = [
        where
        for where, there in (
            ("numpy", hasattr(np, "tampered_by_a_submission")),
            ("tensorflow", hasattr(tf, "tampered_by_a_submission")),
            ("sys.modules", "tampered_by_a_submission" in sys.modules),
        )
        if there
    ]
    if found:
        raise RuntimeError(f"another submission's changes are in {found}")
    RIGHT_LINE
""".replace("RIGHT_LINE", RIGHT)


def _grade(folder: Path, jobs: int) -> tuple[dict, dict]:
    before = dict(grade.STARTS)
    rows = grade.grade([folder], jobs=jobs, timeout=60, sandbox="bwrap", execute=False)
    starts = {key: grade.STARTS[key] - before[key] for key in ("forked", "fresh")}
    starts["fork_failure"] = grade.STARTS["fork_failure"]
    table = {(row.submission.split("/")[0], row.exercise): row for row in rows}
    return table, starts


@pytest.fixture(scope="module")
def forked_run():
    if not confine.bwrap_works():
        pytest.skip("bubblewrap is not available (apt-get install bubblewrap)")
    if not grade.fork_server_enabled():
        pytest.skip(f"{grade.FORK_SERVER_ENV} turns the fork server off")
    folder = Path("/var/tmp") / f"tf-transformer-forks-{uuid.uuid4().hex}"
    try:
        write_class(
            folder / "isolation",
            {"a": [ISOLATED, CORRECT_CAUSAL], "b": [ISOLATED, CORRECT_CAUSAL]},
        )
        isolation = _grade(folder / "isolation", jobs=2)
        write_class(folder / "state", {"1_tampering": [TAMPERING, CORRECT_CAUSAL]})
        first = _grade(folder / "state", jobs=1)
        shutil.rmtree(folder / "state")
        write_class(folder / "state", {"2_checking": [CHECKING, CORRECT_CAUSAL]})
        second = _grade(folder / "state", jobs=1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if isolation[1]["forked"] == 0:
        failure = isolation[1]["fork_failure"] or "no reason given"
        if not _namespaces_work():
            pytest.skip(f"no user namespaces inside bubblewrap here: {failure}")
        pytest.fail(f"the fork server could not serve: {failure}")
    return isolation, first, second


def _namespaces_work() -> bool:
    """Whether a process in the fork server's sandbox can enter the
    namespaces a forked child enters (a kernel or container may forbid
    user namespaces; the grader then starts every process afresh)."""
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(forkserver.__file__).parent)!r})\n"
        "import forkserver\n"
        "forkserver._enter_namespaces()\n"
    )
    command = confine.wrap(
        confine.unprivileged([sys.executable, "-c", script]),
        "/",
        steps=confine.server_layout(),
    )
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.mark.slow
def test_every_answers_process_is_forked_from_the_server(forked_run):
    (_, starts), (_, first), (_, second) = forked_run
    assert starts["fresh"] == 0 and starts["forked"] == 2
    assert first["forked"] == second["forked"] == 1


@pytest.mark.slow
def test_a_forked_process_sees_no_other_process_folder_or_capability(forked_run):
    (table, _), _, _ = forked_run
    for student in ("a", "b"):
        row = table[(student, "padding_mask")]
        assert row.status == "passed", row.message
        assert table[(student, "causal_mask")].status == "passed"


@pytest.mark.slow
def test_a_submission_finds_nothing_an_earlier_one_changed(forked_run):
    _, (first, _), (second, _) = forked_run
    row = first[("1_tampering", "padding_mask")]
    assert row.status == "passed", row.message
    row = second[("2_checking", "padding_mask")]
    assert row.status == "passed", row.message


def test_the_fork_server_switch_reads_the_environment(monkeypatch):
    monkeypatch.delenv(grade.FORK_SERVER_ENV, raising=False)
    assert grade.fork_server_enabled()
    for value in ("off", "0", "no", "OFF"):
        monkeypatch.setenv(grade.FORK_SERVER_ENV, value)
        assert not grade.fork_server_enabled()


def test_without_the_switch_the_judge_gets_no_views(monkeypatch, tmp_path):
    """`--no-fork-server`: the request carries no views, so the judge
    starts every answers' process afresh."""
    seen = []
    monkeypatch.setenv(grade.FORK_SERVER_ENV, "off")
    monkeypatch.setattr(grade._JUDGES, "acquire", lambda: seen.append(1) or _Refusing())
    where = grade.Confinement("bwrap", confine.Limits(), str(tmp_path))
    grade.run_checks(["x = 1"], ["padding_mask"], 5.0, where)
    assert _Refusing.requests and all(r.layouts is None for r in _Refusing.requests)


class _Refusing:
    """A judge that records the request and stops at once."""

    requests: list = []

    def send(self, text):
        from tf_transformer.course.grading import wire

        _Refusing.requests.append(wire.JudgeRequest.loads(text))
        return True

    def line(self, timeout):
        return None

    def close(self):
        pass


@pytest.mark.slow
def test_a_fork_happens_only_while_one_thread_runs():
    script = (
        "import sys, threading, time\n"
        f"sys.path.insert(0, {str(Path(forkserver.__file__).parent)!r})\n"
        "import forkserver\n"
        "alone = forkserver.single_threaded()\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "print(alone, forkserver.single_threaded())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_a_broken_server_refuses_to_fork_and_says_why():
    server = forks.ForkServer.__new__(forks.ForkServer)
    server.broken = "the fork server did not start (exit status 1)"
    with pytest.raises(forks.ForkFailed, match="did not start"):
        server.fork({}, "/", [])


def test_the_server_view_binds_the_private_folders_and_reaches_python():
    steps = confine.server_layout()
    for root in confine.private_roots():
        assert ("bind", root, root) in steps
    for root in confine.unreachable_roots():
        assert ("tmpfs", root) in steps
        bound = [
            s[1] for s in steps if s[0] == "ro-bind" and confine.inside(s[1], root)
        ]
        assert bound, f"nothing of what Python needs is bound back into {root}"
    args = confine.wrap(["true"], "/", steps=steps)
    for kind, *paths in steps:
        if kind == "dir":
            assert args[args.index(paths[0]) - 2 : args.index(paths[0])] == [
                "0755",
                "--dir",
            ]


def test_the_layout_is_what_bubblewrap_is_given(tmp_path):
    work = str(tmp_path / "work")
    hidden = str(Path(confine.__file__))
    args = confine.wrap(["python"], work, hide=[hidden])
    steps = confine.layout(work, hide=[hidden])
    flat = [word for kind, *paths in steps for word in (f"--{kind}", *paths)]
    start = args.index(flat[0])
    assert args[start : start + len(flat)] == flat
    assert ("ro-bind", "/dev/null", hidden) in steps
    assert steps[-1] == ("bind", work, work)


def test_the_command_says_when_processes_were_started_afresh(monkeypatch, capsys):
    from tf_transformer.course.grading import commands

    monkeypatch.setitem(grade.STARTS, "fork_failure", "the fork server stopped")
    monkeypatch.setitem(grade.STARTS, "fresh", 3)
    commands.report_starts()
    err = capsys.readouterr().err
    assert "the fork server stopped" in err and "3 answers' process(es)" in err
    monkeypatch.setitem(grade.STARTS, "fork_failure", "")
    commands.report_starts()
    assert capsys.readouterr().err == ""


def test_the_grade_and_check_commands_take_no_fork_server():
    from tf_transformer.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["grade", "class/", "--out", "g.csv", "--no-fork-server"])
    assert args.no_fork_server
    args = parser.parse_args(["check", "05_masking.ipynb", "--no-fork-server"])
    assert args.no_fork_server
    assert not parser.parse_args(["check", "05_masking.ipynb"]).no_fork_server
