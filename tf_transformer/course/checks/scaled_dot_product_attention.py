"""Check of `scaled_dot_product_attention` (lesson 3)."""

import math

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    difference,
    exercise,
    expect_shape,
    to_numpy,
)


def _softmax(x, axis=-1):
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def _weights(q, k, scale, axis=-1):
    return _softmax(np.matmul(q, np.swapaxes(k, -1, -2)) / scale, axis=axis)


def _cases():
    """(description, query, key, value, mask) on several seeds and shapes."""
    cases = []
    for seed, (batch, tq, tk, depth, value_depth) in enumerate(
        [(2, 5, 7, 8, 6), (1, 3, 3, 4, 4), (3, 1, 9, 16, 5)]
    ):
        rng = np.random.default_rng(seed)
        q = rng.normal(size=(batch, tq, depth)).astype("float32")
        k = rng.normal(size=(batch, tk, depth)).astype("float32")
        v = rng.normal(size=(batch, tk, value_depth)).astype("float32")
        cases.append(
            (f"query {q.shape}, key {k.shape}, value {v.shape}", q, k, v, None)
        )
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=(2, 6, 8)).astype("float32") for _ in range(3))
    lengths = np.array([4, 6])
    pad = np.arange(6)[None, None, :] < lengths[:, None, None]  # (2, 1, 6)
    cases.append(("a padding mask of shape (2, 1, 6)", q, k, v, pad))
    causal = np.tril(np.ones((6, 6), dtype=bool))
    cases.append(("a causal mask of shape (6, 6)", q, k, v, causal))
    heads = [rng.normal(size=(2, 3, 5, 4)).astype("float32") for _ in range(3)]
    cases.append(("4-D (batch, heads, length, depth) inputs", *heads, None))
    return cases


def _unpack(result, what):
    if not isinstance(result, tuple | list) or len(result) != 2:
        kind = type(result).__name__
        raise Failure(
            f"{what} returned a {kind}; return the pair (output, attention_weights)"
        )
    return to_numpy(result[0], what + "[0]"), to_numpy(result[1], what + "[1]")


def _mask_hint(weights, mask):
    """Hints from the masking properties alone."""
    blocked = ~np.broadcast_to(mask, weights.shape)
    leaked = np.abs(np.where(blocked, weights, 0.0)).max()
    allowed_weight = np.where(~blocked, weights, 0.0).sum(-1)
    if leaked > 1e-6:
        if np.abs(np.where(~blocked, weights, 0.0)).max() < 1e-6:
            return (
                "weights are 0 where the mask is True and nonzero where it is False — "
                "True means 'may attend' (the 2019 TF tutorial used 1 = blocked)"
            )
        return (
            f"weights at masked positions are {leaked:.2f}, expected 0 — is the mask "
            "applied to the scores before the softmax?"
        )
    sums = allowed_weight[~np.all(blocked, axis=-1)]
    if sums.size and np.abs(sums - 1).max() > 1e-4:
        worst = sums.flat[int(np.argmax(np.abs(sums - 1)))]
        return (
            f"masked weights are 0 but a row sums to {worst:.2f}, not 1 — apply the "
            "mask to "
            "the scores before the softmax so the remaining weights renormalize"
        )
    return None


def _value_hint(q, k, weights, scale, mask):
    depth = q.shape[-1]
    if mask is None and not np.allclose(weights.sum(-1), 1, atol=1e-4):
        if np.allclose(weights.sum(-2), 1, atol=1e-4):
            return (
                "the weights sum to 1 over the queries: take the softmax over the "
                "last axis (the keys)"
            )
        return (
            "each row of attention weights should sum to 1: softmax over the last axis"
        )
    if mask is None and close(weights, _weights(q, k, scale, axis=-2), atol=1e-4):
        return "softmax over the queries axis: take it over the last axis (the keys)"
    if close(weights, _apply(_weights(q, k, 1.0), mask), atol=1e-4):
        return "the scores are not divided by √d_k (√depth of the keys)"
    if close(weights, _apply(_weights(q, k, float(depth)), mask), atol=1e-4):
        return "the scores are divided by d_k; divide by √d_k"
    return None


def _apply(weights, mask):
    if mask is None:
        return weights
    return _softmax(np.where(mask, np.log(np.maximum(weights, 1e-30)), -1e30))


@exercise(
    "scaled_dot_product_attention",
    lesson=3,
    points=2,
    kind="function",
    reference="scaled_dot_product_attention",
)
def check_scaled_dot_product_attention(ctx, student, reference):
    for description, q, k, v, mask in _cases():
        what = "scaled_dot_product_attention(query, key, value" + (
            ", mask)" if mask is not None else ")"
        )
        inputs = [tf.constant(q), tf.constant(k), tf.constant(v)]
        kwargs = {} if mask is None else {"mask": tf.constant(mask)}
        result = ctx.call(student, *inputs, what=f"{what} with {description}", **kwargs)
        output, weights = _unpack(result, what)
        want_output, want_weights = (
            np.asarray(t) for t in reference(*inputs, **kwargs)
        )
        if output.shape == want_weights.shape != want_output.shape:
            raise Failure(
                f"{what} with {description}: the first result has the weights' shape "
                f"{output.shape} — return (output, attention_weights) in that order"
            )
        expect_shape(
            weights, want_weights.shape, f"attention_weights with {description}"
        )
        expect_shape(output, want_output.shape, f"output with {description}")
        if not close(weights, want_weights, atol=1e-5):
            hint = None
            if mask is not None:
                hint = _mask_hint(weights, mask)
            hint = hint or _value_hint(q, k, weights, np.sqrt(q.shape[-1]), mask)
            hint = hint or "compare with softmax(Q Kᵀ / √d_k) over the keys"
            raise Failure(
                f"attention_weights with {description}: "
                f"{difference(weights, want_weights)} — {hint}"
            )
        if not close(output, want_output, atol=1e-5):
            hint = "the output should be attention_weights @ value"
            raise Failure(
                f"output with {description}: {difference(output, want_output)} — {hint}"
            )
    ctx.ok(
        "output and weights match on 6 input sets (3 shapes, padding/causal masks, 4-D)"
    )

    # A query whose keys are all masked: all-zero weights, never NaN.
    rng = np.random.default_rng(11)
    q, k, v = (rng.normal(size=(1, 3, 4)).astype("float32") for _ in range(3))
    mask = np.array(
        [[[True, True, False], [False, False, False], [True, False, False]]]
    )
    what = "scaled_dot_product_attention with a fully masked query row"
    result = ctx.call(student, q, k, v, what=what, mask=tf.constant(mask))
    output, weights = _unpack(result, what)
    if np.isnan(weights).any() or np.isnan(output).any():
        raise Failure(
            f"{what}: NaN — a row with every key masked must give all-zero weights; "
            "use "
            "a large finite negative (not -inf) for the scores, then zero the masked "
            "weights"
        )
    if np.abs(weights[0, 1]).max() > 1e-6:
        raise Failure(
            f"{what}: that row's weights are {np.abs(weights[0, 1]).max():.2f}, "
            "expected all-zero weights — "
            "set the weights of masked keys to 0 after the softmax (tf.where(mask, "
            "w, 0.))"
        )
    ctx.ok("a fully masked query row gets all-zero weights (no NaN)")

    # Unknown batch and lengths inside tf.function.
    spec = tf.TensorSpec((None, None, 8), tf.float32)
    mask_spec = tf.TensorSpec((None, 1, None), tf.bool)
    graph = tf.function(
        lambda q, k, v, m: student(q, k, v, mask=m),
        input_signature=[spec] * 3 + [mask_spec],
    )
    _, q, k, v, mask = _cases()[3]
    what = (
        "scaled_dot_product_attention inside tf.function with unknown batch and lengths"
    )
    result = ctx.call(graph, q, k, v, mask, what=what)
    output, weights = _unpack(result, what)
    want_output, want_weights = (np.asarray(t) for t in reference(q, k, v, mask=mask))
    if not (close(output, want_output) and close(weights, want_weights)):
        raise Failure(
            f"{what}: results differ from eager mode — use tf.shape(x) for sizes "
            "that are unknown until run time"
        )
    ctx.ok("works inside tf.function with unknown batch size and lengths")

    # `dropout`: applied to the weights that average the values; the returned
    # weights are those before dropout. A fixed 0/2 pattern stands in for it.
    _, q, k, v, mask = _cases()[3]
    fixed_dropout = FixedDropout(np.random.default_rng(13).random((6, 6)) < 0.5)
    what = "scaled_dot_product_attention(..., dropout=d) with d a fixed 0/2 pattern"
    result = ctx.call(
        student,
        q,
        k,
        v,
        what=what,
        mask=tf.constant(mask),
        **{"dropout": fixed_dropout},
    )
    output, weights = _unpack(result, what)
    want_output, want_weights = (
        np.asarray(t) for t in reference(q, k, v, mask=mask, dropout=fixed_dropout)
    )
    plain_output, _ = (np.asarray(t) for t in reference(q, k, v, mask=mask))
    if not close(weights, want_weights, atol=1e-5):
        hint = "return the attention weights as they were before dropout"
        raise Failure(
            f"{what}: attention_weights {difference(weights, want_weights)} — {hint}"
        )
    if not close(output, want_output, atol=1e-5):
        hint = "apply `dropout` to the attention weights, then multiply by value"
        if close(output, plain_output, atol=1e-5):
            hint = "`dropout` was not applied: " + hint
        raise Failure(f"{what}: output {difference(output, want_output)} — {hint}")
    ctx.ok("`dropout` acts on the weights that average the values")

    # Mixed precision: float16 inputs give float16 results, without overflow.
    q, k, v = (tf.constant(x, tf.float16) for x in (q, k, v))
    what = "scaled_dot_product_attention with float16 query/key/value and a mask"
    result = ctx.call(student, q, k, v, what=what, mask=tf.constant(mask))
    if not isinstance(result, tuple | list) or len(result) != 2:
        _unpack(result, what)
    for name, tensor in zip(("output", "attention_weights"), result, strict=True):
        dtype = getattr(tensor, "dtype", None)
        if dtype != tf.float16:
            raise Failure(
                f"{what}: {name} is {getattr(dtype, 'name', type(tensor).__name__)}, "
                f"expected float16 — {DTYPE_HINT}"
            )
    output, weights = _unpack(result, what)
    if not (np.isfinite(output).all() and np.isfinite(weights).all()):
        raise Failure(
            f"{what}: NaN or infinity — in float16 a constant like -1e9 overflows "
            "to -inf: cast the scores to float32 before masking and the softmax"
        )
    want_output, want_weights = (np.asarray(t) for t in reference(q, k, v, mask=mask))
    if not (
        close(output, want_output, atol=1e-2)
        and close(weights, want_weights, atol=1e-2)
    ):
        raise Failure(
            f"{what}: differs from float32 by more than float16 rounding — "
            "compute the softmax in float32"
        )
    ctx.ok("float16 inputs give float16 results, without overflow")


class FixedDropout:
    """A dropout stand-in with a fixed mask: weights × (2 where kept, else 0).

    A module-level class, so the grader can send it to the process that runs
    the answer (a local function could not be pickled).
    """

    def __init__(self, keep):
        self.keep = np.asarray(keep, dtype=bool)

    def __call__(self, weights):
        return weights * tf.cast(tf.constant(self.keep) * 2.0, weights.dtype)


DTYPE_HINT = (
    "return both results in the dtype of `value` (float16 under mixed precision), "
    "computing the softmax in float32"
)


# ------------------------------------------------- catalogue of typical bugs


def _attention(
    scale=True,
    axis=-1,
    mask_mode="before",
    polarity=True,
    fill=-1e9,
    zero=True,
    use_dropout=True,
    returned="before dropout",
    dtype="value",
    float32_scores=True,
):
    def f(query, key, value, mask=None, dropout=None):
        scores = tf.matmul(query, key, transpose_b=True)
        if float32_scores:
            scores = tf.cast(scores, tf.float32)
        depth = tf.cast(tf.shape(key)[-1], scores.dtype)
        if scale == "d":
            scores /= depth
        elif scale:
            scores /= tf.sqrt(depth)
        if mask is not None and not polarity:
            mask = tf.logical_not(mask)
        if mask is not None and mask_mode == "before":
            scores = tf.where(mask, scores, fill)
        weights = tf.nn.softmax(scores, axis=axis)
        if mask is not None and mask_mode == "after":
            weights = weights * tf.cast(mask, weights.dtype)
        if mask is not None and mask_mode == "before" and zero:
            weights = tf.where(mask, weights, tf.zeros_like(weights))
        if dtype == "value":
            weights = tf.cast(weights, value.dtype)
        dropped = dropout(weights) if dropout is not None and use_dropout else weights
        output = tf.matmul(tf.cast(dropped, value.dtype), value)
        if dtype == "float32":
            output = tf.cast(output, tf.float32)
        return output, dropped if returned == "after dropout" else weights

    return f


@bug("scaled_dot_product_attention", "not divided by √d_k")
def sdpa_no_scale():
    """no division by √d_k"""
    return _attention(scale=False)


@bug("scaled_dot_product_attention", "divided by d_k")
def sdpa_scale_by_depth():
    """divides by d_k instead of √d_k"""
    return _attention(scale="d")


@bug("scaled_dot_product_attention", "softmax over the last axis")
def sdpa_wrong_axis():
    """softmax over the queries axis"""
    return _attention(axis=-2)


@bug("scaled_dot_product_attention", "True means 'may attend'")
def sdpa_inverted_mask():
    """mask polarity inverted (1 = blocked, the 2019 convention)"""
    return _attention(polarity=False)


@bug("scaled_dot_product_attention", "before the softmax")
def sdpa_mask_after_softmax():
    """mask multiplied in after the softmax"""
    return _attention(mask_mode="after")


@bug(
    "scaled_dot_product_attention",
    "is the mask applied to the scores before the softmax",
)
def sdpa_mask_ignored():
    """mask ignored"""
    return _attention(mask_mode="ignored")


@bug("scaled_dot_product_attention", "NaN")
def sdpa_minus_infinity():
    """-inf for masked scores: a fully masked row becomes NaN"""
    return _attention(fill=-math.inf, zero=False)


@bug("scaled_dot_product_attention", "all-zero weights")
def sdpa_uniform_masked_row():
    """a fully masked row keeps the softmax's uniform weights"""
    return _attention(zero=False)


@bug("scaled_dot_product_attention", "(output, attention_weights) in that order")
def sdpa_swapped_results():
    """returns (weights, output)"""
    return lambda q, k, v, mask=None: _attention()(q, k, v, mask)[::-1]


@bug("scaled_dot_product_attention", "return the pair")
def sdpa_output_only():
    """returns only the output"""
    return lambda q, k, v, mask=None: _attention()(q, k, v, mask)[0]


@bug("scaled_dot_product_attention", "`dropout` was not applied")
def sdpa_ignores_dropout():
    """accepts `dropout` but never calls it"""
    return _attention(use_dropout=False)


@bug("scaled_dot_product_attention", "as they were before dropout")
def sdpa_returns_dropped_weights():
    """returns the weights after dropout"""
    return _attention(returned="after dropout")


@bug("scaled_dot_product_attention", "in the dtype of `value`")
def sdpa_float32_results():
    """returns float32 results for float16 inputs"""
    return _attention(dtype="float32")


@bug("scaled_dot_product_attention", "overflows")
def sdpa_float16_minus_1e9():
    """masks with -1e9 in the inputs' dtype: -inf and NaN in float16"""

    def f(query, key, value, mask=None, dropout=None):
        scores = tf.matmul(query, key, transpose_b=True)
        scores /= tf.sqrt(tf.cast(tf.shape(key)[-1], scores.dtype))
        if mask is not None:
            scores += (1.0 - tf.cast(mask, scores.dtype)) * -1e9
        weights = tf.nn.softmax(scores)
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)
        attended = weights if dropout is None else dropout(weights)
        return tf.matmul(attended, value), weights

    return f


@alternative("scaled_dot_product_attention")
def sdpa_einsum():
    """einsum, additive mask in float32, then zeroed masked weights"""

    def f(query, key, value, mask=None, dropout=None):
        scores = tf.einsum("...qd,...kd->...qk", query, key)
        scores = tf.cast(scores, tf.float32)
        scores /= tf.sqrt(tf.cast(tf.shape(query)[-1], tf.float32))
        if mask is not None:
            scores += (1.0 - tf.cast(mask, tf.float32)) * -1e9
        weights = tf.nn.softmax(scores)
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)
        weights = tf.cast(weights, value.dtype)
        attended = weights if dropout is None else dropout(weights)
        return tf.einsum("...qk,...kv->...qv", attended, value), weights

    return f
