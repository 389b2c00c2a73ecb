"""Check of `masked_accuracy` (lesson 8)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    exercise,
    expect_dtype,
    to_numpy,
)
from tf_transformer.course.checks._losses import check_graph, loss_cases, mean_over_mask


def _accuracy_variants(labels, logits, kwargs):
    pad_id = kwargs.get("pad_id", 0)
    mask = labels != pad_id
    correct = logits.argmax(-1) == labels
    variants = [
        (correct.mean(), "padding positions are counted — use only the non-pad tokens"),
        (
            (correct & mask).sum(),
            "returns the number of correct tokens; divide by the number of non-pad "
            "tokens",
        ),
        (
            np.mean((correct & mask).sum(-1) / np.maximum(mask.sum(-1), 1)),
            "averages each sentence first; divide correct non-pad tokens by all "
            "non-pad tokens",
        ),
    ]
    if logits.shape[1] == logits.shape[2]:
        wrong_axis = logits.argmax(1) == labels
        variants.append(
            (
                (wrong_axis & mask).sum() / mask.sum(),
                "argmax over the wrong axis: take it over the vocabulary (last) axis",
            )
        )
    if pad_id:
        zero = labels != 0
        variants.append(
            (
                (correct & zero).sum() / zero.sum(),
                "is `pad_id` used (not a hard-coded 0)?",
            )
        )
    return variants


@exercise(
    "masked_accuracy",
    lesson=8,
    points=1,
    kind="function",
    reference="masked_accuracy",
)
def check_masked_accuracy(ctx, student, reference):
    rng = np.random.default_rng(9)
    square_labels = rng.integers(1, 7, size=(2, 7)).astype("int32")
    square_labels[0, 5:] = 0
    square_logits = rng.normal(size=(2, 7, 7)).astype("float32")
    cases = loss_cases()
    cases = [("length 7 and vocabulary 7", square_labels, square_logits, {})] + [
        cases[0],
        cases[1],
        cases[3],
    ]
    # Make some predictions right so the accuracy is not near 0.
    for _, labels, logits, _ in cases:
        hits = np.random.default_rng(1).random(labels.shape) < 0.5
        np.put_along_axis(
            logits, labels[..., None], np.where(hits, 9.0, -9.0)[..., None], -1
        )
    for description, labels, logits, kwargs in cases:
        what = f"masked_accuracy with {description}"
        result = ctx.call(
            student, tf.constant(labels), tf.constant(logits), what=what, **kwargs
        )
        actual = to_numpy(result, what)
        if actual.shape != ():
            raise Failure(
                f"{what} returned shape {actual.shape}; expected a scalar fraction"
            )
        expected = float(reference(tf.constant(labels), tf.constant(logits), **kwargs))
        if not close(actual.astype("float64"), expected, atol=1e-5):
            hint = "the fraction of non-pad tokens whose argmax equals the label"
            for value, variant_hint in _accuracy_variants(labels, logits, kwargs):
                if abs(float(actual) - value) < 1e-5:
                    hint = variant_hint
                    break
            raise Failure(
                f"{what}: got {float(actual):.4f}, expected {expected:.4f} — {hint}"
            )
        expect_dtype(
            result, "float32", what, "return a float32 fraction (cast before dividing)"
        )
    ctx.ok("matches on 4 cases (padding, square logits, no padding, pad_id)")
    check_graph(ctx, student, reference, "masked_accuracy")


# ------------------------------------------------- catalogue of typical bugs


def _correct(y, p, axis=-1):
    return tf.cast(
        tf.equal(tf.argmax(p, axis=axis, output_type=tf.int32), y), tf.float32
    )


@bug("masked_accuracy", "padding positions are counted")
def acc_counts_padding():
    """mean over every position"""
    return lambda y, p, pad_id=0: tf.reduce_mean(_correct(y, p))


@bug("masked_accuracy", "argmax over the wrong axis")
def acc_wrong_axis():
    """argmax over the time axis"""
    return lambda y, p, pad_id=0: mean_over_mask(_correct(y, p, axis=1), y != pad_id)


@bug("masked_accuracy", "number of correct tokens")
def acc_count():
    """returns the count of correct tokens"""
    return lambda y, p, pad_id=0: tf.reduce_sum(
        _correct(y, p) * tf.cast(y != pad_id, tf.float32)
    )


@bug("masked_accuracy", "averages each sentence first")
def acc_per_sentence():
    """mean of per-sentence accuracies"""

    def f(y, p, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        per = tf.reduce_sum(_correct(y, p) * mask, -1) / tf.maximum(
            tf.reduce_sum(mask, -1), 1.0
        )
        return tf.reduce_mean(per)

    return f


@bug("masked_accuracy", "is `pad_id` used")
def acc_hard_coded_pad():
    """pad_id ignored"""
    return lambda y, p, pad_id=0: mean_over_mask(_correct(y, p), y != 0)


@bug("masked_accuracy", "float32 fraction")
def acc_float64():
    """returns float64"""
    return lambda y, p, pad_id=0: tf.cast(
        mean_over_mask(_correct(y, p), y != pad_id), tf.float64
    )


@alternative("masked_accuracy")
def acc_boolean_mask():
    """tf.boolean_mask of the matches"""

    def f(y_true, y_pred, pad_id=0):
        matches = tf.boolean_mask(_correct(y_true, y_pred), y_true != pad_id)
        return tf.reduce_mean(matches)

    return f
