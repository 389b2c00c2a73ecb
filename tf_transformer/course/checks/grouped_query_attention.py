"""`grouped_query_attention` (lesson 14): declaration, check, typical mistakes.

Contract (shared/DESIGN.md): `query` (batch, q_len, num_heads, head_dim),
`key`/`value` (batch, kv_len, num_kv_heads, head_dim); query head h uses
key/value head h // (num_heads // num_kv_heads); scores scaled by
1/√head_dim; `mask` bool broadcastable to (batch, q_len, kv_len) or
(batch, num_heads, q_len, kv_len), True = may attend, masked weights 0, a
fully masked row all zeros; returns output (batch, q_len, num_heads,
head_dim) and weights (batch, num_heads, q_len, kv_len), softmax in float32,
outputs in `value`'s dtype.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    bugs_of,
    close,
    difference,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)


def _numpy_gqa(
    q, k, v, mask=None, *, stride=False, scale=True, use_mask=True, invert=False
):
    """Reference in NumPy with switches for the usual mistakes."""
    heads, kv_heads = q.shape[2], k.shape[2]
    group = heads // kv_heads
    index = np.arange(heads) % kv_heads if stride else np.arange(heads) // group
    q = np.transpose(q, (0, 2, 1, 3)).astype(np.float64)  # (b, h, q, d)
    k = np.transpose(k[:, :, index], (0, 2, 1, 3)).astype(np.float64)
    v = np.transpose(v[:, :, index], (0, 2, 1, 3)).astype(np.float64)
    scores = q @ np.swapaxes(k, -1, -2)
    if scale:
        scores = scores / np.sqrt(q.shape[-1])
    allowed = None
    if mask is not None and use_mask:
        allowed = mask if mask.ndim == 4 else mask[:, None]
        allowed = ~allowed if invert else allowed
        scores = np.where(allowed, scores, -1e30)
    scores = scores - scores.max(-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(-1, keepdims=True)
    if allowed is not None:
        weights = np.where(allowed, weights, 0.0)
    return np.transpose(weights @ v, (0, 2, 1, 3)), weights


def _cases():
    """(description, query, key, value, mask)."""
    rng = np.random.default_rng(14)
    cases = []
    for batch, q_len, kv_len, heads, kv_heads, dim in (
        (2, 5, 6, 8, 2, 4),
        (1, 3, 3, 6, 3, 8),
        (2, 4, 7, 4, 1, 8),
        (1, 2, 5, 4, 4, 4),
    ):
        q = rng.normal(size=(batch, q_len, heads, dim)).astype("float32")
        k = rng.normal(size=(batch, kv_len, kv_heads, dim)).astype("float32")
        v = rng.normal(size=(batch, kv_len, kv_heads, dim)).astype("float32")
        cases.append(
            (f"{heads} query heads, {kv_heads} key/value heads", q, k, v, None)
        )
    q, k, v = cases[0][1:4]
    mask = rng.uniform(size=(2, 5, 6)) > 0.4
    mask[:, :, 0] = True
    cases.append(("a (batch, q_len, kv_len) mask", q, k, v, mask))
    causal = np.broadcast_to(np.tril(np.ones((5, 6), bool), k=1), (2, 8, 5, 6)).copy()
    cases.append(("a per-head (batch, num_heads, q_len, kv_len) mask", q, k, v, causal))
    return cases


def _likely_mistake(output, weights, q, k, v, mask):
    expected_weights = _numpy_gqa(q, k, v, mask)[1]
    if mask is not None:
        blocked = ~np.broadcast_to(
            mask if mask.ndim == 4 else mask[:, None], expected_weights.shape
        )
        leaked = np.abs(np.where(blocked, weights, 0.0)).max()
        if leaked > 1e-6:
            if close(weights, _numpy_gqa(q, k, v, mask, invert=True)[1], atol=1e-4):
                return "the mask is inverted: True means 'may attend'"
            return (
                f"weights at masked positions are {leaked:.2f}, expected 0 — the mask "
                "is ignored or applied after the softmax"
            )
    candidates = [
        (
            _numpy_gqa(q, k, v, mask, stride=True),
            "query heads are grouped by stride (head h uses key/value head "
            "h % num_kv_heads): consecutive query heads share one — head h uses "
            "h // (num_heads // num_kv_heads) (tf.repeat, not tf.tile)",
        ),
        (
            _numpy_gqa(q, k, v, mask, scale=False),
            "the scores are not divided by √head_dim",
        ),
    ]
    for (candidate_output, candidate_weights), hint in candidates:
        if close(weights, candidate_weights, atol=1e-4) or close(
            output, candidate_output, atol=1e-4
        ):
            return hint
    if not np.allclose(weights.sum(-1)[~np.all(weights == 0, -1)], 1, atol=1e-3):
        return "each row of weights should sum to 1: softmax over the last axis (keys)"
    return None


def _unpack(result, what):
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise Failure(
            f"{what} returned a {type(result).__name__}; return the pair "
            "(output, weights)"
        )
    return to_numpy(result[0], what + "[0]"), to_numpy(result[1], what + "[1]")


@exercise(
    "grouped_query_attention",
    lesson=14,
    points=2,
    kind="function",
    reference="grouped_query_attention",
)
def check_grouped_query_attention(ctx, student, reference):
    for description, q, k, v, mask in _cases():
        what = f"grouped_query_attention with {description}"
        kwargs = {} if mask is None else {"mask": tf.constant(mask)}
        result = ctx.call(
            student, tf.constant(q), tf.constant(k), tf.constant(v), what=what, **kwargs
        )
        output, weights = _unpack(result, what)
        want_output, want_weights = _numpy_gqa(q, k, v, mask)
        batch, q_len, heads, dim = q.shape
        if output.shape == (batch, heads, q_len, dim) != want_output.shape:
            raise Failure(
                f"{what}: output has shape {output.shape} (heads before positions) — "
                "return (batch, q_len, num_heads, head_dim): transpose back"
            )
        expect_shape(output, want_output.shape, f"output of {what}")
        expect_shape(
            weights,
            want_weights.shape,
            f"weights of {what}",
            "(batch, num_heads, q_len, kv_len)",
        )
        if not (
            close(weights, want_weights, atol=1e-5)
            and close(output, want_output, atol=1e-5)
        ):
            hint = _likely_mistake(output, weights, q, k, v, mask) or (
                "head h attends with key/value head h // (num_heads // num_kv_heads): "
                "softmax(q kᵀ / √head_dim) v"
            )
            gap = difference(output, want_output)
            raise Failure(f"{what}: output {gap} — {hint}")
    ctx.ok(
        "consecutive groups for 1, 2, 3 and h key/value heads, scaled by "
        "1/√head_dim, both mask forms"
    )

    rng = np.random.default_rng(5)
    q = rng.normal(size=(1, 2, 4, 8)).astype("float32")
    k = v = rng.normal(size=(1, 3, 2, 8)).astype("float32")
    mask = np.array([[[True, False, True], [False, False, False]]])
    what = "grouped_query_attention with a fully masked query row"
    output, weights = _unpack(
        ctx.call(student, q, k, v, mask=tf.constant(mask), what=what), what
    )
    if not np.isfinite(output).all() or np.abs(weights[:, :, 1]).max() > 0:
        raise Failure(
            f"{what}: its weights should be all 0 (and nothing NaN) — after the "
            "softmax, set the weights of masked keys to 0"
        )
    ctx.ok("a fully masked row gives zero weights")

    q16, k16 = (tf.constant(t * 30, tf.float16) for t in (q, k))  # scores ~ 10⁴
    what = "grouped_query_attention(float16 query, key and value)"
    result = ctx.call(student, q16, k16, k16, what=what)
    output, weights = _unpack(result, what)
    expect_dtype(result[0], "float16", what + "'s output", "return value's dtype")
    if not np.isfinite(output.astype("float32")).all():
        raise Failure(f"{what} gives inf or NaN — run the softmax in float32")
    ctx.ok("float16 inputs: softmax in float32, outputs in float16")

    graph = tf.function(
        student,
        input_signature=[
            tf.TensorSpec((None, None, 4, 8), tf.float32),
            tf.TensorSpec((None, None, 2, 8), tf.float32),
            tf.TensorSpec((None, None, 2, 8), tf.float32),
        ],
    )
    what = "grouped_query_attention inside tf.function with unknown batch and lengths"
    output, _ = _unpack(ctx.call(graph, q, k, v, what=what), what)
    if not close(output, _numpy_gqa(q, k, v)[0], atol=1e-5):
        raise Failure(f"{what} gives other numbers than eagerly")
    ctx.ok("works inside tf.function with unknown batch and lengths")


# ------------------------------------------------------------ typical mistakes


def _tf_gqa(
    query,
    key,
    value,
    mask=None,
    *,
    stride=False,
    scale=True,
    use_mask=True,
    invert=False,
    heads_first=False,
    zero_masked=True,
):
    group = query.shape[2] // key.shape[2]
    if stride:
        key, value = tf.tile(key, [1, 1, group, 1]), tf.tile(value, [1, 1, group, 1])
    else:
        key, value = tf.repeat(key, group, axis=2), tf.repeat(value, group, axis=2)
    q, k, v = (tf.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
    scores = tf.matmul(tf.cast(q, tf.float32), tf.cast(k, tf.float32), transpose_b=True)
    if scale:
        scores /= tf.sqrt(tf.cast(q.shape[-1], tf.float32))
    allowed = None
    if mask is not None and use_mask:
        allowed = tf.cast(mask, tf.bool)
        allowed = allowed if len(allowed.shape) == 4 else allowed[:, None]
        allowed = tf.logical_not(allowed) if invert else allowed
        scores = tf.where(allowed, scores, tf.float32.min)
    weights = tf.nn.softmax(scores, -1)
    if allowed is not None and zero_masked:
        weights = tf.where(allowed, weights, 0.0)
    weights = tf.cast(weights, value.dtype)
    output = tf.matmul(weights, v)  # (b, h, q, d)
    if not heads_first:
        output = tf.transpose(output, (0, 2, 1, 3))
    return output, weights


def _gqa_with(**mistake):
    return lambda q, k, v, mask=None: _tf_gqa(q, k, v, mask, **mistake)


bugs_of(
    "grouped_query_attention",
    _gqa_with,
    [
        (
            "gqa_grouped_by_stride",
            "grouped by stride",
            "tf.tile instead of tf.repeat: query head h reads key/value head h % g",
            dict(stride=True),
        ),
        (
            "gqa_no_scale",
            "not divided by √head_dim",
            "forgets the 1/√head_dim scale",
            dict(scale=False),
        ),
        (
            "gqa_ignores_mask",
            "the mask is ignored",
            "never applies the mask",
            dict(use_mask=False),
        ),
        (
            "gqa_inverted_mask",
            "inverted",
            "reads the mask as 1 = blocked (the 2019 tutorial's convention)",
            dict(invert=True),
        ),
        (
            "gqa_heads_first_output",
            "heads before positions",
            "returns the output as (batch, heads, q_len, head_dim)",
            dict(heads_first=True),
        ),
        (
            "gqa_uniform_masked_rows",
            "set the weights of masked keys to 0",
            "a fully masked row keeps the softmax's uniform weights",
            dict(zero_masked=False),
        ),
    ],
)


@bug("grouped_query_attention", "return value's dtype")
def gqa_returns_float32():
    """computes in float32 and returns float32 for float16 inputs"""

    def grouped_query_attention(query, key, value, mask=None):
        as32 = (tf.cast(t, tf.float32) for t in (query, key, value))
        return _tf_gqa(*as32, mask)

    return grouped_query_attention


@alternative("grouped_query_attention")
def gqa_by_reshaping_into_groups():
    """no repeat: queries reshaped to (batch, kv_heads, group, q_len, head_dim)"""

    def grouped_query_attention(query, key, value, mask=None):
        batch, q_len = tf.shape(query)[0], tf.shape(query)[1]
        heads, kv_heads, dim = query.shape[2], key.shape[2], query.shape[3]
        group = heads // kv_heads
        q = tf.reshape(query, (batch, q_len, kv_heads, group, dim))
        q = tf.transpose(q, (0, 2, 3, 1, 4))  # (b, g, group, q, d)
        k = tf.transpose(key, (0, 2, 1, 3))[:, :, None]  # (b, g, 1, kv, d)
        v = tf.transpose(value, (0, 2, 1, 3))[:, :, None]
        scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(dim)
        scores = tf.reshape(scores, (batch, heads, q_len, -1))
        scores = tf.cast(scores, tf.float32)
        if mask is not None:
            allowed = tf.cast(mask, tf.bool)
            allowed = allowed if len(allowed.shape) == 4 else allowed[:, None]
            scores = tf.where(allowed, scores, tf.float32.min)
        weights = tf.nn.softmax(scores, -1)
        if mask is not None:
            weights = tf.where(allowed, weights, 0.0)
        weights = tf.cast(weights, value.dtype)
        grouped = tf.reshape(weights, (batch, kv_heads, group, q_len, -1))
        output = tf.reshape(tf.matmul(grouped, v), (batch, heads, q_len, dim))
        return tf.transpose(output, (0, 2, 1, 3)), weights

    return grouped_query_attention
