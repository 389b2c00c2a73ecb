"""Check of `masked_loss` (lesson 8)."""

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    exercise,
    expect_dtype,
    to_numpy,
)
from tf_transformer.course.checks._losses import check_graph, loss_cases, mean_over_mask


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _cross_entropy(labels, logits, smoothing=0.0):
    """Per-token loss with targets (1 - ε) one_hot + ε / vocab_size."""
    log_probs = _log_softmax(logits)
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    uniform = -log_probs.mean(-1)
    return (1 - smoothing) * nll + smoothing * uniform


def _loss_variants(labels, logits, kwargs):
    pad_id = kwargs.get("pad_id", 0)
    smoothing = kwargs.get("label_smoothing", 0.0)
    mask = (labels != pad_id).astype("float64")
    per_token = _cross_entropy(labels, logits, smoothing)
    variants = [
        (
            per_token.mean(),
            "the mean includes the padding positions — average over non-pad tokens "
            "only",
        ),
        (
            (per_token * mask).sum() / mask.size,
            "divided by all positions; divide the masked sum by the number of "
            "non-pad tokens",
        ),
        (
            np.mean((per_token * mask).sum(-1) / np.maximum(mask.sum(-1), 1)),
            "averages each sentence first; average over all non-pad tokens of the "
            "batch at once",
        ),
    ]
    if smoothing:
        plain = _cross_entropy(labels, logits)
        variants.append(
            (
                (plain * mask).sum() / mask.sum(),
                "label_smoothing=0.1 gives the unsmoothed loss — is "
                "`label_smoothing` used?",
            )
        )
    if pad_id:
        zero_mask = (labels != 0).astype("float64")
        variants.append(
            (
                (per_token * zero_mask).sum() / zero_mask.sum(),
                "with pad_id=4 the tokens equal to 4 are padding — is `pad_id` used "
                "(not 0)?",
            )
        )
    nll = np.asarray(keras.losses.sparse_categorical_crossentropy(labels, logits))
    variants.append(
        ((nll * mask).sum() / mask.sum(), "y_pred are logits: use from_logits=True")
    )
    return variants


@exercise(
    "masked_loss",
    lesson=8,
    points=2,
    kind="function",
    reference="masked_loss",
)
def check_masked_loss(ctx, student, reference):
    for description, labels, logits, kwargs in loss_cases():
        what = f"masked_loss with {description}"
        result = ctx.call(
            student, tf.constant(labels), tf.constant(logits), what=what, **kwargs
        )
        actual = to_numpy(result, what)
        if actual.shape != ():
            raise Failure(
                f"{what} returned shape {actual.shape}; expected a scalar — "
                "average the per-token losses over the non-pad tokens"
            )
        expected = float(reference(tf.constant(labels), tf.constant(logits), **kwargs))
        if not close(actual, expected, atol=1e-4):
            hint = "mean sparse cross-entropy (from logits) over the non-pad tokens"
            if kwargs.get("label_smoothing"):
                hint = (
                    "with label smoothing the target is (1 - ε)·one_hot + ε / "
                    "vocab_size"
                )
            for value, variant_hint in _loss_variants(labels, logits, kwargs):
                if abs(actual - value) < 1e-4:
                    hint = variant_hint
                    break
            raise Failure(
                f"{what}: got {float(actual):.4f}, expected {expected:.4f} — {hint}"
            )
        expect_dtype(result, "float32", what, "return a float32 scalar")
    ctx.ok("matches on 4 cases (padding, no padding, label smoothing, pad_id)")
    check_graph(ctx, student, reference, "masked_loss")


# ------------------------------------------------- catalogue of typical bugs


def _per_token(y_true, y_pred, smoothing=0.0, from_logits=True):
    vocab = tf.shape(y_pred)[-1]
    target = tf.one_hot(tf.cast(y_true, tf.int32), vocab)
    target = target * (1 - smoothing) + smoothing / tf.cast(vocab, tf.float32)
    return tf.keras.losses.categorical_crossentropy(
        target, y_pred, from_logits=from_logits
    )


@bug("masked_loss", "includes the padding")
def loss_counts_padding():
    """plain mean over every position"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: tf.reduce_mean(
        _per_token(y, p, label_smoothing)
    )


@bug("masked_loss", "divide the masked sum by the number of non-pad tokens")
def loss_divides_by_all():
    """masked sum divided by all positions"""

    def f(y, p, label_smoothing=0.0, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        return tf.reduce_sum(_per_token(y, p, label_smoothing) * mask) / tf.cast(
            tf.size(y), tf.float32
        )

    return f


@bug("masked_loss", "averages each sentence first")
def loss_per_sentence():
    """mean of per-sentence means"""

    def f(y, p, label_smoothing=0.0, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        per = tf.reduce_sum(_per_token(y, p, label_smoothing) * mask, -1)
        return tf.reduce_mean(per / tf.maximum(tf.reduce_sum(mask, -1), 1.0))

    return f


@bug("masked_loss", "is `label_smoothing` used")
def loss_ignores_smoothing():
    """label_smoothing ignored"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: mean_over_mask(
        _per_token(y, p), y != pad_id
    )


@bug("masked_loss", "is `pad_id` used")
def loss_hard_coded_pad():
    """pad_id ignored"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: mean_over_mask(
        _per_token(y, p, label_smoothing), y != 0
    )


@bug("masked_loss", "expected a scalar")
def loss_per_token():
    """returns the per-token losses"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: (
        _per_token(y, p, label_smoothing) * tf.cast(y != pad_id, tf.float32)
    )


@bug("masked_loss", "from_logits=True")
def loss_probabilities():
    """treats the logits as probabilities"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: mean_over_mask(
        tf.keras.losses.sparse_categorical_crossentropy(y, p), y != pad_id
    )


@alternative("masked_loss")
def loss_log_softmax():
    """explicit log-softmax and gather"""

    def f(y_true, y_pred, label_smoothing=0.0, pad_id=0):
        log_probs = tf.nn.log_softmax(y_pred)
        nll = -tf.gather(log_probs, tf.cast(y_true, tf.int32), batch_dims=2)
        loss = (1 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(
            log_probs, -1
        )
        return mean_over_mask(loss, y_true != pad_id)

    return f
