"""Sampling the next token: temperature, top-k and top-p (nucleus) filtering.

A language model gives logits over the vocabulary for the next token.
Greedy decoding takes the largest; sampling draws from
softmax(logits / temperature) after removing the unlikely tail:

- `top_k_filter` keeps the k largest logits (Fan et al., 2018);
- `top_p_filter` keeps the smallest set of most probable tokens whose total
  probability reaches p (Holtzman et al., 2019, arXiv:1904.09751).

Removed tokens get the logit −inf, whose softmax probability is exactly 0.
Both filters work on the last axis of a tensor with any number of leading
axes, keep its dtype, and run eagerly, in `tf.function` and under XLA.

`sample_next_token` joins them into the step every sampler takes: temper,
filter, draw (or the argmax at temperature 0). `generate` draws every token
with it.
"""

import numbers

import tensorflow as tf

from tf_transformer import validation


def top_k_filter(logits, k):
    """Keep the `k` largest logits along the last axis; the others become −inf.

    Entries equal to the k-th largest value are kept too (ties), so a row may
    keep more than `k` entries. `k` at least the vocabulary size changes
    nothing.

    Args:
        logits: float tensor (..., vocabulary_size).
        k: int >= 1, how many of the most likely tokens to keep.

    Returns:
        Same shape and dtype as `logits`.

    Example:

    >>> top_k_filter(tf.constant([1.0, 3.0, 2.0, 0.0]), k=2)
    <tf.Tensor: shape=(4,), dtype=float32, numpy=array([-inf,  3.,  2., -inf], ...)>
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"`k` must be an integer >= 1. Received: k={k!r}")
    logits = tf.convert_to_tensor(logits)
    if not logits.dtype.is_floating or logits.shape.rank == 0:
        raise ValueError(
            "`logits` must be a float tensor with a vocabulary axis. Received: "
            f"logits with dtype {logits.dtype.name} and shape {logits.shape}"
        )
    vocabulary_size = logits.shape[-1]
    if vocabulary_size is not None and k >= vocabulary_size:
        return logits
    if vocabulary_size is None:  # known only when the graph runs
        k = tf.minimum(k, tf.shape(logits)[-1])
    kth_largest = tf.math.top_k(logits, k=k).values[..., -1:]  # (..., 1)
    return tf.where(logits < kth_largest, tf.cast(-float("inf"), logits.dtype), logits)


def top_p_filter(logits, p):
    """Keep the most probable tokens whose total probability reaches `p`.

    Along the last axis, tokens are ranked by probability (the softmax of the
    logits); the smallest prefix of that ranking whose probabilities sum to
    at least `p` is kept, the other logits become −inf. The most probable
    token is always kept; `p = 1` changes nothing.

    Args:
        logits: float tensor (..., vocabulary_size).
        p: number in (0, 1], the probability mass to keep.

    Returns:
        Same shape and dtype as `logits`.

    Example:

    >>> top_p_filter(tf.math.log([0.5, 0.3, 0.15, 0.05]), p=0.75)
    <tf.Tensor: ... numpy=array([-0.69, -1.2, -inf, -inf], ...)>
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
        raise ValueError(f"`p` must be a number in (0, 1]. Received: p={p!r}")
    logits = tf.convert_to_tensor(logits)
    if not logits.dtype.is_floating or logits.shape.rank == 0:
        raise ValueError(
            "`logits` must be a float tensor with a vocabulary axis. Received: "
            f"logits with dtype {logits.dtype.name} and shape {logits.shape}"
        )
    if p == 1:
        return logits
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    ranked = tf.sort(probabilities, axis=-1, direction="DESCENDING")
    # Mass of the tokens ranked above each one: a token is needed while the
    # tokens before it have not reached p yet (so the first always is).
    mass_before = tf.cumsum(ranked, axis=-1, exclusive=True)
    smallest_kept = tf.reduce_min(
        tf.where(mass_before < p, ranked, 2.0), axis=-1, keepdims=True
    )  # (..., 1)
    return tf.where(
        probabilities < smallest_kept, tf.cast(-float("inf"), logits.dtype), logits
    )


def check_sampling_arguments(logits, temperature, top_k, top_p, seed):
    """Validate `sample_next_token`'s arguments; return the seed as a
    shape-(2,) int32 tensor, or None (fresh randomness wanted).

    Raises:
        ValueError: naming the argument and the value received.
    """

    def is_number(value, kind=numbers.Real):
        return isinstance(value, kind) and not isinstance(value, bool)

    logits = tf.convert_to_tensor(logits)
    if not logits.dtype.is_floating or logits.shape.rank != 2:
        raise ValueError(
            "`logits` must be a float tensor (batch, vocabulary_size). Received: "
            f"logits with dtype {logits.dtype.name} and shape {logits.shape}"
        )
    if not (is_number(temperature) and temperature >= 0):
        raise ValueError(
            "`temperature` must be a number >= 0. "
            f"Received: temperature={temperature!r}"
        )
    if top_k is not None and not (is_number(top_k, numbers.Integral) and top_k >= 1):
        raise ValueError(
            f"`top_k` must be None or an int >= 1. Received: top_k={top_k!r}"
        )
    if top_p is not None and not (is_number(top_p) and 0 < top_p <= 1):
        raise ValueError(
            f"`top_p` must be None or a number in (0, 1]. Received: top_p={top_p!r}"
        )
    return validation.check_seed("seed", seed, "int32")


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, seed=None):
    """Choose the next token of every row from the model's logits.

    `temperature=0` is greedy: the most probable token, no randomness.
    Otherwise the logits are divided by `temperature`, then filtered by
    `top_k_filter` (if `top_k` is given), then by `top_p_filter` (if `top_p`
    is given), and one token is drawn from the softmax of what remains. A
    filtered token is never drawn.

    Args:
        logits: float tensor (batch, vocabulary_size).
        temperature: number >= 0; below 1 sharpens the distribution, above 1
            flattens it, 0 takes the argmax. Defaults to 1.
        top_k: int >= 1, or None for no top-k filter. Defaults to None.
        top_p: number in (0, 1], or None for no top-p filter. Defaults to None.
        seed: None for fresh randomness at every call; an int or a shape-(2,)
            integer tensor for a reproducible draw (same seed, same logits,
            same tokens: stateless random ops). Defaults to None.

    Returns:
        int32 tensor (batch,): one token id per row. Works eagerly, inside
        `tf.function` and under XLA (`jit_compile=True`).

    Example:

    >>> logits = tf.math.log([[0.5, 0.3, 0.15, 0.05]])
    >>> sample_next_token(logits, temperature=0)  # greedy
    <tf.Tensor: shape=(1,), dtype=int32, numpy=array([0], dtype=int32)>
    >>> sample_next_token(logits, temperature=0.8, top_p=0.75, seed=1)  # 0 or 1
    """
    seed = check_sampling_arguments(logits, temperature, top_k, top_p, seed)
    logits = tf.cast(logits, tf.float32)  # (batch, vocabulary_size)
    if temperature == 0:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    # Temper first: the filters then see the distribution that is sampled.
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if seed is None:  # fresh randomness, drawn when the function runs
        seed = tf.random.uniform((2,), maxval=tf.int32.max, dtype=tf.int32)
    drawn = tf.random.stateless_categorical(logits, 1, seed, dtype=tf.int32)
    return drawn[:, 0]  # (batch,)
