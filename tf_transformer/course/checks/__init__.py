"""Self-checks of the course exercises.

In a lesson, each exercise cell is followed by a check cell::

    from tf_transformer.course.checks import check
    check("scaled_dot_product_attention", scaled_dot_product_attention)

`check` compares your object with the library's reference on random and
hand-made inputs and on properties (masking, causality, shapes, dtypes,
`tf.function`, `get_config`), prints a ✅/❌ report with a hint naming the
likely mistake, and returns a `CheckResult`. A class exercise receives your
class; it is constructed with the reference's arguments and given the
reference's weights, so the outputs are comparable.

Each exercise has one module here, named after it: its `@exercise`
declaration, its checker, and its catalogue of typical bugs (`BUGS`,
`ALTERNATIVES`). Modules whose name starts with `_` are the framework and
shared helpers. `EXERCISES` lists every graded exercise (name, lesson,
points, kind).
"""

# Public: what check cells, the grader and tests use; exercise modules load by name.

import importlib
import pkgutil

from tf_transformer.course.checks._core import (
    ALTERNATIVES,
    BUGS,
    EXERCISES,
    STATUSES,
    Bug,
    CheckFailed,
    CheckResult,
    Exercise,
    check,
    exercise_for_object,
    exercises_of_lesson,
    run_check,
)
from tf_transformer.course.environment import GRADING_ENV

# Every module not starting with `_` is an exercise: importing it registers
# its check and its catalogue.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

# Registry order: by lesson, then by name.
_ordered = sorted(EXERCISES.items(), key=lambda item: (item[1].lesson, item[0]))
EXERCISES.clear()
EXERCISES.update(_ordered)
del _ordered, _module

__all__ = [
    # checking an answer
    "check",
    "run_check",
    "CheckResult",
    "CheckFailed",
    "STATUSES",
    "GRADING_ENV",
    # the registry: one declaration per exercise
    "EXERCISES",
    "Exercise",
    "exercise_for_object",
    "exercises_of_lesson",
    # the catalogue of typical bugs
    "BUGS",
    "ALTERNATIVES",
    "Bug",
]
