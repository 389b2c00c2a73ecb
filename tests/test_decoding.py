"""Greedy and beam-search decoding, with and without the key/value cache."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer.inference import (
    beam_search,
    greedy_decode,
    sequence_log_probability,
)

SOURCE = tf.constant([[5, 6, 7, 8, 9, 0], [3, 4, 11, 12, 0, 0], [13, 0, 0, 0, 0, 0]])


def random_model(norm_first=False):
    keras.utils.set_random_seed(3)
    model = tt.Transformer(
        2, 32, 4, 64, 30, 30, max_length=32, dropout=0.1, norm_first=norm_first
    )
    model.build(((None, None), (None, None)))
    return model


@pytest.fixture(scope="module")
def copy_model():
    """A 1-layer model trained for a few seconds to copy its input."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    body = rng.integers(4, 14, size=(512, 5)).astype("int32")
    target_in = np.concatenate([np.full((512, 1), 2, "int32"), body], 1)
    target_out = np.concatenate([body, np.full((512, 1), 3, "int32")], 1)
    model = tt.Transformer(1, 32, 2, 64, 14, 14, max_length=16, dropout=0.0)
    model.compile(
        optimizer=keras.optimizers.Adam(tt.TransformerSchedule(32, warmup_steps=50)),
        loss=tt.masked_loss,
    )
    model.fit((body, target_in), target_out, epochs=12, batch_size=32, verbose=0)
    return model


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_decoding_gives_the_tokens_of_uncached_decoding(norm_first):
    model = random_model(norm_first)
    cached = greedy_decode(model, SOURCE, max_length=12)
    uncached = greedy_decode(model, SOURCE, max_length=12, use_cache=False)
    np.testing.assert_array_equal(cached.numpy(), uncached.numpy())
    assert cached.shape == (3, 12) and cached.dtype == tf.int32


def test_beam_width_one_is_greedy():
    model = random_model()
    greedy = greedy_decode(model, SOURCE, max_length=10)
    beam, _ = beam_search(model, SOURCE, beam_width=1, alpha=0.0, max_length=10)
    np.testing.assert_array_equal(beam.numpy(), greedy.numpy())


def test_beam_scores_are_the_models_log_probability():
    model = random_model()
    ids, scores = beam_search(model, SOURCE, beam_width=3, max_length=8)
    np.testing.assert_allclose(
        scores.numpy(), sequence_log_probability(model, SOURCE, ids).numpy(), atol=1e-4
    )


@pytest.mark.slow
def test_beam_search_never_scores_worse_than_greedy(copy_model):
    rng = np.random.default_rng(1)
    source = rng.integers(4, 14, size=(16, 5)).astype("int32")
    source[::3, 3:] = 0  # some shorter sources, outside the training data
    greedy = greedy_decode(copy_model, source)
    beam, beam_scores = beam_search(copy_model, source, beam_width=4, alpha=0.0)
    greedy_scores = sequence_log_probability(copy_model, source, greedy).numpy()
    assert (beam_scores.numpy() >= greedy_scores - 1e-4).all()


@pytest.mark.slow
def test_trained_model_copies_and_stops_at_end(copy_model):
    source = np.array([[4, 9, 13, 6, 5], [7, 7, 8, 12, 10]], "int32")
    ids = greedy_decode(copy_model, source, max_length=9).numpy()
    expected_end = np.array([[3, 0, 0, 0], [3, 0, 0, 0]])
    np.testing.assert_array_equal(ids[:, :5], source)
    np.testing.assert_array_equal(ids[:, 5:], expected_end)


def test_decoding_stops_at_end_and_pads_after():
    model = random_model()
    bias = model.output_projection.bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[3]], [100.0]))  # always [END]
    ids = greedy_decode(model, SOURCE, max_length=5).numpy()
    np.testing.assert_array_equal(ids, [[3, 0, 0, 0, 0]] * 3)
    beam, _ = beam_search(model, SOURCE, beam_width=2, max_length=5)
    np.testing.assert_array_equal(beam.numpy(), [[3, 0, 0, 0, 0]] * 3)


def test_decoding_compiles_with_xla_and_an_unknown_batch():
    model = random_model()
    eager = greedy_decode(model, SOURCE, max_length=8)
    xla = tf.function(lambda s: greedy_decode(model, s, max_length=8), jit_compile=True)
    np.testing.assert_array_equal(xla(SOURCE).numpy(), eager.numpy())
    spec = tf.TensorSpec((None, None), tf.int32)
    beam_graph = tf.function(
        lambda s: beam_search(model, s, beam_width=3, max_length=8),
        input_signature=[spec],
    )
    beam_xla = tf.function(
        lambda s: beam_search(model, s, beam_width=3, max_length=8), jit_compile=True
    )
    np.testing.assert_array_equal(
        beam_graph(SOURCE)[0].numpy(), beam_xla(SOURCE)[0].numpy()
    )


def test_decoding_refuses_bad_arguments():
    model = random_model()
    with pytest.raises(TypeError, match="source_ids"):
        greedy_decode(model, tf.constant([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(model, SOURCE, beam_width=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(model, SOURCE, max_length=0)
    with pytest.raises(TypeError, match="model"):
        greedy_decode(keras.Sequential(), SOURCE)
