"""Checks of `top_k_filter` and `top_p_filter` (lesson 11).

Both filters return the logits with the removed tokens set to −inf. The
checks compare which tokens the student keeps with the reference, on
hand-made rows chosen so that the typical mistakes give different sets, and
name the mistake whose set the student's answer matches.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)

# ----------------------------------------------------- kept sets of mistakes


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _kept_top_k(logits, k, axis=-1, largest=True, keep_ties=True, extra=0):
    """Which entries a top-k filter keeps (numpy), with knobs for mistakes."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    if not largest:
        x = -x
    k = min(k + extra, x.shape[-1])
    order = np.argsort(-x, axis=-1, kind="stable")
    if keep_ties:
        kth = np.take_along_axis(x, order[..., k - 1 : k], axis=-1)
        kept = x >= kth
    else:
        kept = np.zeros(x.shape, bool)
        np.put_along_axis(kept, order[..., :k], True, axis=-1)
    return np.moveaxis(kept, -1, axis)


def _kept_top_p(
    logits,
    p,
    axis=-1,
    sort=True,
    ascending=False,
    crossing_kept=True,
    softmax=True,
):
    """Which entries a top-p filter keeps (numpy), with knobs for mistakes."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    probabilities = _softmax(x) if softmax else x
    if sort:
        order = np.argsort(probabilities if ascending else -probabilities, axis=-1)
    else:
        order = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    ranked = np.take_along_axis(probabilities, order, axis=-1)
    total = np.cumsum(ranked, axis=-1)
    keep_ranked = (total - ranked < p) if crossing_kept else (total <= p)
    kept = np.zeros(x.shape, bool)
    np.put_along_axis(kept, order, keep_ranked, axis=-1)
    return np.moveaxis(kept, -1, axis)


def _show(values):
    """A short text of an array with −inf written as -inf."""
    flat = np.asarray(values, np.float64)
    if flat.size > 12:
        return f"array of shape {flat.shape}"
    text = np.array2string(flat, precision=2, separator=", ", suppress_small=True)
    return " ".join(text.split())


# ------------------------------------------------------------ the comparison


def _compare(ctx, student, reference, logits, argument, name, mistakes, fallback=None):
    """Call the student on `logits`; fail with the matching mistake's hint."""
    argument_name = "k" if name == "top_k_filter" else "p"
    what = f"{name}({_show(logits)}, {argument_name}={argument})"
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
            raise Failure(f"{what} = {_show(actual)} — removed entries must be -inf")
        return
    message = f"{what} = {_show(actual)}, expected {_show(expected)} — "
    raise Failure(message + _hint(actual, want_kept, mistakes, fallback))


def _hint(actual, want_kept, mistakes, fallback=None):
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


def _check_dtypes(ctx, student, argument, name):
    logits = np.array([[1.0, 3.0, -2.0, 2.0, 0.5]])
    for dtype in ("float16", "float64"):
        what = f"{name} of {dtype} logits"
        result = ctx.call(student, tf.constant(logits, dtype), argument, what=what)
        expect_dtype(
            result, dtype, what, "keep the logits' dtype (cast back if needed)"
        )


def _check_graph(ctx, student, reference, logits, argument, name):
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


def _leading_axes(ctx, student, reference, argument, name, mistakes_of, rows):
    """Rank 1 (one row) and rank 3 (six rows as 2 x 3) inputs."""
    for logits in (rows[0], rows.reshape((2, 3, rows.shape[-1]))):
        try:
            _compare(
                ctx, student, reference, logits, argument, name, mistakes_of(logits)
            )
        except StudentError as error:
            raise Failure(
                f"{error} — the filter must work with any number of leading axes "
                f"(here shape {logits.shape}): work on axis -1, e.g. values[..., -1:]"
            ) from None


# ---------------------------------------------------------------- top_k_filter


def _top_k_mistakes(logits, k):
    logits = np.asarray(logits)
    mistakes = [
        (
            _kept_top_k(logits, k, extra=1),
            "keeps k + 1 tokens — off by one: the k-th largest value is the last "
            "one kept (index k - 1 of the sorted values)",
        ),
        (
            _kept_top_k(logits, k, extra=-1) if k > 1 else np.zeros(logits.shape, bool),
            "keeps k - 1 tokens — the k-th largest itself must be kept: remove only "
            "entries *smaller* than it",
        ),
        (
            _kept_top_k(logits, k, largest=False),
            "keeps the k smallest logits — keep the k largest",
        ),
        (
            _kept_top_k(logits, k, keep_ties=False),
            "exactly k tokens kept although others tie with the k-th value — ties "
            "with the k-th largest value are kept too (compare values, don't "
            "scatter top_k's indices)",
        ),
    ]
    for axis in range(logits.ndim - 1):
        mistakes.append(
            (
                _kept_top_k(logits, k, axis=axis),
                f"filters along axis {axis}; filter along the last (vocabulary) axis",
            )
        )
    return mistakes


@exercise("top_k_filter", lesson=11, points=1, kind="function")
def check_top_k_filter(ctx, student, reference):
    cases = [
        (np.array([[1.0, 3.0, -2.0, 2.0, 0.5, -1.0]]), 3),
        (np.array([[0.3, -1.2, 2.2, 1.1], [4.0, 0.0, -3.0, 2.5], [-1, 1, 0.5, 3]]), 2),
        (np.random.default_rng(5).normal(size=(4, 9)).round(3), 4),
        (np.array([[0.2, -0.5, 1.4, 0.9, 2.0, -2.0]]), 1),
    ]
    for logits, k in cases:
        _compare(
            ctx,
            student,
            reference,
            logits,
            k,
            "top_k_filter",
            _top_k_mistakes(logits, k),
        )
    ctx.ok("keeps the k largest logits unchanged, the others become -inf")

    ties = np.array([[2.0, 1.0, 2.0, 2.0, 0.5], [0.0, 3.0, 1.0, 1.0, -1.0]])
    _compare(ctx, student, reference, ties, 2, "top_k_filter", _top_k_mistakes(ties, 2))
    ctx.ok("ties with the k-th largest value are kept")

    logits = np.array([[0.5, -1.0, 2.0, 0.0, 1.5], [3.0, 2.0, 1.0, 0.0, -1.0]])
    for k in (5, 8):
        try:
            _compare(ctx, student, reference, logits, k, "top_k_filter", [])
        except StudentError as error:
            raise Failure(
                f"{error} — k at least the vocabulary size must change nothing "
                "(e.g. clip it: tf.minimum(k, tf.shape(logits)[-1]))"
            ) from None
    ctx.ok("k at least the vocabulary size changes nothing")

    rows = np.random.default_rng(11).permutation(np.linspace(-3, 3, 42))
    _leading_axes(
        ctx,
        student,
        reference,
        3,
        "top_k_filter",
        lambda logits: _top_k_mistakes(logits, 3),
        rows.reshape((6, 7)).round(2),
    )
    _check_dtypes(ctx, student, 2, "top_k_filter")
    ctx.ok("any number of leading axes; float16 and float64 keep their dtype")
    _check_graph(ctx, student, reference, cases[2][0], 3, "top_k_filter")
    ctx.ok("works inside tf.function with unknown batch and vocabulary size")


# ---------------------------------------------------------------- top_p_filter


def _top_p_mistakes(logits, p):
    logits = np.asarray(logits)
    mistakes = [
        (
            np.zeros(logits.shape, bool),
            "nothing kept — the most probable token is always kept, even when its "
            "probability alone exceeds p",
        ),
        (
            _kept_top_p(logits, p, crossing_kept=False),
            "the token whose probability crosses p is missing — keep tokens while "
            "the mass *before* them is below p (the kept total must reach p)",
        ),
        (
            _kept_top_p(logits, p, sort=False),
            "the cumulative sum runs in vocabulary order — sort the probabilities "
            "in descending order before the cumulative sum",
        ),
        (
            _kept_top_p(logits, p, ascending=True),
            "keeps the least probable tokens — sort in descending order",
        ),
        (
            _kept_top_p(logits, p, softmax=False),
            "the cumulative sum adds logits — turn them into probabilities with a "
            "softmax first",
        ),
    ]
    if logits.ndim > 1 and logits.shape[0] > 1:
        mistakes.append(
            (
                _kept_top_p(logits, p, axis=0),
                "filters along axis 0; softmax, sort and sum along the last "
                "(vocabulary) axis",
            )
        )
    return mistakes


@exercise("top_p_filter", lesson=11, points=1, kind="function")
def check_top_p_filter(ctx, student, reference):
    # Probabilities chosen so that every running total is at least 0.02 away
    # from p: the set to keep does not depend on rounding.
    cases = [
        (np.log([[0.1, 0.2, 0.05, 0.4, 0.25], [0.55, 0.05, 0.11, 0.05, 0.24]]), 0.5),
        (np.log([[0.05, 0.5, 0.15, 0.3]]), 0.75),
        (np.log([[0.05, 0.5, 0.15, 0.3]]), 0.85),
        (np.log([[0.12, 0.7, 0.08, 0.1], [0.25, 0.25, 0.3, 0.2]]), 0.6),
        (np.array([[2.0, 1.0, 0.0, 4.0, 3.0, -1.0]]), 0.9),
    ]
    for logits, p in cases:
        mistakes = _top_p_mistakes(logits, p)
        _compare(ctx, student, reference, logits, p, "top_p_filter", mistakes)
    ctx.ok("keeps the most probable tokens until their total reaches p, others -inf")

    logits = np.array([[5.0, 1.0, 0.0, 2.0], [0.0, 0.1, 9.0, -2.0]])
    mistakes = _top_p_mistakes(logits, 0.05)
    _compare(ctx, student, reference, logits, 0.05, "top_p_filter", mistakes)
    ctx.ok("the most probable token is always kept")
    _compare(
        ctx,
        student,
        reference,
        np.array([[30.0, -30.0, 0.0, -60.0]]),
        1.0,
        "top_p_filter",
        [],
        fallback="p = 1 must change nothing, but rounding makes the running total "
        "reach 1.0 before the tiny probabilities: return the logits unchanged "
        "when p == 1",
    )
    ctx.ok("p = 1 changes nothing")

    # Running totals at least 0.05 away from p = 0.6.
    rows = np.log(
        [
            [0.1, 0.2, 0.05, 0.4, 0.25],
            [0.5, 0.05, 0.1, 0.05, 0.3],
            [0.3, 0.1, 0.35, 0.15, 0.1],
            [0.22, 0.18, 0.2, 0.24, 0.16],
            [0.05, 0.9, 0.02, 0.01, 0.02],
            [0.15, 0.25, 0.3, 0.1, 0.2],
        ]
    )
    _leading_axes(
        ctx,
        student,
        reference,
        0.6,
        "top_p_filter",
        lambda logits: _top_p_mistakes(logits, 0.6),
        rows,
    )
    _check_dtypes(ctx, student, 0.8, "top_p_filter")
    ctx.ok("any number of leading axes; float16 and float64 keep their dtype")
    _check_graph(ctx, student, reference, cases[0][0], 0.5, "top_p_filter")
    ctx.ok("works inside tf.function with unknown batch and vocabulary size")
