"""Properties the Transformer must have, whatever its weights."""

import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt


@pytest.fixture(scope="module")
def model():
    model = tt.Transformer(
        num_layers=2,
        d_model=16,
        num_heads=4,
        dff=32,
        input_vocab_size=30,
        target_vocab_size=40,
        max_length=32,
    )
    model((tf.ones((1, 3), tf.int32), tf.ones((1, 3), tf.int32)))
    return model


def test_changing_a_target_token_never_changes_earlier_logits(model):
    source = tf.constant([[4, 9, 11, 7, 3]])
    target = np.array([[2, 5, 8, 13, 21, 6]])
    base = model((source, target), training=False).numpy()
    for t in range(1, target.shape[1]):
        changed = target.copy()
        changed[0, t] = (changed[0, t] + 7) % 40 or 1
        logits = model((source, tf.constant(changed)), training=False).numpy()
        np.testing.assert_allclose(logits[:, :t], base[:, :t], atol=1e-6)
        # The change is visible from position t on: the test can fail.
        assert np.abs(logits[:, t:] - base[:, t:]).max() > 1e-4


def test_appending_padding_never_changes_real_positions(model):
    source = tf.constant([[4, 9, 11, 7]])
    target = tf.constant([[2, 5, 8]])
    base = model((source, target), training=False).numpy()
    padded_source = tf.pad(source, [[0, 0], [0, 5]])
    padded_target = tf.pad(target, [[0, 0], [0, 4]])
    logits = model((padded_source, padded_target), training=False).numpy()
    np.testing.assert_allclose(logits[:, :3], base, atol=1e-5)


def test_padding_in_a_batch_does_not_leak_between_sequences(model):
    short = (tf.constant([[4, 9, 0, 0]]), tf.constant([[2, 5, 0]]))
    long = (tf.constant([[6, 1, 8, 3]]), tf.constant([[2, 7, 7]]))
    alone = model(short, training=False).numpy()
    batch = (tf.concat([short[0], long[0]], 0), tf.concat([short[1], long[1]], 0))
    together = model(batch, training=False).numpy()
    np.testing.assert_allclose(together[:1, :2], alone[:, :2], atol=1e-5)


def test_encoder_without_positions_is_permutation_equivariant():
    encoder = tt.Encoder(num_layers=2, d_model=16, num_heads=4, dff=32)
    x = tf.random.stateless_normal((2, 7, 16), seed=(1, 2))
    permutation = np.array([3, 0, 6, 1, 5, 2, 4])
    out = encoder(x, training=False).numpy()
    permuted = encoder(tf.gather(x, permutation, axis=1), training=False).numpy()
    np.testing.assert_allclose(permuted, out[:, permutation], atol=1e-5)


def test_encoder_with_positions_is_not_permutation_equivariant():
    encoder = tt.Encoder(num_layers=2, d_model=16, num_heads=4, dff=32, vocab_size=50)
    ids = tf.constant([[4, 9, 11, 7, 3, 21, 8]])
    permutation = np.array([3, 0, 6, 1, 5, 2, 4])
    out = encoder(ids, training=False).numpy()
    permuted = encoder(tf.gather(ids, permutation, axis=1), training=False).numpy()
    assert np.abs(permuted - out[:, permutation]).max() > 1e-2


def test_attention_weights_sum_to_one_and_are_zero_at_masked_keys():
    query = tf.random.stateless_normal((2, 3, 5, 8), seed=(3, 4))
    key = tf.random.stateless_normal((2, 3, 6, 8), seed=(5, 6))
    mask = tf.constant([[True] * 4 + [False] * 2, [True] * 6])[:, None, None, :]
    _, weights = tt.scaled_dot_product_attention(query, key, key, mask)
    weights = weights.numpy()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert (weights[0, ..., 4:] == 0).all()
    assert (weights[1] > 0).all()


def test_multi_head_attention_weights_are_zero_at_padded_keys():
    ids = tf.constant([[3, 4, 0, 0], [5, 6, 7, 8]])
    x = tt.PositionalEmbedding(10, 8)(ids)
    _, weights = tt.MultiHeadAttention(2)(x, x, return_attention_scores=True)
    weights = weights.numpy()
    assert (weights[0, :, :, 2:] == 0).all()
    np.testing.assert_allclose(weights[0, :, :2].sum(-1), 1.0, atol=1e-6)


def test_fully_masked_query_row_gives_zeros_not_nan():
    query = key = tf.random.stateless_normal((1, 3, 4), seed=(7, 8))
    mask = tf.constant(
        [[[True, True, False], [False, False, False], [True, True, True]]]
    )
    with tf.GradientTape() as tape:
        tape.watch(query)
        output, weights = tt.scaled_dot_product_attention(query, key, key, mask)
        loss = tf.reduce_sum(output)
    gradient = tape.gradient(loss, query)
    assert np.isfinite(output.numpy()).all() and np.isfinite(gradient.numpy()).all()
    np.testing.assert_array_equal(weights.numpy()[0, 1], 0.0)
    np.testing.assert_array_equal(output.numpy()[0, 1], 0.0)


def test_scaling_by_sqrt_depth_keeps_the_softmax_soft():
    # Unit-variance queries and keys of depth 512: unscaled scores have a
    # standard deviation of ~22 and the softmax saturates; scaled ones do not.
    query = tf.random.stateless_normal((1, 16, 512), seed=(9, 9))
    key = tf.random.stateless_normal((1, 16, 512), seed=(9, 10))
    _, weights = tt.scaled_dot_product_attention(query, key, key)
    assert weights.numpy().max() < 0.9


def test_dropout_is_inactive_at_inference_and_active_in_training():
    layer = tt.EncoderLayer(16, 4, 32, dropout=0.5, attention_dropout=0.5)
    x = tf.random.stateless_normal((2, 5, 16), seed=(1, 1))
    first, second = layer(x, training=False), layer(x, training=False)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert np.abs(layer(x, training=True).numpy() - first.numpy()).max() > 1e-3


def test_masks_combine_to_padding_and_causal():
    ids = tf.constant([[5, 6, 0]])
    combined = tt.combine_masks(tt.padding_mask(ids), tt.causal_mask(3), None)
    expected = [[[1, 0, 0], [1, 1, 0], [1, 1, 0]]]
    np.testing.assert_array_equal(combined.numpy().astype(int), expected)
    assert tt.combine_masks(None, None) is None


def test_causal_mask_includes_the_diagonal():
    mask = tt.causal_mask(4).numpy()
    np.testing.assert_array_equal(mask, np.tril(np.ones((4, 4), bool)))
    assert tt.padding_mask(tf.constant([[1, 0]]), pad_id=1).numpy().tolist() == [
        [[False, True]]
    ]


def test_embeddings_are_scaled_by_sqrt_d_model():
    layer = tt.PositionalEmbedding(vocab_size=10, d_model=64, max_length=4)
    ids = tf.constant([[3, 7]])
    out = layer(ids).numpy()
    table = layer.token_embedding.embeddings.numpy()
    expected = table[[3, 7]] * 8.0 + tt.positional_encoding(2, 64).numpy()
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
