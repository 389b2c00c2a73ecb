"""How the grader confines the processes that run submissions.

Two layers:

- resource limits (`Limits`), always: the notebook runner and the answers'
  process set them on themselves (`apply_limits`) before any submission
  code runs, and everything they start inherits them.
  Linux does not apply `RLIMIT_NPROC` to root, so a grader running as root
  starts these processes as the unprivileged user `nobody` (`account`)
  where that user can run the library;
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
import sys
from pathlib import Path

SANDBOX_MODES = ("auto", "bwrap", "none")
LIMITS_ENV = "TF_TRANSFORMER_GRADE_LIMITS"  # read by apply_limits
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
            its user already runs (`RLIMIT_NPROC`; Linux does not enforce it
            for root: see `account`).
        file_size: bytes of the largest file it may write (`RLIMIT_FSIZE`).
        cpu_factor: CPU seconds allowed per second of wall-clock time limit
            (`RLIMIT_CPU`, counted over all threads).
    """

    memory: int = 4 * GIB
    address_space: int = 32 * GIB
    processes: int = 1024
    file_size: int = 256 << 20
    cpu_factor: float = 4.0

    def environment(self, wall_seconds: float) -> dict[str, str]:
        user = account()
        uid = os.getuid() if user is None else user[0]
        limits = {
            "RLIMIT_DATA": int(self.memory),
            "RLIMIT_AS": int(self.address_space),
            "RLIMIT_NPROC": _tasks_of_user(uid) + int(self.processes),
            "RLIMIT_FSIZE": int(self.file_size),
            "RLIMIT_CPU": int(max(60.0, self.cpu_factor * wall_seconds)),
            "RLIMIT_CORE": 0,
        }
        return {LIMITS_ENV: json.dumps(limits)}


def apply_limits() -> None:
    """In a child process: set the resource limits the grader asks for (JSON
    in `LIMITS_ENV`) on it and everything it starts, before any submission
    code runs."""
    import resource

    for name, value in json.loads(os.environ.get(LIMITS_ENV) or "{}").items():
        key = getattr(resource, name)
        _, hard = resource.getrlimit(key)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(key, (value, value))


def _tasks_of_user(uid: int) -> int:
    """Threads running as `uid` now (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


UNPRIVILEGED_USER = "nobody"
# Capabilities a process keeps when root drops to `nobody`: reading and
# searching any file (Python and the library may live under /root), nothing
# else; no new privileges (setuid programs) either.
KEPT_CAPABILITY = "dac_read_search"
# Run as the account: can it read the grader's script, find the packages,
# and start Python again (as the notebook runner starts its kernel)?
_PROBE = """
import importlib.util, os, subprocess, sys
open(sys.argv[1]).close()
names = ("numpy", "tensorflow", "keras", "nbclient", "ipykernel", "tf_transformer")
found = all(importlib.util.find_spec(name) for name in names)
again = subprocess.run([sys.executable, "-c", ""]).returncode == 0
sys.exit(0 if found and again and os.getuid() != 0 else 1)
"""


@functools.cache
def account() -> tuple[int, int] | None:
    """(uid, gid) the processes that run submission code switch to, or None.

    Only when the grader runs as root (where `RLIMIT_NPROC` does not hold)
    and `setpriv` (util-linux) is installed: the user `nobody`, with no
    capabilities, or, where it cannot otherwise start Python and find the
    library (a probe; e.g. Python installed under /root), with only the
    capability to read and search every file. Otherwise None, and they run
    as the grader.
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        return None
    user = (entry.pw_uid, entry.pw_gid)
    import tf_transformer

    root = str(Path(next(iter(tf_transformer.__path__))).resolve().parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    script = str(Path(__file__).with_name("answers.py"))
    for keep in (False, True):  # the capability only where it is needed
        probe = [*_setpriv(user, keep), sys.executable, "-c", _PROBE, script]
        try:
            done = subprocess.run(
                probe, capture_output=True, timeout=60, env=env, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            _KEEPS_CAPABILITY.append(keep)
            return user
    return None


_KEEPS_CAPABILITY: list[bool] = []


def keeps_capability() -> bool:
    """Whether submission code keeps `KEPT_CAPABILITY` (see `account`)."""
    return account() is not None and _KEEPS_CAPABILITY[-1]


def _setpriv(user: tuple[int, int], keep: bool) -> list[str]:
    kept = f",+{KEPT_CAPABILITY}" if keep else ""
    command = [
        "setpriv",
        f"--reuid={user[0]}",
        f"--regid={user[1]}",
        "--clear-groups",
        "--no-new-privs",
        f"--inh-caps=-all{kept}",
        f"--bounding-set=-all{kept}",
    ]
    if keep:
        command.append(f"--ambient-caps=+{KEPT_CAPABILITY}")
    return [*command, "--"]


def unprivileged(command: list[str]) -> list[str]:
    """`command`, started as `account()` when there is one."""
    user = account()
    if user is None:
        return command
    return _setpriv(user, keeps_capability()) + list(command)


def hand_over(path: str) -> None:
    """Give `path` to the account submission code runs as (see `account`)."""
    user = account()
    if user is not None:
        os.chown(path, *user)


@functools.cache
def bwrap_works() -> bool:
    """`bwrap` is on PATH and can create the namespaces the sandbox uses
    (as the account submission code runs as)."""
    if shutil.which("bwrap") is None:
        return False
    probe = wrap(unprivileged(["true"]), "/", hide=())
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """A sandbox choice, resolved once (`resolve`): `mode` is `bwrap` or `none`."""

    mode: str

    def describe(self) -> str:
        """The one line the command prints about the sandbox it uses."""
        if self.mode == "bwrap":
            line = (
                "sandbox: bubblewrap (no network, read-only files outside each "
                "submission's folder, own PID namespace) + resource limits"
            )
        else:
            line = (
                "sandbox: none (bwrap not available or not asked for) + resource limits"
            )
        if account() is not None:
            line += f"; submission code runs as {UNPRIVILEGED_USER}"
            if keeps_capability():
                line += " (allowed to read every file, to reach Python)"
        elif os.geteuid() == 0:
            line += "; submission code runs as root (no process-count limit)"
        return line


def resolve(choice: str | Sandbox) -> Sandbox:
    """The sandbox for `choice` (`auto`, `bwrap` or `none`); ValueError for
    `bwrap` where it cannot run. A `Sandbox` is already resolved: it comes
    back as it is, so a choice is probed once however many callers pass it on.
    """
    if isinstance(choice, Sandbox):
        return choice
    if choice not in SANDBOX_MODES:
        raise ValueError(
            f"`sandbox` must be one of {', '.join(SANDBOX_MODES)}. Received: "
            f"sandbox={choice!r}"
        )
    if choice == "none":
        return Sandbox("none")
    if bwrap_works():
        return Sandbox("bwrap")
    if choice == "bwrap":
        raise ValueError(
            "sandbox='bwrap' but bubblewrap is not installed or cannot create "
            "namespaces here. Received: sandbox='bwrap'"
        )
    return Sandbox("none")


def wrap(command: list[str], workdir: str, hide=()) -> list[str]:
    """`command` inside bubblewrap; `hide` are files replaced by an empty one
    and folders replaced by an empty one.

    A command that drops root's privileges itself (`unprivileged`) runs
    without a user namespace, which would map only root: bubblewrap keeps
    the capabilities `setpriv` needs, and `setpriv` drops them.
    """
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
    for path in hide:
        if os.path.isdir(path):
            args += ["--tmpfs", path]
        else:
            args += ["--ro-bind", "/dev/null", path]
    if workdir != "/":  # after the hidden paths: one of them may hold it
        args += ["--bind", workdir, workdir, "--chdir", workdir]
    if command[:1] == ["setpriv"]:
        args += [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-add",
            f"CAP_SETUID,CAP_SETGID,CAP_SETPCAP,CAP_{KEPT_CAPABILITY.upper()}",
        ]
    else:
        args += ["--unshare-all"]
    args += ["--die-with-parent", "--new-session", "--"]
    return args + list(command)
