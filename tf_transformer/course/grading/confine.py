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
  /tmp and TMPDIR, into which what Python needs to start is bound back
  wherever it lies: `needed_paths`), its own PID, IPC and UTS namespaces,
  killed with its parent.

`resolve` chooses between them from a start of the real command (see
`grade.resolve_sandbox`); `Tail` and `ended` say how a child process ended.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
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


def child_env() -> dict[str, str]:
    """The environment of the grader's child processes: the library on
    `PYTHONPATH`, TensorFlow's log quiet, hashing seeded."""
    env = dict(os.environ)
    root = str(package_root())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("TF_TRANSFORMER_GRADING", None)
    env["PYTHONHASHSEED"] = "0"
    return env


def submission_env(workdir: str, limits: Limits, wall_seconds: float) -> dict:
    """Environment of a process that runs submission code: its home, Jupyter
    and matplotlib folders inside its own folder, and its resource limits."""
    env = child_env()
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)
    hand_over(home)
    env.update(
        HOME=home,
        JUPYTER_RUNTIME_DIR=os.path.join(home, "jupyter"),
        IPYTHONDIR=os.path.join(home, "ipython"),
        MPLCONFIGDIR=os.path.join(home, "matplotlib"),
        TMPDIR=workdir,
        # A submission never writes to (or reads from) a learner's workbook.
        TF_TRANSFORMER_WORKBOOK="off",
    )
    env.update(limits.environment(wall_seconds))
    return env


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


def exit_status(code: int | None) -> str:
    """How a child process ended, in words: its signal or its exit status
    (bubblewrap exits with 128 + the signal that killed its command)."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    if 128 < code < 128 + 65:
        return f"exit status {code} (= 128 + {_signal_name(code - 128)})"
    return f"exit status {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Tail:
    """The last lines a child process writes to `stream` (its stderr), read
    in a thread: at most `lines` lines of at most `width` characters are
    kept, so a process writing without end costs nothing."""

    def __init__(self, stream, lines: int = 6, width: int = 300):
        self.lines: collections.deque = collections.deque(maxlen=lines)
        self.width = width
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        while True:
            chunk = stream.readline(4096)
            if not chunk:
                break
            if isinstance(chunk, bytes):
                chunk = chunk.decode("utf-8", "replace")
            chunk = " ".join(chunk.split())
            if chunk:
                self.lines.append(chunk[: self.width])

    def text(self, wait: float = 5.0) -> str:
        """The lines kept, joined by " | " (after waiting up to `wait`
        seconds for the stream to end)."""
        self.thread.join(wait)
        return " | ".join(list(self.lines))


def start_with_tail(command: list[str], **options) -> tuple[subprocess.Popen, Tail]:
    """`subprocess.Popen(command, **options)` with its stderr read by a
    `Tail` (a pipe of its own: `communicate` leaves it alone)."""
    read, write = os.pipe()
    try:
        process = subprocess.Popen(command, stderr=write, **options)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return process, Tail(os.fdopen(read, "rb"))


def ended(code: int | None, tail: str) -> str:
    """`exit_status` and the last lines written: how a process that should
    not have ended did."""
    return exit_status(code) + (f"; it wrote: {tail}" if tail else "")


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
    root = str(package_root())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    script = _answers_script()
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
    (as the account submission code runs as). Whether Python starts in it
    is `grade.resolve_sandbox`'s question: it starts the real command."""
    if shutil.which("bwrap") is None:
        return False
    probe = wrap(unprivileged(["true"]), "/", hide=())
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def unreachable_roots() -> tuple[str, ...]:
    """The outermost folders on the way to what Python needs
    (`needed_paths`) that the account submission code runs as cannot
    search without `KEPT_CAPABILITY` (e.g. /root, where Python lies under
    it), or () where it keeps none.

    A fork server's child gives up that capability when it enters its own
    user namespace; it reaches Python through these folders made empty,
    with only what Python needs bound back (`server_layout`).
    """
    user = account()
    if user is None or not keeps_capability():
        return ()
    roots = []
    for path in needed_paths():
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            folder = "/" + "/".join(parts[:depth])
            try:
                info = os.stat(folder)
            except OSError:
                break
            if info.st_uid == user[0]:
                bit = 0o100
            elif info.st_gid == user[1]:
                bit = 0o010
            else:
                bit = 0o001
            if os.path.isdir(folder) and not info.st_mode & bit:
                roots.append(folder)
                break
    return tuple(_outermost(list(dict.fromkeys(roots))))


class SandboxError(RuntimeError):
    """The processes that run submission code cannot start: nothing is graded."""


INSTALL_BWRAP = "Debian/Ubuntu: apt-get install bubblewrap"


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """A sandbox choice, resolved once (`resolve`): `mode` is `bwrap` or
    `none`; `fallback` says why `auto` chose none where bubblewrap exists."""

    mode: str
    fallback: str = ""

    def describe(self) -> str:
        """The one line the command prints about the sandbox it uses."""
        if self.mode == "bwrap":
            line = (
                "sandbox: bubblewrap (no network, read-only files outside each "
                "submission's folder, own PID namespace) + resource limits"
            )
        else:
            why = self.fallback or "bwrap not available or not asked for"
            line = f"sandbox: none ({why}) + resource limits"
        if account() is not None:
            line += f"; submission code runs as {UNPRIVILEGED_USER}"
            if keeps_capability():
                line += " (allowed to read every file, to reach Python)"
        elif os.geteuid() == 0:
            line += "; submission code runs as root (no process-count limit)"
        return line


def resolve(choice: str | Sandbox, start_failure=None) -> Sandbox:
    """The sandbox for `choice` (`auto`: bubblewrap where the processes that
    run submission code start in it, `bwrap` or `none`). A `Sandbox` is
    already resolved: it comes back as it is, so a choice is probed once
    however many callers pass it on.

    `start_failure(mode)` says why those processes cannot start in `mode`
    (None: they start; `grade.resolve_sandbox` starts them); without it only
    bubblewrap's namespaces are tried. ValueError for an unknown choice;
    `SandboxError`, whose message names the cause and the way out, where
    the chosen mode cannot start them.
    """
    if isinstance(choice, Sandbox):
        return choice
    if choice not in SANDBOX_MODES:
        raise ValueError(
            f"`sandbox` must be one of {', '.join(SANDBOX_MODES)}. Received: "
            f"sandbox={choice!r}"
        )
    start_failure = start_failure or (lambda mode: None)
    fallback = ""
    if choice != "none":
        if not bwrap_works():
            failure = (
                "bubblewrap is not installed or cannot create namespaces here "
                f"({INSTALL_BWRAP})"
            )
        else:
            failure = start_failure("bwrap")
            if failure is None:
                return Sandbox("bwrap")
            failure = f"{failure}. {hidden_needs_advice()}"
            fallback = failure
        if choice == "bwrap":
            raise SandboxError(
                f"sandbox='bwrap' but {failure}; or grade without the sandbox: "
                "--sandbox none (Python: sandbox='none')"
            )
    failure = start_failure("none")
    if failure is not None:
        if account() is not None:
            way_out = (
                f"install Python, its packages and tf_transformer where "
                f"{UNPRIVILEGED_USER} can read and run them, or run the grader as "
                "a user other than root"
            )
        else:
            way_out = (
                "check that this Python imports tf_transformer, and --memory-limit"
            )
        raise SandboxError(
            f"{failure}. Without a sandbox, submission code runs `{sys.executable} "
            f"{_answers_script()}`{_as_account()}: {way_out}"
        )
    return Sandbox("none", fallback)


def _as_account() -> str:
    return f" (as {UNPRIVILEGED_USER})" if account() is not None else ""


def _answers_script() -> str:
    return str(Path(__file__).with_name("answers.py"))


def package_root() -> Path:
    """The folder that holds the `tf_transformer` package (a clone, or
    site-packages)."""
    import tf_transformer

    return Path(next(iter(tf_transformer.__path__))).resolve().parent


def inside(path: str, folder: str) -> bool:
    """`path` is `folder` or lies under it (both absolute and normalized)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def submissions_root() -> str:
    """The folder each submission's working folder is made in (`TMPDIR`)."""
    import tempfile

    return os.path.realpath(tempfile.gettempdir())


def private_roots() -> tuple[str, ...]:
    """The folders bubblewrap replaces by empty ones of the process's own:
    `/tmp`, and `submissions_root()` wherever it is."""
    temp = submissions_root()
    roots = ["/tmp"]
    if temp != "/" and not inside(temp, "/tmp"):
        roots.append(temp)
    return tuple(roots)


def needed_paths() -> tuple[str, ...]:
    """What a process that runs submission code needs to see to start, as
    this process sees it: the interpreter (as called and its real path),
    `sys.prefix`, `sys.base_prefix` and the exec prefixes, every `sys.path`
    and `PYTHONPATH` entry, the folder that holds `tf_transformer`, and
    Jupyter's data folders named in the environment (the kernel's spec).
    Each as given and with symbolic links resolved; existing paths only."""
    names = [
        sys.executable,
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        str(package_root()),
        *sys.path,
    ]
    for variable in ("PYTHONPATH", "JUPYTER_PATH", "JUPYTER_DATA_DIR"):
        names += os.environ.get(variable, "").split(os.pathsep)
    found = []
    for name in names:
        if not name or not os.path.isabs(name):  # "" is the current folder
            continue
        for path in (os.path.normpath(name), os.path.realpath(name)):
            if os.path.exists(path):
                found.append(path)
    return tuple(dict.fromkeys(found))


def _shown_and_hidden() -> tuple[list[str], list[tuple[str, str]]]:
    """The needed paths bubblewrap binds back, read-only, into the private
    folders, and (path, folder) for those it cannot show: one that is or
    holds a private folder (showing it would show what that folder hides;
    the needed paths in it are shown one by one), or one in /dev or /proc,
    which bubblewrap makes anew."""
    roots = private_roots()
    shown, hidden = [], []
    for path in needed_paths():
        holds = [root for root in roots if inside(root, path)]
        made = [root for root in ("/dev", "/proc") if inside(path, root)]
        if holds or made:
            hidden.append((path, (holds or made)[0]))
        elif any(inside(path, root) for root in roots):
            shown.append(path)
    return shown, hidden


def _outermost(paths: list[str]) -> list[str]:
    """`paths` without those that lie in another of them."""
    return [
        path
        for path in paths
        if not any(other != path and inside(path, other) for other in paths)
    ]


def hidden_needs_advice() -> str:
    """Where a Python the sandbox cannot start may have gone: the needed
    paths it cannot show, or, if none, what it shows."""
    shown, hidden = _shown_and_hidden()
    causes = [
        f"{path} is made anew in the sandbox"
        if folder in ("/dev", "/proc")
        else f"{path} holds {folder}, which the sandbox replaces by an empty folder"
        for path, folder in hidden
    ]
    temp = submissions_root()
    causes += [
        f"TMPDIR ({temp}), emptied in the sandbox, lies in {path}"
        for path in shown
        if inside(temp, path)
    ]
    if not causes:
        return (
            "The sandbox shows the whole file system read-only, except /dev, "
            "/proc and the private " + " and ".join(private_roots()) + ", of which "
            "it shows only the paths Python needs (its prefixes, sys.path, "
            "tf_transformer)"
        )
    return (
        f"The sandbox cannot show what Python may need: {'; '.join(causes[:3])}. "
        "Install Python and its packages elsewhere, or set TMPDIR to another folder"
    )


def layout(workdir: str, hide=()) -> list[tuple[str, ...]]:
    """The sandbox's view of the file system, as steps on top of the whole
    file system bound read-only (with its own /dev and /proc): `("tmpfs",
    folder)` (an empty folder of its own, read-only to the submission),
    `("dir", folder)` (made in one, searchable by all: `server_layout`),
    `("ro-bind", source, target)`, `("bind", source, target)` (writable).
    `hide` are files replaced by an empty one and folders replaced by an
    empty one. Bubblewrap builds it (`wrap`), and so does a child of the
    fork server (`forkserver`): one description, two builders.

    /tmp and the folder submissions' folders are made in (`private_roots`)
    are empty folders of the process's own, into which what Python needs
    that lies there (`needed_paths`) is bound read-only (the folder of
    submissions' folders stays empty but for what Python needs, even inside
    one of those); then `hide`; then `workdir`, writable.
    """
    steps: list[tuple[str, ...]] = [("tmpfs", root) for root in private_roots()]
    shown = _shown_and_hidden()[0]
    steps += [("ro-bind", path, path) for path in _outermost(shown)]
    temp = submissions_root()
    if any(inside(temp, path) for path in shown):
        # Shown with a needed path: emptied again (the other submissions'
        # folders), and what is needed in it bound back.
        steps.append(("tmpfs", temp))
        steps += [
            ("ro-bind", path, path)
            for path in _outermost([p for p in shown if inside(p, temp) and p != temp])
        ]
    for path in hide:
        if os.path.isdir(path):
            steps.append(("tmpfs", path))
        else:
            steps.append(("ro-bind", "/dev/null", path))
    if workdir != "/":  # after the hidden paths: one of them may hold it
        steps.append(("bind", workdir, workdir))
    return steps


def server_layout() -> list[tuple[str, ...]]:
    """The view of the fork server (`forkserver`), which runs no submission
    code: the private folders writable as they are (its children find
    their submission's folder there before they build `layout`'s view),
    and the folders the account cannot search (`unreachable_roots`) made
    empty with what Python needs in them bound back, so that Python is
    reached without `KEPT_CAPABILITY`, which a child loses when it enters
    its own user namespace."""
    steps: list[tuple[str, ...]] = [("bind", root, root) for root in private_roots()]
    for root in unreachable_roots():
        steps.append(("tmpfs", root))
        for path in _outermost([p for p in needed_paths() if inside(p, root)]):
            parts = os.path.relpath(path, root).split(os.sep)[:-1]
            steps += [  # searchable by all, not only by root
                ("dir", os.path.join(root, *parts[: depth + 1]))
                for depth in range(len(parts))
            ]
            steps.append(("ro-bind", path, path))
    return list(dict.fromkeys(steps))


def wrap(command: list[str], workdir: str, hide=(), steps=None) -> list[str]:
    """`command` inside bubblewrap, in the view `steps` (by default
    `layout(workdir, hide)`), started in `workdir`.

    A command that drops root's privileges itself (`unprivileged`) runs
    without a user namespace, which would map only root: bubblewrap keeps
    the capabilities `setpriv` needs, and `setpriv` drops them.
    """
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for kind, *paths in layout(workdir, hide) if steps is None else steps:
        if kind == "dir":
            args += ["--perms", "0755"]
        args += [f"--{kind}", *paths]
    if workdir != "/":
        args += ["--chdir", workdir]
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
