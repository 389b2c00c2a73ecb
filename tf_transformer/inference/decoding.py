"""Autoregressive decoding: greedy and beam search, with a key/value cache.

At inference the decoder produces one token per step. Re-running the whole
model on the growing prefix repeats, at every step, the work of all earlier
steps. The cache keeps it instead:

- the encoder runs once, and each decoder layer projects the encoder output
  to cross-attention keys and values once;
- each decoder layer's self-attention keeps the keys and values of the tokens
  already generated, in a buffer of fixed length `max_length`, and a step
  only projects the newest token.

Every loop has a fixed trip count bound and fixed tensor shapes
(`tf.while_loop` over preallocated buffers, no growing `TensorArray`), so the
functions run eagerly, inside `tf.function` and under `jit_compile=True`.
`use_cache=False` selects the readable reference path, which re-runs the full
model on the whole (padded) prefix at every step; tests check that both paths
give the same tokens.

The cache and its one-token step serve every model shape: the decoder of the
encoder-decoder `Transformer` here, the same decoder reading an image's
patches in the `ImageCaptioner` (whose "source" is a batch of images), and
the decoder-only `CausalLM`, which `generation.generate` samples from.

`start_ids` replaces the first decoder input `[START]` per row: the
captioner starts with a token naming the caption's language.

The building blocks are public, so a lesson (or your own decoding loop) can
use them: `check_source_ids`, `decode_length` and `start_column` (inputs),
`DecoderCache`, `generating_parts`, `decoder_step` and `cached_decoder_step`
(the cached path; the last is lesson 09's exercise), `full_model_step` (the
reference path),
`forbid_special_tokens` and `write_column` (one step's output).
"""

import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.attention import scaled_dot_product_attention

PAD_ID, START_ID, END_ID = 0, 2, 3
DEFAULT_MARGIN = 10


class DecoderCache:
    """Self-attention buffers, and for an encoder-decoder model the encoder's
    cross-attention keys/values.

    Stored as a flat dict of tensors so it can ride through `tf.while_loop`.
    Shapes (B = rows being decoded, h = heads, L = max_length + 1 positions,
    S = source length): `self_key_i`/`self_value_i` (B, h, L, depth),
    `cross_key_i`/`cross_value_i` (B, h, S, depth), `source_mask` (B, 1, 1, S).
    A decoder-only model (`CausalLM`) has only the `self_*` entries.
    """

    @staticmethod
    def create(model, source_ids, length):
        """The cache of a `Transformer` translating `source_ids` (or of an
        `ImageCaptioner` describing the images `source_ids`)."""
        encoded, source_mask = _encode_source(model, source_ids)
        cache = DecoderCache.create_self_attention(
            model, tf.shape(source_ids)[0], length
        )
        cache["source_mask"] = source_mask[:, tf.newaxis, tf.newaxis, :]
        for i, layer in enumerate(model.decoder.stack):
            cross = layer.cross_attention
            cache[f"cross_key_{i}"] = cross.split_heads(
                cross.key_dense(encoded), cross.key_dim
            )
            cache[f"cross_value_{i}"] = cross.split_heads(
                cross.value_dense(encoded), cross.value_dim
            )
        return cache

    @staticmethod
    def create_self_attention(model, batch, length):
        """Empty key/value buffers of every layer's self-attention."""
        cache = {}
        for i, layer in enumerate(generating_parts(model)[1].stack):
            attention = layer.self_attention
            for name, depth in (
                ("key", getattr(attention, "key_dim", None)),
                ("value", getattr(attention, "value_dim", None)),
            ):
                if hasattr(attention, "cache_shape"):  # GroupedQueryAttention
                    shape = attention.cache_shape(batch, length)
                else:
                    shape = (batch, attention.num_heads, length, depth)
                cache[f"self_{name}_{i}"] = tf.zeros(shape, attention.compute_dtype)
        return cache

    @staticmethod
    def bytes_per_token(model):
        """Bytes the self-attention cache of `model` holds per generated
        token (one row, one position, every layer's keys and values)."""
        cache = DecoderCache.create_self_attention(model, 1, 1)
        return sum(
            tensor.shape.num_elements() * tensor.dtype.size for tensor in cache.values()
        )


def _is_image_model(model):
    """An `ImageCaptioner`: its source is images, its memory their patches."""
    return hasattr(model, "image_shape") and hasattr(model, "target_embedding")


def _encode_source(model, source):
    """The memory the decoder cross-attends to and its mask (B, S), True =
    may attend: the encoded source sentence without its padding, or every
    patch of an image."""
    if _is_image_model(model):
        encoded = model.encode(source, training=False)  # (B, patches, d)
        return encoded, tf.ones(tf.shape(encoded)[:2], tf.bool)
    source_mask = tf.not_equal(source, PAD_ID)  # (B, S)
    encoded = model.encoder(
        model.source_embedding(source), padding_mask=source_mask, training=False
    )
    return encoded, source_mask


def generating_parts(model):
    """(token embedding, layer stack, output projection) of the model's
    autoregressive part: the decoder side of a `Transformer`, or all of a
    `CausalLM`."""
    if hasattr(model, "target_embedding"):
        embedding = model.target_embedding
    else:
        embedding = model.embedding
    return embedding, model.decoder, model.output_projection


def decoder_step(model, token_ids, index, cache):
    """Logits for position `index` given its input token; updates the cache.

    The one-token step of every decoding loop. A `ModernCausalLM` (rotary
    positions, its attention writes its own keys/values) steps through its
    stack's `call_with_cache`; every other model through
    `cached_decoder_step`.

    Args:
        token_ids: (B,) the token at position `index` of the decoder input.
        index: scalar int32 position.

    Returns:
        `(logits (B, vocab) float32, new_cache)`.
    """
    embedding, stack, output_projection = generating_parts(model)
    if hasattr(stack, "call_with_cache"):
        x, cache = stack.call_with_cache(
            embedding(token_ids[:, tf.newaxis]), index, dict(cache)
        )
        return output_projection(x)[:, 0, :], cache
    return cached_decoder_step(model, token_ids, index, cache)


def cached_decoder_step(model, token_ids, index, cache):
    """One decoding step with the key/value cache: the logits that predict
    position `index + 1`, and the cache with position `index` written in.

    It computes, for the single query position `index`, what
    `DecoderLayer.call` computes for every position (post- or pre-LN,
    inference mode): the token is embedded at position `index`; in each
    layer i its key and value go into slot `index` of the buffers
    `self_key_i`/`self_value_i`, and its query attends to slots 0..index
    (the later slots are not filled yet); cross-attention reads the
    encoder's keys/values, computed once by `DecoderCache.create`, under the
    source's padding mask. A `CausalLM`, whose cache has no `cross_*`
    entries, gets the same step without cross-attention.

    Args:
        model: a `Transformer` (also an `ImageCaptioner` or a `CausalLM`).
        token_ids: int (B,), the token at position `index` of the decoder
            input (`[START]` at index 0).
        index: the position, a Python int or a scalar int32 tensor.
        cache: the dict of `DecoderCache.create`: `self_key_i`,
            `self_value_i` (B, heads, L, depth) hold positions 0..index - 1
            (zeros after); `cross_key_i`, `cross_value_i`
            (B, heads, S, depth); `source_mask` (B, 1, 1, S).

    Returns:
        `(logits, new_cache)`: float32 logits (B, vocab), and a new dict with
        the same keys and shapes whose `self_*` buffers hold this token's
        keys/values at slot `index` (the other slots and entries as given).
    """
    validation.check_rank("token_ids", token_ids, {1})
    check_cache(cache)
    cache = dict(cache)  # the caller's dict is left as it was
    embedding, stack, output_projection = generating_parts(model)
    x = embedding(token_ids[:, tf.newaxis], start_index=index)  # (B, 1, d)
    length = cache["self_key_0"].shape[2] or tf.shape(cache["self_key_0"])[2]
    positions = tf.range(length)
    is_current = tf.reshape(positions == index, (1, 1, -1, 1))  # (1, 1, L, 1)
    seen = tf.reshape(positions <= index, (1, 1, 1, -1))  # (1, 1, 1, L) causal
    for i, layer in enumerate(stack.stack):
        # Masked self-attention: write this token's key/value, then attend
        # to the filled slots 0..index.
        attention = layer.self_attention
        y = layer.self_attention_layer_norm(x) if layer.norm_first else x
        query = attention.split_heads(attention.query_dense(y), attention.key_dim)
        for name, dense, depth in (
            ("key", attention.key_dense, attention.key_dim),
            ("value", attention.value_dense, attention.value_dim),
        ):
            new = attention.split_heads(dense(y), depth)  # (B, h, 1, depth)
            cache[f"self_{name}_{i}"] = tf.where(
                is_current, new, cache[f"self_{name}_{i}"]
            )
        attended, _ = scaled_dot_product_attention(
            query, cache[f"self_key_{i}"], cache[f"self_value_{i}"], seen
        )
        x = x + attention.output_dense(attention.merge_heads(attended))
        if not layer.norm_first:
            x = layer.self_attention_layer_norm(x)

        if f"cross_key_{i}" in cache:
            # Cross-attention against the precomputed encoder keys/values.
            cross = layer.cross_attention
            y = layer.cross_attention_layer_norm(x) if layer.norm_first else x
            query = cross.split_heads(cross.query_dense(y), cross.key_dim)
            attended, _ = scaled_dot_product_attention(
                query,
                cache[f"cross_key_{i}"],
                cache[f"cross_value_{i}"],
                cache["source_mask"],
            )
            x = x + cross.output_dense(cross.merge_heads(attended))
            if not layer.norm_first:
                x = layer.cross_attention_layer_norm(x)

        y = layer.feed_forward_layer_norm(x) if layer.norm_first else x
        x = x + layer.feed_forward(y, training=False)
        if not layer.norm_first:
            x = layer.feed_forward_layer_norm(x)
    if stack.norm_first:
        x = stack.final_layer_norm(x)
    return output_projection(x)[:, 0, :], cache


def check_cache(cache):
    """Raise a `TypeError` unless `cache` is a dict with the self-attention
    buffers of `DecoderCache` (`self_key_0` at least)."""
    if not isinstance(cache, dict) or "self_key_0" not in cache:
        keys = sorted(cache) if isinstance(cache, dict) else None
        raise TypeError(
            "`cache` must be the dict of `DecoderCache.create` (keys "
            "'self_key_0', 'self_value_0', ...). Received: cache of type "
            f"{type(cache).__name__}" + (f" with keys {keys}" if keys else "")
        )


def full_model_step(model, source_ids, tokens, index):
    """Reference path: run the whole model on the padded prefix, read `index`.

    `tokens` is the (B, L) buffer whose column 0 is `[START]`; returns the
    (B, vocab) logits predicting column `index + 1`.
    """
    logits = model((source_ids, tokens[:, :-1]), training=False)  # (B, L - 1, vocab)
    return tf.gather(logits, index, axis=1)


def forbid_special_tokens(logits):
    """[PAD] and [START] are never generated: a generated [PAD] would be read
    as padding by the next step."""
    vocab = tf.shape(logits)[-1]
    forbidden = tf.logical_or(tf.range(vocab) == PAD_ID, tf.range(vocab) == START_ID)
    return tf.where(forbidden, tf.cast(-1e9, logits.dtype), logits)


def decode_length(source_ids, max_length, model=None):
    """How many tokens to generate: `max_length` (a Python int is checked, a
    tensor is cast to int32), or by default the source length + 10 (for an
    `ImageCaptioner` `model`: its `max_length` - 1, the decoder's positions)."""
    if tf.is_tensor(max_length):  # computed in a graph, e.g. from the input
        return tf.cast(max_length, tf.int32)
    if max_length is not None:
        return validation.check_int("max_length", max_length)
    if model is not None and _is_image_model(model):  # the decoder's positions
        return model.max_length - 1
    static = source_ids.shape[1]
    source_len = static if static is not None else tf.shape(source_ids)[1]
    return source_len + DEFAULT_MARGIN


def check_source_ids(model, source_ids, use_cache=True):
    """Validate the decoding loops' inputs; return `source_ids` as a tensor.

    `source_ids` must be integer (batch, source_len) for a `Transformer`
    (with `use_cache=False`, any model mapping `(source_ids, target_in_ids)`
    to logits; returned as int32), or float images (batch, height, width,
    channels) for an `ImageCaptioner`. Builds an unbuilt model so its
    variables exist before tracing.
    """
    is_transformer = hasattr(model, "decoder") and hasattr(model, "source_embedding")
    if not callable(model) or (
        use_cache and not (is_transformer or _is_image_model(model))
    ):
        raise TypeError(
            "`model` must be a tf_transformer.Transformer or ImageCaptioner (with "
            "use_cache=False: any model mapping (source_ids, target_in_ids) to "
            f"logits). Received: model of type {type(model).__name__}"
        )
    if _is_image_model(model):
        validation.check_rank("source_ids", source_ids, {4})
        dtype = getattr(source_ids, "dtype", None)
        if dtype is not None and not tf.as_dtype(dtype).is_floating:
            raise TypeError(
                "`source_ids` of an ImageCaptioner are float images. "
                f"Received: source_ids with dtype {tf.as_dtype(dtype).name}"
            )
        source_shape = (None,) + tuple(model.image_shape)
    else:
        validation.check_integer_ids("source_ids", source_ids)
        validation.check_rank("source_ids", source_ids, {2})
        source_shape = (None, None)
    if not model.built:
        with tf.init_scope():  # variables are made eagerly, even when tracing
            model.build((source_shape, (None, None)))
    if _is_image_model(model):
        return tf.convert_to_tensor(source_ids)
    return tf.cast(source_ids, tf.int32)


def start_column(start_ids, rows):
    """(rows, 1) first decoder inputs: [START], or the given token per row."""
    if start_ids is None:
        return tf.fill((rows, 1), START_ID)
    start_ids = tf.convert_to_tensor(start_ids)
    validation.check_integer_ids("start_ids", start_ids)
    validation.check_rank("start_ids", start_ids, {0, 1})
    start_ids = tf.cast(start_ids, tf.int32)
    return tf.broadcast_to(tf.reshape(start_ids, (-1, 1)), tf.stack([rows, 1]))


def greedy_decode(model, source_ids, max_length=None, use_cache=True, start_ids=None):
    """Translate by taking the most probable token at every step.

    Args:
        model: a `tf_transformer.Transformer`, or an `ImageCaptioner`.
        source_ids: int (batch, source_len) token ids, 0-padded; for an
            `ImageCaptioner`, float images (batch, height, width, channels).
        max_length: most tokens to generate (the `[END]` token included), a
            Python int or a scalar int tensor. Defaults to the source length
            + 10 (for a captioner: its `max_length` - 1).
        use_cache: use the key/value cache (True) or re-run the full model at
            every step (False, the reference path; it works with any Keras
            model that maps `(source_ids, target_in_ids)` to logits).
        start_ids: the first decoder input, an int or int (batch,) ids, e.g.
            the captioner's language token. Defaults to `[START]`.

    Returns:
        int32 (batch, max_length): generated ids, without `[START]`, ending
        with `[END]` when the model produced it, 0 after it.

    Example:

    >>> ids = greedy_decode(model, source_ids)
    >>> fast = tf.function(greedy_decode, jit_compile=True)
    """
    source_ids = check_source_ids(model, source_ids, use_cache)
    length = decode_length(source_ids, max_length, model)
    batch = tf.shape(source_ids)[0]
    # tokens[:, 0] is [START]; step i writes the token for position i + 1.
    tokens = tf.concat(
        [start_column(start_ids, batch), tf.zeros((batch, length), tf.int32)], axis=1
    )
    done = tf.zeros((batch,), tf.bool)
    cache = DecoderCache.create(model, source_ids, length + 1) if use_cache else {}

    def step(index, tokens, done, cache):
        if use_cache:
            logits, cache = decoder_step(model, tokens[:, index], index, cache)
        else:
            logits = full_model_step(model, source_ids, tokens, index)
        next_ids = tf.argmax(
            forbid_special_tokens(logits), axis=-1, output_type=tf.int32
        )
        next_ids = tf.where(done, PAD_ID, next_ids)  # finished rows emit padding
        tokens = write_column(tokens, index + 1, next_ids)
        done = tf.logical_or(done, next_ids == END_ID)
        return index + 1, tokens, done, cache

    _, tokens, _, _ = tf.while_loop(
        lambda index, tokens, done, cache: tf.logical_and(
            index < length, tf.logical_not(tf.reduce_all(done))
        ),
        step,
        (tf.constant(0), tokens, done, cache),
        maximum_iterations=length,
    )
    return tokens[:, 1:]


def _keep_shapes(new, old):
    """Give loop outputs their loop inputs' static shapes (gathers by
    dynamic beam indices lose them, which tf.while_loop refuses)."""

    def keep(new_tensor, old_tensor):
        new_tensor.set_shape(old_tensor.shape)
        return new_tensor

    return tf.nest.map_structure(keep, new, old)


def write_column(tokens, column, values):
    """tokens[:, column] = values, as a shape-preserving select."""
    is_column = tf.range(tf.shape(tokens)[1]) == column
    return tf.where(is_column[tf.newaxis, :], values[:, tf.newaxis], tokens)


def sequence_log_probability(model, source_ids, output_ids, start_ids=None):
    """Sum of log p(token) the model gives a decoded sequence (teacher forcing).

    `output_ids` is what `greedy_decode`/`beam_search` return: tokens after
    `[START]` (or after `start_ids`), 0 after `[END]`. Padding positions do
    not count.
    """
    source_ids = check_source_ids(model, source_ids)
    output_ids = tf.cast(output_ids, tf.int32)
    batch = tf.shape(output_ids)[0]
    target_in = tf.concat([start_column(start_ids, batch), output_ids[:, :-1]], axis=1)
    logits = tf.cast(model((source_ids, target_in), training=False), tf.float32)
    log_probs = tf.nn.log_softmax(forbid_special_tokens(logits), axis=-1)
    picked = tf.gather(log_probs, output_ids, axis=-1, batch_dims=2)
    return tf.reduce_sum(tf.where(output_ids != PAD_ID, picked, 0.0), axis=-1)


def length_penalty(length, alpha):
    """The GNMT length penalty ((5 + length) / 6)^alpha used to rank beams."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _add_beam_axis(x, beam_width):
    """(B, ...) -> (B * W, ...): every row repeated for each beam."""
    return tf.repeat(x, beam_width, axis=0)


def _gather_beams(x, beam_indices, batch, beam_width):
    """Pick, for each batch row, the beams named by beam_indices (B, W).

    x is (B * W, ...) and so is the result.
    """
    shape = tf.shape(x)
    x = tf.reshape(x, tf.concat([[batch, beam_width], shape[1:]], axis=0))
    x = tf.gather(x, beam_indices, axis=1, batch_dims=1)
    return tf.reshape(x, shape)


def beam_search(
    model, source_ids, beam_width=4, alpha=0.6, max_length=None, start_ids=None
):
    """Translate by keeping the `beam_width` most probable prefixes per step.

    Beams are ranked by their summed log-probability while searching; the
    finished beams are compared with the length penalty
    ((5 + length) / 6)^alpha (alpha 0.6 in the paper; 0 disables it). With
    `beam_width=1` the result is the greedy translation.

    Args:
        model: a `tf_transformer.Transformer`, or an `ImageCaptioner`.
        source_ids: int (batch, source_len) token ids, 0-padded; for an
            `ImageCaptioner`, float images (batch, height, width, channels).
        beam_width: number of beams W, a Python int or a scalar int32
            tensor (a width chosen at run time, e.g. an input of an exported
            function; the beam axis then has no static size). Defaults to 4
            (the paper's value).
        alpha: length-penalty exponent. Defaults to 0.6.
        max_length: most tokens to generate. Defaults to source length + 10
            (for a captioner: its `max_length` - 1).
        start_ids: the first decoder input, an int or int (batch,) ids.
            Defaults to `[START]`.

    Returns:
        `(ids, scores)`: int32 (batch, max_length) best sequences in the
        format of `greedy_decode`, and float32 (batch,) their summed
        log-probabilities (without the length penalty).
    """
    if tf.is_tensor(beam_width):
        beam_width = tf.cast(beam_width, tf.int32)
        tf.debugging.assert_positive(beam_width, message="`beam_width` must be >= 1")
    else:
        beam_width = validation.check_int("beam_width", beam_width)
    if not isinstance(alpha, (int, float)) or alpha < 0:
        raise ValueError(f"`alpha` must be a number >= 0. Received: alpha={alpha!r}")
    source_ids = check_source_ids(model, source_ids)
    length = decode_length(source_ids, max_length, model)
    batch = tf.shape(source_ids)[0]
    rows = batch * beam_width
    starts = _add_beam_axis(start_column(start_ids, batch), beam_width)
    tokens = tf.concat([starts, tf.zeros((rows, length), tf.int32)], 1)
    # Only beam 0 is live at first, so the first step does not pick W copies
    # of the same token.
    first_beam_only = tf.where(tf.range(beam_width) == 0, 0.0, -1e9)
    scores = tf.tile(first_beam_only[tf.newaxis], tf.stack([batch, 1]))  # (B, W)
    finished = tf.zeros((batch, beam_width), tf.bool)
    cache = DecoderCache.create(
        model, _add_beam_axis(source_ids, beam_width), length + 1
    )

    def step(index, tokens, scores, finished, cache):
        logits, cache = decoder_step(model, tokens[:, index], index, cache)
        log_probs = tf.nn.log_softmax(
            forbid_special_tokens(tf.cast(logits, tf.float32))
        )
        vocab = tf.shape(log_probs)[-1]
        log_probs = tf.reshape(log_probs, (batch, beam_width, vocab))
        # A finished beam can only be continued by [PAD], at no cost.
        pad_only = tf.where(tf.range(vocab) == PAD_ID, 0.0, -1e9)
        log_probs = tf.where(finished[..., tf.newaxis], pad_only, log_probs)
        candidates = tf.reshape(scores[..., tf.newaxis] + log_probs, (batch, -1))
        scores, flat = tf.math.top_k(candidates, k=beam_width)  # (B, W)
        beam_indices, next_ids = flat // vocab, flat % vocab
        tokens = _gather_beams(tokens, beam_indices, batch, beam_width)
        cache = {
            key: value
            if key.startswith("cross") or key == "source_mask"
            else _gather_beams(value, beam_indices, batch, beam_width)
            for key, value in cache.items()
        }
        finished = tf.gather(finished, beam_indices, batch_dims=1)
        tokens = write_column(tokens, index + 1, tf.reshape(next_ids, (-1,)))
        finished = tf.logical_or(finished, next_ids == END_ID)
        return index + 1, *_keep_shapes(
            (tokens, scores, finished, cache), loop_vars[1:]
        )

    loop_vars = (tf.constant(0), tokens, scores, finished, cache)
    _, tokens, scores, finished, _ = tf.while_loop(
        lambda index, tokens, scores, finished, cache: tf.logical_and(
            index < length, tf.logical_not(tf.reduce_all(finished))
        ),
        step,
        loop_vars,
        maximum_iterations=length,
    )
    tokens = tf.reshape(tokens[:, 1:], (batch, beam_width, length))
    lengths = tf.reduce_sum(tf.cast(tokens != PAD_ID, tf.float32), axis=-1)
    # Unfinished beams rank below finished ones.
    ranked = tf.where(finished, scores / length_penalty(lengths, alpha), scores - 1e6)
    best = tf.argmax(ranked, axis=-1, output_type=tf.int32)  # (B,)
    return (
        tf.gather(tokens, best, axis=1, batch_dims=1),
        tf.gather(scores, best, axis=1, batch_dims=1),
    )
