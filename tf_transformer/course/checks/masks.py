"""Checks of `padding_mask` and `causal_mask` (lesson 5)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    GRAPH_NUMPY_HINT,
    Failure,
    StudentError,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def _padding_shape_hint(actual_shape, batch, length):
    if actual_shape == (batch, length):
        return "add the query axis: (batch, 1, seq_len), e.g. mask[:, tf.newaxis, :]"
    if actual_shape == (batch, length, 1):
        return (
            "the new axis is in the wrong place: (batch, 1, seq_len) broadcasts over "
            "queries"
        )
    if actual_shape == (batch, 1, 1, length):
        return (
            "(batch, 1, 1, seq_len) is the 2019 tutorial's shape; here it is "
            "(batch, 1, seq_len) — MultiHeadAttention adds the heads axis itself"
        )
    return "expected (batch, 1, seq_len)"


@exercise("padding_mask", lesson=5, points=1, kind="function")
def check_padding_mask(ctx, student, reference):
    rng = np.random.default_rng(3)
    random_ids = rng.integers(4, 50, size=(3, 7)).astype("int32")
    random_ids[0, 5:] = 0
    random_ids[2, 2:] = 0
    cases = [
        (np.array([[5, 7, 9, 0, 0], [3, 0, 0, 0, 0]], dtype="int32"), {}),
        (random_ids, {}),
        (np.array([[8, 6, 4]], dtype="int32"), {}),
        (np.array([[2, 9, 5, 5], [0, 5, 5, 5]], dtype="int32"), {"pad_id": 5}),
    ]
    for ids, kwargs in cases:
        args = ", pad_id=5" if kwargs else ""
        what = f"padding_mask({ids.tolist()}{args})"
        result = ctx.call(student, tf.constant(ids), what=what, **kwargs)
        actual = to_numpy(result, what)
        expected = np.asarray(reference(tf.constant(ids), **kwargs))
        expect_shape(
            actual, expected.shape, what, _padding_shape_hint(actual.shape, *ids.shape)
        )
        expect_dtype(
            result, "bool", what, "return booleans, True where the token is real"
        )
        if not np.array_equal(actual, expected):
            if np.array_equal(actual, ~expected):
                hint = (
                    "True marks padding here; True must mean a real token that may "
                    "be attended"
                )
            elif kwargs and np.array_equal(actual, (ids != 0)[:, None, :]):
                hint = (
                    "tokens equal to pad_id=5 should be False — is `pad_id` used "
                    "(not 0)?"
                )
            else:
                hint = "True where token_ids != pad_id"
            raise Failure(f"{what} = {actual.astype(int).tolist()} — {hint}")
    ctx.ok("True at real tokens, False at padding, shape (batch, 1, seq_len), bool")

    graph = tf.function(
        student, input_signature=[tf.TensorSpec((None, None), tf.int32)]
    )
    ids = cases[1][0]
    what = "padding_mask inside tf.function with unknown batch and length"
    actual = to_numpy(ctx.call(graph, ids, what=what), what)
    if not np.array_equal(actual, np.asarray(reference(tf.constant(ids)))):
        raise Failure(
            f"{what}: differs from eager mode — use tf.shape for dynamic sizes"
        )
    ctx.ok("works inside tf.function with unknown batch and length")


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


@exercise("causal_mask", lesson=5, points=1, kind="function")
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
