"""Check of `cached_decoder_step` (lesson 9).

The student's `cached_decoder_step(model, token_ids, index, cache)` runs one
step of cached decoding: it returns the logits that predict position
`index + 1` and the cache with position `index`'s keys and values written in.

Cases: two 2-layer Transformers with seeded weights, post-LN and pre-LN, and
a batch of two sources (row 1 padded). The target prefix `TARGET` is fed one
token per step, steps 0 to `STEPS - 1`, each step with the cache the
student's previous step returned (as a decoding loop does); every step's
logits and cache are compared with the reference's step from the same input
cache. Then two steps inside `tf.function`, where `index` is a tensor and the
batch size is unknown.

A mismatch is explained by `step_variant`: the step with one typical mistake
(wrong position encoded, unfilled or own slot mis-masked, written after
attending, the source's padding read, one layer's cache for all, LayerNorms
misplaced); the first variant that reproduces the student's output names it.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks import _core
from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    alternative,
    bug,
    close,
    describe_exception,
    exercise,
    to_numpy,
)
from tf_transformer.course.checks.greedy_decode import seeded_weights

VOCAB = 12
SOURCE = np.array([[5, 9, 7, 11, 4], [8, 6, 10, 0, 0]], dtype="int32")
TARGET = np.array([[2, 7, 9, 4, 11], [2, 5, 8, 6, 10]], dtype="int32")
STEPS = TARGET.shape[1]
LENGTH = STEPS + 1  # slots per buffer: the last one is never filled here
ATOL = 1e-4

_MODELS = {}  # norm_first -> (model, weights)


def tiny_model(norm_first):
    """A 2-layer Transformer with seeded weights (built once, reset each call)."""
    if norm_first not in _MODELS:
        from tf_transformer.models import Transformer

        model = Transformer(
            num_layers=2,
            d_model=16,
            num_heads=2,
            dff=32,
            input_vocab_size=VOCAB,
            target_vocab_size=VOCAB,
            max_length=32,
            dropout=0.5,  # only matters if a step runs with training=True
            norm_first=norm_first,
        )
        model.build(((None, None), (None, None)))
        _MODELS[norm_first] = model, seeded_weights(model, seed=int(norm_first))
    model, weights = _MODELS[norm_first]
    model.set_weights(weights)  # undo anything a previous answer did
    return model


def new_cache(model):
    from tf_transformer.inference.decoding import DecoderCache

    return DecoderCache.create(model, tf.constant(SOURCE), LENGTH)


# ------------------------------------------------------------ variants


def step_variant(
    position="index",
    see="causal",
    write="index",
    attend_first=False,
    source_mask=True,
    layer_cache="own",
    norms="model",
    final_norm=True,
    training=False,
):
    """A cached step with one typical mistake (defaults: the correct one).

    Args:
        position: the position encoded: `"index"`, `"zero"` or `"next"`.
        see: the self-attention mask over the buffer: `"causal"` (slots
            0..index), `"all"` (every slot) or `"before"` (0..index - 1).
        write: where the new key/value goes: `"index"`, `"next"` (index + 1)
            or `"append"` (concatenated at the end: the buffer grows).
        attend_first: attend against the buffers before writing into them.
        source_mask: use the source's padding mask in cross-attention.
        layer_cache: `"own"` or `"first"` (every layer uses layer 0's).
        norms: `"model"` or `"flipped"` (pre-LN placement for a post-LN
            model and the reverse).
        final_norm: apply the stack's final LayerNorm of a pre-LN model.
        training: the `training` flag given to the feed-forward.
    """
    from tf_transformer.inference.decoding import generating_parts
    from tf_transformer.layers.attention import scaled_dot_product_attention

    def cached_decoder_step(model, token_ids, index, cache):
        cache = dict(cache)
        embedding, stack, output_projection = generating_parts(model)
        start = {"index": index, "zero": 0, "next": index + 1}[position]
        x = embedding(token_ids[:, tf.newaxis], start_index=start)
        positions = tf.range(tf.shape(cache["self_key_0"])[2])
        slot = index + 1 if write == "next" else index
        is_slot = tf.reshape(positions == slot, (1, 1, -1, 1))
        visible = {
            "causal": positions <= index,
            "all": positions >= 0,
            "before": positions < index,
        }[see]
        for i, layer in enumerate(stack.stack):
            first = layer.norm_first if norms == "model" else not layer.norm_first
            own = i if layer_cache == "own" else 0
            attention = layer.self_attention
            y = layer.self_attention_layer_norm(x) if first else x
            query = attention.split_heads(attention.query_dense(y), attention.key_dim)
            keys, values = cache[f"self_key_{own}"], cache[f"self_value_{own}"]
            new_key = attention.split_heads(attention.key_dense(y), attention.key_dim)
            new_value = attention.split_heads(
                attention.value_dense(y), attention.value_dim
            )
            if write == "append":
                written = (
                    tf.concat([keys, new_key], 2),
                    tf.concat([values, new_value], 2),
                )
                mask = tf.concat([visible, [True]], 0)
            else:
                written = (
                    tf.where(is_slot, new_key, keys),
                    tf.where(is_slot, new_value, values),
                )
                mask = visible
            read = (keys, values) if attend_first else written
            cache[f"self_key_{i}"], cache[f"self_value_{i}"] = written
            attended, _ = scaled_dot_product_attention(
                query, *read, tf.reshape(mask, (1, 1, 1, -1))
            )
            x = x + attention.output_dense(attention.merge_heads(attended))
            if not first:
                x = layer.self_attention_layer_norm(x)

            cross = layer.cross_attention
            y = layer.cross_attention_layer_norm(x) if first else x
            query = cross.split_heads(cross.query_dense(y), cross.key_dim)
            attended, _ = scaled_dot_product_attention(
                query,
                cache[f"cross_key_{i}"],
                cache[f"cross_value_{i}"],
                cache["source_mask"] if source_mask else None,
            )
            x = x + cross.output_dense(cross.merge_heads(attended))
            if not first:
                x = layer.cross_attention_layer_norm(x)

            y = layer.feed_forward_layer_norm(x) if first else x
            x = x + layer.feed_forward(y, training=training)
            if not first:
                x = layer.feed_forward_layer_norm(x)
        if stack.norm_first and final_norm:
            x = stack.final_layer_norm(x)
        return output_projection(x)[:, 0, :], cache

    return cached_decoder_step


VARIANTS = [
    (
        dict(position="zero"),
        "the token is encoded at position 0 at every step — embed it at position "
        "`index`: embedding(token_ids[:, None], start_index=index)",
    ),
    (
        dict(position="next"),
        "off by one: the token is encoded at position index + 1 — the token read at "
        "step `index` stands at position `index` (start_index=index)",
    ),
    (
        dict(see="all"),
        "the query attends to every slot of the buffer, also the unfilled ones after "
        "`index` (zero keys still take weight) — mask the slots > index: "
        "positions <= index",
    ),
    (
        dict(see="before"),
        "the query does not see its own key — the causal mask includes the "
        "diagonal: slots 0..index (positions <= index)",
    ),
    (
        dict(attend_first=True),
        "the query attends to the buffers as they were, before this token's key and "
        "value are written — write slot `index` first, then attend",
    ),
    (
        dict(source_mask=False),
        "cross-attention reads the source's [PAD] positions — pass "
        "cache['source_mask'] as the mask of cross-attention",
    ),
    (
        dict(layer_cache="first"),
        "every layer reads the buffers of layer 0 — layer i has its own "
        "cache['self_key_{i}'] and cache['self_value_{i}']",
    ),
    (
        dict(norms="flipped"),
        "the LayerNorms are in the wrong place — follow `layer.norm_first`: "
        "post-LN normalises after each residual sum, pre-LN the sublayer's input",
    ),
    (
        dict(final_norm=False),
        "a pre-LN stack ends with its own LayerNorm: apply `stack.final_layer_norm` "
        "(model.decoder.final_layer_norm) before the output projection when "
        "`norm_first` is set",
    ),
]

RETURNED_OLD = (
    "the cache returned is the one passed in — put the updated buffers into the "
    "dict you return (new_cache['self_key_0'] = …), for every layer"
)
RANDOM = (
    "two calls with the same input give different logits — run the feed-forward "
    "with training=False (dropout is active otherwise)"
)
GRAPH_HINT = (
    "inside tf.function `index` is a tensor and the batch size is unknown: compare "
    "index with tf.range(buffer length) (positions == index, positions <= index) "
    "and use TensorFlow ops, no Python `if` on index and no .numpy()"
)


def _self_keys(cache):
    return sorted(key for key in cache if key.startswith("self_"))


def _as_arrays(cache):
    return {key: np.asarray(value) for key, value in cache.items()}


def _unpack(result, given, what):
    """(logits, cache) of an answer, checked for structure and shapes."""
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise Failure(
            f"{what} returned {type(result).__name__}, expected a pair "
            "(logits, new_cache)"
        )
    logits, cache = result
    logits = to_numpy(logits, f"the logits of {what}")
    batch = len(TARGET)
    if logits.shape != (batch, VOCAB):
        hint = (
            "take position 0 of the (batch, 1, vocab) output: [:, 0, :]"
            if logits.shape == (batch, 1, VOCAB)
            else "one row of logits per sentence"
        )
        raise Failure(
            f"the logits of {what} have shape {logits.shape}, expected "
            f"{(batch, VOCAB)} — {hint}"
        )
    if not isinstance(cache, dict):
        raise Failure(
            f"the cache returned by {what} is a {type(cache).__name__}, expected a "
            "dict with the keys of the cache passed in"
        )
    missing = sorted(set(given) - set(cache))
    if missing:
        raise Failure(
            f"the cache returned by {what} lacks {missing} — return every entry, "
            "the cross-attention keys/values and source_mask unchanged"
        )
    arrays = {key: to_numpy(cache[key], f"cache[{key!r}]") for key in given}
    for key in _self_keys(given):
        if arrays[key].shape != given[key].shape:
            raise Failure(
                f"{key} returned by {what} has shape {arrays[key].shape}, expected "
                f"{given[key].shape} — the buffers keep their length: write slot "
                "`index` in place, tf.where(positions == index, new, old); do not "
                "append"
            )
    return logits, arrays


def _diagnose(student, model, tokens, index, cache_in, logits, cache_out):
    """The most likely mistake behind a wrong step, or None."""
    again = student(model, tokens, index, dict(cache_in))
    if not close(np.asarray(again[0]), logits, atol=ATOL, rtol=0):
        return RANDOM
    hints = []
    for flags, hint in VARIANTS:
        variant_logits, variant_cache = step_variant(**flags)(
            model, tokens, index, dict(cache_in)
        )
        if close(np.asarray(variant_logits), logits, atol=ATOL, rtol=0) and all(
            close(np.asarray(variant_cache[key]), cache_out[key], atol=ATOL, rtol=0)
            for key in _self_keys(cache_in)
        ):
            hints.append(hint)
    # At step 0 two mistakes can give the same output (an unwritten own slot
    # and a masked one both leave the query nothing): name both.
    return "; or: ".join(hints) or None


def _check_cache(what, index, given, actual, expected, diagnose):
    """Compare the returned cache with the reference's; explain a difference."""
    given = _as_arrays(given)
    keys = _self_keys(given)
    if all(np.array_equal(actual[key], given[key]) for key in keys):
        raise Failure(f"{what}: {RETURNED_OLD}")
    for key in sorted(set(given) - set(keys)):
        if not np.array_equal(actual[key], given[key]):
            raise Failure(
                f"{what} changed {key} — the encoder's keys/values and the source "
                "mask are computed once, before the loop: return them unchanged"
            )
    for key in keys:
        if close(actual[key], expected[key], atol=ATOL, rtol=0):
            continue
        changed = [
            slot
            for slot in range(LENGTH)
            if not close(actual[key][:, :, slot], given[key][:, :, slot], atol=ATOL)
        ]
        if changed != [index]:
            hint = diagnose() or (
                f"expected slot {index} only — step `index` writes its key/value "
                "at position `index` (tf.where(positions == index, new, old))"
            )
            raise Failure(f"{what}: slot(s) {changed} of {key} changed — {hint}")
        hint = diagnose() or (
            "the key/value written is not the reference's — project the layer's "
            "input (LayerNorm first when norm_first) with key_dense / value_dense "
            "and split the heads"
        )
        raise Failure(f"{what}: slot {index} of {key} differs — {hint}")


def _run_steps(ctx, student, reference, norm_first):
    label = "pre-LN" if norm_first else "post-LN"
    model = tiny_model(norm_first)
    cache = new_cache(model)
    for index in range(STEPS):
        tokens = tf.constant(TARGET[:, index])
        what = f"cached_decoder_step(model, token_ids, {index}, cache) ({label})"
        result = ctx.call(student, model, tokens, index, dict(cache), what=what)
        logits, actual = _unpack(result, cache, what)
        expected_logits, expected = reference(model, tokens, index, dict(cache))
        expected = _as_arrays(expected)

        def diagnose(
            cache_in=cache, logits=logits, actual=actual, index=index, tokens=tokens
        ):
            try:
                return _diagnose(
                    student, model, tokens, index, cache_in, logits, actual
                )
            except Exception:  # noqa: BLE001 - a diagnosis never hides the mismatch
                return None

        _check_cache(what, index, cache, actual, expected, diagnose)
        if not close(logits, np.asarray(expected_logits), atol=ATOL, rtol=0):
            hint = diagnose() or (
                "compare each sublayer with DecoderLayer.call: self-attention "
                "against the buffers, cross-attention against cache['cross_key_i'], "
                "the feed-forward, each with its residual and LayerNorm"
            )
            raise Failure(
                f"{what}: the logits differ from the reference's "
                f"(largest difference "
                f"{np.abs(logits - np.asarray(expected_logits)).max():.3g}) — {hint}"
            )
        cache = {key: tf.constant(value) for key, value in actual.items()}
    return model


@exercise(
    "cached_decoder_step",
    lesson=9,
    points=2,
    kind="function",
    reference="cached_decoder_step",
)
def check_cached_decoder_step(ctx, student, reference):
    if not _core.REUSE_BETWEEN_CHECKS:
        _MODELS.clear()  # grading: build afresh, before any student code runs
    _run_steps(ctx, student, reference, norm_first=False)
    ctx.ok(
        f"{STEPS} steps of a 2-layer post-LN model, each fed the cache of the one "
        "before: the logits of the full model, slot `index` written and no other, "
        "the cross-attention entries unchanged"
    )
    model = _run_steps(ctx, student, reference, norm_first=True)
    ctx.ok("the same for a pre-LN model (its final LayerNorm included)")

    cache = new_cache(model)
    signature = [
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((), tf.int32),
        {
            key: tf.TensorSpec((None,) + tuple(value.shape[1:]), value.dtype)
            for key, value in cache.items()
        },
    ]
    graph = tf.function(
        lambda tokens, index, cache: student(model, tokens, index, cache),
        input_signature=signature,
    )
    what = "cached_decoder_step in tf.function (index a tensor)"
    for index in range(2):
        tokens = tf.constant(TARGET[:, index])
        try:
            logits, actual = graph(tokens, tf.constant(index), cache)
        except Exception as error:  # noqa: BLE001 - student code may raise anything
            raise StudentError(
                f"{describe_exception(error, what)} — {GRAPH_HINT}"
            ) from None
        expected_logits, cache = reference(model, tokens, index, dict(cache))
        if not close(np.asarray(logits), np.asarray(expected_logits), atol=ATOL):
            raise Failure(
                f"{what}, step {index}: the logits differ from those of an eager "
                f"call — {GRAPH_HINT}"
            )
    ctx.ok("works inside tf.function with `index` a tensor and an unknown batch size")


# ------------------------------------------------- catalogue of typical bugs


@bug("cached_decoder_step", "encoded at position 0")
def step_position_zero():
    """embeds every token at position 0"""
    return step_variant(position="zero")


@bug("cached_decoder_step", "position index + 1")
def step_position_next():
    """embeds the token one position too far"""
    return step_variant(position="next")


@bug("cached_decoder_step", "also the unfilled ones")
def step_sees_unfilled_slots():
    """attends to the whole buffer, unfilled slots included"""
    return step_variant(see="all")


@bug("cached_decoder_step", "includes the diagonal")
def step_misses_own_key():
    """masks its own slot (positions < index)"""
    return step_variant(see="before")


@bug("cached_decoder_step", "write slot `index` first")
def step_attends_before_writing():
    """attends against the old buffers, then writes"""
    return step_variant(attend_first=True)


@bug("cached_decoder_step", "expected slot")
def step_writes_next_slot():
    """writes the new key/value at slot index + 1"""
    return step_variant(write="next")


@bug("cached_decoder_step", "do not append")
def step_appends():
    """concatenates the new key/value: the buffer grows"""
    return step_variant(write="append")


@bug("cached_decoder_step", "the one passed in")
def step_returns_old_cache():
    """computes the right logits but returns the cache it was given"""
    correct = step_variant()

    def cached_decoder_step(model, token_ids, index, cache):
        logits, _ = correct(model, token_ids, index, cache)
        return logits, cache

    return cached_decoder_step


@bug("cached_decoder_step", "source_mask")
def step_reads_source_padding():
    """cross-attention without the source's padding mask"""
    return step_variant(source_mask=False)


@bug("cached_decoder_step", "layer i has its own")
def step_shares_layer_cache():
    """every layer attends to layer 0's buffers"""
    return step_variant(layer_cache="first")


@bug("cached_decoder_step", "follow `layer.norm_first`")
def step_flips_norms():
    """LayerNorms placed as for the other convention"""
    return step_variant(norms="flipped")


@bug("cached_decoder_step", "final_layer_norm")
def step_without_final_norm():
    """pre-LN without the stack's final LayerNorm"""
    return step_variant(final_norm=False)


@bug("cached_decoder_step", "training=False")
def step_with_dropout():
    """feed-forward called with training=True"""
    return step_variant(training=True)


@bug("cached_decoder_step", "changed cross_key_0")
def step_rewrites_cross_cache():
    """overwrites the encoder's keys with zeros"""
    correct = step_variant()

    def cached_decoder_step(model, token_ids, index, cache):
        logits, cache = correct(model, token_ids, index, cache)
        cache["cross_key_0"] = tf.zeros_like(cache["cross_key_0"])
        return logits, cache

    return cached_decoder_step


@alternative("cached_decoder_step")
def step_scatter_update():
    """writes the slot with a one-hot blend instead of tf.where"""
    from tf_transformer.inference.decoding import generating_parts
    from tf_transformer.layers.attention import scaled_dot_product_attention

    def heads(attention, dense, y, depth):
        return attention.split_heads(dense(y), depth)

    def cached_decoder_step(model, token_ids, index, cache):
        cache = dict(cache)
        embedding, stack, projection = generating_parts(model)
        x = embedding(token_ids[:, None], start_index=index)
        length = tf.shape(cache["self_key_0"])[2]
        slot = tf.reshape(tf.one_hot(index, length), (1, 1, -1, 1))
        seen = tf.reshape(tf.range(length) <= index, (1, 1, 1, -1))
        for i, layer in enumerate(stack.stack):
            parts = (
                (layer.self_attention, layer.self_attention_layer_norm),
                (layer.cross_attention, layer.cross_attention_layer_norm),
            )
            for which, (attention, norm) in enumerate(parts):
                y = norm(x) if layer.norm_first else x
                query = heads(attention, attention.query_dense, y, attention.key_dim)
                if which == 0:
                    for name, dense, depth in (
                        ("key", attention.key_dense, attention.key_dim),
                        ("value", attention.value_dense, attention.value_dim),
                    ):
                        old = cache[f"self_{name}_{i}"]
                        new = heads(attention, dense, y, depth)
                        cache[f"self_{name}_{i}"] = old * (1 - slot) + new * slot
                    keys, values = cache[f"self_key_{i}"], cache[f"self_value_{i}"]
                    mask = seen
                else:
                    keys, values = cache[f"cross_key_{i}"], cache[f"cross_value_{i}"]
                    mask = cache["source_mask"]
                out, _ = scaled_dot_product_attention(query, keys, values, mask)
                x = x + attention.output_dense(attention.merge_heads(out))
                x = x if layer.norm_first else norm(x)
            y = layer.feed_forward_layer_norm(x) if layer.norm_first else x
            x = x + layer.feed_forward(y, training=False)
            x = x if layer.norm_first else layer.feed_forward_layer_norm(x)
        if stack.norm_first:
            x = stack.final_layer_norm(x)
        return projection(x)[:, 0, :], cache

    return cached_decoder_step
