"""Checks of `masked_loss` and `masked_accuracy` (lesson 8)."""

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    close,
    exercise,
    expect_dtype,
    to_numpy,
)


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _cross_entropy(labels, logits, smoothing=0.0):
    """Per-token loss with targets (1 - ε) one_hot + ε / vocab_size."""
    log_probs = _log_softmax(logits)
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    uniform = -log_probs.mean(-1)
    return (1 - smoothing) * nll + smoothing * uniform


def _cases():
    rng = np.random.default_rng(5)
    labels = rng.integers(1, 11, size=(3, 6)).astype("int32")
    labels[0, 4:] = 0
    labels[1, 1:] = 0
    logits = (2 * rng.normal(size=(3, 6, 11))).astype("float32")
    one = rng.integers(1, 11, size=(1, 5)).astype("int32")
    one_logits = rng.normal(size=(1, 5, 11)).astype("float32")
    pad4 = labels.copy()
    pad4[pad4 == 4] = 7
    pad4[0, 4:] = 4
    pad4[1, 1:] = 4
    pad4[2, 0] = 0  # 0 is a real token when pad_id=4
    return [
        ("labels (3, 6) with padding", labels, logits, {}),
        ("one sentence (1, 5) without padding", one, one_logits, {}),
        ("label_smoothing=0.1", labels, logits, {"label_smoothing": 0.1}),
        ("pad_id=4", pad4, logits, {"pad_id": 4}),
    ]


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


@exercise("masked_loss", lesson=8, points=2, kind="function")
def check_masked_loss(ctx, student, reference):
    for description, labels, logits, kwargs in _cases():
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
    _check_graph(ctx, student, reference, "masked_loss")


def _check_graph(ctx, student, reference, name):
    specs = [
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None, 11), tf.float32),
    ]
    graph = tf.function(student, input_signature=specs)
    _, labels, logits, _ = _cases()[0]
    what = f"{name} inside tf.function with unknown batch and length"
    actual = to_numpy(ctx.call(graph, labels, logits, what=what), what)
    if not close(
        actual, reference(tf.constant(labels), tf.constant(logits)), atol=1e-4
    ):
        raise Failure(f"{what}: differs from eager mode")
    ctx.ok("works inside tf.function with unknown batch and length")


def _accuracy_variants(labels, logits, kwargs):
    pad_id = kwargs.get("pad_id", 0)
    mask = labels != pad_id
    correct = logits.argmax(-1) == labels
    variants = [
        (correct.mean(), "padding positions are counted — use only the non-pad tokens"),
        (
            (correct & mask).sum(),
            "returns the number of correct tokens; divide by the number of non-pad "
            "tokens",
        ),
        (
            np.mean((correct & mask).sum(-1) / np.maximum(mask.sum(-1), 1)),
            "averages each sentence first; divide correct non-pad tokens by all "
            "non-pad tokens",
        ),
    ]
    if logits.shape[1] == logits.shape[2]:
        wrong_axis = logits.argmax(1) == labels
        variants.append(
            (
                (wrong_axis & mask).sum() / mask.sum(),
                "argmax over the wrong axis: take it over the vocabulary (last) axis",
            )
        )
    if pad_id:
        zero = labels != 0
        variants.append(
            (
                (correct & zero).sum() / zero.sum(),
                "is `pad_id` used (not a hard-coded 0)?",
            )
        )
    return variants


@exercise("masked_accuracy", lesson=8, points=1, kind="function")
def check_masked_accuracy(ctx, student, reference):
    rng = np.random.default_rng(9)
    square_labels = rng.integers(1, 7, size=(2, 7)).astype("int32")
    square_labels[0, 5:] = 0
    square_logits = rng.normal(size=(2, 7, 7)).astype("float32")
    cases = _cases()
    cases = [("length 7 and vocabulary 7", square_labels, square_logits, {})] + [
        cases[0],
        cases[1],
        cases[3],
    ]
    # Make some predictions right so the accuracy is not near 0.
    for _, labels, logits, _ in cases:
        hits = np.random.default_rng(1).random(labels.shape) < 0.5
        np.put_along_axis(
            logits, labels[..., None], np.where(hits, 9.0, -9.0)[..., None], -1
        )
    for description, labels, logits, kwargs in cases:
        what = f"masked_accuracy with {description}"
        result = ctx.call(
            student, tf.constant(labels), tf.constant(logits), what=what, **kwargs
        )
        actual = to_numpy(result, what)
        if actual.shape != ():
            raise Failure(
                f"{what} returned shape {actual.shape}; expected a scalar fraction"
            )
        expected = float(reference(tf.constant(labels), tf.constant(logits), **kwargs))
        if not close(actual.astype("float64"), expected, atol=1e-5):
            hint = "the fraction of non-pad tokens whose argmax equals the label"
            for value, variant_hint in _accuracy_variants(labels, logits, kwargs):
                if abs(float(actual) - value) < 1e-5:
                    hint = variant_hint
                    break
            raise Failure(
                f"{what}: got {float(actual):.4f}, expected {expected:.4f} — {hint}"
            )
        expect_dtype(
            result, "float32", what, "return a float32 fraction (cast before dividing)"
        )
    ctx.ok("matches on 4 cases (padding, square logits, no padding, pad_id)")
    _check_graph(ctx, student, reference, "masked_accuracy")
