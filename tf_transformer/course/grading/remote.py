"""Handles on the answers' process, used by the judge.

`AnswersProcess` starts the answers' process (`answers.py`, with the
sandboxed command the grader built), sends it the cells, and asks it to
run the student's answers; it restarts the process after a failure. The
checks see the answers through stand-ins: a `RemoteFunction` per function
answer (each call sends the arguments over, runs the answer there and
brings back its result as plain data; inside `tf.function` the answer is
traced there with the same input signature, and runs there when the
judge's graph runs), and a `RemoteClass` per class answer, whose instances,
sublayers, variables and methods are `RemoteObject`s: handles on objects
that stay in the answers' process.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import queue
import signal
import subprocess
import threading
import time
from typing import Any

import numpy as np

from tf_transformer.course.grading import confine, wire

STARTUP_ALLOWANCE = 180.0  # seconds for the submission's process to import TF
# How the answers' processes of the judge's current request started
# (`wire.Done`): forked from the fork server, or afresh (and why).
STARTS = {"forked": 0, "fresh": 0, "fork_failure": ""}
MAX_LINE = 512 << 20


class Abort(BaseException):
    """The submission's process hung or died; nothing more to ask it."""


class Unsendable(BaseException):
    """A check passed the answer something that cannot be pickled (a grader
    limitation, never the student's fault: it must not become a StudentError)."""


class StudentRaised(Exception):
    """Base of the exceptions re-raised here for an answer that raised."""


def _reraise(raised: wire.Raised) -> BaseException:
    """The judge's stand-in for what the answer raised (its fields are the
    submission's: read as text, never trusted as types)."""
    name, message = str(raised.type), str(raised.message)
    if name == "SystemExit":
        error: BaseException = SystemExit(raised.code)
    elif name == "NotImplementedError":
        error = NotImplementedError(message)
    else:
        safe = name if name.isidentifier() else "Exception"
        error = type(safe, (StudentRaised,), {})(message)
    error.raised_in_student_code = bool(raised.student_raised)
    error.student_location = str(raised.where)
    return error


class AnswersProcess:
    """The answers' process of one group of exercises, started on demand,
    restarted after a failure."""

    def __init__(self, command, env, cwd, init: wire.AnswersInit, fork=None):
        """`fork`: (fork server, view) to fork the process from
        (`forks.ForkServer`); `command` starts it where the server cannot."""
        self.command, self.env, self.cwd, self.init = command, env, cwd, init
        self.fork = fork
        self.process: subprocess.Popen | None = None
        self.ready: dict[str, wire.Definition] | None = None
        self.failure: tuple[str, str, str] | None = None
        self.tail: confine.Tail | None = None
        self.deadline = 0.0
        self.keys: dict[int, int] = {}
        self.kept: list[Any] = []
        self.next_id = 0

    # -- process
    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process and send it the cells (it then imports TensorFlow
        and defines the answers while the judge goes on)."""
        self.process = None
        if self.fork is not None:
            from tf_transformer.course.grading import forks

            server, steps = self.fork
            try:
                self.process = server.fork(self.env, self.cwd, steps)
                self.tail = self.process.tail
                STARTS["forked"] += 1
            except forks.ForkFailed:
                self.fork = None  # and from now on afresh
        if self.process is None:
            self.process, self.tail = confine.start_with_tail(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
            STARTS["fresh"] += 1
        self.lines: queue.Queue = queue.Queue()

        def pump(stream=self.process.stdout, sink=self.lines) -> None:
            while True:
                line = stream.readline(MAX_LINE)
                if not line:
                    break
                sink.put(line)
            sink.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.keys, self.kept, self.failure = {}, [], None
        self.deadline = time.monotonic() + STARTUP_ALLOWANCE
        self.ready = None
        self._send(self.init)

    def wait_ready(self) -> None:
        if self.ready is None:
            self.ready = self._receive(None, wire.Ready).ready

    def stop(self) -> None:
        if self.process is None:
            return
        if hasattr(self.process, "kill_tree"):  # forked: its PID namespace
            self.process.kill_tree()
        else:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()
        self.process = None

    def _fork_setup_failed(self) -> bool:
        """A forked process that could not be set up (no submission code
        ran): say so on its server and start this one afresh."""
        from tf_transformer.course.grading import forkserver

        if self.fork is None or self.process.returncode != forkserver.SETUP_FAILED:
            return False
        server, _ = self.fork
        server.broken = server.broken or (
            "a forked process could not be set up ("
            + confine.ended(self.process.returncode, self.tail.text())
            + ")"
        )
        self.fork = None
        STARTS["forked"] -= 1
        self.launch()
        return True

    def _fail(self, status: str, what: str) -> Abort:
        """Stop the process; `what` is "took", "died" or a message."""
        code = None
        if self.process is not None:
            try:  # a process whose pipe broke is ending: its status
                code = self.process.wait(timeout=2 if what == "died" else 0)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        how = ""
        if what == "died":  # its exit status or signal, and its last words
            how = confine.ended(code, self.tail.text() if self.tail else "")
        self.failure = (status, what, how)
        return Abort()

    def _send(self, message: wire.Message) -> None:
        try:
            self.process.stdin.write(message.dumps().encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise self._fail("error", "died") from None

    def _receive(self, request_id, kind: type[wire.Message]) -> wire.Message:
        while True:
            try:
                line = self.lines.get(
                    timeout=max(0.0, self.deadline - time.monotonic())
                )
            except queue.Empty:
                raise self._fail("timeout", "took") from None
            if line is None:
                self.process.wait()
                if request_id is None and self._fork_setup_failed():
                    continue  # started afresh: its Ready comes on the new lines
                raise self._fail("error", "died")
            try:
                reply = json.loads(line)
            except ValueError:
                raise self._fail("error", "its process sent garbage") from None
            if not isinstance(reply, dict):
                continue
            if request_id is None or reply.get("id") == request_id:
                try:
                    return kind.from_dict(reply)
                except ValueError:
                    raise self._fail("error", "its process sent garbage") from None

    def request(self, op: str, **fields) -> wire.Reply:
        if self.process is None:
            raise Abort()
        self.next_id += 1
        self._send(wire.Request(op=op, id=self.next_id, **fields))
        reply = self._receive(self.next_id, wire.Reply)
        if reply.raised is not None:
            raise _reraise(reply.raised)
        return reply

    # -- arguments: Keras objects are sent once and then named by a key
    def pack(self, value: Any) -> str:
        import keras

        submission = self

        import tensorflow as tf

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, RemoteObject | RemoteClass):
                    return obj._target
                if isinstance(obj, keras.layers.Layer):
                    return submission._key(obj)
                return None

            def reducer_override(self, obj):
                # The judge's variables (an optimizer's step counter) travel
                # as their value.
                if isinstance(obj, tf.Variable | keras.Variable):
                    return tf.constant, (np.asarray(obj),)
                return NotImplemented

        buffer = io.BytesIO()
        try:
            Pickler(buffer).dump(value)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise Unsendable(f"{type(error).__name__}: {error}") from None
        import base64

        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def _key(self, obj) -> int:
        if id(obj) not in self.keys:
            key = len(self.keys)
            try:
                payload = wire.pack(obj)
            except Exception as error:  # noqa: BLE001 - any pickling failure
                raise Unsendable(f"{type(error).__name__}: {error}") from None
            self.request("put", key=key, payload=payload)
            self.keys[id(obj)] = key
            self.kept.append(obj)  # keep the id valid
        return self.keys[id(obj)]

    def result(self, reply: wire.Reply, handles: bool = False) -> Any:
        try:
            return wire.decode(reply.value, handles=self._stand_in if handles else None)
        except ValueError as error:
            raise StudentRaised(f"its result could not be read: {error}") from None

    def _stand_in(self, item: dict) -> RemoteObject:
        """The judge's stand-in for an object left in the submission's process."""
        kind = _remote_schedule() if item.get("schedule") is True else RemoteObject
        return kind(self, ("h", item["handle"]), str(item.get("type", "object")))


class RemoteFunction:
    """The student's function as the checks see it: calls run in the
    submission's process."""

    handles = False  # results come back as plain data only

    def __init__(self, submission: AnswersProcess, name: str):
        self.submission = submission
        self._target = ("d", name)
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        import tensorflow as tf

        if tf.executing_eagerly():
            payload = self.submission.pack((args, kwargs))
            reply = self.submission.request(
                "call", target=self._target, payload=payload
            )
            return self.submission.result(reply, self.handles)
        return self._traced(args, kwargs)

    def _traced(self, args, kwargs):
        import tensorflow as tf

        tensors: list = []

        def slot(value):
            if tf.is_tensor(value):
                tensors.append(value)
                return wire.Slot(len(tensors) - 1)
            return value

        template = tf.nest.map_structure(slot, (args, kwargs))
        specs = [tf.TensorSpec(t.shape, t.dtype) for t in tensors]
        submission = self.submission
        reply = submission.request(
            "trace", target=self._target, payload=submission.pack((template, specs))
        )
        trace, dtypes = reply.trace, [tf.as_dtype(d) for d in reply.dtypes]

        def run(*values):
            answer = submission.request(
                "run", trace=trace, payload=submission.pack(list(values))
            )
            flat = submission.result(answer)
            return [
                tf.constant(v, dtype=d).numpy()
                for v, d in zip(flat, dtypes, strict=True)
            ]

        flat = tf.numpy_function(run, tensors, dtypes) if dtypes else []
        if not isinstance(flat, list | tuple):
            flat = [flat]
        return _rebuild(reply.structure, list(flat))


class RemoteObject(RemoteFunction):
    """An object of the student's (an instance of their class, one of its
    attributes, a bound method) that stays in the submission's process.

    Calls, attribute reads and `np.asarray` are requests; what comes back is
    plain data or another `RemoteObject`. Nothing of the student's runs here.
    """

    handles = True

    def __init__(self, submission: AnswersProcess, target: tuple, kind: str):
        self.submission = submission
        self._target = target
        self.__name__ = self.__qualname__ = kind

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name.endswith("__"):
            raise AttributeError(name)  # probes (inspect, autograph, NumPy, copy)
        reply = self.submission.request("getattr", target=self._target, name=name)
        return self.submission.result(reply, handles=True)

    def _remote_gradients(self, call, inputs):
        """`checks._layers.gradients_of` this object, computed in the
        submission's process (`call` is data: `(args, kwargs)` with
        `wire.Slot`s for `inputs`); plain data comes back."""
        payload = self.submission.pack((call, list(inputs)))
        reply = self.submission.request(
            "gradient", target=self._target, payload=payload
        )
        return self.submission.result(reply)

    def __array__(self, dtype=None, copy=None):
        reply = self.submission.request("array", target=self._target)
        array = np.asarray(self.submission.result(reply))
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"<{self.__name__} of the submission>"


_SCHEDULE: list = []


def _remote_schedule() -> type:
    """A `RemoteObject` that Keras optimizers accept as a learning-rate schedule."""
    if not _SCHEDULE:
        import keras

        class RemoteSchedule(
            RemoteObject, keras.optimizers.schedules.LearningRateSchedule
        ):
            def get_config(self):
                return self.__getattr__("get_config")()

        _SCHEDULE.append(RemoteSchedule)
    return _SCHEDULE[0]


class RemoteClass(type):
    """The student's class as the checks see it: a class whose construction
    and class attributes (`from_config`) are requests to the submission's
    process, giving `RemoteObject`s."""

    def __new__(mcs, submission: AnswersProcess, name: str):
        remote = RemoteObject(submission, ("d", name), name)
        return super().__new__(
            mcs, name, (), {"_remote": remote, "_target": ("d", name)}
        )

    def __init__(cls, submission: AnswersProcess, name: str):
        super().__init__(name, (), {})

    def __call__(cls, *args, **kwargs):
        return cls._remote(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_") or name.endswith("__"):
            raise AttributeError(name)  # probes (inspect, autograph, NumPy, copy)
        return getattr(cls._remote, name)


def _rebuild(structure: dict, flat: list) -> Any:
    (key, value), *_ = structure.items()
    if key == "leaf":
        return flat[int(value)]
    if key in ("list", "tuple"):
        items = [_rebuild(v, flat) for v in value]
        return items if key == "list" else tuple(items)
    if key == "dict":
        return {k: _rebuild(v, flat) for k, v in value.items()}
    return wire.decode(value)
