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

`EXERCISES` lists every graded exercise (name, lesson, points, kind).
"""

from tf_transformer.course.checks import (  # noqa: F401 - each module registers checks
    attention,
    decoder_layer,
    decoding,
    encoder_layer,
    feed_forward,
    losses,
    masked_lm,
    masks,
    multi_head_attention,
    number_images,
    patches,
    positional,
    sampling,
    schedule,
    transformer,
)
from tf_transformer.course.checks._core import (
    EXERCISES,
    GRADING_ENV,
    STATUSES,
    CheckFailed,
    CheckResult,
    Exercise,
    check,
    exercise_for_object,
    exercises_of_lesson,
    run_check,
)

# Registry order: by lesson, then in the order the modules register.
_ordered = sorted(EXERCISES.items(), key=lambda item: item[1].lesson)
EXERCISES.clear()
EXERCISES.update(_ordered)
del _ordered

__all__ = [
    "EXERCISES",
    "GRADING_ENV",
    "STATUSES",
    "CheckFailed",
    "CheckResult",
    "Exercise",
    "check",
    "exercise_for_object",
    "exercises_of_lesson",
    "run_check",
]
