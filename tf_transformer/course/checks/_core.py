"""The check framework: the exercise registry, `check`, and student-call guards.

A checker is a function `checker(ctx, student, reference)` registered with
`@exercise(...)`. It calls the student's object only through `ctx.call`, so
that a `NotImplementedError` becomes "not implemented yet" and any other
exception a one-line message naming the student's line, and it reports with
`ctx.ok(...)` (a sub-check passed) or `raise Failure(hint)` (stop: this is
what is wrong and what to look at).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import linecache
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from tf_transformer.course import workbook
from tf_transformer.course.environment import grading_mode

STATUSES = ("passed", "failed", "error", "timeout", "missing", "not_attempted")
# Checks may keep models and reference results between calls, so that a
# repeated self-check is fast. The grader's sandbox sets this to False before
# any student code runs: nothing a submission stores there is read back.
REUSE_BETWEEN_CHECKS = True


class Failure(Exception):
    """A sub-check failed; the message is the hint shown to the student."""


class NotAttempted(Exception):
    """The student's code still raises `NotImplementedError`."""


class StudentError(Exception):
    """The student's code raised; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One graded exercise, declared once with `@exercise(...)`.

    Attributes:
        name: the exercise name, e.g. `"causal_mask"` or `"multi_head_attention"`.
        lesson: number of the lesson that asks for it.
        points: points for passing every sub-check (all or nothing); 0 makes
            it a *practice* exercise, checked in the notebook but never graded.
        kind: `"function"` or `"class"`: what `check` receives.
        reference: the answer's name in the `tf_transformer` namespace; the
            notebook defines an object of the same name (`causal_mask`,
            `MultiHeadAttention`).
        methods: for a class exercise, the methods the learner writes (the
            lesson keeps the others as given); empty for a function.
        checker: `checker(ctx, student, reference)`.
    """

    name: str
    lesson: int
    points: int
    kind: str
    reference: str
    methods: tuple[str, ...]
    checker: Callable[..., None] = dataclasses.field(repr=False, compare=False)

    @property
    def graded(self) -> bool:
        """False for a practice exercise (0 points): the grader skips it."""
        return self.points > 0

    @property
    def object_name(self) -> str:
        """The name the notebook defines: the reference's."""
        return self.reference

    @property
    def source(self) -> str:
        """The reference's dotted path (`tf_transformer.layers.masks.causal_mask`),
        whose source the notebook build copies into the exercise cell."""
        reference = inspect.unwrap(self.load_reference())
        return f"{reference.__module__}.{reference.__qualname__}"

    def load_reference(self) -> Any:
        """The library's answer (imported on first use)."""
        return library_object(self.reference)


def library_object(name: str) -> Any:
    """`tf_transformer.<name>`, imported on first use."""
    return getattr(importlib.import_module("tf_transformer"), name)


EXERCISES: dict[str, Exercise] = {}


def exercise(
    name: str,
    *,
    lesson: int,
    points: int,
    kind: str,
    reference: str,
    methods: tuple[str, ...] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare exercise `name` and register the decorated function as its check.

    Args:
        name: the exercise name: the function's name, or the class's name in
            snake_case (`multi_head_attention`).
        lesson: the lesson that asks for it.
        points: points for passing every sub-check; 0 for a practice
            exercise (checked in the notebook, never graded).
        kind: `"function"` or `"class"`.
        reference: the answer's name in `tf_transformer` (`causal_mask`,
            `MultiHeadAttention`).
        methods: a class exercise's methods the learner writes. Defaults to
            `("call",)` for a class; a function exercise takes none.
    """
    if kind not in ("function", "class"):
        raise ValueError(
            f"`kind` must be 'function' or 'class'. Received: kind={kind!r}"
        )
    if kind == "function" and methods:
        raise ValueError(
            f"A function exercise has no `methods`. Received: methods={methods!r}"
        )
    if methods is not None and (
        isinstance(methods, str)
        or not all(isinstance(m, str) and m.isidentifier() for m in methods)
    ):
        raise ValueError(
            f"`methods` must be a tuple of method names. Received: methods={methods!r}"
        )
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise ValueError(
            f"`points` must be an int >= 0 (0: practice). Received: points={points!r}"
        )
    if name in EXERCISES:
        raise ValueError(f"Exercise {name!r} is registered twice.")
    if kind == "class" and not methods:
        methods = ("call",)

    def register(checker: Callable[..., None]) -> Callable[..., None]:
        EXERCISES[name] = Exercise(
            name=name,
            lesson=lesson,
            points=points,
            kind=kind,
            reference=reference,
            methods=tuple(methods or ()),
            checker=checker,
        )
        return checker

    return register


def exercises_of_lesson(lesson: int) -> list[Exercise]:
    """The graded exercises of one lesson, in registry order (practice
    exercises, worth 0 points, are in `EXERCISES` but never graded)."""
    return [ex for ex in EXERCISES.values() if ex.lesson == lesson and ex.graded]


def exercise_for_object(object_name: str) -> Exercise | None:
    """The exercise whose answer is a definition called `object_name`."""
    for ex in EXERCISES.values():
        if ex.object_name == object_name:
            return ex
    return None


@dataclasses.dataclass
class CheckResult:
    """What `check` found.

    Attributes:
        name: the exercise name.
        passed: True if every sub-check passed.
        points: points earned (all or nothing: `max_points` or 0).
        max_points: points the exercise is worth.
        messages: one line per sub-check, ✅ or ❌ with a hint.
        status: `passed`, `failed`, `error` or `not_attempted`.
    """

    name: str
    passed: bool
    points: float
    max_points: float
    messages: list[str]
    status: str = "passed"

    def report(self) -> str:
        """The compact text shown under a self-check cell."""
        if not self.max_points:  # practice: checked, never graded
            mark = {"passed": "✅", "not_attempted": "⏳"}.get(self.status, "❌")
            state = {
                "passed": "all checks passed",
                "not_attempted": "not implemented yet",
            }.get(self.status, "not yet")
            head = f"{mark} {self.name}: {state} (practice, not graded)"
        elif self.passed:
            head = (
                f"✅ {self.name}: all checks passed "
                f"({self.points:g}/{self.max_points:g})"
            )
        elif self.status == "not_attempted":
            head = f"⏳ {self.name}: not implemented yet (0/{self.max_points:g})"
        else:
            head = f"❌ {self.name}: (0/{self.max_points:g})"
        return "\n".join([head] + ["   " + line for line in self.messages])

    def hint(self) -> str:
        """The last message: the failed check's hint, or the summary."""
        return self.messages[-1] if self.messages else ""

    def __str__(self) -> str:
        return self.report()


class CheckFailed(AssertionError):
    """Raised by `check(..., raise_on_fail=True)`; renders without a traceback."""

    def __init__(self, result: CheckResult):
        super().__init__(result.report())
        self.result = result

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing the traceback.
        return [f"CheckFailed: {self.result.name} did not pass (see above)."]


class Context:
    """Passed to checkers: calls student code safely and collects messages."""

    def __init__(self, name: str):
        self.name = name
        self.messages: list[str] = []

    def ok(self, message: str) -> None:
        self.messages.append(f"✅ {message}")

    def call(
        self, function: Callable[..., Any], *args: Any, what: str, **kwargs: Any
    ) -> Any:
        """Call student code; exceptions become `NotAttempted`/`StudentError`."""
        try:
            return function(*args, **kwargs)
        except NotImplementedError as error:
            if _numpy_on_a_symbolic_tensor(error):
                raise StudentError(
                    f"{describe_exception(error, what)} — {GRAPH_NUMPY_HINT}"
                ) from None
            if _raised_in_student_code(error):
                raise NotAttempted() from None
            raise StudentError(describe_exception(error, what)) from None
        except (Exception, SystemExit) as error:  # noqa: B902 - student code may do anything
            raise StudentError(describe_exception(error, what)) from None


def _library_prefixes() -> tuple[str, ...]:
    import tf_transformer

    paths = {os.path.abspath(p) for p in tf_transformer.__path__}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            paths.add(os.path.abspath(path))
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        paths.add(os.path.join(os.path.abspath(prefix), "lib"))
    return tuple(p + os.sep for p in paths)


def _is_student_file(filename: str) -> bool:
    if filename.startswith("<frozen") or filename.startswith("<string>"):
        return False
    if filename.startswith("<"):
        return True  # code compiled from a notebook cell, e.g. "<cell 5>"
    return not os.path.abspath(filename).startswith(_library_prefixes())


def _student_frames(error: BaseException) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(error.__traceback__)
    return [f for f in frames if _is_student_file(f.filename)]


GRAPH_NUMPY_HINT = (
    "use TensorFlow ops: this function must work inside tf.function, where a "
    "tensor has no value yet and NumPy cannot read it"
)


def _numpy_on_a_symbolic_tensor(error: BaseException) -> bool:
    """TensorFlow's NotImplementedError for NumPy meeting a graph tensor.

    It is not the student's `raise NotImplementedError()`, although inside
    tf.function its traceback ends in the student's code.
    """
    text = str(error)
    return "symbolic" in text and "numpy" in text.lower()


def _raised_in_student_code(error: BaseException) -> bool:
    told = getattr(error, "raised_in_student_code", None)
    if told is not None:  # an error reported by the grader's submission process
        return bool(told)
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and _is_student_file(frames[-1].filename)


def describe_exception(error: BaseException, what: str) -> str:
    """One line: what was called, the exception, and the student's last line."""
    text = str(error).strip().splitlines()
    detail = text[0] if text else ""
    if len(detail) > 300:
        detail = detail[:297] + "..."
    message = f"{what} raised {type(error).__name__}"
    if isinstance(error, SystemExit):
        message = f"{what} called sys.exit({error.code!r})"
    elif detail:
        message += f": {detail}"
    return message + student_location(error)


def student_location(error: BaseException) -> str:
    """` (in f, cell 3, line 4: `code`)`: the student's last line in the
    traceback, or the location the grader's submission process reported."""
    told = getattr(error, "student_location", None)
    if told is not None:
        return str(told)
    student = _student_frames(error)
    if not student:
        return ""
    frame = student[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    where = _pretty_filename(frame.filename)
    return f" (in {frame.name}, {where} line {frame.lineno}: `{line}`)"


def _pretty_filename(filename: str) -> str:
    if filename.startswith("<") and filename.endswith(">"):
        return filename[1:-1] + ","
    if "ipykernel_" in filename:
        return "your cell,"
    return os.path.basename(filename) + ","


def run_check(name: str, obj: Any, reference: Any = None) -> CheckResult:
    """Run the checks of exercise `name` on `obj`; never raises for student errors."""
    if name not in EXERCISES:
        raise ValueError(
            f"Unknown exercise. Received: name={name!r}; "
            f"expected one of {', '.join(EXERCISES)}"
        )
    ex = EXERCISES[name]
    ctx = Context(name)

    def result(status: str, last: str | None = None) -> CheckResult:
        if last:
            ctx.messages.append(last)
        passed = status == "passed"
        points = float(ex.points) if passed else 0.0
        return CheckResult(name, passed, points, float(ex.points), ctx.messages, status)

    kind_error = _kind_error(ex, obj)
    if kind_error:
        return result("failed", f"❌ {kind_error}")
    if reference is None:
        reference = ex.load_reference()
    try:
        ex.checker(ctx, obj, reference)
    except NotAttempted:
        return result(
            "not_attempted",
            "replace `raise NotImplementedError()` with your code, then run this "
            "cell again",
        )
    except Failure as failure:
        return result("failed", f"❌ {failure}")
    except StudentError as error:
        return result("error", f"💥 {error}")
    except NotImplementedError as error:
        if _numpy_on_a_symbolic_tensor(error):
            message = describe_exception(error, "your code")
            return result("error", f"💥 {message} — {GRAPH_NUMPY_HINT}")
        if _raised_in_student_code(error):
            return result(
                "not_attempted", "replace `raise NotImplementedError()` with your code"
            )
        return result("error", f"💥 {describe_exception(error, 'your code')}")
    except (Exception, SystemExit) as error:  # noqa: B902 - unguarded student code
        return result("error", f"💥 {describe_exception(error, 'your code')}")
    return result("passed")


def _kind_error(ex: Exercise, obj: Any) -> str | None:
    if ex.kind == "class" and not isinstance(obj, type):
        return f"expected the class {ex.object_name}, got {_describe(obj)}"
    if ex.kind == "function" and (isinstance(obj, type) or not callable(obj)):
        return f"expected the function {ex.object_name}, got {_describe(obj)}"
    return None


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    return f"{type(obj).__name__} {obj!r}"[:80]


def check(
    name: str,
    obj: Any,
    *,
    raise_on_fail: bool | None = None,
    verbose: bool = True,
) -> CheckResult:
    """Check your answer to exercise `name` and print what is right or wrong.

    Args:
        name: the exercise, e.g. `"scaled_dot_product_attention"`.
        obj: your function, or your class for a class exercise.
        raise_on_fail: raise `AssertionError` if a check fails (grading).
            Defaults to True when the environment variable
            `TF_TRANSFORMER_GRADING=1` is set, else False.
        verbose: print the ✅/❌ report. Defaults to True.

    Returns:
        A `CheckResult(name, passed, points, max_points, messages)`.
    """
    outcome = run_check(name, obj)
    if verbose:
        print(outcome.report())
    _keep_in_workbook(EXERCISES[name].object_name, obj, outcome.passed, verbose)
    if raise_on_fail is None:
        raise_on_fail = grading_mode()
    if raise_on_fail and not outcome.passed:
        raise CheckFailed(outcome)
    return outcome


def _keep_in_workbook(object_name: str, obj: Any, passed: bool, verbose: bool) -> None:
    """Save a passed class or function for later lessons, or note a failed
    check of a saved one (see `course.workbook`, which keeps only some); a
    failure to save never changes the check's outcome, and an answer that
    cannot be saved says why."""
    try:
        workbook.record(object_name, obj, passed)
    except workbook.NotSaved as error:
        if verbose:
            print(f"Not saved in your workbook: {error}.")
    except Exception:  # noqa: BLE001, S110 - saving is a convenience only
        pass


# ------------------------------------------------ the catalogue of typical bugs


@dataclasses.dataclass(frozen=True)
class Bug:
    """A typical mistake (or, in `ALTERNATIVES`, a correct variant).

    Attributes:
        exercise: the exercise name.
        description: what the mistake is (the maker's docstring or name).
        make: returns the wrong answer: a function, or a class built on the
            reference with one method rewritten the wrong way.
        hint: a phrase the check's message must contain ("" for a variant).
    """

    exercise: str
    description: str
    make: Callable[[], object]
    hint: str


# Filled by `@bug` and `@alternative` beside each exercise's check. The test
# suite asserts that each bug fails its check with its hint and that each
# alternative passes; instructors may read them as what the checks catch.
BUGS: list[Bug] = []
ALTERNATIVES: list[Bug] = []


def bug(exercise: str, hint: str, description: str | None = None):
    """Register `make` as a typical mistake of `exercise` that the check names
    with `hint`."""

    def register(make):
        BUGS.append(
            Bug(exercise, description or make.__doc__ or make.__name__, make, hint)
        )
        return make

    return register


def bugs_of(exercise: str, make: Callable[..., object], table) -> None:
    """Register several typical mistakes of `exercise` made by one factory.

    A check module often writes its mistakes as one wrong answer with a knob
    per mistake; each row `(name, hint, description, knobs)` of `table`
    registers `make(**knobs)` as the mistake `name` that the check names with
    `hint`.
    """
    for name, hint, description, knobs in table:

        def factory(knobs=knobs):
            return make(**knobs)

        factory.__name__ = factory.__qualname__ = name
        factory.__doc__ = description
        factory.__module__ = make.__module__  # the catalogue sits beside its check
        BUGS.append(Bug(exercise, description, factory, hint))


def alternative(exercise: str):
    """Register `make` as a correct variant of `exercise` the check must pass."""

    def register(make):
        ALTERNATIVES.append(Bug(exercise, make.__doc__ or make.__name__, make, ""))
        return make

    return register


# ---------------------------------------------------------------- comparisons


def to_numpy(value: Any, what: str) -> np.ndarray:
    """Student output as an array, or a `Failure` saying what it was."""
    if value is None:
        raise Failure(f"{what} returned None — did you forget `return`?")
    try:
        return np.asarray(value)
    except Exception as error:  # noqa: BLE001 - any odd object
        raise Failure(
            f"{what} returned {type(value).__name__}, which is not a tensor ({error})"
        ) from None


def expect_shape(
    actual: np.ndarray, expected_shape: tuple, what: str, hint: str = ""
) -> None:
    if tuple(actual.shape) != tuple(expected_shape):
        message = (
            f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected_shape)}"
        )
        raise Failure(message + (f" — {hint}" if hint else ""))


def expect_dtype(value: Any, expected: str, what: str, hint: str = "") -> None:
    dtype = getattr(value, "dtype", None)
    name = getattr(dtype, "name", None) or str(np.asarray(value).dtype)
    if name != expected:
        message = f"{what} has dtype {name}, expected {expected}"
        raise Failure(message + (f" — {hint}" if hint else ""))


def close(actual: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return False
    if actual.dtype == bool or expected.dtype == bool:
        return bool(np.array_equal(actual, expected))
    return bool(np.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=False))


def difference(actual: np.ndarray, expected: np.ndarray) -> str:
    """Where and how much two same-shape arrays differ, in one phrase."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    gap = np.abs(actual - expected)
    gap = np.where(np.isnan(gap), np.inf, gap)
    index = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.size else ()
    index = tuple(int(i) for i in index)
    got, want = actual[index], expected[index]
    return f"at index {index} got {got:.4g}, expected {want:.4g}"
