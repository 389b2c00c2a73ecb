"""Helpers shared by the checks of `masked_loss` and `masked_accuracy`."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    close,
    to_numpy,
)


def loss_cases():
    rng = np.random.default_rng(5)
    labels = rng.integers(1, 11, size=(3, 6)).astype("int32")
    labels[0, 4:] = 0
    labels[1, 1:] = 0
    logits = (2 * rng.normal(size=(3, 6, 11))).astype("float32")
    one = rng.integers(1, 11, size=(1, 5)).astype("int32")
    one_logits = rng.normal(size=(1, 5, 11)).astype("float32")
    pad4 = labels.copy()
    pad4[pad4 == 4] = 7
    pad4[0, 4:] = 4
    pad4[1, 1:] = 4
    pad4[2, 0] = 0  # 0 is a real token when pad_id=4
    return [
        ("labels (3, 6) with padding", labels, logits, {}),
        ("one sentence (1, 5) without padding", one, one_logits, {}),
        ("label_smoothing=0.1", labels, logits, {"label_smoothing": 0.1}),
        ("pad_id=4", pad4, logits, {"pad_id": 4}),
    ]


def check_graph(ctx, student, reference, name):
    specs = [
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None, 11), tf.float32),
    ]
    graph = tf.function(student, input_signature=specs)
    _, labels, logits, _ = loss_cases()[0]
    what = f"{name} inside tf.function with unknown batch and length"
    actual = to_numpy(ctx.call(graph, labels, logits, what=what), what)
    if not close(
        actual, reference(tf.constant(labels), tf.constant(logits)), atol=1e-4
    ):
        raise Failure(f"{what}: differs from eager mode")
    ctx.ok("works inside tf.function with unknown batch and length")


def mean_over_mask(values, mask):
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * mask) / tf.reduce_sum(mask)
