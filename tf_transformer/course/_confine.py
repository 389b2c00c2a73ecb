"""How the grader confines the processes that run submissions.

Two layers:

- resource limits (`Limits`), always: `_sandbox.py` sets them on itself
  before any submission code runs, and everything it starts inherits them;
- a bubblewrap sandbox (`wrap`), where `bwrap` works: no network, the file
  system read-only except the submission's temporary folder (and a private
  /tmp), its own PID, IPC and UTS namespaces, killed with its parent.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess

SANDBOX_MODES = ("auto", "bwrap", "none")
LIMITS_ENV = "TF_TRANSFORMER_GRADE_LIMITS"  # read by _sandbox.apply_limits
GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of each child process (see docs/grading.md).

    Attributes:
        memory: bytes of data (heap and anonymous memory, `RLIMIT_DATA`);
            TensorFlow with a check needs about 0.6 GiB.
        address_space: bytes of virtual address space (`RLIMIT_AS`), a
            backstop: TensorFlow reserves about 2.2 GiB that it never uses.
        processes: processes and threads the submission may add to those
            its user already runs (`RLIMIT_NPROC`; not enforced for root).
        file_size: bytes of the largest file it may write (`RLIMIT_FSIZE`).
        cpu_factor: CPU seconds allowed per second of wall-clock time limit
            (`RLIMIT_CPU`, counted over all threads).
    """

    memory: int = 4 * GIB
    address_space: int = 32 * GIB
    processes: int = 256
    file_size: int = 256 << 20
    cpu_factor: float = 4.0

    def environment(self, wall_seconds: float) -> dict[str, str]:
        limits = {
            "RLIMIT_DATA": int(self.memory),
            "RLIMIT_AS": int(self.address_space),
            "RLIMIT_NPROC": _tasks_of_user() + int(self.processes),
            "RLIMIT_FSIZE": int(self.file_size),
            "RLIMIT_CPU": int(max(60.0, self.cpu_factor * wall_seconds)),
            "RLIMIT_CORE": 0,
        }
        return {LIMITS_ENV: json.dumps(limits)}


def _tasks_of_user() -> int:
    """Threads running as this user now (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


@functools.cache
def bwrap_works() -> bool:
    """`bwrap` is on PATH and can create the namespaces the sandbox uses."""
    if shutil.which("bwrap") is None:
        return False
    probe = wrap(["true"], "/", hide=())
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve(mode: str) -> str:
    """`bwrap` or `none`; ValueError for `bwrap` where it cannot run."""
    if mode not in SANDBOX_MODES:
        raise ValueError(
            f"`sandbox` must be one of {', '.join(SANDBOX_MODES)}. Received: "
            f"sandbox={mode!r}"
        )
    if mode == "none":
        return "none"
    if bwrap_works():
        return "bwrap"
    if mode == "bwrap":
        raise ValueError(
            "sandbox='bwrap' but bubblewrap is not installed or cannot create "
            "namespaces here. Received: sandbox='bwrap'"
        )
    return "none"


def describe(mode: str) -> str:
    """The one line the command prints about the sandbox it uses."""
    if mode == "bwrap":
        return (
            "sandbox: bubblewrap (no network, read-only files outside each "
            "submission's folder, own PID namespace) + resource limits"
        )
    return "sandbox: none (bwrap not available or not asked for) + resource limits"


def wrap(command: list[str], workdir: str, hide=()) -> list[str]:
    """`command` inside bubblewrap; `hide` are files replaced by an empty one."""
    args = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    if workdir != "/":
        args += ["--bind", workdir, workdir, "--chdir", workdir]
    for path in hide:
        args += ["--ro-bind", "/dev/null", path]
    args += ["--unshare-all", "--die-with-parent", "--new-session", "--"]
    return args + list(command)
