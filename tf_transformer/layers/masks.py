"""Attention masks: which keys each query may look at.

Convention (the Keras one): masks are boolean and **True means "may attend"**.
Older TensorFlow tutorials use the opposite, 1 = blocked; `mask == 0` converts.

Shapes, with B = batch, T = query length, S = key length:

- `padding_mask(token_ids)` -> (B, 1, S): hides `[PAD]` keys from every query.
- `causal_mask(T)` -> (T, T): query t sees keys 0..t (the diagonal included).
- They broadcast against each other; `combine_masks` joins any number of them
  with logical AND (the decoder's self-attention uses
  `combine_masks(padding_mask(ids), causal_mask(T))` -> (B, T, T)).
"""

import tensorflow as tf

from tf_transformer import validation


def padding_mask(token_ids, pad_id=0):
    """Mask that hides padding tokens from attention.

    Args:
        token_ids: integer tensor of shape (batch, seq_len).
        pad_id: the id used for padding. Defaults to 0 (`[PAD]`).

    Returns:
        Boolean tensor of shape (batch, 1, seq_len): True where the token is
        real, False where it is padding. The middle axis broadcasts over the
        queries.

    Example:

    >>> padding_mask(tf.constant([[5, 7, 0]])).numpy()
    array([[[ True,  True, False]]])
    """
    validation.check_integer_ids("token_ids", token_ids)
    validation.check_rank("token_ids", token_ids, {2})
    token_ids = tf.convert_to_tensor(token_ids)
    # (batch, seq_len) -> (batch, 1, seq_len)
    return tf.not_equal(token_ids, pad_id)[:, tf.newaxis, :]


def causal_mask(length):
    """Look-ahead mask: position t may attend to positions 0..t only.

    Args:
        length: the sequence length T (a Python int or a scalar int tensor).

    Returns:
        Boolean tensor of shape (T, T), lower triangular with the diagonal
        included.

    Example:

    >>> causal_mask(3).numpy().astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    if not tf.is_tensor(length):
        validation.check_int("length", length)
    query_positions = tf.range(length)[:, tf.newaxis]  # (T, 1)
    key_positions = tf.range(length)[tf.newaxis, :]  # (1, T)
    return key_positions <= query_positions


def combine_masks(*masks):
    """Logical AND of the given masks, skipping `None`; `None` if all are.

    Masks broadcast, so a (B, 1, S) padding mask and a (T, S) causal mask give
    a (B, T, S) mask. Integer masks are read as 1 = may attend.
    """
    combined = None
    for index, mask in enumerate(masks):
        if mask is None:
            continue
        validation.check_mask_dtype(f"masks[{index}]", mask)
        mask = tf.cast(mask, tf.bool)
        combined = mask if combined is None else tf.logical_and(combined, mask)
    return combined


def key_padding_to_attention_mask(mask, name="padding_mask"):
    """Bring a key padding mask to the (B, 1, S) form attention broadcasts.

    Accepts the Keras form (B, S), as carried by `mask_zero` embeddings, or
    the (B, 1, S) form that `padding_mask` returns.
    """
    if mask is None:
        return None
    validation.check_mask_dtype(name, mask)
    validation.check_rank(name, mask, {2, 3})
    mask = tf.cast(mask, tf.bool)
    if mask.shape.rank == 2:
        mask = mask[:, tf.newaxis, :]
    return mask


def implicit_mask(x):
    """The Keras mask a tensor carries (set by e.g. `Embedding(mask_zero=True)`)."""
    return getattr(x, "_keras_mask", None)
