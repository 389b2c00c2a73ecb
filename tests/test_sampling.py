"""top_k_filter and top_p_filter: their contracts, and samplers built on them
drawing tokens as often as keras_hub's TopKSampler / TopPSampler do."""

import numpy as np
import pytest
import tensorflow as tf
from keras_hub.samplers import TopKSampler, TopPSampler

import tf_transformer as tt

INF = np.inf


def test_top_k_keeps_the_k_largest_and_sets_the_rest_to_minus_infinity():
    logits = tf.constant([[1.0, 3.0, 2.0, 0.0], [-1.0, -5.0, 4.0, 2.5]])
    filtered = tt.top_k_filter(logits, 2).numpy()
    np.testing.assert_array_equal(
        filtered, [[-INF, 3.0, 2.0, -INF], [-INF, -INF, 4.0, 2.5]]
    )


def test_top_k_keeps_ties_with_the_kth_value():
    filtered = tt.top_k_filter(tf.constant([2.0, 1.0, 2.0, 2.0, 0.5]), 2).numpy()
    np.testing.assert_array_equal(filtered, [2.0, -INF, 2.0, 2.0, -INF])


@pytest.mark.parametrize("k", [5, 6, 100])
def test_top_k_at_least_the_vocabulary_changes_nothing(k):
    logits = tf.random.stateless_normal((3, 5), seed=(1, 2))
    np.testing.assert_array_equal(tt.top_k_filter(logits, k).numpy(), logits.numpy())


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = tf.math.log(tf.constant([[0.05, 0.5, 0.15, 0.3]]))
    kept = np.isfinite(tt.top_p_filter(logits, 0.75).numpy())
    np.testing.assert_array_equal(kept, [[False, True, False, True]])
    # 0.8 is past 0.5 + 0.3: the token that crosses p is kept.
    kept = np.isfinite(tt.top_p_filter(logits, 0.81).numpy())
    np.testing.assert_array_equal(kept, [[False, True, True, True]])


def test_top_p_always_keeps_the_most_probable_token():
    logits = tf.constant([[5.0, 1.0, 0.0], [0.0, 0.1, 9.0]])
    filtered = tt.top_p_filter(logits, 0.01).numpy()
    np.testing.assert_array_equal(np.isfinite(filtered), [[1, 0, 0], [0, 0, 1]])
    assert filtered[0, 0] == 5.0 and filtered[1, 2] == 9.0  # values unchanged


def test_top_p_of_one_changes_nothing():
    logits = tf.constant([[30.0, -30.0, 0.0, -60.0]])
    np.testing.assert_array_equal(tt.top_p_filter(logits, 1.0).numpy(), logits.numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", ["top_k_filter", "top_p_filter"])
def test_filters_keep_any_leading_axes_and_the_dtype(name, dtype):
    logits = tf.random.stateless_normal((2, 3, 4, 7), seed=(3, 4))
    rows = tf.reshape(logits, (-1, 7))
    argument = 3 if name == "top_k_filter" else 0.6
    function = getattr(tt, name)
    filtered = function(tf.cast(logits, dtype), argument)
    assert filtered.dtype == dtype and filtered.shape == logits.shape
    # The same as filtering each row of the flattened batch.
    per_row = function(rows, argument)
    np.testing.assert_array_equal(
        np.isfinite(tf.reshape(filtered, (-1, 7)).numpy()), np.isfinite(per_row)
    )
    assert np.isneginf(tf.cast(filtered, tf.float32).numpy()).any()


@pytest.mark.parametrize("jit_compile", [False, True])
def test_filters_run_in_tf_function_with_unknown_shapes(jit_compile):
    logits = tf.random.stateless_normal((4, 9), seed=(5, 6))
    spec = tf.TensorSpec((None, None), tf.float32)
    for function, argument in ((tt.top_k_filter, 3), (tt.top_p_filter, 0.7)):
        if jit_compile:
            spec = tf.TensorSpec((None, 9), tf.float32)  # XLA needs top_k's k static
        graph = tf.function(
            lambda x, f=function, a=argument: f(x, a),
            input_signature=[spec],
            jit_compile=jit_compile,
        )
        np.testing.assert_array_equal(
            graph(logits).numpy(), function(logits, argument).numpy()
        )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tt.top_k_filter(tf.zeros((2, 3)), 0), "Received: k=0"),
        (lambda: tt.top_k_filter(tf.zeros((2, 3)), 2.0), "Received: k=2.0"),
        (lambda: tt.top_k_filter(tf.zeros((2, 3)), True), "Received: k=True"),
        (lambda: tt.top_k_filter(tf.zeros((2, 3), tf.int32), 1), "dtype int32"),
        (lambda: tt.top_k_filter(tf.constant(1.0), 1), "shape ()"),
        (lambda: tt.top_p_filter(tf.zeros((2, 3)), 0.0), "Received: p=0.0"),
        (lambda: tt.top_p_filter(tf.zeros((2, 3)), 1.5), "Received: p=1.5"),
        (lambda: tt.top_p_filter(tf.zeros((2, 3)), "0.9"), "Received: p='0.9'"),
    ],
)
def test_bad_filter_arguments_raise_errors_naming_them(call, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        call()


# ------------------------------------------------ agreement with keras_hub

DRAWS = 20_000
# Seven tokens; with p = 0.7 the nucleus is {0.40, 0.20, 0.15} (cumulative
# 0.40, 0.60, 0.75): p sits 0.05 away from both neighbouring sums, so the
# libraries' different conventions at the exact boundary do not matter.
PROBABILITIES = np.array([0.20, 0.05, 0.40, 0.03, 0.15, 0.12, 0.05])


def _our_frequencies(temperature, top_k=None, top_p=None):
    # The filters on tempered logits (next_token_logits would also forbid
    # id 0, [PAD], which keras_hub's samplers do not know about).
    logits = np.log(np.tile(PROBABILITIES, (DRAWS, 1))).astype("float32") / temperature
    filtered = tt.top_k_filter(logits, top_k) if top_k else logits
    filtered = tt.top_p_filter(filtered, top_p) if top_p else filtered
    draws = tf.random.stateless_categorical(filtered, 1, seed=(11, 12))[:, 0]
    return np.bincount(draws.numpy(), minlength=len(PROBABILITIES)) / DRAWS


def _keras_hub_frequencies(sampler):
    logits = np.log(np.tile(PROBABILITIES, (DRAWS, 1))).astype("float32")
    draws = sampler.get_next_token(sampler.compute_probabilities(logits))
    return np.bincount(np.asarray(draws), minlength=len(PROBABILITIES)) / DRAWS


def _assert_same_distribution(ours, theirs):
    # Two independent samples of 20,000 draws: the difference of two
    # frequencies has standard deviation sqrt(2 q (1 - q) / n); allow 4.5 of
    # them (a false alarm about once in 100,000 comparisons).
    pooled = (ours + theirs) / 2
    tolerance = 4.5 * np.sqrt(2 * pooled * (1 - pooled) / DRAWS) + 1e-12
    assert (np.abs(ours - theirs) <= tolerance).all(), (ours, theirs, tolerance)


@pytest.mark.parametrize("k, temperature", [(3, 1.0), (1, 1.0), (4, 0.7), (6, 1.5)])
def test_top_k_sampling_draws_tokens_as_often_as_keras_hub(k, temperature):
    ours = _our_frequencies(temperature, top_k=k)
    theirs = _keras_hub_frequencies(TopKSampler(k=k, seed=7, temperature=temperature))
    _assert_same_distribution(ours, theirs)
    assert (ours[np.argsort(-PROBABILITIES / temperature)[k:]] == 0).all()


@pytest.mark.parametrize("p, temperature", [(0.7, 1.0), (0.5, 1.0), (0.8, 1.0)])
def test_top_p_sampling_draws_tokens_as_often_as_keras_hub(p, temperature):
    ours = _our_frequencies(temperature, top_p=p)
    theirs = _keras_hub_frequencies(TopPSampler(p=p, seed=7, temperature=temperature))
    _assert_same_distribution(ours, theirs)


def test_nucleus_frequencies_are_the_renormalised_probabilities():
    ours = _our_frequencies(1.0, top_p=0.7)
    expected = np.where(PROBABILITIES >= 0.15, PROBABILITIES, 0.0)
    expected /= expected.sum()
    tolerance = 4.5 * np.sqrt(expected * (1 - expected) / DRAWS) + 1e-12
    assert (np.abs(ours - expected) <= tolerance).all(), (ours, expected)


def test_sample_next_token_at_temperature_zero_is_the_argmax():
    logits = tf.constant([[0.1, 2.0, -1.0], [3.0, -2.0, 2.5]])
    tokens = tt.sample_next_token(logits, temperature=0)
    assert tokens.dtype == tf.int32
    np.testing.assert_array_equal(tokens.numpy(), [1, 0])


def test_sample_next_token_draws_from_the_tempered_and_filtered_distribution():
    # tempered by 0.5: [0.5, 0.2, 0.15, 0.15] ** 2, renormalised; top-k = 3
    # removes one of the two 0.15s (a tie: both kept), top-p = 0.8 of the
    # tempered distribution [0.76, 0.12, 0.07, 0.07] keeps the first two.
    logits = np.log(np.tile([[0.5, 0.2, 0.15, 0.15]], (DRAWS, 1))).astype("float32")
    tokens = tt.sample_next_token(logits, 0.5, top_k=3, top_p=0.8, seed=1).numpy()
    frequencies = np.bincount(tokens, minlength=4) / DRAWS
    expected = np.array([0.25, 0.04, 0.0, 0.0]) / 0.29
    tolerance = 4.5 * np.sqrt(expected * (1 - expected) / DRAWS) + 1e-12
    assert (np.abs(frequencies - expected) <= tolerance).all(), frequencies


def test_sample_next_token_is_reproducible_with_a_seed_and_fresh_without():
    logits = tf.zeros((512, 5))
    first = tt.sample_next_token(logits, seed=3).numpy()
    np.testing.assert_array_equal(first, tt.sample_next_token(logits, seed=3))
    pair = tf.constant([3, 4])
    np.testing.assert_array_equal(
        tt.sample_next_token(logits, seed=pair), tt.sample_next_token(logits, seed=pair)
    )
    assert not np.array_equal(first, tt.sample_next_token(logits, seed=4))
    assert not np.array_equal(
        tt.sample_next_token(logits).numpy(), tt.sample_next_token(logits).numpy()
    )


def test_sample_next_token_compiles_with_xla():
    sample = tf.function(
        lambda x, s: tt.sample_next_token(x, 1.5, top_k=2, seed=s), jit_compile=True
    )
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]] * 64))
    tokens = sample(logits, tf.constant([1, 2])).numpy()
    assert set(tokens.tolist()) <= {0, 1}
    np.testing.assert_array_equal(tokens, sample(logits, tf.constant([1, 2])))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-1.0), "temperature=-1.0"),
        (dict(top_k=0), "top_k=0"),
        (dict(top_p=1.5), "top_p=1.5"),
        (dict(seed="a"), "seed='a'"),
    ],
)
def test_bad_sampling_arguments_raise_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tt.sample_next_token(tf.zeros((2, 4)), **kwargs)
    with pytest.raises(ValueError, match="logits"):
        tt.sample_next_token(tf.zeros((4,)))
