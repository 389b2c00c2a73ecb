"""Loss and accuracy over real tokens only: `[PAD]` positions do not count."""

import keras
import tensorflow as tf

from tf_transformer import validation


@keras.saving.register_keras_serializable(package="tf_transformer")
def masked_loss(y_true, y_pred, label_smoothing=0.0, pad_id=0):
    """Mean cross-entropy over the non-padding tokens of a batch.

    With label smoothing ε (0.1 in the paper, section 5.4) the target
    distribution puts 1 - ε on the true token and spreads ε uniformly over
    the vocabulary: loss = (1 - ε) · NLL + ε · mean over tokens of -log p.
    Padding positions get neither the loss nor the smoothing.

    Args:
        y_true: integer token ids (batch, target_len).
        y_pred: logits (batch, target_len, vocab_size).
        label_smoothing: ε in [0, 1). Defaults to 0.
        pad_id: the padding id to ignore. Defaults to 0.

    Returns:
        A float32 scalar: the summed loss divided by the number of real
        tokens (0 if there are none).

    Example:

    >>> model.compile(optimizer="adam", loss=masked_loss,
    ...               metrics=[masked_accuracy])
    """
    validation.check_rate("label_smoothing", label_smoothing)
    check_labels_and_logits(y_true, y_pred)
    logits = tf.cast(y_pred, tf.float32)
    labels = tf.cast(y_true, tf.int32)
    # -log p(y) = logsumexp(logits) - logit_y, without building one-hot rows.
    log_normalizer = tf.reduce_logsumexp(logits, axis=-1)
    true_logit = tf.gather(logits, labels, axis=-1, batch_dims=2)
    loss = log_normalizer - true_logit  # (batch, target_len)
    if label_smoothing:
        uniform = log_normalizer - tf.reduce_mean(logits, axis=-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
    mask = tf.cast(tf.not_equal(labels, pad_id), tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(loss * mask), tf.reduce_sum(mask))


@keras.saving.register_keras_serializable(package="tf_transformer")
def masked_accuracy(y_true, y_pred, pad_id=0):
    """Fraction of non-padding tokens whose highest logit is the true token.

    Args:
        y_true: integer token ids (batch, target_len).
        y_pred: logits or probabilities (batch, target_len, vocab_size).
        pad_id: the padding id to ignore. Defaults to 0.

    Returns:
        A float32 scalar in [0, 1].
    """
    check_labels_and_logits(y_true, y_pred)
    labels = tf.cast(y_true, tf.int32)
    predictions = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    mask = tf.not_equal(labels, pad_id)
    correct = tf.logical_and(tf.equal(predictions, labels), mask)
    return tf.math.divide_no_nan(
        tf.reduce_sum(tf.cast(correct, tf.float32)),
        tf.reduce_sum(tf.cast(mask, tf.float32)),
    )


@keras.saving.register_keras_serializable(package="tf_transformer")
def masked_sentence_accuracy(y_true, y_pred, pad_id=0):
    """Per sentence, 1.0 if every non-padding token's highest logit is right.

    Under teacher forcing (each position sees the true previous tokens).
    Its mean bounds greedy decoding's exact match from above: a greedy
    translation equal to its reference chose the true token at every step,
    given the true tokens before it.

    Args:
        y_true: integer token ids (batch, target_len).
        y_pred: logits or probabilities (batch, target_len, vocab_size).
        pad_id: the padding id to ignore. Defaults to 0.

    Returns:
        A float32 tensor (batch,) of 0.0 and 1.0; as a Keras metric, its mean
        over the sentences seen.
    """
    check_labels_and_logits(y_true, y_pred)
    labels = tf.cast(y_true, tf.int32)
    predictions = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    right = tf.logical_or(tf.equal(predictions, labels), tf.equal(labels, pad_id))
    return tf.cast(tf.reduce_all(right, axis=-1), tf.float32)


def check_labels_and_logits(y_true, y_pred):
    """Raise a `ValueError` naming the argument unless `y_true` is
    (batch, target_len) and `y_pred` (batch, target_len, vocab_size)."""
    # y_true may arrive as floats: Keras casts labels to the loss dtype.
    true_shape = validation.check_rank("y_true", y_true, {2})
    pred_shape = validation.check_rank("y_pred", y_pred, {3})
    if not all(
        a is None or b is None or a == b
        for a, b in zip(true_shape, pred_shape[:2], strict=True)
    ):
        raise ValueError(
            "`y_true` (batch, target_len) must match the first two axes of "
            "`y_pred` (batch, target_len, vocab_size). "
            f"Received: y_true with shape {true_shape}, y_pred with shape {pred_shape}"
        )


@keras.saving.register_keras_serializable(package="tf_transformer")
class MaskedLoss(keras.losses.Loss):
    """`masked_loss` as a Keras `Loss` object, so its options are saved.

    `model.compile(loss=MaskedLoss(label_smoothing=0.1))` stores the
    smoothing in the model's compile config; a `.keras` file reloads with it.
    Use it rather than the bare function under a `tf.distribute` strategy:
    Keras only divides per-example losses by the number of replicas.

    Args:
        label_smoothing: ε in [0, 1). Defaults to 0.
        pad_id: the padding id to ignore. Defaults to 0.
        name: Defaults to "masked_loss".
    """

    def __init__(self, label_smoothing=0.0, pad_id=0, name="masked_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = validation.check_rate("label_smoothing", label_smoothing)
        self.pad_id = pad_id

    def call(self, y_true, y_pred):
        loss = masked_loss(y_true, y_pred, self.label_smoothing, self.pad_id)
        # One value per sequence, all equal: Keras averages them back to the
        # scalar and, under a tf.distribute strategy, divides by the number of
        # replicas so that the summed replica gradients are a mean. (A bare
        # scalar loss skips that division.)
        return tf.broadcast_to(loss, tf.shape(y_pred)[:1])

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "pad_id": self.pad_id})
        return config
