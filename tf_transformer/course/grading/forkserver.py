"""The fork server: answers' processes without paying TensorFlow's import
each time (run as a script by the judge; see `remote.ForkServer`).

A fresh answers' process spends most of its CPU importing TensorFlow and
Keras (docs/grading.md, "Throughput"). The fork server imports them once,
runs no submission code, and forks one child per answers' process. Each
child is as fresh as a process started anew (its memory is a copy of a
server that no submission touched) and gets the same isolation as
bubblewrap gives a process started anew:

- the server itself runs inside bubblewrap (`confine.wrap`, as the account
  that runs submission code, no network), with nothing of any submission
  in its view;
- it forks only while it has a single thread (checked before every fork:
  a fork copies only the calling thread, so with one thread no lock can be
  left held; OpenBLAS's pool is kept at one thread for that);
- the child, still single-threaded, enters new user, mount, PID, network,
  IPC, UTS (and, where possible, cgroup) namespaces, and a second child,
  the first process of the new PID namespace, builds the view bubblewrap
  would build (`confine.layout`: read-only files, its own empty /tmp with
  what Python needs bound back, the answer files hidden, its submission's
  folder writable) and a /proc that shows only itself, drops every
  capability, starts a new session, sets the resource limits
  (`confine.apply_limits`) and becomes the answers' process
  (`answers.run`). It dies with its parent, which dies with the server,
  which dies with the judge.

Protocol (a `SOCK_SEQPACKET` socket whose descriptor is in
`SOCKET_ENV`; JSON, one message per packet): the server sends
``{"ready": true, "pid": ...}`` once its imports are done; the judge sends
``{"op": "fork", "id": n, "env": {...}, "cwd": ..., "layout": [...]}``
with the child's stdin, stdout and stderr and its submission's folder as
descriptors, and gets ``{"id": n, "pid": p}`` or ``{"id": n, "error":
...}``; ``{"op": "kill", "pid": p}`` kills one; ``{"ended": p, "code":
c}`` says that one ended (`code` as `subprocess` gives it: negative for a
signal; 128 + the signal where the answers' process was killed).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys
import tempfile
import traceback

SOCKET_ENV = "TF_TRANSFORMER_FORK_SOCKET"
# The exit status of a child that could not become an answers' process
# (before any submission code): the judge then starts one afresh.
SETUP_FAILED = 121
PACKET = 1 << 20  # the largest message (the environment and the layout)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
ST_RELATIME = 4096  # statvfs's name for MS_RELATIME
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 32, 4096, 8192, 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 1, 24, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# Third-party packages the library imports (its datasets, tokenizers and
# images), imported once here too: a forked answers' process then imports
# only the library itself (measured: 0.18 instead of 0.64 CPU s). Never
# the library: its graded answers are hidden per process.
ALSO_IMPORTED = (
    "tensorflow_datasets",
    "tensorflow_text",
    "PIL.Image",
    "statistics",
    "tqdm",
)
# What every lesson's notebook imports in its cells, which the answers'
# process runs (measured: about 0.5 CPU s each time); imported after Keras,
# which leaves its plotting features off (`answers.SKIPPED_AT_START`).
IMPORTED_BY_NOTEBOOKS = ("matplotlib.pyplot",)
# What a process sees in /proc besides itself: the machine's description.
PROC_FILES = ("cpuinfo", "meminfo", "stat", "uptime", "loadavg", "version")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(source, target: str, kind, flags: int, data=None) -> None:
    _check(
        _libc.mount(
            source and source.encode(),
            target.encode(),
            kind and kind.encode(),
            ctypes.c_ulong(flags),
            data and data.encode(),
        ),
        f"mount {source} on {target}",
    )


def _die_with_parent(parent: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def single_threaded() -> bool:
    """This process runs one thread (the only state in which a fork is safe
    for a program that is not written for it)."""
    return len(os.listdir("/proc/self/task")) == 1


# -- the child ---------------------------------------------------------------
def _enter_namespaces() -> None:
    """New namespaces for this (single-threaded) process; its children are
    in the new PID namespace."""
    uid, gid = os.geteuid(), os.getegid()
    flags = (
        CLONE_NEWUSER
        | CLONE_NEWNS
        | CLONE_NEWPID
        | CLONE_NEWNET
        | CLONE_NEWIPC
        | CLONE_NEWUTS
    )
    if _libc.unshare(flags | CLONE_NEWCGROUP) != 0:  # as bubblewrap's -try
        _check(_libc.unshare(flags), "unshare")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def _make_target(path: str, directory: bool) -> None:
    if directory:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()


def _build_view(steps: list) -> None:
    """Build `confine.layout`'s view on this mount namespace (a copy of the
    server's: `confine.server_layout`), then a /proc of our own. The
    sources are opened first: a new /tmp covers those that lie in it (the
    submission's folder among them).
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    me = os.readlink("/proc/self")  # our PID as the server's /proc numbers it
    opened = {
        step[1]: os.open(step[1], os.O_PATH | os.O_CLOEXEC)
        for step in steps
        if step[0] in ("ro-bind", "bind")
    }
    proc = {
        name: os.open(f"/proc/{name}", os.O_PATH | os.O_CLOEXEC) for name in PROC_FILES
    }
    proc["self"] = os.open(f"/proc/{me}", os.O_PATH | os.O_CLOEXEC)
    fd_path = f"/proc/{me}/fd/{{}}"  # /proc/self would name the reader
    made: list[str] = []  # our empty folders: read-only once filled
    for kind, *paths in steps:
        if kind == "tmpfs":
            _make_target(paths[0], True)  # as bubblewrap, where it lies in ours
            _mount("tmpfs", paths[0], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
            made.append(paths[0])
            continue
        source, target = paths
        handle = opened[source]
        _make_target(target, os.path.isdir(fd_path.format(handle)))
        _mount(fd_path.format(handle), target, None, MS_BIND | MS_REC)
        if kind == "ro-bind":
            _mount(
                None,
                target,
                None,
                _kept_flags(target) | MS_REMOUNT | MS_BIND | MS_RDONLY,
            )
    # /proc: only this process and the machine's description. Built in a
    # folder of our own, then moved over the server's /proc.
    stage = os.path.join(made[0], f".proc-{me}") if made else None
    if stage is None:
        raise OSError("no private folder to build /proc in")
    os.mkdir(stage)
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0555")
    for name, handle in proc.items():
        _make_target(os.path.join(stage, name), name == "self")
        _mount(fd_path.format(handle), os.path.join(stage, name), None, MS_BIND)
    os.symlink("self/mounts", os.path.join(stage, "mounts"))
    for handle in [*opened.values(), *proc.values()]:
        os.close(handle)
    _mount(stage, "/proc", None, MS_MOVE)
    os.rmdir(stage)
    for folder in ["/proc", *made]:
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        _mount(None, folder, None, flags)


def _kept_flags(path: str) -> int:
    """The mount flags of `path` that a remount must keep (the kernel
    refuses to clear those it locked when it copied the mount into our
    user namespace)."""
    flag = os.statvfs(path).f_flag
    kept = flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    if flag & ST_RELATIME:
        kept |= MS_RELATIME
    return kept


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")
    ]


def _drop_capabilities() -> None:
    """No capability left, in any set, for this process and what it starts."""
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")
    for number in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as status:
        held = [line for line in status if line.startswith(("CapEff", "CapPrm"))]
    if any(int(line.split()[1], 16) for line in held):
        raise OSError("capabilities remain after dropping them")


def _child(request: dict, fds: list[int], server: int) -> None:
    """Between the server and the answers' process: new namespaces, then
    the answers' process as its child; exits as that one exits."""
    _die_with_parent(server)
    stdio = fds
    _enter_namespaces()
    alive, keep = os.pipe()  # the answers' process sees us go (EOF on `alive`)
    pid = os.fork()
    if pid == 0:
        os.close(keep)
        # Its parent is outside its PID namespace (getppid() says 0): ask
        # to die with it, then make sure it had not died before.
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if select.select([alive], [], [], 0)[0]:
            os._exit(1)
        os.close(alive)
        _answers(request, stdio)
    os.close(alive)
    for fd in stdio:
        os.close(fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _answers(request: dict, stdio: list[int]) -> None:
    """The answers' process: the view, no capabilities, the limits, then
    `answers.run`. Never returns."""
    report = stdio[2]
    try:
        os.setsid()
        _build_view(request["layout"])
        _drop_capabilities()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # found again, in the submission's folder
        import answers  # the sibling module, imported by the server

        answers.apply_limits()
    except BaseException:  # noqa: BLE001 - no submission code has run yet
        os.write(report, traceback.format_exc().encode())
        os._exit(SETUP_FAILED)
    for target, fd in enumerate(stdio):  # all above 2: none overwritten
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the server's, ours
    answers.run()


# -- the server --------------------------------------------------------------
def _prepare(here: str) -> None:
    """What every answers' process imports first, imported once, as the
    answers' process imports it (`answers.startup_imports`),
    `ALSO_IMPORTED` and `IMPORTED_BY_NOTEBOOKS`; then the grading folder
    leaves the path, as for answers.py run as a script."""
    import importlib

    import answers

    answers.startup_imports()
    with answers._without(answers.SKIPPED_AT_START):
        for name in ALSO_IMPORTED:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # the answers' process meets the same error itself
    for name in IMPORTED_BY_NOTEBOOKS:  # as a notebook's own import does
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]


def serve(channel: socket.socket) -> None:
    children: set[int] = set()

    def send(message: dict) -> None:
        channel.send(json.dumps(message).encode())

    send({"ready": True, "pid": os.getpid()})
    while True:
        ready, _, _ = select.select([channel], [], [], 0.2)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            send({"ended": pid, "code": os.waitstatus_to_exitcode(status)})
        if not ready:
            continue
        data, fds, _, _ = socket.recv_fds(channel, PACKET, 8)
        if not data:  # the judge is gone
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return
        request = json.loads(data)
        if request.get("op") == "kill":
            if request.get("pid") in children:
                os.kill(request["pid"], signal.SIGKILL)
            continue
        try:
            if len(fds) != 3:
                raise ValueError(f"a fork needs 3 descriptors, received {len(fds)}")
            if not single_threaded():
                raise RuntimeError("the fork server runs more than one thread")
            server = os.getpid()
            pid = os.fork()
            if pid == 0:
                try:
                    channel.close()
                    _child(request, fds, server)
                finally:
                    os._exit(1)
            children.add(pid)
            send({"id": request.get("id"), "pid": pid})
        except Exception as error:  # noqa: BLE001 - the judge starts it anew instead
            send({"id": request.get("id"), "error": f"{type(error).__name__}: {error}"})
        finally:
            for fd in fds:
                os.close(fd)


def main() -> int:
    # One OpenBLAS thread: a fork copies only the thread that forks.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    channel = socket.socket(fileno=int(os.environ.pop(SOCKET_ENV)))
    try:
        _prepare(os.path.dirname(os.path.abspath(__file__)))
    except BaseException:  # noqa: BLE001 - said on stderr; the judge goes without
        traceback.print_exc()
        return 1
    serve(channel)
    return 0


if __name__ == "__main__":
    # Run as a script, like answers.py: keep the grading folder off the path
    # (it stays importable for `answers` and `confine` through this entry).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.append(here)
    sys.exit(main())
