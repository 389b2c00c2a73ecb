"""Check of `padding_mask` (lesson 5)."""

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


@exercise(
    "padding_mask",
    lesson=5,
    points=1,
    kind="function",
    reference="padding_mask",
)
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


# ------------------------------------------------- catalogue of typical bugs


@bug("padding_mask", "True must mean a real token")
def pad_inverted():
    """True at padding"""
    return lambda ids, pad_id=0: tf.equal(ids, pad_id)[:, tf.newaxis, :]


@bug("padding_mask", "add the query axis")
def pad_no_axis():
    """shape (batch, seq_len)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)


@bug("padding_mask", "wrong place")
def pad_axis_last():
    """shape (batch, seq_len, 1)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)[:, :, tf.newaxis]


@bug("padding_mask", "2019 tutorial's shape")
def pad_four_d():
    """shape (batch, 1, 1, seq_len)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)[:, tf.newaxis, tf.newaxis, :]


@bug("padding_mask", "return booleans")
def pad_float():
    """float mask"""
    return lambda ids, pad_id=0: tf.cast(tf.not_equal(ids, pad_id), tf.float32)[
        :, None, :
    ]


@bug("padding_mask", "is `pad_id` used")
def pad_hard_coded_zero():
    """pad_id ignored"""
    return lambda ids, pad_id=0: tf.not_equal(ids, 0)[:, tf.newaxis, :]


@bug("padding_mask", "use TensorFlow ops")
def pad_numpy():
    """NumPy comparison: fails inside tf.function, where the ids are symbolic"""
    return lambda ids, pad_id=0: tf.constant((np.asarray(ids) != pad_id)[:, None, :])


@alternative("padding_mask")
def pad_expand_dims():
    """tf.expand_dims of a comparison"""
    return lambda token_ids, pad_id=0: tf.expand_dims(token_ids != pad_id, 1)
