"""The helpers the lessons use are public, documented and behave as documented."""

import inspect

import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer import validation
from tf_transformer.inference import decoding
from tf_transformer.layers.attention import causal_mask_for, check_attention_inputs
from tf_transformer.layers.encoder import TransformerBlock
from tf_transformer.layers.initializers import clone_initializer
from tf_transformer.training.losses import check_labels_and_logits

PUBLIC_HELPERS = [
    validation,
    check_attention_inputs,
    causal_mask_for,
    TransformerBlock,
    clone_initializer,
    check_labels_and_logits,
    decoding.check_source_ids,
    decoding.decode_length,
    decoding.DecoderCache,
    decoding.decoder_step,
    decoding.cached_decoder_step,
    decoding.check_cache,
    decoding.generating_parts,
    decoding.forbid_special_tokens,
    decoding.full_model_step,
    decoding.write_column,
]


@pytest.mark.parametrize("helper", PUBLIC_HELPERS, ids=lambda h: h.__name__)
def test_every_public_helper_has_a_docstring(helper):
    assert (inspect.getdoc(helper) or "").strip()


def test_every_validation_check_is_documented():
    checks = [
        name
        for name, obj in vars(validation).items()
        if name.startswith("check_") and inspect.isfunction(obj)
    ]
    assert len(checks) >= 10
    assert [name for name in checks if not inspect.getdoc(vars(validation)[name])] == []


def test_validation_errors_name_the_argument_and_the_value():
    with pytest.raises(ValueError, match=r"num_heads=0"):
        validation.check_int("num_heads", 0)
    with pytest.raises(TypeError, match=r"dropout='high'"):
        validation.check_rate("dropout", "high")


def test_check_attention_inputs_names_the_mismatched_argument():
    q = tf.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="`query` and `key` must have the same depth"):
        check_attention_inputs(q, tf.zeros((2, 5, 6)), tf.zeros((2, 5, 6)), None)
    with pytest.raises(ValueError, match="`mask` must broadcast"):
        check_attention_inputs(q, q, q, tf.ones((2, 4, 4), tf.bool))
    check_attention_inputs(q, q, q, tf.ones((3, 3), tf.bool))  # broadcasts: fine


def test_causal_mask_for_shorter_queries_sees_the_cached_prefix():
    mask = causal_mask_for(tf.zeros((1, 2, 4)), tf.zeros((1, 5, 4)))
    np.testing.assert_array_equal(
        mask.numpy(), [[True, True, True, True, False], [True] * 5]
    )
    np.testing.assert_array_equal(
        causal_mask_for(tf.zeros((1, 3, 4)), tf.zeros((1, 3, 4))).numpy(),
        tt.causal_mask(3).numpy(),
    )


def test_check_labels_and_logits_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="y_true"):
        check_labels_and_logits(tf.zeros((2, 3)), tf.zeros((2, 4, 7)))


def test_write_column_replaces_one_column_and_keeps_the_shape():
    tokens = tf.zeros((2, 4), tf.int32)
    out = decoding.write_column(tokens, 2, tf.constant([7, 9]))
    np.testing.assert_array_equal(out.numpy(), [[0, 0, 7, 0], [0, 0, 9, 0]])


def test_forbid_special_tokens_makes_pad_and_start_never_the_argmax():
    logits = tf.constant([[5.0, 1.0, 9.0, 0.0]])  # [PAD] and [START] are best
    best = tf.argmax(decoding.forbid_special_tokens(logits), axis=-1)
    assert int(best[0]) == 1


def test_decode_length_defaults_to_the_source_length_plus_a_margin():
    source = tf.ones((2, 6), tf.int32)
    assert decoding.decode_length(source, None) == 6 + decoding.DEFAULT_MARGIN
    assert decoding.decode_length(source, 4) == 4
    with pytest.raises(ValueError, match="max_length=0"):
        decoding.decode_length(source, 0)


def test_check_source_ids_rejects_float_ids_and_non_models():
    model = tt.Transformer(1, 8, 2, 16, input_vocab_size=12, target_vocab_size=12)
    with pytest.raises(TypeError, match="source_ids"):
        decoding.check_source_ids(model, tf.zeros((1, 3)))
    with pytest.raises(TypeError, match="`model` must be"):
        decoding.check_source_ids(object(), tf.ones((1, 3), tf.int32))
    ids = decoding.check_source_ids(model, np.ones((1, 3), np.int64))
    assert ids.dtype == tf.int32 and model.built


def test_cached_step_equals_the_full_model_step():
    model = tt.Transformer(1, 8, 2, 16, input_vocab_size=12, target_vocab_size=12)
    source = decoding.check_source_ids(model, tf.constant([[4, 5, 6, 3]]))
    tokens = tf.constant([[2, 7, 8, 0, 0]])
    cache = decoding.DecoderCache.create(model, source, 5)
    for index in range(3):
        cached, cache = decoding.decoder_step(model, tokens[:, index], index, cache)
        full = decoding.full_model_step(model, source, tokens, index)
        np.testing.assert_allclose(cached.numpy(), full.numpy(), atol=1e-5)


def test_cached_step_writes_slot_index_only_and_leaves_the_given_cache():
    model = tt.Transformer(
        2, 8, 2, 16, input_vocab_size=12, target_vocab_size=12, norm_first=True
    )
    source = decoding.check_source_ids(model, tf.constant([[4, 5, 6, 3], [7, 3, 0, 0]]))
    cache = first = decoding.DecoderCache.create(model, source, 5)
    given = dict(cache)
    tokens = tf.constant([[2, 7, 8], [2, 9, 4]])
    full = model((source, tokens), training=False)
    for index in range(3):
        logits, new = tt.cached_decoder_step(model, tokens[:, index], index, cache)
        np.testing.assert_allclose(logits.numpy(), full[:, index].numpy(), atol=1e-5)
        for key, value in new.items():
            changed = np.any(value.numpy() != cache[key].numpy(), axis=(0, 1, 3))
            written = np.flatnonzero(changed) if key.startswith("self_") else []
            assert list(written) == ([index] if key.startswith("self_") else []), key
        cache = new
    assert all(first[key] is value for key, value in given.items())  # not mutated


def test_cached_step_rejects_a_cache_that_is_not_the_decoder_cache():
    model = tt.Transformer(1, 8, 2, 16, input_vocab_size=12, target_vocab_size=12)
    with pytest.raises(TypeError, match="`cache` must be"):
        tt.cached_decoder_step(model, tf.constant([2]), 0, {"key": tf.zeros(3)})
    with pytest.raises(ValueError, match="token_ids"):
        tt.cached_decoder_step(model, tf.constant([[2]]), 0, {"self_key_0": 0})


@pytest.mark.parametrize(
    "layer_class, base, written",
    [
        (
            tt.MultiHeadAttention,
            "MultiHeadAttentionBase",
            {"split_heads", "merge_heads", "call"},
        ),
        (tt.FeedForward, "FeedForwardBase", {"build", "call"}),
        (tt.EncoderLayer, "EncoderLayerBase", {"call"}),
        (tt.DecoderLayer, "DecoderLayerBase", {"call"}),
        (tt.LoRADense, "LoRADenseBase", {"build", "call", "merge"}),
    ],
    ids=lambda x: getattr(x, "__name__", None) if isinstance(x, type) else None,
)
def test_exercise_classes_hold_only_the_methods_the_learner_writes(
    layer_class, base, written
):
    import tf_transformer.layers as layers

    assert layer_class.__bases__ == (getattr(layers, base),)
    own = {name for name, value in vars(layer_class).items() if callable(value)}
    assert own == written
    assert inspect.getdoc(layer_class).count("\n") < 25  # a short docstring
