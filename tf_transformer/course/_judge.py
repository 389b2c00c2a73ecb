"""The grader's judge: runs the checks, with the references, on answers that
run in another process.

`python -m tf_transformer.course._judge` reads requests ``{"nonce",
"cells", "exercises", "timeout", "submission": {"command", "env", "cwd"}}``,
one JSON line each, on stdin and writes one line per exercise, prefixed
with the nonce, then ``{"done": true}``.

No submission code runs here. The judge starts the submission's process
(``_sandbox.py serve``, sandboxed by the grader's command) and gives it the
cells; that process imports the library with the graded functions replaced
by stubs that raise (`_wire.hide_definitions`), and defines the answers.
The checks run in the judge on a `RemoteFunction` per answer: each call
sends the arguments over, runs the answer there and brings back its result
as plain data. Inside `tf.function` the answer is traced there with the
same input signature, and runs there when the judge's graph runs. A class
exercise is checked in the submission's process (the checks need the
student's layer and the reference's side by side); see `docs/grading.md`
for what that leaves open.

Each exercise has `timeout` seconds. If the submission's process hangs or
dies on an exercise, that exercise gets `timeout` or `error`, and a fresh
process serves the next one.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tf_transformer.course import _wire

STARTUP_ALLOWANCE = 180.0  # seconds for the submission's process to import TF
MAX_LINE = 512 << 20


class Abort(BaseException):
    """The submission's process hung or died; nothing more to ask it."""


class Unsendable(BaseException):
    """A check passed the answer something that cannot be pickled (a grader
    limitation, never the student's fault: it must not become a StudentError)."""


class StudentRaised(Exception):
    """Base of the exceptions re-raised here for an answer that raised."""


def _reraise(payload: dict) -> BaseException:
    name = str(payload.get("type", "Exception"))
    message = str(payload.get("message", ""))
    if name == "SystemExit":
        error: BaseException = SystemExit(payload.get("code"))
    elif name == "NotImplementedError":
        error = NotImplementedError(message)
    else:
        safe = name if name.isidentifier() else "Exception"
        error = type(safe, (StudentRaised,), {})(message)
    error.raised_in_student_code = bool(payload.get("student_raised"))
    error.student_location = str(payload.get("where", ""))
    return error


class Submission:
    """The submission's process, started on demand, restarted after a failure."""

    def __init__(self, command, env, cwd, init: dict):
        self.command, self.env, self.cwd, self.init = command, env, cwd, init
        self.process: subprocess.Popen | None = None
        self.ready: dict = {}
        self.failure: tuple[str, str] | None = None
        self.deadline = 0.0
        self.keys: dict[int, int] = {}
        self.kept: list[Any] = []
        self.next_id = 0

    # -- process
    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
        )
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
        self._send(self.init)
        self.ready = self._receive(None)["ready"]

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.process = None

    def _fail(self, status: str, what: str) -> Abort:
        """Stop the process; `what` is "took", "died" or a message."""
        code = None if self.process is None else self.process.poll()
        self.stop()
        self.failure = (status, what, code)
        return Abort()

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write(_wire.dumps(message).encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise self._fail("error", "died") from None

    def _receive(self, request_id) -> dict:
        while True:
            try:
                line = self.lines.get(
                    timeout=max(0.0, self.deadline - time.monotonic())
                )
            except queue.Empty:
                raise self._fail("timeout", "took") from None
            if line is None:
                self.process.wait()
                raise self._fail("error", "died")
            try:
                reply = json.loads(line)
            except ValueError:
                raise self._fail("error", "its process sent garbage") from None
            if not isinstance(reply, dict):
                continue
            if request_id is None or reply.get("id") == request_id:
                return reply

    def request(self, op: str, **fields) -> dict:
        if self.process is None:
            raise Abort()
        self.next_id += 1
        self._send({"op": op, "id": self.next_id, **fields})
        reply = self._receive(self.next_id)
        if "raised" in reply:
            raise _reraise(reply["raised"])
        return reply

    # -- arguments: Keras objects are sent once and then named by a key
    def pack(self, value: Any) -> str:
        import keras

        submission = self

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, keras.layers.Layer):
                    return submission._key(obj)
                return None

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
                payload = _wire.pack(obj)
            except Exception as error:  # noqa: BLE001 - any pickling failure
                raise Unsendable(f"{type(error).__name__}: {error}") from None
            self.request("put", key=key, payload=payload)
            self.keys[id(obj)] = key
            self.kept.append(obj)  # keep the id valid
        return self.keys[id(obj)]

    def result(self, reply: dict) -> Any:
        try:
            return _wire.decode(reply.get("value"))
        except ValueError as error:
            raise StudentRaised(f"its result could not be read: {error}") from None


class RemoteFunction:
    """The student's function as the checks see it: calls run in the
    submission's process."""

    def __init__(self, submission: Submission, name: str):
        self.submission = submission
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        import tensorflow as tf

        if tf.executing_eagerly():
            payload = self.submission.pack((args, kwargs))
            reply = self.submission.request("call", name=self.__name__, payload=payload)
            return self.submission.result(reply)
        return self._traced(args, kwargs)

    def _traced(self, args, kwargs):
        import tensorflow as tf

        tensors: list = []

        def slot(value):
            if tf.is_tensor(value):
                tensors.append(value)
                return _wire.Slot(len(tensors) - 1)
            return value

        template = tf.nest.map_structure(slot, (args, kwargs))
        specs = [tf.TensorSpec(t.shape, t.dtype) for t in tensors]
        submission = self.submission
        reply = submission.request(
            "trace", name=self.__name__, payload=submission.pack((template, specs))
        )
        trace, dtypes = reply["trace"], [tf.as_dtype(d) for d in reply["dtypes"]]

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
        return _rebuild(reply["structure"], list(flat))


def _rebuild(structure: dict, flat: list) -> Any:
    (key, value), *_ = structure.items()
    if key == "leaf":
        return flat[int(value)]
    if key in ("list", "tuple"):
        items = [_rebuild(v, flat) for v in value]
        return items if key == "list" else tuple(items)
    if key == "dict":
        return {k: _rebuild(v, flat) for k, v in value.items()}
    return _wire.decode(value)


def hidden_modules(exercises) -> dict[str, dict]:
    """Source text of the modules that define graded functions, stubbed."""
    names_by_module: dict[str, set[str]] = {}
    for ex in exercises:
        if ex.kind != "function":
            continue
        reference = inspect.unwrap(ex.load_reference())
        names_by_module.setdefault(reference.__module__, set()).add(reference.__name__)
    modules = {}
    for name, names in names_by_module.items():
        module = sys.modules[name]
        origin = str(Path(module.__file__).resolve())
        source = Path(origin).read_text(encoding="utf-8")
        modules[name] = {
            "origin": origin,
            "package": Path(origin).name == "__init__.py",
            "source": _wire.hide_definitions(source, names),
        }
    return modules


def judge(request: dict, emit) -> None:
    from tf_transformer.course import checks

    registry = dict(checks.EXERCISES)
    exercises = [registry[name] for name in request["exercises"]]
    timeout = float(request["timeout"])
    init = {
        "cells": request["cells"],
        "objects": {ex.object_name: ex.name for ex in exercises},
        "legacy": [ex.name for ex in exercises if ex.kind == "class"],
        "hidden_modules": hidden_modules(exercises),
    }
    spec = request["submission"]
    submission = Submission(spec["command"], spec["env"], spec["cwd"], init)
    for ex in exercises:
        result = _judge_one(ex, submission, timeout)
        emit({"exercise": ex.name, **result})
    submission.stop()


def _failure(ex, submission: Submission, timeout: float) -> dict:
    status, what, code = submission.failure
    if what == "took":
        message = f"checking {ex.name} took longer than {timeout:g} s"
    elif what == "died":
        message = (
            f"the checking process died while checking {ex.name} (exit code {code})"
        )
    else:
        message = f"checking {ex.name}: {what}"
    return {"status": status, "message": message}


def _judge_one(ex, submission: Submission, timeout: float) -> dict:
    from tf_transformer.course import checks

    try:
        if submission.process is None:
            submission.start()
    except Abort:
        return _failure(ex, submission, STARTUP_ALLOWANCE)
    submission.deadline = time.monotonic() + timeout
    found = submission.ready.get(ex.object_name, {})
    if not found.get("defined"):
        if found.get("error"):
            return {"status": "error", "message": found["error"]}
        return {"status": "missing", "message": f"{ex.object_name} is not defined"}
    try:
        if ex.kind == "class":
            if not found["is_class"]:
                message = (
                    f"expected the class {ex.object_name}, got a function or value"
                )
                return {"status": "failed", "message": message}
            reply = submission.request("legacy", exercise=ex.name)
            return {"status": str(reply["status"]), "message": str(reply["message"])}
        student: Any = RemoteFunction(submission, ex.object_name)
        if found["is_class"]:
            student = type(ex.object_name, (), {})
        result = checks.run_check(ex.name, student)
        status = result.status
        message = "all checks passed" if result.passed else result.hint()
    except Abort:
        status, message = "error", ""
    except Unsendable as error:
        status = "error"
        message = (
            f"grader error: the check of {ex.name} passes an argument that cannot "
            f"be sent to the answers' process ({error})"
        )
    except Exception as error:  # noqa: BLE001 - a grader bug must not lose the rest
        status, message = "error", f"grader error: {type(error).__name__}: {error}"
    if submission.failure:
        return _failure(ex, submission, timeout)
    return {"status": status, "message": message.lstrip("❌💥 ")}


def main() -> int:
    """One request per line; after each, a line `{"done": true}`. The judge
    runs no submission code, so one judge serves many submissions."""
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        nonce = request["nonce"]

        def emit(payload: dict, nonce=nonce) -> None:
            out.write(nonce + json.dumps(payload) + "\n")
            out.flush()

        judge(request, emit)
        emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
