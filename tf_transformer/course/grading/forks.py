"""The judge's side of the fork server (`forkserver`): start it once per
judge, ask it for answers' processes, hand them to `remote.AnswersProcess`
as if `subprocess` had started them.

A server that cannot start, or that refuses a fork, is not an error: the
judge then starts the answers' process afresh inside bubblewrap, as
without a server (`ForkServer.broken` says why).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tf_transformer.course.grading import confine, forkserver

START_ALLOWANCE = 180.0  # seconds to import TensorFlow and Keras once
REPLY_ALLOWANCE = 30.0


class ForkFailed(RuntimeError):
    """The server did not give a process: start one afresh instead."""


class Forked:
    """An answers' process from the server, with the part of
    `subprocess.Popen` that `AnswersProcess` uses: `stdin`, `stdout`,
    `wait`, `returncode`, and `kill_tree` (the process and all it
    started: its PID namespace ends with it)."""

    def __init__(self, server: ForkServer, pid: int, stdin, stdout):
        self.server, self.pid = server, pid
        self.stdin, self.stdout = stdin, stdout
        self.returncode: int | None = None
        self.ended = threading.Event()

    def wait(self, timeout: float | None = None) -> int:
        if not self.ended.wait(timeout):
            raise subprocess.TimeoutExpired("answers' process (forked)", timeout)
        return self.returncode

    def kill_tree(self) -> None:
        if self.returncode is None:
            self.server.kill(self.pid)
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass


class ForkServer:
    """One fork server (in bubblewrap, as the account that runs submission
    code), started on first use; `fork` gives a `Forked`."""

    def __init__(self, environment):
        """`environment(folder)`: the server's environment, with `folder`
        (its own, made here) as its home and temporary folder."""
        self.lock = threading.Lock()
        self.replies: dict[int, dict] = {}
        self.arrived = threading.Condition(self.lock)
        self.children: dict[int, Forked] = {}
        self.ended_early: dict[int, int] = {}  # before `fork` took them in
        self.next_id = 0
        self.broken = ""
        self.folder = tempfile.mkdtemp(prefix="tf-transformer-forkserver-")
        confine.hand_over(self.folder)
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**environment(self.folder), forkserver.SOCKET_ENV: str(theirs.fileno())}
        command = [sys.executable, str(Path(forkserver.__file__))]
        command = confine.wrap(
            confine.unprivileged(command), self.folder, steps=confine.server_layout()
        )
        try:
            self.process, self.tail = confine.start_with_tail(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd=self.folder,
                env=env,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        except OSError as error:
            self.process = None
            self.broken = f"the fork server did not start ({error})"
            return
        finally:
            theirs.close()
        self.channel.settimeout(START_ALLOWANCE)
        try:
            first = json.loads(self.channel.recv(forkserver.PACKET) or b"null")
        except (OSError, ValueError):
            first = None
        self.channel.settimeout(None)
        if not isinstance(first, dict) or not first.get("ready"):
            self.close()
            code = self.process.poll()
            self.broken = (
                "the fork server did not start ("
                + confine.ended(code, self.tail.text())
                + ")"
            )
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.channel.recv(forkserver.PACKET)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self.lock:
                if "ended" in message:
                    child = self.children.pop(message["ended"], None)
                    if child is None:
                        self.ended_early[message["ended"]] = message["code"]
                    else:
                        child.returncode = message["code"]
                        child.ended.set()
                else:
                    self.replies[message.get("id")] = message
                    self.arrived.notify_all()
        with self.lock:  # the server is gone, and its children with it
            self.broken = self.broken or "the fork server stopped"
            for child in self.children.values():
                child.returncode = -9
                child.ended.set()
            self.children.clear()
            self.arrived.notify_all()

    def fork(self, env: dict[str, str], cwd: str, steps: list) -> Forked:
        """An answers' process in the view `steps` (`confine.layout`), started
        in `cwd` (its submission's folder, writable) with `env`; its stderr's
        last lines in `.tail`. `ForkFailed` when the server cannot."""
        if self.broken:
            raise ForkFailed(self.broken)
        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        mine = [pipes[0][1], pipes[1][0], pipes[2][0]]
        with self.lock:
            self.next_id += 1
            number = self.next_id
        request = {"op": "fork", "id": number, "env": env, "cwd": cwd, "layout": steps}
        try:
            socket.send_fds(self.channel, [json.dumps(request).encode()], theirs)
        except OSError as error:
            for fd in mine:
                os.close(fd)
            raise ForkFailed(f"the fork server stopped ({error})") from None
        finally:
            for fd in theirs:
                os.close(fd)
        with self.lock:
            self.arrived.wait_for(
                lambda: number in self.replies or bool(self.broken), REPLY_ALLOWANCE
            )
            reply = self.replies.pop(number, None)
            if reply is not None and "pid" in reply:
                child = Forked(
                    self,
                    reply["pid"],
                    os.fdopen(mine[0], "wb"),
                    os.fdopen(mine[1], "rb"),
                )
                if reply["pid"] in self.ended_early:
                    child.returncode = self.ended_early.pop(reply["pid"])
                    child.ended.set()
                else:
                    self.children[reply["pid"]] = child
        if reply is None or "pid" not in reply:
            for fd in mine:
                os.close(fd)
            why = reply.get("error") if reply else self.broken or "no reply"
            raise ForkFailed(f"the fork server gave no process ({why})")
        child.tail = confine.Tail(os.fdopen(mine[2], "rb"))
        return child

    def kill(self, pid: int) -> None:
        try:
            self.channel.send(json.dumps({"op": "kill", "pid": pid}).encode())
        except OSError:
            pass  # the server is gone, and its children with it

    def close(self) -> None:
        """Stop the server (and so every process it forked)."""
        self.channel.close()
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_SERVER: list[ForkServer] = []
_SERVER_LOCK = threading.Lock()


def server(environment) -> ForkServer:
    """This judge's fork server (`ForkServer(environment)`), started on
    first use (again if it stopped)."""
    with _SERVER_LOCK:
        if _SERVER and _SERVER[0].broken == "the fork server stopped":
            _SERVER.pop().close()
        if not _SERVER:
            _SERVER.append(ForkServer(environment))
        return _SERVER[0]
