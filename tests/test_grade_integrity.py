"""The grader's integrity: an answer cannot reach the library's reference.

Every submission here answers lesson 5 (two small function exercises) by
fetching the reference through a path that is not an import statement:
`sys.modules`, `importlib`, the garbage collector, the call stack, the
import proxy's own attributes, or the library's source file. None may pass.
"""

import json

import keras
import pytest

from tests.grade_submissions import (
    CLASS_TAMPERING,
    CORRECT_CAUSAL,
    TAMPERING,
    write_class,
)
from tf_transformer.course.grading import grade

MASKS = ("padding_mask", "causal_mask")


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    folder = write_class(tmp_path_factory.mktemp("tampering"), TAMPERING)
    rows = grade.grade([folder], jobs=2, timeout=60, execute=False)
    return {(row.submission.split("/")[0], row.exercise): row for row in rows}


@pytest.mark.slow
@pytest.mark.parametrize("trick", sorted(TAMPERING))
def test_an_answer_cannot_reach_the_reference(tampered, trick):
    for exercise in MASKS:
        row = tampered[(trick, exercise)]
        assert (row.status, row.points) != ("passed", 1.0), row
        assert row.status in ("failed", "error"), row


def exec_stubbed(source, filename):
    """Run a stubbed library module's text; its namespace.

    The text registers its classes with Keras under the library's names
    (`tf_transformer>FeedForward`): the registry is put back afterwards, so
    that later tests in this process deserialize the library's classes,
    not the stubs.
    """
    registry = keras.saving.get_custom_objects()
    saved = dict(registry)
    namespace = {"__name__": "stubbed"}
    try:
        exec(compile(source, filename, "exec"), namespace)
    finally:
        registry.clear()
        registry.update(saved)
    return namespace


def test_the_library_module_is_served_with_the_graded_functions_stubbed():
    import inspect

    from tf_transformer.course.grading import wire
    from tf_transformer.layers import masks

    source = inspect.getsource(masks)
    stubbed = wire.hide_definitions(source, {"padding_mask"})
    namespace = exec_stubbed(stubbed, "masks.py")
    with pytest.raises(RuntimeError, match="not available while grading"):
        namespace["padding_mask"]([[1, 0]])
    assert namespace["causal_mask"](2).numpy().tolist() == [[True, False], [True, True]]
    # Lines keep their numbers, so tracebacks point at the right lines.
    assert len(stubbed.splitlines()) == len(source.splitlines())
    assert "tf.not_equal(token_ids, pad_id)" not in stubbed


def test_an_answer_copied_from_the_library_is_flagged():
    import inspect

    from tf_transformer.course.checks import exercises_of_lesson
    from tf_transformer.course.grading.likeness import same_as_library
    from tf_transformer.layers import masks

    copied = (
        inspect.getsource(masks.padding_mask)
        .replace("token_ids", "ids")
        .replace("pad_id", "blank")
        .replace("    # (batch, seq_len) -> (batch, 1, seq_len)\n", "")
        .replace('"""Mask that hides', '"""My own mask that hides')
    )
    cells = ["from tf_transformer import validation", copied, CORRECT_CAUSAL]
    assert same_as_library(cells, exercises_of_lesson(5)) == {
        "padding_mask": "yes",
        "causal_mask": "no",
    }


def test_results_cross_between_processes_unchanged():
    import numpy as np
    import tensorflow as tf

    from tf_transformer.course.grading import wire

    value = (
        tf.constant(1.5),
        [np.arange(6, dtype="int64").reshape(2, 3), np.float32(2.0)],
        {"mask": tf.constant([[True, False]]), "n": 3, "none": None},
        "text",
    )
    back = wire.decode(json.loads(json.dumps(wire.encode(value))))
    assert back[0].dtype == tf.float32 and back[0].shape == ()
    assert back[1][0].tolist() == [[0, 1, 2], [3, 4, 5]] and back[1][0].dtype == "int64"
    assert back[1][1].shape == () and back[1][1].dtype == "float32"
    assert back[2]["mask"].dtype == tf.bool and back[2]["n"] == 3
    assert back[2]["none"] is None and back[3] == "text"
    opaque = wire.decode(wire.encode(object()))
    assert type(opaque).__name__ == "object"
    with pytest.raises(ValueError):
        wire.decode({"array": {"dtype": "object", "shape": [1], "data": ""}})


@pytest.fixture(scope="module")
def classes_graded(tmp_path_factory):
    """Class answers: tampering ones, one that hangs, one beside a crash."""
    from tests.grade_submissions import CLASS_TAMPERING, library_answer
    from tf_transformer import FeedForward, TransformerSchedule

    hanging = "class EncoderLayer:\n    def __init__(self, *args, **kwargs):\n"
    hanging += "        while True:\n            pass"
    crashing = "def masked_loss(*args, **kwargs):\n    import os\n    os._exit(3)"
    submissions = dict(
        CLASS_TAMPERING,
        hanging=[hanging, *library_answer(FeedForward)],
        crashing=[crashing, *library_answer(TransformerSchedule)],
    )
    folder = write_class(tmp_path_factory.mktemp("class_tampering"), submissions)
    rows = grade.grade([folder], jobs=2, timeout=60, execute=False)
    return {(row.submission.split("/")[0], row.exercise): row for row in rows}


@pytest.mark.slow
@pytest.mark.parametrize("trick", sorted(CLASS_TAMPERING))
def test_a_class_answer_cannot_reach_the_reference(classes_graded, trick):
    exercise = "feed_forward" if trick.startswith("feed") else "transformer_schedule"
    row = classes_graded[(trick, exercise)]
    assert row.status in ("failed", "error") and row.points == 0, row
    assert "raised" in row.message, row


@pytest.mark.slow
def test_a_class_that_hangs_costs_only_its_own_exercise(classes_graded):
    assert classes_graded[("hanging", "encoder_layer")].status == "timeout"
    assert classes_graded[("hanging", "feed_forward")].status == "passed"


@pytest.mark.slow
def test_a_correct_class_passes_after_another_answer_killed_its_process(
    classes_graded,
):
    row = classes_graded[("crashing", "masked_loss")]
    assert row.status == "error" and "process died" in row.message, row
    assert classes_graded[("crashing", "transformer_schedule")].status == "passed"
    assert classes_graded[("crashing", "transformer_schedule")].same_as_library == "yes"


def test_a_graded_class_is_served_as_a_stub_that_cannot_be_constructed():
    import inspect

    from tf_transformer.course.grading import wire
    from tf_transformer.layers import feed_forward

    source = inspect.getsource(feed_forward)
    stubbed = wire.hide_definitions(source, {"FeedForward"})
    namespace = exec_stubbed(stubbed, "feed_forward.py")
    stub = namespace["FeedForward"]
    assert stub.__name__ == "FeedForward"
    assert stub.__mro__[1].__name__ == "FeedForwardBase"  # the plumbing stays
    with pytest.raises(RuntimeError, match="not available while grading"):
        stub(8, 16)
    assert len(stubbed.splitlines()) == len(source.splitlines())
    assert "intermediate_dense" not in stubbed.split("class FeedForward(")[1]
    # The library's FeedForward still deserializes as itself afterwards.
    config = keras.saving.serialize_keras_object(feed_forward.FeedForward(8, 16))
    assert (
        type(keras.saving.deserialize_keras_object(config)) is feed_forward.FeedForward
    )


def test_answers_that_library_code_links_are_served_by_separate_processes():
    from tf_transformer.course.grading.judge import answer_groups

    # EncoderLayer's base class builds a FeedForward: hiding one from the other
    # would break an EncoderLayer built on the lesson's template.
    assert answer_groups(["encoder_layer", "feed_forward"]) == [
        ["encoder_layer"],
        ["feed_forward"],
    ]
    assert answer_groups(list(MASKS)) == [list(MASKS)]
    lesson_8 = ["masked_loss", "masked_accuracy", "transformer_schedule"]
    assert answer_groups(lesson_8) == [lesson_8]
    # greedy_decode calls decoder_step, which calls cached_decoder_step: the
    # link through a library helper separates them too.
    assert answer_groups(["cached_decoder_step", "greedy_decode"]) == [
        ["cached_decoder_step"],
        ["greedy_decode"],
    ]
