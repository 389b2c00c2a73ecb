"""Helpers shared by the checks of `top_k_filter` and `top_p_filter`."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def show(values):
    """A short text of an array with −inf written as -inf."""
    flat = np.asarray(values, np.float64)
    if flat.size > 12:
        return f"array of shape {flat.shape}"
    text = np.array2string(flat, precision=2, separator=", ", suppress_small=True)
    return " ".join(text.split())


def compare(ctx, student, reference, logits, argument, name, mistakes, fallback=None):
    """Call the student on `logits`; fail with the matching mistake's hint."""
    argument_name = "k" if name == "top_k_filter" else "p"
    what = f"{name}({show(logits)}, {argument_name}={argument})"
    logits = np.asarray(logits, np.float32)
    result = ctx.call(student, tf.constant(logits), argument, what=what)
    actual = to_numpy(result, what)
    expected = np.asarray(reference(tf.constant(logits), argument))
    expect_shape(
        actual, expected.shape, what, "return the logits' shape: filter, don't gather"
    )
    actual = actual.astype(np.float64)
    want_kept = np.isfinite(expected)
    kept = np.isfinite(actual)
    if np.array_equal(kept, want_kept) and np.allclose(
        actual[kept], np.asarray(logits, np.float64)[kept], rtol=1e-3
    ):
        removed = actual[~kept]
        if removed.size and not np.isneginf(removed).all():
            raise Failure(f"{what} = {show(actual)} — removed entries must be -inf")
        return
    message = f"{what} = {show(actual)}, expected {show(expected)} — "
    raise Failure(message + mistake_hint(actual, want_kept, mistakes, fallback))


def mistake_hint(actual, want_kept, mistakes, fallback=None):
    kept = np.isfinite(actual)
    if not np.isneginf(actual).any() and (actual[~want_kept] == 0).all():
        return (
            "removed entries are 0, but exp(0) = 1 gives them probability; "
            "set them to -inf (float('-inf')) so softmax gives exactly 0"
        )
    if np.array_equal(kept, want_kept):
        return (
            "the right tokens are kept, but their logits changed; keep the kept "
            "logits unchanged (no scaling, no softmax: a temperature belongs to the "
            "sampler, not the filter)"
        )
    for candidate, hint in mistakes:
        if np.array_equal(kept, candidate):
            return hint
    return (
        fallback or "compare which entries you keep with the contract in the docstring"
    )


def check_dtypes(ctx, student, argument, name):
    logits = np.array([[1.0, 3.0, -2.0, 2.0, 0.5]])
    for dtype in ("float16", "float64"):
        what = f"{name} of {dtype} logits"
        result = ctx.call(student, tf.constant(logits, dtype), argument, what=what)
        expect_dtype(
            result, dtype, what, "keep the logits' dtype (cast back if needed)"
        )


def check_graph(ctx, student, reference, logits, argument, name):
    what = f"{name} inside tf.function with unknown batch and vocabulary size"
    graph = tf.function(
        lambda x: student(x, argument),
        input_signature=[tf.TensorSpec((None, None), tf.float32)],
    )
    try:
        logits = tf.constant(logits, tf.float32)
        actual = to_numpy(ctx.call(graph, logits, what=what), what)
    except StudentError as error:
        raise Failure(
            f"{error} — use TensorFlow ops and tf.shape (no .numpy(), no NumPy, "
            "no Python ints from unknown sizes) so it runs inside tf.function"
        ) from None
    expected = np.asarray(reference(logits, argument))
    if not np.array_equal(np.isfinite(actual), np.isfinite(expected)):
        raise Failure(f"{what}: keeps other tokens than in eager mode")


def check_leading_axes(ctx, student, reference, argument, name, mistakes_of, rows):
    """Rank 1 (one row) and rank 3 (six rows as 2 x 3) inputs."""
    for logits in (rows[0], rows.reshape((2, 3, rows.shape[-1]))):
        try:
            compare(
                ctx, student, reference, logits, argument, name, mistakes_of(logits)
            )
        except StudentError as error:
            raise Failure(
                f"{error} — the filter must work with any number of leading axes "
                f"(here shape {logits.shape}): work on axis -1, e.g. values[..., -1:]"
            ) from None


NEG_INF = float("-inf")
