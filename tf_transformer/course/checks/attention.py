"""Check of `scaled_dot_product_attention` (lesson 3)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
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


@exercise("scaled_dot_product_attention", lesson=3, points=2, kind="function")
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
