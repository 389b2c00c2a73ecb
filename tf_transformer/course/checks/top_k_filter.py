"""Check of `top_k_filter` (lesson 11); helpers shared with top-p are in `_sampling`.

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


@exercise(
    "top_k_filter",
    lesson=11,
    points=1,
    kind="function",
    reference="top_k_filter",
)
def check_top_k_filter(ctx, student, reference):
    cases = [
        (np.array([[1.0, 3.0, -2.0, 2.0, 0.5, -1.0]]), 3),
        (np.array([[0.3, -1.2, 2.2, 1.1], [4.0, 0.0, -3.0, 2.5], [-1, 1, 0.5, 3]]), 2),
        (np.random.default_rng(5).normal(size=(4, 9)).round(3), 4),
        (np.array([[0.2, -0.5, 1.4, 0.9, 2.0, -2.0]]), 1),
    ]
    for logits, k in cases:
        compare(
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
    compare(ctx, student, reference, ties, 2, "top_k_filter", _top_k_mistakes(ties, 2))
    ctx.ok("ties with the k-th largest value are kept")

    logits = np.array([[0.5, -1.0, 2.0, 0.0, 1.5], [3.0, 2.0, 1.0, 0.0, -1.0]])
    for k in (5, 8):
        try:
            compare(ctx, student, reference, logits, k, "top_k_filter", [])
        except StudentError as error:
            raise Failure(
                f"{error} — k at least the vocabulary size must change nothing "
                "(e.g. clip it: tf.minimum(k, tf.shape(logits)[-1]))"
            ) from None
    ctx.ok("k at least the vocabulary size changes nothing")

    rows = np.random.default_rng(11).permutation(np.linspace(-3, 3, 42))
    check_leading_axes(
        ctx,
        student,
        reference,
        3,
        "top_k_filter",
        lambda logits: _top_k_mistakes(logits, 3),
        rows.reshape((6, 7)).round(2),
    )
    check_dtypes(ctx, student, 2, "top_k_filter")
    ctx.ok("any number of leading axes; float16 and float64 keep their dtype")
    check_graph(ctx, student, reference, cases[2][0], 3, "top_k_filter")
    ctx.ok("works inside tf.function with unknown batch and vocabulary size")


# ------------------------------------------------- catalogue of typical bugs


def _below(logits, threshold, fill=NEG_INF):
    """Entries below `threshold` replaced by `fill` (dtype kept)."""
    return tf.where(logits < threshold, tf.cast(fill, logits.dtype), logits)


@bug("top_k_filter", "keeps k + 1 tokens")
def top_k_one_too_many():
    """k + 1 kept: the threshold is the (k + 1)-th largest value"""

    def top_k_filter(logits, k):
        k = tf.minimum(k + 1, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:])

    return top_k_filter


@bug("top_k_filter", "keeps the k smallest")
def top_k_smallest():
    """the k smallest kept (top_k of the negated logits)"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        kth_smallest = -tf.math.top_k(-logits, k).values[..., -1:]
        return tf.where(logits > kth_smallest, tf.cast(NEG_INF, logits.dtype), logits)

    return top_k_filter


@bug("top_k_filter", "removed entries are 0")
def top_k_zero_fill():
    """0 instead of −inf for the removed tokens"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:], fill=0.0)

    return top_k_filter


@bug("top_k_filter", "filters along axis 0")
def top_k_wrong_axis():
    """filters along the batch axis (top_k of the transposed logits)"""

    def top_k_filter(logits, k):
        columns = tf.transpose(logits)  # (vocab, batch): the wrong way round
        k = tf.minimum(k, tf.shape(columns)[-1])
        kth = tf.math.top_k(columns, k).values[..., -1:]
        return tf.transpose(_below(columns, kth))

    return top_k_filter


@bug("top_k_filter", "ties with the k-th largest value are kept")
def top_k_ties_dropped():
    """exactly k kept: top_k's indices scattered into a mask, ties dropped"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        indices = tf.math.top_k(logits, k).indices
        kept = tf.reduce_any(
            tf.one_hot(indices, tf.shape(logits)[-1], on_value=True, off_value=False),
            axis=-2,
        )
        return tf.where(kept, logits, tf.cast(NEG_INF, logits.dtype))

    return top_k_filter


@bug("top_k_filter", "k at least the vocabulary size must change nothing")
def top_k_no_clip():
    """k larger than the vocabulary is passed to tf.math.top_k (an error)"""
    return lambda logits, k: _below(logits, tf.math.top_k(logits, k).values[..., -1:])


@bug("top_k_filter", "any number of leading axes")
def top_k_rank_two_only():
    """assumes (batch, vocab): the threshold is read with [:, k - 1]"""

    def top_k_filter(logits, k):
        k = min(k, logits.shape[-1])
        kth = tf.sort(logits, direction="DESCENDING")[:, k - 1]
        return _below(logits, kth[:, tf.newaxis])

    return top_k_filter


@bug("top_k_filter", "keep the logits' dtype")
def top_k_float32():
    """casts to float32 and returns float32"""

    def top_k_filter(logits, k):
        logits = tf.cast(logits, tf.float32)
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:])

    return top_k_filter


@bug("top_k_filter", "a temperature belongs to the sampler")
def top_k_temperature_multiplied():
    """the kept logits multiplied by a temperature of 0.7"""

    def top_k_filter(logits, k, temperature=0.7):
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:]) * temperature

    return top_k_filter


@bug("top_k_filter", "so it runs inside tf.function")
def top_k_numpy():
    """NumPy on .numpy(): right eagerly, fails inside tf.function"""

    def top_k_filter(logits, k):
        values = logits.numpy()
        kth = np.sort(values, axis=-1)[..., ::-1][..., min(k, values.shape[-1]) - 1]
        kept = np.where(values < kth[..., None], -np.inf, values)
        return tf.constant(kept, logits.dtype)

    return top_k_filter


@alternative("top_k_filter")
def top_k_sorted_threshold():
    """threshold from tf.sort and tf.gather, k clipped in Python when known"""

    def top_k_filter(logits, k):
        vocab = tf.shape(logits)[-1]
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
        kth = tf.gather(ranked, [tf.minimum(k, vocab) - 1], axis=-1)
        return tf.where(logits >= kth, logits, -np.inf * tf.ones_like(logits))

    return top_k_filter


@alternative("top_k_filter")
def top_k_flattened_rows():
    """flattened to (rows, vocab), filtered, reshaped back"""

    def top_k_filter(logits, k):
        shape = tf.shape(logits)
        rows = tf.reshape(logits, (-1, shape[-1]))
        values, _ = tf.math.top_k(rows, tf.minimum(k, shape[-1]))
        smallest_kept = tf.reduce_min(values, axis=1, keepdims=True)
        masked = tf.where(
            rows < smallest_kept, float("-inf"), tf.cast(rows, tf.float32)
        )
        return tf.cast(tf.reshape(masked, shape), logits.dtype)

    return top_k_filter
