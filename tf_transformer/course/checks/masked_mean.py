"""Check of `masked_mean` (lesson 10)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def _masked_mean_hint(actual, x, mask):
    weights = mask[..., None].astype("float64")
    total = (x * weights).sum(1)
    if np.allclose(actual, x.mean(1), atol=1e-5):
        return (
            "this is the mean over every position: the mean counts padding — "
            "average over the real positions only"
        )
    if np.allclose(actual, total / x.shape[1], atol=1e-5):
        return (
            "the masked sum is divided by the full length — divide by the number "
            "of real positions"
        )
    if np.allclose(actual, total, atol=1e-5):
        return "this is the masked sum — divide it by the number of real positions"
    inverted = (x * (1 - weights)).sum(1) / np.maximum((1 - weights).sum(1), 1)
    if np.allclose(actual, inverted, atol=1e-5):
        return "it averages the padding positions: True/1 in `mask` is a real token"
    return "the mean over the positions where mask is True"


@exercise(
    "masked_mean",
    lesson=10,
    points=1,
    kind="function",
    reference="masked_mean",
)
def check_masked_mean(ctx, student, reference):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 7, 5)).astype("float32")
    mask = np.arange(7)[None, :] < np.array([7, 3, 5, 1])[:, None]
    what = "masked_mean(sequence (4, 7, 5), mask with lengths 7, 3, 5, 1)"
    result = ctx.call(student, tf.constant(x), tf.constant(mask), what=what)
    actual = to_numpy(result, what)
    expected = np.asarray(reference(tf.constant(x), tf.constant(mask)))
    hint = ""
    if actual.shape == (4, 1, 5):
        hint = "drop the length axis (no keepdims)"
    elif actual.shape == (4, 7):
        hint = "average over the length axis (axis 1), not over depth"
    expect_shape(actual, expected.shape, what, hint or "expected (batch, depth)")
    if not np.allclose(actual, expected, atol=1e-5):
        raise Failure(f"{what}: wrong values — {_masked_mean_hint(actual, x, mask)}")
    as_int = to_numpy(
        ctx.call(
            student,
            tf.constant(x),
            tf.constant(mask.astype("int32")),
            what="masked_mean with an int mask",
        ),
        "masked_mean with an int mask",
    )
    if not np.allclose(as_int, expected, atol=1e-5):
        raise Failure("an int mask (1 = real) must give the same result as a bool one")
    ctx.ok("mean over the real positions, (batch, depth); bool or int mask")

    empty = mask.copy()
    empty[2] = False
    what = "masked_mean with a row without real positions"
    actual = to_numpy(
        ctx.call(student, tf.constant(x), tf.constant(empty), what=what), what
    )
    if np.isnan(actual[2]).any():
        raise Failure(
            f"{what} gives NaN (0 / 0) — return zeros for it, e.g. with "
            "tf.math.divide_no_nan"
        )
    if not np.allclose(actual[2], 0.0):
        raise Failure(f"{what} gives {actual[2].round(3).tolist()}, expected zeros")
    ctx.ok("a row without real positions gives zeros, not NaN")

    what = "masked_mean(float16 sequence, …)"
    half = ctx.call(student, tf.constant(x, tf.float16), tf.constant(mask), what=what)
    expect_dtype(half, "float16", what, "the output dtype must equal sequence.dtype")
    what = "masked_mean inside tf.function with unknown shapes"
    graph = tf.function(
        student,
        input_signature=[
            tf.TensorSpec((None, None, None), tf.float32),
            tf.TensorSpec((None, None), tf.bool),
        ],
    )
    actual = to_numpy(
        ctx.call(graph, tf.constant(x), tf.constant(mask), what=what), what
    )
    if not np.allclose(actual, expected, atol=1e-5):
        raise Failure(f"{what}: differs from eager mode — use tensor ops only")
    ctx.ok("keeps the dtype; works in tf.function with unknown shapes")


# ------------------------------------------------- catalogue of typical bugs


@bug("masked_mean", "the mean counts padding")
def mean_counts_padding():
    """plain mean over every position"""
    return lambda sequence, mask: tf.reduce_mean(sequence, axis=1)


@bug("masked_mean", "gives NaN")
def mean_nan_for_empty_row():
    """masked sum / count, 0 / 0 for a row without real positions"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        return tf.reduce_sum(sequence * weights, 1) / tf.reduce_sum(weights, 1)

    return masked_mean


@bug("masked_mean", "divided by the full length")
def mean_divides_by_length():
    """masked sum divided by the padded length"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        length = tf.cast(tf.shape(sequence)[1], sequence.dtype)
        return tf.reduce_sum(sequence * weights, 1) / length

    return masked_mean


@bug("masked_mean", "this is the masked sum")
def mean_is_a_sum():
    """masked sum, never divided"""

    def masked_mean(sequence, mask):
        return tf.reduce_sum(sequence * tf.cast(mask, sequence.dtype)[..., None], 1)

    return masked_mean


@bug("masked_mean", "True/1 in `mask` is a real token")
def mean_of_the_padding():
    """the mask read the wrong way round"""

    def masked_mean(sequence, mask):
        weights = 1 - tf.cast(mask, sequence.dtype)[..., None]
        total = tf.reduce_sum(sequence * weights, 1)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1))

    return masked_mean


@bug("masked_mean", "the output dtype must equal sequence.dtype")
def mean_always_float32():
    """computes and returns float32 whatever the input"""

    def masked_mean(sequence, mask):
        sequence = tf.cast(sequence, tf.float32)
        weights = tf.cast(mask, tf.float32)[..., None]
        total = tf.reduce_sum(sequence * weights, 1)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1))

    return masked_mean


@bug("masked_mean", "drop the length axis")
def mean_keeps_the_length_axis():
    """keepdims=True: (batch, 1, depth)"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        total = tf.reduce_sum(sequence * weights, 1, keepdims=True)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1, keepdims=True))

    return masked_mean


@bug("masked_mean", "not over depth")
def mean_over_depth():
    """averages each vector over its depth"""

    def masked_mean(sequence, mask):
        return tf.reduce_mean(sequence, axis=2) * tf.cast(mask, sequence.dtype)

    return masked_mean


@bug("masked_mean", "expected zeros")
def mean_uniform_for_empty_row():
    """a row without real positions falls back to the plain mean"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        count = tf.reduce_sum(weights, 1)
        masked = tf.math.divide_no_nan(tf.reduce_sum(sequence * weights, 1), count)
        return tf.where(count > 0, masked, tf.reduce_mean(sequence, 1))

    return masked_mean


@alternative("masked_mean")
def mean_with_einsum_and_maximum():
    """einsum for the sum, count clipped at 1"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)
        total = tf.einsum("bld,bl->bd", sequence, weights)
        count = tf.maximum(tf.reduce_sum(weights, -1, keepdims=True), 1)
        return total / count

    return masked_mean


@alternative("masked_mean")
def mean_with_ragged_rows():
    """a ragged tensor of the real positions, then its mean, NaN replaced"""

    def masked_mean(sequence, mask):
        real = tf.ragged.boolean_mask(sequence, tf.cast(mask, tf.bool))
        mean = tf.reduce_mean(real, axis=1)
        return tf.where(tf.math.is_nan(mean), tf.zeros_like(mean), mean)

    return masked_mean
