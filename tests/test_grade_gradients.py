"""The grader checks a class exercise's gradients as the self-check does.

In the grader the student's layer lives in the answers' process; the judge
asks it for the layer's gradients (`wire.Request` op ``gradient``) and
compares them with the reference's with the self-check's own function
(`checks._layers.compare_gradients`), so a class whose outputs are right
but whose gradient is cut fails there too, with the same message.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.grade_submissions import library_answer, write_class
from tf_transformer import EncoderLayer, FeedForward, LoRADense
from tf_transformer.course.checks import run_check
from tf_transformer.course.checks._core import Failure
from tf_transformer.course.checks._layers import compare_gradients, gradients_of
from tf_transformer.course.grading import grade
from tf_transformer.course.grading.wire import Slot

FEED_FORWARD_RETURN = "return self.dropout_layer(x, training=training)"
ENCODER_FEED_FORWARD = "x = x + self.feed_forward(y, training=training)"


def encoder_layer_answer():
    """The library's EncoderLayer, with the module's helper it calls."""
    imports, source = library_answer(EncoderLayer)
    helper = "from tf_transformer.layers.encoder import self_attention_mask"
    return [f"{imports}\n{helper}", source]


def answer(cls, line, replacement):
    """The library's answer for `cls`, with `line` of its source replaced."""
    imports, source = (
        encoder_layer_answer() if cls is EncoderLayer else library_answer(cls)
    )
    assert line in source, line
    return [imports, source.replace(line, replacement)]


def cut_feed_forward():
    return answer(
        FeedForward,
        FEED_FORWARD_RETURN,
        "return keras.ops.stop_gradient(self.dropout_layer(x, training=training))",
    )


def cut_encoder_layer():
    return answer(
        EncoderLayer,
        ENCODER_FEED_FORWARD,
        "x = x + keras.ops.stop_gradient(self.feed_forward(y, training=training))",
    )


def numpy_lora_dense():
    """LoRA's update computed from NumPy copies of A and B: right outputs,
    no gradient for A and B."""
    return [
        "import numpy as np",
        *answer(
            LoRADense,
            "update = ops.matmul(ops.matmul(inputs, self.lora_a), self.lora_b)",
            "update = ops.matmul(inputs, np.asarray(self.lora_a) @ "
            "np.asarray(self.lora_b))",
        ),
    ]


def self_check_message(exercise, cells, name):
    """What the learner's self-check says of the class the cells define
    (the registry of serializable classes put back afterwards)."""
    registry = keras.saving.get_custom_objects()
    saved = dict(registry)
    namespace = {"__name__": "learner"}
    try:
        for cell in cells:
            exec(compile(cell, "<cell>", "exec"), namespace)
        result = run_check(exercise, namespace[name])
    finally:
        registry.clear()
        registry.update(saved)
    assert not result.passed, result
    return result.hint().lstrip("❌💥 ")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = {
        "correct": [*library_answer(FeedForward), *encoder_layer_answer()],
        "cut": [*cut_feed_forward(), *cut_encoder_layer()],
        "lora_correct": library_answer(LoRADense),
        "lora_numpy": numpy_lora_dense(),
    }
    folder = write_class(tmp_path_factory.mktemp("gradients"), submissions)
    rows = grade.grade([folder], jobs=2, timeout=120, execute=False)
    return {(row.submission.split("/")[0], row.exercise): row for row in rows}


@pytest.mark.slow
def test_a_correct_class_keeps_full_marks(graded):
    for exercise in ("feed_forward", "encoder_layer"):
        row = graded[("correct", exercise)]
        assert (row.status, row.points) == ("passed", row.max_points), row
    row = graded[("lora_correct", "lora_dense")]
    assert (row.status, row.points) == ("passed", row.max_points), row


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "name", "cells"),
    [
        ("feed_forward", "FeedForward", cut_feed_forward),
        ("encoder_layer", "EncoderLayer", cut_encoder_layer),
        ("lora_dense", "LoRADense", numpy_lora_dense),
    ],
)
def test_a_cut_gradient_fails_with_the_self_checks_message(
    graded, exercise, name, cells
):
    row = graded[("lora_numpy" if exercise == "lora_dense" else "cut", exercise)]
    assert (row.status, row.points) == ("failed", 0), row
    assert "gradient" in row.message, row
    expected = self_check_message(exercise, cells(), name)
    assert without_values(row.message) == without_values(expected)


def without_values(message):
    """`message` without the differing element's place and values (the
    checker's weights are random, in the grader as in the self-check)."""
    message = re.sub(r"at index \([^)]*\) got \S+, expected \S+", "at …", message)
    # Keras numbers automatic layer names per process (`dense_72_lora`):
    # the grader's process and the self-check's count differently.
    return re.sub(r"([a-z])_\d+(?=[_/])", r"\1", message)


def test_the_gradients_of_a_described_call_are_plain_data():
    layer = FeedForward(4, 8)
    x = tf.random.stateless_normal((2, 3, 4), seed=(1, 2))
    inputs, weights = gradients_of(layer, ((Slot(0),), {"training": False}), [x])
    assert inputs[0].shape == (2, 3, 4) and np.any(inputs[0])
    assert [path for path, _, _ in weights] == [w.path for w in layer.weights]
    assert all(trainable and np.any(grad) for _, trainable, grad in weights)


def test_one_comparison_names_what_differs():
    layer = FeedForward(4, 8)
    x = tf.random.stateless_normal((2, 3, 4), seed=(1, 2))
    expected = gradients_of(layer, ((Slot(0),), {"training": False}), [x])
    compare_gradients(expected, expected, "FeedForward")
    cut = ([np.zeros_like(expected[0][0])], expected[1])
    with pytest.raises(Failure, match="no gradient reaches the input"):
        compare_gradients(cut, expected, "FeedForward")
    frozen = (expected[0], [[p, False, None] for p, _, _ in expected[1]])
    with pytest.raises(Failure, match="is not trainable"):
        compare_gradients(frozen, expected, "FeedForward")
    with pytest.raises(Failure, match="could not be read"):
        compare_gradients(([], "garbage"), expected, "FeedForward")
