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
from tf_transformer.inference.sampling import (
    check_sampling_arguments,
    sample_next_token,
)


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

    At each step `sample_next_token(logits, temperature, top_k, top_p)`
    chooses the next token, `[PAD]` excluded (a generated `[PAD]` would read
    as padding); with `temperature=0` it is the most probable one (greedy;
    `top_k`, `top_p` and `seed` are then unused). A row stops after a token
    of `stop_token_ids`.

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
    seed = check_sampling_arguments(tf.zeros((1, 1)), temperature, top_k, top_p, seed)
    stop_token_ids = _check_stop_tokens(stop_token_ids)
    width = prompt_ids.shape[1] or tf.shape(prompt_ids)[1]
    length = width + max_new_tokens
    if isinstance(length, int) and length > getattr(model, "max_length", length):
        raise ValueError(
            f"The prompt ({width} tokens) plus `max_new_tokens` exceeds the model's "
            f"max_length={model.max_length}. Received: max_new_tokens="
            f"{max_new_tokens}"
        )
    if temperature and seed is None:
        # Fresh randomness, drawn when the function runs (also in a graph).
        seed = tf.random.uniform((2,), maxval=tf.int32.max, dtype=tf.int32)
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
        vocabulary = tf.range(tf.shape(logits)[-1])
        logits = tf.where(  # never [PAD]
            vocabulary == PAD_ID, -float("inf"), tf.cast(logits, tf.float32)
        )
        step_seed = (
            tf.random.experimental.stateless_fold_in(seed, index)
            if temperature
            else None
        )
        next_ids = sample_next_token(logits, temperature, top_k, top_p, step_seed)
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
