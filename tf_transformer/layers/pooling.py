"""Pooling: one vector for a whole sequence (sequence → vector)."""

import tensorflow as tf

from tf_transformer import validation


def check_pooling_arguments(sequence, mask):
    """Validates `sequence` (float, rank 3) and `mask` (bool/int, rank 2)."""
    validation.check_rank("sequence", sequence, {3})
    validation.check_rank("mask", mask, {2})
    validation.check_mask_dtype("mask", mask)
    dtype = getattr(sequence, "dtype", None)
    if dtype is not None and not tf.as_dtype(dtype).is_floating:
        raise TypeError(
            "`sequence` must be a float tensor. "
            f"Received: sequence with dtype {tf.as_dtype(dtype).name}"
        )


def masked_mean(sequence, mask):
    """Mean of the vectors at real positions, one vector per sequence.

    Padding must not count: a row of 3 real tokens padded to 8 has the mean
    of its 3 vectors, the same as without the padding. A row without any real
    position gives zeros (never NaN).

    Args:
        sequence: float tensor (batch, length, depth).
        mask: bool or integer tensor (batch, length), True/1 at real tokens.

    Returns:
        (batch, depth), with the dtype of `sequence`.

    Example:

    >>> x = tf.constant([[[1.0], [3.0], [100.0]]])
    >>> masked_mean(x, tf.constant([[True, True, False]])).numpy()
    array([[2.]], dtype=float32)
    """
    check_pooling_arguments(sequence, mask)
    sequence = tf.convert_to_tensor(sequence)
    weights = tf.cast(mask, sequence.dtype)[:, :, tf.newaxis]  # (batch, length, 1)
    total = tf.reduce_sum(sequence * weights, axis=1)  # (batch, depth)
    count = tf.reduce_sum(weights, axis=1)  # (batch, 1)
    return tf.math.divide_no_nan(total, count)
