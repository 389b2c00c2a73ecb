"""The grader's judge: runs the checks, with the references, on answers that
run in another process.

`python -m tf_transformer.course.grading.judge` reads requests
(`wire.JudgeRequest`), one JSON line each, on stdin and writes one
`wire.Verdict` line per exercise, prefixed with the request's nonce, then
`wire.Done`.

No submission code runs here. The judge starts the submission's processes
(``answers.py``, sandboxed by the grader's command; one per group of
`answer_groups`) and gives them the cells; such a process imports the
library with the answers it serves replaced by stubs that raise
(`wire.hide_definitions`), and defines the student's answers. The checks
run in the judge on stand-ins that send each call over (`remote`). The
reference of a class is built in the judge; the student's layer receives
its weights as arrays.

Each exercise has `timeout` seconds. If the submission's process hangs or
dies on an exercise, that exercise gets `timeout` or `error`, and a fresh
process serves the next one.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Any

from tf_transformer.course.grading import wire
from tf_transformer.course.grading.remote import (
    STARTS,
    STARTUP_ALLOWANCE,
    Abort,
    AnswersProcess,
    RemoteClass,
    RemoteFunction,
    Unsendable,
)


def hidden_modules(exercises) -> dict[str, dict]:
    """Source text of the modules that define graded functions, stubbed."""
    names_by_module: dict[str, set[str]] = {}
    for ex in exercises:
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
            "source": wire.hide_definitions(source, names),
        }
    return modules


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _code_names(constant)
    return names


def _uses(user: Any, used: Any, seen: set[int] | None = None) -> bool:
    """Whether the library code of `user` (a function, or a class and its
    library bases) refers to `used` by name, or holds it as a class attribute,
    directly or through the library functions it calls (`greedy_decode` calls
    `decoder_step`, which calls `cached_decoder_step`)."""
    seen = set() if seen is None else seen
    if id(user) in seen:
        return False
    seen.add(id(user))
    owners = getattr(user, "__mro__", (user,))
    for owner in owners:
        module = sys.modules.get(getattr(owner, "__module__", ""))
        if module is None or not module.__name__.startswith("tf_transformer"):
            continue
        members = vars(owner).values() if isinstance(owner, type) else [owner]
        for member in members:
            if member is used:  # e.g. a class attribute naming a sublayer class
                return True
            member = getattr(member, "fget", None) or member
            member = getattr(member, "__func__", member)
            code = getattr(member, "__code__", None)
            if code is None:
                continue
            names = _code_names(code)
            if used.__name__ in names and getattr(module, used.__name__, None) is used:
                return True
            for name in names:
                called = getattr(module, name, None)
                if (
                    inspect.isfunction(called)
                    and called.__module__.startswith("tf_transformer")
                    and _uses(called, used, seen)
                ):
                    return True
    return False


def answer_groups(names: list[str]) -> list[list[str]]:
    """The exercises, in groups that one answers' process can serve.

    A process hides the references of the exercises it serves. When the
    library code an answer may build on uses another exercise's reference
    (`EncoderLayer`'s base class builds a `FeedForward`), the two are
    served by separate processes, so that each answer finds what it needs
    and none finds its own reference.
    """
    from tf_transformer.course import checks

    references = {
        name: inspect.unwrap(checks.EXERCISES[name].load_reference()) for name in names
    }
    groups: list[list[str]] = []
    for name in names:
        for group in groups:
            if not any(
                _uses(references[name], references[other])
                or _uses(references[other], references[name])
                for other in group
            ):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def judge(request: wire.JudgeRequest, emit) -> None:
    """Check the exercises of one submission; the request names the groups
    (`answer_groups`) and the command that starts a process for each."""
    from tf_transformer.course import checks

    registry = dict(checks.EXERCISES)
    submissions = []
    server = _fork_server() if request.layouts is not None else None
    layouts = request.layouts or [None] * len(request.groups)
    for names, command, steps in zip(
        request.groups, request.commands, layouts, strict=True
    ):
        exercises = [registry[name] for name in names]
        init = wire.AnswersInit(
            cells=request.cells,
            objects={ex.object_name: ex.name for ex in exercises},
            hidden_modules=hidden_modules(exercises),
        )
        fork = (server, steps) if server is not None else None
        submission = AnswersProcess(command, request.env, request.cwd, init, fork)
        try:
            submission.launch()  # all groups start TensorFlow at once
        except Abort:
            pass  # started again when its first exercise comes
        submissions.append((exercises, submission))
    for exercises, submission in submissions:
        for ex in exercises:
            emit(_judge_one(ex, submission, float(request.timeout)))
        submission.stop()
    STARTS["fork_failure"] = server.broken if server is not None else ""


def _fork_server():
    """This judge's fork server; its environment is a submission's, with
    the server's own folder as home and temporary folder."""
    from tf_transformer.course.grading import confine, forks

    def environment(folder: str) -> dict[str, str]:
        env = confine.submission_env(folder, confine.Limits(), 0.0)
        env.pop(confine.LIMITS_ENV, None)
        return env

    return forks.server(environment)


def _failure(ex, submission: AnswersProcess, timeout: float) -> wire.Verdict:
    status, what, how = submission.failure
    if what == "took":
        message = f"checking {ex.name} took longer than {timeout:g} s"
    elif what == "died":
        message = f"the checking process died while checking {ex.name} ({how})"
    else:
        message = f"checking {ex.name}: {what}"
    return wire.Verdict(ex.name, status, message)


def _judge_one(ex, submission: AnswersProcess, timeout: float) -> wire.Verdict:
    from tf_transformer.course import checks

    try:
        if submission.process is None:
            submission.start()
        submission.wait_ready()
    except Abort:
        return _failure(ex, submission, STARTUP_ALLOWANCE)
    submission.deadline = time.monotonic() + timeout
    found = submission.ready.get(ex.object_name, wire.Definition(defined=False))
    if not found.defined:
        if found.error:
            return wire.Verdict(ex.name, "error", str(found.error))
        return wire.Verdict(ex.name, "missing", f"{ex.object_name} is not defined")
    try:
        if ex.kind == "class":
            if not found.is_class:
                message = (
                    f"expected the class {ex.object_name}, got a function or value"
                )
                return wire.Verdict(ex.name, "failed", message)
            student: Any = RemoteClass(submission, ex.object_name)
        else:
            student = RemoteFunction(submission, ex.object_name)
        if ex.kind == "function" and found.is_class:
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
    return wire.Verdict(ex.name, status, message.lstrip("❌💥 "))


def main() -> int:
    """One request per line; after each, a line `{"done": true}`. The judge
    runs no submission code, so one judge serves many submissions."""
    out = sys.stdout
    for line in sys.stdin:
        request = wire.JudgeRequest.loads(line)

        def emit(message: wire.Message, nonce=request.nonce) -> None:
            out.write(nonce + message.dumps())
            out.flush()

        STARTS.update(forked=0, fresh=0, fork_failure="")
        judge(request, emit)
        emit(wire.Done(**STARTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
