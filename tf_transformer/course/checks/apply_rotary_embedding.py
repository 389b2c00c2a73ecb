"""`apply_rotary_embedding` (lesson 14): declaration, check, typical mistakes.

Contract (shared/DESIGN.md): `x` (batch, length, …, head_dim), head_dim
even; the row at sequence index t has position `start_index + t`; feature
i < head_dim/2 is paired with feature i + head_dim/2 (half-split) and the
pair is rotated by `position · max_wavelength^(−2i/head_dim)`:
(a, b) → (a·cos − b·sin, b·cos + a·sin). Same shape and dtype; computed in
float32; `start_index` may be a scalar tensor.
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


def _numpy_rope(
    x, start, wavelength, *, interleaved=False, exponent=2.0, sign=1.0, axis=1
):
    """The rotation in NumPy, with switches for the usual mistakes."""
    x = np.asarray(x, np.float64)
    dim = x.shape[-1]
    half = dim // 2
    theta = float(wavelength) ** (-exponent * np.arange(half) / dim)  # (d/2,)
    positions = start + np.arange(x.shape[axis])
    angles = positions[:, None] * theta  # (length, d/2)
    shape = [1] * x.ndim
    shape[axis], shape[-1] = x.shape[axis], half
    cos, sin = np.cos(angles).reshape(shape), sign * np.sin(angles).reshape(shape)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :half], x[..., half:]
    first, second = a * cos - b * sin, b * cos + a * sin
    out = np.empty_like(x)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = first, second
    else:
        out[..., :half], out[..., half:] = first, second
    return out


# (description, shape, start_index, max_wavelength)
CASES = [
    ("x (2, 6, 8), start_index=0", (2, 6, 8), 0, 10000),
    ("x (1, 5, 3, 16) (heads on axis 2), start_index=7", (1, 5, 3, 16), 7, 10000),
    ("x (2, 4, 2, 8), start_index=tf.constant(9)", (2, 4, 2, 8), "tensor 9", 10000),
    ("x (1, 6, 12), start_index=3, max_wavelength=100", (1, 6, 12), 3, 100),
]


def _likely_mistake(actual, x, start, wavelength):
    candidates = [
        (
            _numpy_rope(x, start, wavelength, interleaved=True),
            "features (2i, 2i + 1) are paired (interleaved): pair feature i with "
            "feature i + head_dim/2 (the half-split convention of Llama and KerasHub)",
        ),
        (
            _numpy_rope(x, 0, wavelength),
            "start_index is ignored: the row at index t has position start_index + t",
        ),
        (
            _numpy_rope(x, start, wavelength, exponent=1.0),
            "wrong wavelength exponent: θ_i = max_wavelength^(−2i/head_dim), with 2i",
        ),
        (
            _numpy_rope(x, start, wavelength, exponent=-2.0),
            "the wavelengths grow the wrong way: θ_i = max_wavelength^(−2i/head_dim) "
            "(a negative exponent), so pair 0 turns fastest",
        ),
        (
            _numpy_rope(x, start, wavelength, sign=-1.0),
            "the pairs rotate the wrong way: (a, b) → (a·cos − b·sin, b·cos + a·sin)",
        ),
    ]
    candidates.append(
        (
            _numpy_rope(x, start + 1, wavelength),
            "positions are off by one: the first row has position start_index",
        )
    )
    if x.ndim == 4:
        candidates.append(
            (
                _numpy_rope(x, start, wavelength, axis=2),
                "positions run along the heads axis: the sequence is axis 1 of "
                "(batch, length, heads, head_dim)",
            )
        )
    for candidate, hint in candidates:
        if close(actual, candidate, atol=1e-4):
            return hint
    return None


@exercise(
    "apply_rotary_embedding",
    lesson=14,
    points=2,
    kind="function",
    reference="apply_rotary_embedding",
)
def check_apply_rotary_embedding(ctx, student, reference):
    rng = np.random.default_rng(14)
    for description, shape, start, wavelength in CASES:
        x = rng.normal(size=shape).astype("float32")
        number = int(str(start).split()[-1])
        start_arg = tf.constant(number) if isinstance(start, str) else start
        what = f"apply_rotary_embedding({description})"
        result = ctx.call(
            student, tf.constant(x), start_arg, max_wavelength=wavelength, what=what
        )
        actual = to_numpy(result, what)
        expected = _numpy_rope(x, number, wavelength)
        expect_shape(actual, expected.shape, what, "keep the shape of x")
        if not close(actual, expected, atol=1e-4):
            hint = _likely_mistake(actual, x, number, wavelength) or (
                "pair i is (x[..., i], x[..., i + d/2]), rotated by "
                "(start_index + t) · max_wavelength^(−2i/d)"
            )
            raise Failure(f"{what}: {difference(actual, expected)} — {hint}")
    ctx.ok(
        "half-split pairs rotated by (start_index + t)·θ_i for 3-D and 4-D inputs, "
        "start_index as an int or a tensor"
    )

    # The property that makes it worth it: scores depend only on the offset.
    q = tf.constant(rng.normal(size=(1, 1, 32)).astype("float32"))
    k = tf.constant(rng.normal(size=(1, 1, 32)).astype("float32"))
    scores = []
    for m in (4, 104, 1004):
        what = f"apply_rotary_embedding(q, {m}) and (k, {m - 3})"
        rotated_q = to_numpy(ctx.call(student, q, m, what=what), what)
        rotated_k = to_numpy(ctx.call(student, k, m - 3, what=what), what)
        scores.append(float((rotated_q * rotated_k).sum()))
    if not np.allclose(scores, scores[0], rtol=1e-3, atol=1e-3):
        raise Failure(
            "⟨rope(q, m), rope(k, m − 3)⟩ changes with m "
            f"({', '.join(f'{s:.3f}' for s in scores)}): each pair must be rotated by "
            "an angle proportional to the position, the same pairing for q and k"
        )
    ctx.ok("⟨rope(q, m), rope(k, n)⟩ depends only on m − n")

    # float16 inputs at a far position: the angles need float32.
    x = rng.normal(size=(1, 3, 2, 8)).astype("float16")
    what = "apply_rotary_embedding(float16 x, start_index=3000)"
    result = ctx.call(student, tf.constant(x), 3000, what=what)
    actual = to_numpy(result, what)
    expect_dtype(result, "float16", what, "return the dtype of x: cast back at the end")
    expected = reference(tf.constant(x), 3000).numpy().astype("float32")
    if not close(actual.astype("float32"), expected, atol=1e-2, rtol=1e-2):
        raise Failure(
            f"{what}: {difference(actual, expected)} — compute the angles and the "
            "rotation in float32: position · θ in float16 loses the angle"
        )
    ctx.ok("float16 inputs: computed in float32, returned as float16")

    graph = tf.function(
        student,
        input_signature=[
            tf.TensorSpec((None, None, 2, 8), tf.float32),
            tf.TensorSpec((), tf.int32),
        ],
    )
    x = rng.normal(size=(2, 5, 2, 8)).astype("float32")
    what = "apply_rotary_embedding inside tf.function, unknown length, tensor start"
    actual = to_numpy(ctx.call(graph, x, tf.constant(6), what=what), what)
    if not close(actual, _numpy_rope(x, 6, 10000), atol=1e-4):
        raise Failure(f"{what} gives other numbers than eagerly")
    ctx.ok("works inside tf.function with an unknown length and a tensor start_index")


# ------------------------------------------------------------ typical mistakes


def _tf_rope(
    x,
    start_index=0,
    max_wavelength=10000,
    *,
    interleaved=False,
    exponent=2.0,
    dtype=tf.float32,
    sign=1.0,
    offset=0,
    positions_axis=1,
):
    head_dim = x.shape[-1]
    exponents = exponent * tf.range(head_dim // 2, dtype=dtype) / head_dim
    theta = tf.pow(tf.cast(max_wavelength, dtype), -exponents)
    length = tf.shape(x)[positions_axis]
    positions = tf.cast(tf.range(length) + start_index + offset, dtype)
    angles = positions[:, None] * theta  # (length, d/2)
    shape = [1] * len(x.shape)
    shape[positions_axis], shape[-1] = -1, head_dim // 2
    cos = tf.reshape(tf.cos(angles), shape)
    sin = sign * tf.reshape(tf.sin(angles), shape)
    x32 = tf.cast(x, dtype)
    if interleaved:
        a, b = x32[..., 0::2], x32[..., 1::2]
        pairs = tf.stack([a * cos - b * sin, b * cos + a * sin], axis=-1)
        return tf.cast(tf.reshape(pairs, tf.shape(x)), x.dtype)
    a, b = tf.split(x32, 2, axis=-1)
    return tf.cast(tf.concat([a * cos - b * sin, b * cos + a * sin], -1), x.dtype)


@bug("apply_rotary_embedding", "(interleaved)")
def rope_interleaved():
    """pairs features (2i, 2i + 1), the RoFormer/GPT-J convention"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, interleaved=True
    )


@bug("apply_rotary_embedding", "start_index is ignored")
def rope_forgets_start_index():
    """every call starts at position 0 (a cached decoder rotates every token as 0)"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(x, 0, max_wavelength)


@bug("apply_rotary_embedding", "off by one")
def rope_wrong_offset():
    """positions start_index + 1 + t"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, offset=1
    )


@bug("apply_rotary_embedding", "wrong wavelength exponent")
def rope_exponent_without_two():
    """θ_i = max_wavelength^(−i/d): the 2 forgotten"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, exponent=1.0
    )


@bug("apply_rotary_embedding", "the wrong way")
def rope_positive_exponent():
    """θ_i = max_wavelength^(+2i/d): slow pairs spin fastest"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, exponent=-2.0
    )


@bug("apply_rotary_embedding", "rotate the wrong way")
def rope_sign_flipped():
    """(a·cos + b·sin, b·cos − a·sin): the inverse rotation"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, sign=-1.0
    )


@bug("apply_rotary_embedding", "heads axis")
def rope_along_heads():
    """takes the positions from axis -2 (the heads of a 4-D input)"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, positions_axis=len(x.shape) - 2
    )


@bug("apply_rotary_embedding", "in float32")
def rope_in_float16():
    """computes the angles in the input's dtype"""
    return lambda x, start_index=0, max_wavelength=10000: _tf_rope(
        x, start_index, max_wavelength, dtype=x.dtype
    )


@alternative("apply_rotary_embedding")
def rope_as_complex_numbers():
    """half-split pairs as complex numbers a + ib, multiplied by e^(i·angle)"""

    def apply_rotary_embedding(x, start_index=0, max_wavelength=10000):
        head_dim = x.shape[-1]
        pairs = tf.range(head_dim // 2, dtype=tf.float64)
        theta = max_wavelength ** (-2.0 * pairs / head_dim)
        positions = tf.cast(tf.range(tf.shape(x)[1]) + start_index, tf.float64)
        angles = positions[:, None] * theta
        shape = [1, -1] + [1] * (len(x.shape) - 3) + [head_dim // 2]
        turn = tf.reshape(tf.exp(tf.complex(tf.zeros_like(angles), angles)), shape)
        a, b = tf.split(tf.cast(x, tf.float64), 2, axis=-1)
        turned = tf.complex(a, b) * turn
        out = tf.concat([tf.math.real(turned), tf.math.imag(turned)], -1)
        return tf.cast(out, x.dtype)

    return apply_rotary_embedding
