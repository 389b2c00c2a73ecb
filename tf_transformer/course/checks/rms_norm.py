"""`rms_norm` (lesson 14): its declaration, its check and its typical mistakes.

Contract (shared/DESIGN.md): `rms_norm(x, scale, epsilon=1e-6)` returns
`x / sqrt(mean(x², last axis) + epsilon) · scale` in the shape and dtype of
`x`, computed in float32; no mean is subtracted and there is no bias.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    difference,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def _numpy_rms_norm(
    x, scale, epsilon, axis=-1, center=False, outside=False, sum_=False
):
    x = np.asarray(x, np.float64)
    if center:
        x = x - x.mean(axis=axis, keepdims=True)
    reduce = np.sum if sum_ else np.mean
    square = reduce(x**2, axis=axis, keepdims=True)
    root = np.sqrt(square) + epsilon if outside else np.sqrt(square + epsilon)
    return x / root * scale


def _cases():
    """(description, x, scale, epsilon): offset inputs, so a subtracted mean shows;
    a large epsilon, so where it goes shows."""
    rng = np.random.default_rng(14)
    cases = []
    for shape, epsilon in (((2, 5, 16), 1e-6), ((3, 8), 0.5), ((1, 2, 3, 6), 1e-6)):
        x = (rng.normal(size=shape) * 0.8 + 1.5).astype("float32")
        scale = rng.uniform(0.5, 2.0, size=shape[-1]).astype("float32")
        cases.append((f"x of shape {shape}, epsilon={epsilon}", x, scale, epsilon))
    return cases


def _likely_mistake(actual, x, scale, epsilon):
    candidates = [
        (
            _numpy_rms_norm(x, scale, epsilon, center=True),
            "the mean is subtracted — RMSNorm divides x itself by its root mean "
            "square; no mean is subtracted (that is LayerNorm)",
        ),
        (
            _numpy_rms_norm(x, scale, epsilon, outside=True),
            "epsilon is added outside the square root: sqrt(mean(x²) + epsilon)",
        ),
        (
            _numpy_rms_norm(x, scale, 0.0),
            "epsilon is ignored: add it to mean(x²) under the square root",
        ),
        (
            _numpy_rms_norm(x, 1.0, epsilon),
            "the learned `scale` is not applied: multiply by it at the end",
        ),
        (
            _numpy_rms_norm(x, scale, epsilon, sum_=True),
            "the sum of squares is used: take the mean of x² over the last axis",
        ),
        (
            x / np.sqrt(np.var(x, -1, keepdims=True) + epsilon) * scale,
            "x is divided by its standard deviation: divide by the root mean square "
            "sqrt(mean(x²)), which keeps the mean in",
        ),
    ]
    if x.ndim > 2:
        candidates.append(
            (
                _numpy_rms_norm(x, scale, epsilon, axis=tuple(range(1, x.ndim))),
                "the mean is taken over several axes: normalise over the last axis "
                "only (keepdims=True)",
            )
        )
    for candidate, hint in candidates:
        if close(actual, candidate, atol=1e-4):
            return hint
    return None


@exercise(
    "rms_norm",
    lesson=14,
    points=1,
    kind="function",
    reference="rms_norm",
)
def check_rms_norm(ctx, student, reference):
    for description, x, scale, epsilon in _cases():
        what = f"rms_norm({description})"
        result = ctx.call(
            student, tf.constant(x), tf.constant(scale), epsilon=epsilon, what=what
        )
        actual = to_numpy(result, what)
        expected = reference(x, scale, epsilon=epsilon).numpy()
        expect_shape(actual, expected.shape, what, "keep the shape of x")
        if not close(actual, expected, atol=1e-5):
            hint = _likely_mistake(actual, x, scale, epsilon) or (
                "compare with x / sqrt(mean(x², last axis) + epsilon) · scale"
            )
            raise Failure(f"{what}: {difference(actual, expected)} — {hint}")
    ctx.ok("x / √(mean(x²) + ε) · scale over the last axis, for three shapes and two ε")

    # x² of these float16 numbers overflows float16 (largest 65,504).
    x = tf.constant([[300.0, -400.0, 500.0, 200.0], [1.0, 2.0, 3.0, 4.0]], tf.float16)
    what = "rms_norm(float16 x with features of 300–500)"
    result = ctx.call(student, x, tf.ones(4), what=what)
    actual = to_numpy(result, what)
    expected = reference(x, tf.ones(4)).numpy().astype("float32")
    if not close(actual.astype("float32"), expected, atol=2e-3, rtol=2e-3):
        raise Failure(
            f"{what}: {difference(actual, expected)} — x² overflows in float16 "
            "(largest 65,504): compute in float32 (tf.cast(x, tf.float32)) and "
            "cast the result back"
        )
    expect_dtype(result, "float16", what, "return the dtype of x: cast back at the end")
    ctx.ok("float16 inputs: computed in float32, returned as float16")

    graph = tf.function(
        student,
        input_signature=[
            tf.TensorSpec((None, None, 8), tf.float32),
            tf.TensorSpec((8,), tf.float32),
        ],
    )
    x = np.random.default_rng(3).normal(size=(2, 3, 8)).astype("float32")
    what = "rms_norm inside tf.function with unknown batch and length"
    actual = to_numpy(ctx.call(graph, x, np.ones(8, "float32"), what=what), what)
    if not close(actual, reference(x, np.ones(8, "float32")).numpy(), atol=1e-5):
        raise Failure(f"{what} gives other numbers than eagerly")
    ctx.ok("works inside tf.function with unknown batch and length")


# ------------------------------------------------------------ typical mistakes


def _tf_rms(x, scale, epsilon, *, center=False, outside=False, float16=False):
    dtype = x.dtype
    x = x if float16 else tf.cast(x, tf.float32)
    if center:
        x = x - tf.reduce_mean(x, -1, keepdims=True)
    mean_square = tf.reduce_mean(tf.square(x), -1, keepdims=True)
    if outside:
        root = tf.sqrt(mean_square) + tf.cast(epsilon, x.dtype)
    else:
        root = tf.sqrt(mean_square + tf.cast(epsilon, x.dtype))
    return tf.cast(x / root * tf.cast(scale, x.dtype), dtype)


@bug("rms_norm", "the mean is subtracted")
def rms_norm_subtracts_mean():
    """subtracts the mean first (LayerNorm without its bias)"""
    return lambda x, scale, epsilon=1e-6: _tf_rms(x, scale, epsilon, center=True)


@bug("rms_norm", "outside the square root")
def rms_norm_epsilon_outside():
    """epsilon added to the root, not under it"""
    return lambda x, scale, epsilon=1e-6: _tf_rms(x, scale, epsilon, outside=True)


@bug("rms_norm", "epsilon is ignored")
def rms_norm_no_epsilon():
    """no epsilon at all"""
    return lambda x, scale, epsilon=1e-6: _tf_rms(x, scale, 0.0)


@bug("rms_norm", "`scale` is not applied")
def rms_norm_no_scale():
    """forgets the learned gain"""
    return lambda x, scale, epsilon=1e-6: _tf_rms(x, tf.ones_like(scale), epsilon)


@bug("rms_norm", "overflows in float16")
def rms_norm_in_float16():
    """computes in the input's dtype: x² overflows in float16"""
    return lambda x, scale, epsilon=1e-6: _tf_rms(x, scale, epsilon, float16=True)


@bug("rms_norm", "standard deviation")
def rms_norm_divides_by_std():
    """divides by the standard deviation, without subtracting the mean"""

    def rms_norm(x, scale, epsilon=1e-6):
        x32 = tf.cast(x, tf.float32)
        variance = tf.math.reduce_variance(x32, -1, keepdims=True)
        return tf.cast(x32 / tf.sqrt(variance + epsilon) * scale, x.dtype)

    return rms_norm


@bug("rms_norm", "over several axes")
def rms_norm_all_axes():
    """the mean of x² over every axis but the batch"""

    def rms_norm(x, scale, epsilon=1e-6):
        x32 = tf.cast(x, tf.float32)
        axes = list(range(1, len(x.shape)))
        mean_square = tf.reduce_mean(tf.square(x32), axes, keepdims=True)
        return tf.cast(x32 * tf.math.rsqrt(mean_square + epsilon) * scale, x.dtype)

    return rms_norm


@bug("rms_norm", "sum of squares")
def rms_norm_sum_of_squares():
    """the sum of x², not its mean"""

    def rms_norm(x, scale, epsilon=1e-6):
        x32 = tf.cast(x, tf.float32)
        total = tf.reduce_sum(tf.square(x32), -1, keepdims=True)
        return tf.cast(x32 * tf.math.rsqrt(total + epsilon) * scale, x.dtype)

    return rms_norm


@bug("rms_norm", "cast back at the end")
def rms_norm_returns_float32():
    """computes in float32 and returns float32 for float16 inputs"""

    def rms_norm(x, scale, epsilon=1e-6):
        x32 = tf.cast(x, tf.float32)
        mean_square = tf.reduce_mean(tf.square(x32), -1, keepdims=True)
        return x32 * tf.math.rsqrt(mean_square + epsilon) * tf.cast(scale, tf.float32)

    return rms_norm


@alternative("rms_norm")
def rms_norm_with_keras_ops():
    """keras.ops, dividing by the square root"""
    import keras

    def rms_norm(x, scale, epsilon=1e-6):
        x32 = keras.ops.cast(x, "float32")
        mean_square = keras.ops.mean(keras.ops.square(x32), axis=-1, keepdims=True)
        scale = keras.ops.cast(scale, "float32")
        y = x32 / keras.ops.sqrt(mean_square + epsilon) * scale
        return keras.ops.cast(y, x.dtype)

    return rms_norm
