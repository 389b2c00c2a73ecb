"""Check of `causal_mask` (lesson 5)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    GRAPH_NUMPY_HINT,
    Failure,
    StudentError,
    alternative,
    bug,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def _causal_hint(actual, length):
    lower = np.tril(np.ones((length, length), dtype=bool))
    if np.array_equal(actual, ~lower):
        return "True marks the blocked (future) keys — here True means 'may attend'"
    if np.array_equal(actual, np.tril(lower, -1)):
        return (
            "the diagonal is False: a position must attend to itself — include the "
            "diagonal"
        )
    if np.array_equal(actual, lower.T):
        return (
            "upper triangular: query i would see future keys j > i; it should be "
            "lower triangular"
        )
    if np.array_equal(actual, np.tril(np.ones_like(lower), 1)):
        return "query i may attend to key i + 1 — off by one; keep keys 0..i"
    if np.array_equal(actual, np.triu(lower.T, 1)):
        return "True at future keys only: both the polarity and the diagonal are wrong"
    return "row i (query) should be True at columns 0..i (keys)"


@exercise(
    "causal_mask",
    lesson=5,
    points=1,
    kind="function",
    reference="causal_mask",
)
def check_causal_mask(ctx, student, reference):
    for length in (5, 1, 2, 8):
        what = f"causal_mask({length})"
        result = ctx.call(student, length, what=what)
        actual = to_numpy(result, what)
        expected = np.asarray(reference(length))
        hint = ""
        if actual.shape == (1, length, length):
            hint = (
                "no batch axis: the mask is (length, length) and broadcasts over the "
                "batch"
            )
        expect_shape(actual, expected.shape, what, hint)
        expect_dtype(result, "bool", what, "return booleans, True = may attend")
        if not np.array_equal(actual, expected):
            rows = actual.astype(int).tolist() if length <= 5 else "…"
            raise Failure(f"{what} = {rows} — {_causal_hint(actual, length)}")
    ctx.ok(
        "lower triangular including the diagonal, (length, length), bool, lengths 1–8"
    )

    # The length of a batch is a tensor inside tf.function (the decoder calls
    # causal_mask(tf.shape(x)[1])): a scalar tensor must work too, eagerly and
    # as a graph input whose value is unknown while tracing.
    expected = np.asarray(reference(6))
    what = "causal_mask(tf.constant(6))"
    actual = to_numpy(_call_with_tensor(ctx, student, what), what)
    expect_shape(actual, expected.shape, what, TENSOR_LENGTH_HINT)
    graph = tf.function(
        lambda length: student(length),
        input_signature=[tf.TensorSpec((), tf.int32)],
    )
    what = "causal_mask(length) inside tf.function, length a scalar int32 tensor"
    actual = to_numpy(_call_with_tensor(ctx, graph, what), what)
    expect_shape(actual, expected.shape, what, TENSOR_LENGTH_HINT)
    if not np.array_equal(actual, expected):
        raise Failure(f"{what} gives a different mask for 6 — {TENSOR_LENGTH_HINT}")
    ctx.ok("a scalar tensor length works, eagerly and inside tf.function")


def _call_with_tensor(ctx, function, what):
    try:
        return ctx.call(function, tf.constant(6), what=what)
    except StudentError as error:
        message = str(error).replace(f" — {GRAPH_NUMPY_HINT}", "")
        raise StudentError(f"{message} — {TENSOR_LENGTH_HINT}") from None


TENSOR_LENGTH_HINT = (
    "length may be a scalar tensor (e.g. tf.shape(x)[1] inside tf.function): "
    "build the mask with TensorFlow ops such as tf.range, not NumPy or range()"
)


# ------------------------------------------------- catalogue of typical bugs


def _tri(length, k=0, upper=False):
    ones = np.ones((length, length), dtype=bool)
    return np.triu(ones, k) if upper else np.tril(ones, k)


@bug("causal_mask", "include the diagonal")
def causal_no_diagonal():
    """excludes the diagonal"""
    return lambda n: tf.constant(_tri(n, -1))


@bug("causal_mask", "upper triangular")
def causal_upper():
    """upper triangular"""
    return lambda n: tf.constant(_tri(n, upper=True))


@bug("causal_mask", "True marks the blocked")
def causal_inverted():
    """1 = blocked (2019 tutorial)"""
    return lambda n: tf.constant(~_tri(n))


@bug("causal_mask", "off by one")
def causal_off_by_one():
    """lets query i see key i + 1"""
    return lambda n: tf.constant(_tri(n, 1))


@bug("causal_mask", "return booleans")
def causal_float():
    """float 0/1 mask"""
    return lambda n: tf.linalg.band_part(tf.ones((n, n)), -1, 0)


@bug("causal_mask", "no batch axis")
def causal_batch_axis():
    """adds a batch axis"""
    return lambda n: tf.constant(_tri(n))[tf.newaxis]


@bug("causal_mask", "length may be a scalar tensor")
def causal_loops():
    """nested Python loops over range(length): fails for a tensor length"""
    return lambda n: np.array(
        [[j <= i for j in range(n)] for i in range(n)], dtype=bool
    )


@bug("causal_mask", "length may be a scalar tensor")
def causal_numpy_tril():
    """np.tril of a NumPy array: a symbolic length has no value in tf.function"""
    return lambda n: tf.constant(np.tril(np.ones((n, n), dtype=bool)))


@alternative("causal_mask")
def causal_sequence_mask():
    """row i keeps its first i + 1 positions (tf.sequence_mask)"""
    return lambda n: tf.sequence_mask(tf.range(1, n + 1), n)


@alternative("causal_mask")
def causal_band_part():
    """tf.linalg.band_part cast to bool"""
    return lambda n: tf.cast(tf.linalg.band_part(tf.ones((n, n)), -1, 0), tf.bool)
