"""The grader's sandbox and fairness: one failure never costs another
exercise its points, and submission code cannot get out.

One module-scoped grading run, inside bubblewrap, of five lesson-5
notebooks that are also run top to bottom: a correct one (full marks inside
the sandbox), one whose padding_mask loops (also in its check cell, so the
notebook never finishes), one whose padding_mask kills its process, and two
whose answers try to escape (write outside their folder, read another
student's notebook, connect to a server on this machine, fork without end,
allocate 6 GiB) and return the right mask only when the attempt failed.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.grade_submissions import write_class
from tf_transformer.course.grading import confine, grade

needs_bwrap = pytest.mark.skipif(
    not confine.bwrap_works(), reason="bubblewrap is not available"
)
# NumPy only: the kernels start in seconds even on a busy machine (the
# answers still receive tensors, and work on them, when they are checked).
IMPORTS = "import numpy as np"
RIGHT = "return (token_ids != pad_id)[:, None, :]"
CORRECT_PADDING = f"def padding_mask(token_ids, pad_id=0):\n    {RIGHT}"
# causal_mask must also work inside tf.function (a symbolic length): TensorFlow
# ops, imported where the answer runs.
RIGHT_CAUSAL = (
    "import tensorflow as tf; "
    "return tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)"
)
CORRECT_CAUSAL = f"def causal_mask(length):\n    {RIGHT_CAUSAL}"
CHECK_PADDING = "padding_mask(np.array([[5, 0]]))"


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


def submissions(outside: Path, port: int, peer: Path) -> dict[str, list[str]]:
    escape_files = f"""
def padding_mask(token_ids, pad_id=0):
    try:
        with open({str(outside / "escaped.txt")!r}, "w") as handle:
            handle.write("out")
    except OSError:
        try:
            open({str(peer)!r}).close()  # another student's notebook
        except OSError:
            {RIGHT}

def causal_mask(length):
    import socket
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    except OSError:
        {RIGHT_CAUSAL}
"""
    escape_resources = f"""
def padding_mask(token_ids, pad_id=0):
    import os
    import time
    try:
        for _ in range(100):
            if os.fork() == 0:
                time.sleep(20)
                os._exit(0)
    except Exception:
        {RIGHT}

def causal_mask(length):
    try:
        hog = np.zeros(6 << 30, dtype=np.uint8)  # not touched: no real use
    except MemoryError:
        {RIGHT_CAUSAL}
    return hog
"""
    return {
        "correct": [IMPORTS, CORRECT_PADDING, CORRECT_CAUSAL, CHECK_PADDING],
        "looping": [
            IMPORTS,
            "def padding_mask(token_ids, pad_id=0):\n    while True:\n        pass",
            CORRECT_CAUSAL,
            CHECK_PADDING,
        ],
        "exiting": [
            IMPORTS,
            "def padding_mask(token_ids, pad_id=0):\n    import os\n    os._exit(3)",
            CORRECT_CAUSAL,
            CHECK_PADDING,
        ],
        "escape_files": [IMPORTS, escape_files, f"{CHECK_PADDING}\ncausal_mask(3)"],
        "escape_resources": [IMPORTS, escape_resources],
    }


@pytest.fixture(scope="module")
def sandboxed():
    if not confine.bwrap_works():
        pytest.skip("bubblewrap is not available")
    # Outside /tmp, which the sandbox replaces by its own.
    outside = Path("/var/tmp") / f"tf-transformer-escape-{uuid.uuid4().hex}"
    outside.mkdir(parents=True)
    # The class too (the sandbox hides it): its notebooks are readable here.
    folder = outside.with_name(outside.name + "-class")
    listener = Listener()
    try:
        peer = folder / "correct" / "05_masking.ipynb"
        write_class(folder, submissions(outside, listener.port, peer))
        rows = grade.grade([folder], jobs=2, timeout=30, sandbox="bwrap")
        escaped = sorted(p.name for p in outside.iterdir())
    finally:
        listener.close()
        shutil.rmtree(outside, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    table = {(row.submission.split("/")[0], row.exercise): row for row in rows}
    return table, escaped, listener.accepted


def statuses(table, name):
    return {
        exercise: row.status
        for (student, exercise), row in table.items()
        if student == name
    }


def exercise_statuses(table, name):
    """Without the notebook's own row (its run may time out on a busy machine)."""
    return {key: value for key, value in statuses(table, name).items() if key}


@needs_bwrap
def test_correct_answers_get_full_marks_inside_the_sandbox(sandboxed):
    table, _, _ = sandboxed
    assert statuses(table, "correct") == dict.fromkeys(
        ["padding_mask", "causal_mask"], "passed"
    )


@needs_bwrap
@pytest.mark.parametrize(
    ("name", "status", "exercise", "part"),
    [
        ("looping", "timeout", "", "did not finish within 30 s"),
        ("exiting", "error", "padding_mask", "process died"),
    ],
)
def test_an_answer_that_loops_or_exits_costs_only_its_own_exercise(
    sandboxed, name, status, exercise, part
):
    # The answer also runs in its check cell: the notebook does not finish.
    table, _, _ = sandboxed
    assert statuses(table, name) == {
        "": status,
        "padding_mask": status,
        "causal_mask": "passed",
    }
    assert part in table[(name, exercise)].message


@needs_bwrap
def test_submission_cannot_write_outside_its_folder_read_others_or_connect(
    sandboxed,
):
    table, escaped, accepted = sandboxed
    # The kernel (check cells) and the answers' process both tried.
    assert escaped == [] and accepted == 0
    assert exercise_statuses(table, "escape_files") == dict.fromkeys(
        ["padding_mask", "causal_mask"], "passed"
    )


@needs_bwrap
def test_submission_cannot_fork_without_end_or_exhaust_memory(sandboxed):
    table, _, _ = sandboxed
    assert exercise_statuses(table, "escape_resources") == dict.fromkeys(
        ["padding_mask", "causal_mask"], "passed"
    )


def test_resource_limits_hold_without_the_sandbox(tmp_path):
    """The limits the runner and the answers' process set on themselves
    (`confine.apply_limits`), with no bubblewrap at all."""
    limits = confine.Limits(memory=1 << 30, file_size=1 << 20)
    env = dict(os.environ, **limits.environment(wall_seconds=60))
    script = f"""
import sys
sys.path.insert(0, {str(Path(confine.__file__).parent)!r})
import confine
confine.apply_limits()
try:
    bytearray(2 << 30)
    print("memory: allocated")
except MemoryError:
    print("memory: refused")
try:
    with open({str(tmp_path / "big")!r}, "wb") as handle:
        handle.write(bytes(2 << 20))
    print("file: written")
except OSError:
    print("file: refused")
"""
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    ).stdout.split()
    assert output == ["memory:", "refused", "file:", "refused"]


def test_a_fork_bomb_stops_at_the_process_limit_even_for_root():
    """RLIMIT_NPROC, which Linux does not apply to root: a grader running as
    root starts submission code as `nobody`, where the limit holds."""
    if os.geteuid() == 0:
        assert confine.account() is not None, "nobody cannot run the library here"
    limits = confine.Limits(processes=32)
    env = dict(os.environ, **limits.environment(wall_seconds=60))
    script = f"""
import os, signal, sys, time
sys.path.insert(0, {str(Path(confine.__file__).parent)!r})
import confine
confine.apply_limits()
children, stopped = [], "no"
for _ in range(400):
    try:
        pid = os.fork()
    except BlockingIOError:
        stopped = "yes"
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(stopped, len(children), os.getuid())
"""
    output = subprocess.run(
        confine.unprivileged([sys.executable, "-c", script]),
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    # The limit counts every process of the user: others running as it at the
    # same time (a parallel test) move the point where forking stops.
    stopped, forked, uid = output[0], int(output[1]), int(output[2])
    assert stopped == "yes" and forked < 200, output
    assert uid != 0
