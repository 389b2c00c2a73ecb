"""Check of `top_p_filter` (lesson 11); its helpers are in `_sampling`."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    alternative,
    bug,
    exercise,
)
from tf_transformer.course.checks._sampling import (
    NEG_INF,
    check_dtypes,
    check_graph,
    check_leading_axes,
    compare,
)


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


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


@exercise(
    "top_p_filter",
    lesson=11,
    points=1,
    kind="function",
    reference="top_p_filter",
)
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
        compare(ctx, student, reference, logits, p, "top_p_filter", mistakes)
    ctx.ok("keeps the most probable tokens until their total reaches p, others -inf")

    logits = np.array([[5.0, 1.0, 0.0, 2.0], [0.0, 0.1, 9.0, -2.0]])
    mistakes = _top_p_mistakes(logits, 0.05)
    compare(ctx, student, reference, logits, 0.05, "top_p_filter", mistakes)
    ctx.ok("the most probable token is always kept")
    compare(
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
    check_leading_axes(
        ctx,
        student,
        reference,
        0.6,
        "top_p_filter",
        lambda logits: _top_p_mistakes(logits, 0.6),
        rows,
    )
    check_dtypes(ctx, student, 0.8, "top_p_filter")
    ctx.ok("any number of leading axes; float16 and float64 keep their dtype")
    check_graph(ctx, student, reference, cases[0][0], 0.5, "top_p_filter")
    ctx.ok("works inside tf.function with unknown batch and vocabulary size")


# ------------------------------------------------- catalogue of typical bugs


def _nucleus(
    logits,
    p,
    *,
    direction="DESCENDING",
    crossing_kept=True,
    softmax=True,
    sort=True,
    fill=NEG_INF,
    axis=-1,
):
    """A top-p filter with knobs for the catalogue's mistakes."""
    scores = (
        tf.nn.softmax(tf.cast(logits, tf.float32), axis=axis) if softmax else logits
    )
    scores = tf.cast(scores, tf.float32)
    ranked = tf.sort(scores, axis=axis, direction=direction) if sort else scores
    total = tf.cumsum(ranked, axis=axis)
    needed = total - ranked < p if crossing_kept else total <= p
    if not sort:  # the set is read in vocabulary order
        return tf.where(needed, logits, tf.cast(fill, logits.dtype))
    smallest = tf.reduce_min(tf.where(needed, ranked, np.inf), axis=axis, keepdims=True)
    if direction == "ASCENDING":
        largest = tf.reduce_max(
            tf.where(needed, ranked, -np.inf), axis=axis, keepdims=True
        )
        return tf.where(scores > largest, tf.cast(fill, logits.dtype), logits)
    return tf.where(scores < smallest, tf.cast(fill, logits.dtype), logits)


@bug("top_p_filter", "the token whose probability crosses p is missing")
def top_p_drops_crossing_token():
    """keeps tokens while the running total including them is <= p"""
    return lambda logits, p: _nucleus(logits, p, crossing_kept=False)


@bug("top_p_filter", "sort the probabilities in descending order")
def top_p_no_sort():
    """cumulative sum in vocabulary order, without sorting"""
    return lambda logits, p: _nucleus(logits, p, sort=False)


@bug("top_p_filter", "keeps the least probable tokens")
def top_p_ascending():
    """sorted in ascending order"""
    return lambda logits, p: _nucleus(logits, p, direction="ASCENDING")


@bug("top_p_filter", "removed entries are 0")
def top_p_zero_fill():
    """0 instead of −inf for the removed tokens"""
    return lambda logits, p: _nucleus(logits, p, fill=0.0)


@bug("top_p_filter", "turn them into probabilities with a softmax")
def top_p_on_logits():
    """cumulative sum of the logits, no softmax"""
    return lambda logits, p: _nucleus(logits, p, softmax=False)


@bug("top_p_filter", "filters along axis 0")
def top_p_wrong_axis():
    """softmax, sort and sum along axis 0"""
    return lambda logits, p: _nucleus(logits, p, axis=0)


@bug("top_p_filter", "rounding makes the running total")
def top_p_one_not_special():
    """p = 1 goes through the float32 running total (rounding drops tiny tokens)"""
    return lambda logits, p: _nucleus(logits, p)


@bug("top_p_filter", "keep the logits' dtype")
def top_p_float32():
    """returns float32 for any input"""
    return lambda logits, p: tf.cast(
        logits if p == 1 else _nucleus(logits, p), "float32"
    )


@bug("top_p_filter", "a temperature belongs to the sampler")
def top_p_temperature_multiplied():
    """the kept logits multiplied by a temperature of 0.7"""

    def top_p_filter(logits, p, temperature=0.7):
        return logits if p == 1 else _nucleus(logits, p) * temperature

    return top_p_filter


@bug("top_p_filter", "any number of leading axes")
def top_p_rank_two_only():
    """assumes (batch, vocab): sorts with argsort and gathers with batch_dims=1"""

    def top_p_filter(logits, p):
        if p == 1:
            return logits
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        order = tf.argsort(probabilities, direction="DESCENDING")
        ranked = tf.gather(probabilities, order, batch_dims=1)
        needed = tf.cumsum(ranked, axis=1, exclusive=True) < p
        inverse = tf.argsort(order)
        kept = tf.gather(needed, inverse, batch_dims=1)
        return tf.where(kept, logits, tf.cast(NEG_INF, logits.dtype))

    return top_p_filter


@alternative("top_p_filter")
def top_p_argsort_scatter():
    """argsort, exclusive cumsum, the kept flags put back with the inverse order"""

    def top_p_filter(logits, p):
        if p >= 1:
            return logits
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        order = tf.argsort(probabilities, axis=-1, direction="DESCENDING")
        ranked = tf.gather(probabilities, order, batch_dims=order.shape.rank - 1)
        needed = tf.cumsum(ranked, axis=-1, exclusive=True) < p
        inverse = tf.argsort(order, axis=-1)
        kept = tf.gather(needed, inverse, batch_dims=order.shape.rank - 1)
        return tf.where(kept, logits, tf.cast(-np.inf, logits.dtype))

    return top_p_filter


@alternative("top_p_filter")
def top_p_log_space_threshold():
    """the smallest kept probability as a logit threshold (log-softmax)"""

    def top_p_filter(logits, p):
        if p == 1:
            return logits
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        ranked = tf.sort(log_probs, direction="DESCENDING")
        before = tf.cumsum(tf.exp(ranked), axis=-1) - tf.exp(ranked)
        threshold = tf.reduce_min(
            tf.where(before < p, ranked, ranked[..., :1]), axis=-1, keepdims=True
        )
        removed = log_probs < threshold
        return tf.where(removed, tf.constant(-np.inf, logits.dtype), logits)

    return top_p_filter
