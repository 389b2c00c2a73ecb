"""With copied weights our layers compute what Keras and KerasNLP compute."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt

TOLERANCE = 1e-5


def random(shape, seed):
    return tf.random.stateless_normal(shape, seed=(seed, 7))


def copy_keras_attention(ours, theirs):
    """Keras keeps per-head kernels (d, heads, depth); ours are (d, heads*depth)."""
    pairs = [
        (ours.query_dense, theirs.query_dense),
        (ours.key_dense, theirs.key_dense),
        (ours.value_dense, theirs.value_dense),
        (ours.output_dense, theirs.output_dense),
    ]
    for our_dense, their_dense in pairs:
        for our_weight, their_weight in zip(
            our_dense.weights, their_dense.weights, strict=True
        ):
            our_weight.assign(np.reshape(their_weight.numpy(), our_weight.shape))


# Sublayer names in KerasNLP's TransformerEncoder/Decoder -> ours.
HUB_TO_OURS = {
    "self_attention_layer": "self_attention",
    "self_attention": "self_attention",
    "cross_attention": "cross_attention",
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
    "self_attention_layer_norm": "self_attention_layer_norm",
    "cross_attention_layer_norm": "cross_attention_layer_norm",
    "feedforward_layer_norm": "feed_forward_layer_norm",
    "feedforward_intermediate_dense": "feed_forward/intermediate_dense",
    "feedforward_output_dense": "feed_forward/output_dense",
}


def copy_keras_hub_block(ours, theirs):
    our_weights = {w.path.split("/", 1)[1]: w for w in ours.weights}
    assert len(our_weights) == len(theirs.weights)
    for their_weight in theirs.weights:
        parts = their_weight.path.split("/")[1:]
        name = "/".join(HUB_TO_OURS.get(part, part) for part in parts)
        target = our_weights.pop(name)
        target.assign(np.reshape(their_weight.numpy(), target.shape))
    assert not our_weights, f"weights left without a counterpart: {list(our_weights)}"


def assert_close(ours, theirs, rows=None):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if rows is not None:
        ours, theirs = ours[rows], theirs[rows]
    assert np.abs(ours - theirs).max() <= TOLERANCE


@pytest.mark.parametrize(
    "case", ["self", "cross", "causal", "key_padding", "query_and_key_padding"]
)
def test_multi_head_attention_matches_keras(case):
    query = random((3, 6, 16), 1)
    value = query if case != "cross" else random((3, 9, 12), 2)
    ours = tt.MultiHeadAttention(num_heads=4)
    theirs = keras.layers.MultiHeadAttention(num_heads=4, key_dim=4)
    ours(query, value)
    theirs(query, value)
    copy_keras_attention(ours, theirs)

    kwargs, rows = {}, None
    lengths = tf.constant([6, 4, 1])
    real = tf.sequence_mask(lengths, 6)  # (batch, len) True at real tokens
    if case == "causal":
        kwargs["use_causal_mask"] = True
    if case == "key_padding":
        kwargs["attention_mask"] = tf.repeat(real[:, tf.newaxis, :], 6, axis=1)
    if case == "query_and_key_padding":
        kwargs["attention_mask"] = tf.logical_and(
            real[:, :, tf.newaxis], real[:, tf.newaxis, :]
        )
        # Padded query rows are "don't care": Keras spreads their weight over
        # masked keys, ours gives them zero weight.
        rows = real.numpy()
    out, weights = ours(query, value, return_attention_scores=True, **kwargs)
    ref, ref_weights = theirs(query, value, return_attention_scores=True, **kwargs)
    assert_close(out, ref, rows)
    assert_close(np.moveaxis(weights, 1, 2), np.moveaxis(ref_weights, 1, 2), rows)


def test_multi_head_attention_matches_keras_with_implicit_masks():
    ids = tf.constant([[4, 5, 6, 0, 0], [7, 8, 9, 3, 1]])
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    ours = tt.MultiHeadAttention(num_heads=2)
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    # Fresh inputs for every call: Keras's layer deletes its inputs' masks.
    x = embedding(ids)  # carries the Keras mask ids != 0
    ours(x, x)
    x = embedding(ids)
    theirs(x, x)
    copy_keras_attention(ours, theirs)
    x = embedding(ids)
    out = ours(x, x)
    assert x._keras_mask is not None  # ours leaves its inputs untouched
    ref = theirs(embedding(ids), embedding(ids))
    real = (ids != 0).numpy()
    assert_close(out, ref, real)
    np.testing.assert_array_equal(out._keras_mask.numpy(), real)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_keras_nlp(norm_first):
    x = random((3, 7, 16), 3)
    padding = tf.sequence_mask([7, 5, 2], 7)
    ours = tt.EncoderLayer(16, 4, 32, dropout=0.1, norm_first=norm_first)
    theirs = keras_hub.layers.TransformerEncoder(
        32, 4, dropout=0.1, normalize_first=norm_first
    )
    ours(x)
    theirs(x)
    copy_keras_hub_block(ours, theirs)
    assert_close(ours(x, training=False), theirs(x, training=False))
    assert_close(
        ours(x, padding_mask=padding, training=False),
        theirs(x, padding_mask=padding, training=False),
        padding.numpy(),
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_keras_nlp(norm_first):
    target, source = random((3, 6, 16), 4), random((3, 8, 16), 5)
    target_padding = tf.sequence_mask([6, 3, 1], 6)
    source_padding = tf.sequence_mask([8, 2, 5], 8)
    ours = tt.DecoderLayer(16, 4, 32, norm_first=norm_first)
    theirs = keras_hub.layers.TransformerDecoder(32, 4, normalize_first=norm_first)
    ours(target, source)
    theirs(target, source)
    copy_keras_hub_block(ours, theirs)
    out = ours(
        target,
        source,
        padding_mask=target_padding,
        encoder_padding_mask=source_padding,
        training=False,
    )
    ref = theirs(
        target,
        source,
        decoder_padding_mask=target_padding,
        encoder_padding_mask=source_padding,
        training=False,
    )
    assert_close(out, ref, target_padding.numpy())


def test_positional_encoding_matches_keras_nlp_and_the_paper():
    length, depth = 64, 48
    ours = tt.positional_encoding(length, depth).numpy()
    theirs = keras_hub.layers.SinePositionEncoding()(tf.zeros((1, length, depth)))
    assert_close(ours, np.asarray(theirs)[0] if theirs.shape.rank == 3 else theirs)

    paper = np.zeros((length, depth))
    for pos in range(length):
        for i in range(depth // 2):
            angle = pos / 10000 ** (2 * i / depth)
            paper[pos, 2 * i] = np.sin(angle)
            paper[pos, 2 * i + 1] = np.cos(angle)
    assert_close(ours, paper)


def test_positional_encoding_odd_depth_ends_with_a_sine():
    table = tt.positional_encoding(10, 5).numpy()
    np.testing.assert_allclose(table[:, 4], np.sin(np.arange(10) / 10000 ** (4 / 5)))
