"""Text generation with a decoder-only language model (`CausalLM`).

`generate` continues a batch of prompts one token at a time. It reuses the
key/value cache of `decoding` (the same `DecoderCache` and one-token step
that decode the encoder-decoder `Transformer`), so each step projects only
the newest token; `use_cache=False` re-runs the whole model on the prefix
instead (the reference path). Shapes are fixed (a `tf.while_loop` over a
preallocated buffer), so `generate` runs eagerly, in `tf.function` and under
`jit_compile=True`.

Prompts of different lengths are padded on the right with `[PAD]` (0). All
rows advance together: at position t a row still inside its prompt copies
its next prompt token, the others choose one. Every row therefore keeps its
positions 0, 1, 2, … and never attends to padding.
"""

import numbers

import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.inference.decoding import (
    END_ID,
    PAD_ID,
    DecoderCache,
    decoder_step,
    write_column,
)
from tf_transformer.inference.sampling import top_k_filter, top_p_filter


def next_token_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """The logits `generate` samples from: divided by `temperature`, then
    filtered by `top_k_filter` and `top_p_filter` (when given). `[PAD]` is
    never chosen (a generated `[PAD]` would read as padding).

    Args:
        logits: float (..., vocabulary_size).
        temperature: number > 0; below 1 sharpens, above 1 flattens.
        top_k: int >= 1 or None (no top-k filter).
        top_p: number in (0, 1] or None (no top-p filter).

    Returns:
        float32 logits of the same shape.
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        raise ValueError(
            "`temperature` must be > 0 here; temperature=0 means greedy "
            "(argmax), which has no distribution to sample from."
        )
    logits = tf.cast(logits, tf.float32) / temperature
    vocabulary = tf.range(tf.shape(logits)[-1])
    logits = tf.where(vocabulary == PAD_ID, -float("inf"), logits)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits


def generate(
    model,
    prompt_ids,
    max_new_tokens,
    *,
    temperature=1.0,
    top_k=None,
    top_p=None,
    seed=None,
    stop_token_ids=(END_ID,),
    use_cache=True,
):
    """Continue each prompt with up to `max_new_tokens` tokens.

    At each step the next token is drawn from
    softmax(next_token_logits(logits, temperature, top_k, top_p)), or, with
    `temperature=0`, is the most probable one (greedy; `top_k`, `top_p` and
    `seed` are then unused). A row stops after a token of `stop_token_ids`.

    Args:
        model: a `tf_transformer.CausalLM` or `ModernCausalLM` (with
            `use_cache=False`: any model
            mapping ids (batch, length) to logits (batch, length, vocab)).
        prompt_ids: int (batch, prompt_len), each row at least one real token,
            right-padded with 0 (`[PAD]`); rows may differ in length.
        max_new_tokens: int >= 1, the tokens to generate per row.
        temperature: number >= 0. Defaults to 1 (the model's distribution).
        top_k: keep the `top_k` most likely tokens, or None. Defaults to None.
        top_p: keep the most likely tokens whose probability sums to `top_p`,
            or None. Defaults to None.
        seed: None (fresh randomness every call), an int, or a shape-(2,)
            integer tensor: the same seed and input give the same output.
        stop_token_ids: tokens that end a row (kept in the output).
            Defaults to `(3,)`, `[END]`.
        use_cache: reuse keys/values (True) or re-run the whole model on the
            prefix at every step (False, the reference path).

    Returns:
        int32 (batch, max_new_tokens): the new tokens of each row, without
        the prompt, 0 after a stop token.

    Example:

    >>> prompts = tf.constant([[7, 8, 9], [7, 5, 0]])  # right-padded
    >>> generate(model, prompts, 16, temperature=0)  # greedy
    >>> fast = tf.function(generate, jit_compile=True)
    >>> fast(model, prompts, 16, top_p=0.9, seed=1)
    """
    prompt_ids, prompt_lengths = _check_prompt(model, prompt_ids, use_cache)
    max_new_tokens = validation.check_int("max_new_tokens", max_new_tokens)
    _check_sampling(temperature, top_k, top_p)
    stop_token_ids = _check_stop_tokens(stop_token_ids)
    width = prompt_ids.shape[1] or tf.shape(prompt_ids)[1]
    length = width + max_new_tokens
    if isinstance(length, int) and length > getattr(model, "max_length", length):
        raise ValueError(
            f"The prompt ({width} tokens) plus `max_new_tokens` exceeds the model's "
            f"max_length={model.max_length}. Received: max_new_tokens="
            f"{max_new_tokens}"
        )
    seed = _check_seed(seed) if temperature else None
    batch = tf.shape(prompt_ids)[0]
    tokens = tf.pad(prompt_ids, [[0, 0], [0, max_new_tokens]])  # (B, L)
    last_position = prompt_lengths - 1 + max_new_tokens  # (B,)
    done = tf.zeros((batch,), tf.bool)
    if use_cache:
        cache = DecoderCache.create_self_attention(model, batch, length)
        start = tf.constant(0)  # every position goes through the cache
    else:
        cache = {}
        start = tf.reduce_min(prompt_lengths) - 1

    def step(index, tokens, done, cache):
        if use_cache:
            logits, cache = decoder_step(model, tokens[:, index], index, cache)
        else:
            logits = tf.gather(model(tokens, training=False), index, axis=1)
        if temperature == 0:
            next_ids = _greedy(logits)
        else:
            logits = next_token_logits(logits, temperature, top_k, top_p)
            step_seed = tf.random.experimental.stateless_fold_in(seed, index)
            next_ids = tf.random.stateless_categorical(
                logits, 1, step_seed, dtype=tf.int32
            )[:, 0]
        position = index + 1
        in_prompt = position < prompt_lengths  # (B,) copy the prompt's token
        next_ids = tf.where(in_prompt, tf.gather(tokens, position, axis=1), next_ids)
        next_ids = tf.where(done, PAD_ID, next_ids)  # finished rows emit padding
        tokens = write_column(tokens, position, next_ids)
        stopped = tf.reduce_any(next_ids[:, tf.newaxis] == stop_token_ids, axis=-1)
        done = done | (stopped & ~in_prompt) | (position >= last_position)
        return index + 1, tokens, done, cache

    _, tokens, _, _ = tf.while_loop(
        lambda index, tokens, done, cache: tf.logical_and(
            index < length - 1, tf.logical_not(tf.reduce_all(done))
        ),
        step,
        (start, tokens, done, cache),
        maximum_iterations=length - 1,
    )
    # Row r's new tokens sit at positions prompt_len[r] ... + max_new_tokens.
    positions = prompt_lengths[:, tf.newaxis] + tf.range(max_new_tokens)
    return tf.gather(tokens, positions, axis=1, batch_dims=1)


def _greedy(logits):
    vocabulary = tf.range(tf.shape(logits)[-1])
    logits = tf.where(vocabulary == PAD_ID, -float("inf"), tf.cast(logits, tf.float32))
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def _check_prompt(model, prompt_ids, use_cache):
    validation.check_integer_ids("prompt_ids", prompt_ids)
    validation.check_rank("prompt_ids", prompt_ids, {2})
    is_language_model = all(
        hasattr(model, name) for name in ("embedding", "decoder", "output_projection")
    )
    if not callable(model) or (use_cache and not is_language_model):
        raise TypeError(
            "`model` must be a tf_transformer.CausalLM or ModernCausalLM (with "
            "use_cache=False: any "
            "model mapping token ids to logits). "
            f"Received: model of type {type(model).__name__}"
        )
    if hasattr(model, "_build_for_any_length"):
        with tf.init_scope():  # variables are made eagerly, even when tracing
            model._build_for_any_length()
    prompt_ids = tf.cast(prompt_ids, tf.int32)
    is_real = tf.not_equal(prompt_ids, PAD_ID)
    if tf.executing_eagerly():
        real = is_real.numpy()
        lengths = real.sum(axis=1)
        if real.shape[1] == 0 or (lengths == 0).any():
            raise ValueError(
                "Every prompt needs at least one token. Received: prompt_ids with "
                f"shape {tuple(real.shape)} and rows of lengths {lengths.tolist()}"
            )
        if (np.diff(real.astype(int), axis=1) > 0).any():
            raise ValueError(
                "`prompt_ids` must be padded on the right (tokens first, then 0s). "
                f"Received: prompt_ids={prompt_ids.numpy().tolist()[:4]}"
            )
    return prompt_ids, tf.reduce_sum(tf.cast(is_real, tf.int32), axis=1)


def _check_sampling(temperature, top_k, top_p):
    def is_number(value, kind=numbers.Real):
        return isinstance(value, kind) and not isinstance(value, bool)

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


def _check_stop_tokens(stop_token_ids):
    ids = tuple(stop_token_ids) if isinstance(stop_token_ids, (list, tuple)) else None
    if ids is None or not all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0
        for i in ids
    ):
        raise ValueError(
            "`stop_token_ids` must be a tuple of token ids >= 0. "
            f"Received: stop_token_ids={stop_token_ids!r}"
        )
    # (1, n); an empty tuple never stops: -1 is no token.
    return tf.constant([list(ids) or [-1]], tf.int32)


def _check_seed(seed):
    if seed is None:
        # Fresh randomness, drawn when the function runs (also in a graph).
        return tf.random.uniform((2,), maxval=tf.int32.max, dtype=tf.int32)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int32)
    if tf.is_tensor(seed) and seed.dtype.is_integer and seed.shape == (2,):
        return tf.cast(seed, tf.int32)
    raise ValueError(
        "`seed` must be None, an int, or a shape-(2,) integer tensor. "
        f"Received: seed={seed!r}"
    )
