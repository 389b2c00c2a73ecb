"""Bad input fails early with an error that names the argument and the value."""

import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt

X = tf.zeros((2, 5, 16))
IDS = tf.constant([[4, 5, 0]])


def mha_call(**kwargs):
    layer = tt.MultiHeadAttention(num_heads=2)
    layer(X, X)
    return layer(**{"query": X, "value": X, **kwargs})


BAD_CALLS = {
    # Constructor arguments.
    "d_model not divisible by num_heads": (
        lambda: tt.EncoderLayer(d_model=10, num_heads=3, dff=8),
        ValueError,
        "d_model",
    ),
    "zero heads": (lambda: tt.MultiHeadAttention(num_heads=0), ValueError, "num_heads"),
    "negative key_dim": (
        lambda: tt.MultiHeadAttention(num_heads=2, key_dim=-4),
        ValueError,
        "key_dim",
    ),
    "fractional num_heads": (
        lambda: tt.MultiHeadAttention(num_heads=2.5),
        TypeError,
        "num_heads",
    ),
    "dropout of 1.5": (
        lambda: tt.FeedForward(d_model=8, dff=16, dropout=1.5),
        ValueError,
        "dropout",
    ),
    "zero dff": (lambda: tt.FeedForward(d_model=8, dff=0), ValueError, "dff"),
    "unknown activation": (
        lambda: tt.FeedForward(d_model=8, dff=16, activation="relu6x"),
        ValueError,
        "activation",
    ),
    "unknown position kind": (
        lambda: tt.PositionalEmbedding(10, 8, position="rotary"),
        ValueError,
        "position",
    ),
    "zero vocab_size": (lambda: tt.PositionalEmbedding(0, 8), ValueError, "vocab_size"),
    "norm_first as a string": (
        lambda: tt.EncoderLayer(8, 2, 16, norm_first="yes"),
        TypeError,
        "norm_first",
    ),
    "negative layer_norm_epsilon": (
        lambda: tt.DecoderLayer(8, 2, 16, layer_norm_epsilon=-1e-5),
        ValueError,
        "layer_norm_epsilon",
    ),
    "zero num_layers": (lambda: tt.Encoder(0, 8, 2, 16), ValueError, "num_layers"),
    "shared embeddings with different vocabularies": (
        lambda: tt.Transformer(1, 8, 2, 16, 10, 12, shared_embeddings=True),
        ValueError,
        "shared_embeddings",
    ),
    "zero warmup_steps": (
        lambda: tt.TransformerSchedule(128, warmup_steps=0),
        ValueError,
        "warmup_steps",
    ),
    "d_model as a float": (
        lambda: tt.TransformerSchedule(128.0),
        TypeError,
        "d_model",
    ),
    # Functions.
    "positional encoding of zero length": (
        lambda: tt.positional_encoding(0, 8),
        ValueError,
        "length",
    ),
    "positional encoding of fractional depth": (
        lambda: tt.positional_encoding(10, 7.5),
        TypeError,
        "depth",
    ),
    "causal mask of negative length": (
        lambda: tt.causal_mask(-2),
        ValueError,
        "length",
    ),
    "padding mask of float ids": (
        lambda: tt.padding_mask(tf.constant([[1.0, 0.0]])),
        TypeError,
        "token_ids",
    ),
    "padding mask of rank 1 ids": (
        lambda: tt.padding_mask(tf.constant([1, 0])),
        ValueError,
        "token_ids",
    ),
    "attention on rank 1 query": (
        lambda: tt.scaled_dot_product_attention(tf.zeros(4), tf.zeros(4), tf.zeros(4)),
        ValueError,
        "query",
    ),
    "query and key of different depth": (
        lambda: tt.scaled_dot_product_attention(
            tf.zeros((2, 3, 8)), tf.zeros((2, 4, 6)), tf.zeros((2, 4, 6))
        ),
        ValueError,
        "key",
    ),
    "key and value of different length": (
        lambda: tt.scaled_dot_product_attention(
            tf.zeros((2, 3, 8)), tf.zeros((2, 4, 8)), tf.zeros((2, 5, 8))
        ),
        ValueError,
        "value",
    ),
    "float mask (1 = blocked confusion)": (
        lambda: tt.scaled_dot_product_attention(X, X, X, mask=tf.ones((2, 5, 5))),
        TypeError,
        "mask",
    ),
    "mask of the wrong shape": (
        lambda: tt.scaled_dot_product_attention(X, X, X, mask=tf.ones((2, 5, 3), bool)),
        ValueError,
        "mask",
    ),
    # Layer calls.
    "multi-head attention on a rank 2 query": (
        lambda: mha_call(query=tf.zeros((5, 16))),
        ValueError,
        "query",
    ),
    "multi-head attention with a float attention_mask": (
        lambda: mha_call(attention_mask=tf.ones((2, 5, 5))),
        TypeError,
        "attention_mask",
    ),
    "multi-head attention on a query of another width than it was built for": (
        lambda: mha_call(query=tf.zeros((2, 5, 12))),
        ValueError,
        "query",
    ),
    "encoder layer on vectors of the wrong width": (
        lambda: tt.EncoderLayer(8, 2, 16)(tf.zeros((2, 5, 6))),
        ValueError,
        "inputs",
    ),
    "decoder layer with encoder outputs of the wrong width": (
        lambda: tt.DecoderLayer(8, 2, 16)(tf.zeros((2, 5, 8)), tf.zeros((2, 5, 4))),
        ValueError,
        "encoder_outputs",
    ),
    "encoder padding_mask of rank 4": (
        lambda: tt.EncoderLayer(16, 2, 8)(X, padding_mask=tf.ones((2, 1, 1, 5), bool)),
        ValueError,
        "padding_mask",
    ),
    "token id beyond the vocabulary": (
        lambda: tt.PositionalEmbedding(5, 8)(tf.constant([[1, 7]])),
        ValueError,
        "inputs",
    ),
    "negative token id": (
        lambda: tt.PositionalEmbedding(5, 8)(tf.constant([[1, -1]])),
        ValueError,
        "inputs",
    ),
    "sequence longer than max_length": (
        lambda: tt.PositionalEmbedding(5, 8, max_length=2)(tf.constant([[1, 2, 3]])),
        ValueError,
        "max_length",
    ),
    "float token ids": (
        lambda: tt.PositionalEmbedding(5, 8)(tf.constant([[1.0, 2.0]])),
        TypeError,
        "inputs",
    ),
    "transformer called on one tensor": (
        lambda: tt.Transformer(1, 8, 2, 16, 10, 10)(IDS),
        ValueError,
        "inputs",
    ),
    "transformer called on float target ids": (
        lambda: tt.Transformer(1, 8, 2, 16, 10, 10)((IDS, tf.constant([[2.0, 3.0]]))),
        TypeError,
        "target_in_ids",
    ),
    "loss with labels that do not match the logits": (
        lambda: tt.masked_loss(tf.zeros((2, 3), tf.int32), tf.zeros((2, 4, 7))),
        ValueError,
        "y_true",
    ),
    "label smoothing of 1": (
        lambda: tt.masked_loss(IDS, tf.zeros((1, 3, 7)), label_smoothing=1.0),
        ValueError,
        "label_smoothing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_names_the_argument(case):
    bad_call, error_type, argument = BAD_CALLS[case]
    with pytest.raises(error_type) as error:
        bad_call()
    message = str(error.value)
    assert argument in message, message
    assert "Received" in message, message


def test_there_are_at_least_twenty_distinct_bad_calls():
    assert len(BAD_CALLS) >= 20
    assert len({argument for _, _, argument in BAD_CALLS.values()}) >= 15


def test_integer_masks_are_accepted_as_one_means_attend():
    q = tf.random.stateless_normal((1, 2, 4), seed=(1, 1))
    int_mask = tf.constant([[[1, 0], [1, 1]]])
    _, with_int = tt.scaled_dot_product_attention(q, q, q, mask=int_mask)
    _, with_bool = tt.scaled_dot_product_attention(q, q, q, mask=int_mask == 1)
    np.testing.assert_array_equal(with_int.numpy(), with_bool.numpy())
