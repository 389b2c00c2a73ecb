"""Every public layer passes the shared `run_layer_test` checks."""

import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tests.layer_testing import run_layer_test

IDS = tf.constant([[5, 9, 3, 0], [7, 1, 0, 0]], tf.int32)
TARGET_IDS = tf.constant([[2, 4, 6], [2, 8, 0]], tf.int32)


def vectors(batch, length, depth, seed=0):
    return tf.random.stateless_normal((batch, length, depth), seed=(seed, 1))


def test_positional_embedding_sinusoidal():
    run_layer_test(
        tt.PositionalEmbedding,
        dict(vocab_size=12, d_model=8, max_length=16),
        [IDS],
        expected_output_shape=(2, 4, 8),
    )


def test_positional_embedding_learned_without_mask():
    layer, _ = run_layer_test(
        tt.PositionalEmbedding,
        dict(
            vocab_size=12, d_model=8, max_length=16, position="learned", mask_zero=False
        ),
        [IDS],
        expected_output_shape=(2, 4, 8),
        run_mixed_precision=False,
    )
    assert layer.compute_mask(IDS) is None


@pytest.mark.parametrize("return_attention_scores", [False, True])
def test_multi_head_attention(return_attention_scores):
    _, outputs = run_layer_test(
        tt.MultiHeadAttention,
        dict(num_heads=2, dropout=0.1),
        [vectors(2, 3, 8), vectors(2, 5, 6, seed=1)],
        call_kwargs=dict(return_attention_scores=return_attention_scores),
        expected_output_shape=(2, 3, 8),
    )
    if return_attention_scores:
        assert outputs[1].shape == (2, 2, 3, 5)


def test_multi_head_attention_custom_sizes_and_causal():
    run_layer_test(
        tt.MultiHeadAttention,
        dict(num_heads=3, key_dim=4, value_dim=5, output_dim=7, use_bias=False),
        [vectors(2, 4, 6), vectors(2, 4, 6, seed=2)],
        call_kwargs=dict(use_causal_mask=True),
        expected_output_shape=(2, 4, 7),
    )


def test_feed_forward():
    run_layer_test(
        tt.FeedForward,
        dict(d_model=8, dff=16, activation="gelu"),
        [vectors(2, 3, 8)],
        expected_output_shape=(2, 3, 8),
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer(norm_first):
    run_layer_test(
        tt.EncoderLayer,
        dict(d_model=8, num_heads=2, dff=16, norm_first=norm_first),
        [vectors(2, 5, 8)],
        call_kwargs=dict(return_attention_scores=True),
        expected_output_shape=(2, 5, 8),
    )


def test_decoder_layer():
    _, outputs = run_layer_test(
        tt.DecoderLayer,
        dict(d_model=8, num_heads=2, dff=16),
        [vectors(2, 3, 8), vectors(2, 5, 8, seed=3)],
        call_kwargs=dict(return_attention_scores=True),
        expected_output_shape=(2, 3, 8),
    )
    assert outputs[1].shape == (2, 2, 3, 3) and outputs[2].shape == (2, 2, 3, 5)


def test_encoder_on_token_ids():
    run_layer_test(
        tt.Encoder,
        dict(num_layers=2, d_model=8, num_heads=2, dff=16, vocab_size=12, max_length=8),
        [IDS],
        expected_output_shape=(2, 4, 8),
    )


def test_encoder_on_vectors_pre_ln():
    _, outputs = run_layer_test(
        tt.Encoder,
        dict(num_layers=2, d_model=8, num_heads=2, dff=16, norm_first=True),
        [vectors(2, 4, 8)],
        call_kwargs=dict(return_attention_scores=True),
        expected_output_shape=(2, 4, 8),
    )
    assert len(outputs[1]) == 2


def test_decoder_on_token_ids():
    _, outputs = run_layer_test(
        tt.Decoder,
        dict(num_layers=2, d_model=8, num_heads=2, dff=16, vocab_size=12, max_length=8),
        [TARGET_IDS, vectors(2, 4, 8)],
        call_kwargs=dict(return_attention_scores=True),
        expected_output_shape=(2, 3, 8),
    )
    assert [w.shape for w in outputs[1]["cross_attention"]] == [(2, 2, 3, 4)] * 2


@pytest.mark.parametrize("shared_embeddings", [False, True])
def test_transformer(shared_embeddings):
    _, logits = run_layer_test(
        tt.Transformer,
        dict(
            num_layers=1,
            d_model=8,
            num_heads=2,
            dff=16,
            input_vocab_size=12,
            target_vocab_size=12,
            max_length=8,
            shared_embeddings=shared_embeddings,
        ),
        [IDS, TARGET_IDS],
        nested_input=True,
        expected_output_shape=(2, 3, 12),
        output_dtype="float32",
    )
    assert logits.dtype == tf.float32


def test_transformer_shared_embeddings_use_one_table():
    model = tt.Transformer(1, 8, 2, 16, 12, 12, shared_embeddings=True)
    model((IDS, TARGET_IDS))
    separate = tt.Transformer(1, 8, 2, 16, 12, 12)
    separate((IDS, TARGET_IDS))
    assert len(separate.weights) - len(model.weights) == 1
    assert model.source_embedding is model.target_embedding


def test_transformer_returns_attention_of_every_layer():
    model = tt.Transformer(3, 8, 2, 16, 12, 10)
    logits, weights = model((IDS, TARGET_IDS), return_attention_scores=True)
    assert logits.shape == (2, 3, 10)
    assert [w.shape for w in weights["encoder"]] == [(2, 2, 4, 4)] * 3
    assert [w.shape for w in weights["decoder_self_attention"]] == [(2, 2, 3, 3)] * 3
    assert [w.shape for w in weights["decoder_cross_attention"]] == [(2, 2, 3, 4)] * 3
    np.testing.assert_allclose(
        tf.reduce_sum(weights["decoder_cross_attention"][0], -1).numpy()[0],
        1,
        atol=1e-6,
    )
