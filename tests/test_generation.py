"""generate: cached steps equal the full model, greedy is argmax, seeds repeat,
prompts of different lengths, XLA, and clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer.inference.decoding import DecoderCache, decoder_step

PROMPTS = tf.constant([[5, 6, 7, 8], [9, 10, 0, 0], [11, 0, 0, 0]])


def random_model(norm_first=False, dtype=None):
    keras.utils.set_random_seed(2)
    model = tt.CausalLM(
        2, 32, 4, 64, 30, max_length=40, norm_first=norm_first, dtype=dtype
    )
    model.build((None, None))
    return model


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_step_logits_equal_the_full_model_at_every_position(norm_first):
    model = random_model(norm_first)
    sequence = tf.constant([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 3, 4, 5, 6]])
    full = model(sequence, training=False).numpy()
    cache = DecoderCache.create_self_attention(model, 2, sequence.shape[1])
    for index in range(sequence.shape[1]):
        logits, cache = decoder_step(model, sequence[:, index], index, cache)
        np.testing.assert_allclose(logits.numpy(), full[:, index], atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_generation_gives_the_tokens_of_uncached_generation(norm_first):
    model = random_model(norm_first)
    for kwargs in (dict(temperature=0), dict(top_k=5, top_p=0.9, seed=4)):
        cached = tt.generate(model, PROMPTS, 12, stop_token_ids=(), **kwargs)
        uncached = tt.generate(
            model, PROMPTS, 12, stop_token_ids=(), use_cache=False, **kwargs
        )
        np.testing.assert_array_equal(cached.numpy(), uncached.numpy())
        assert cached.shape == (3, 12) and cached.dtype == tf.int32


def test_greedy_generation_takes_the_argmax_of_the_full_model():
    model = random_model()
    prompt = tf.constant([[5, 6, 7]])
    generated = tt.generate(model, prompt, 6, temperature=0, stop_token_ids=())
    sequence = prompt.numpy()
    for _ in range(6):
        logits = model(sequence).numpy()[0, -1]
        logits[0] = -np.inf  # [PAD] is never generated
        sequence = np.concatenate([sequence, [[logits.argmax()]]], axis=1)
    np.testing.assert_array_equal(generated.numpy(), sequence[:, 3:])


def test_top_k_of_one_samples_the_greedy_tokens():
    model = random_model()
    greedy = tt.generate(model, PROMPTS, 8, temperature=0)
    sampled = tt.generate(model, PROMPTS, 8, temperature=1.3, top_k=1, seed=9)
    np.testing.assert_array_equal(sampled.numpy(), greedy.numpy())


def test_each_prompt_is_continued_as_if_it_were_alone():
    model = random_model()
    together = tt.generate(model, PROMPTS, 10, temperature=0).numpy()
    for row, prompt in enumerate(PROMPTS.numpy()):
        alone = tt.generate(model, prompt[prompt != 0][None], 10, temperature=0)
        np.testing.assert_array_equal(together[row], alone.numpy()[0])


def test_same_seed_same_text_other_seed_other_text():
    model = random_model()
    first = tt.generate(model, PROMPTS, 16, seed=1, stop_token_ids=()).numpy()
    again = tt.generate(model, PROMPTS, 16, seed=1, stop_token_ids=()).numpy()
    other = tt.generate(model, PROMPTS, 16, seed=2, stop_token_ids=()).numpy()
    tensor_seed = tt.generate(
        model, PROMPTS, 16, seed=tf.constant([1, 0]), stop_token_ids=()
    ).numpy()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, tensor_seed)
    assert not np.array_equal(first, other)


def test_without_a_seed_every_call_draws_anew_also_in_a_compiled_function():
    model = random_model()
    compiled = tf.function(lambda p: tt.generate(model, p, 16, stop_token_ids=()))
    outputs = {compiled(PROMPTS).numpy().tobytes() for _ in range(3)}
    assert len(outputs) == 3


def test_a_row_stops_after_its_stop_token_and_is_padded():
    model = random_model()
    free = tt.generate(model, PROMPTS, 10, temperature=0, stop_token_ids=()).numpy()
    stop = int(free[0, 2])  # make the third token of row 0 a stop token
    stopped = tt.generate(
        model, PROMPTS, 10, temperature=0, stop_token_ids=(stop,)
    ).numpy()
    for row in range(3):
        hits = np.flatnonzero(free[row] == stop)
        end = hits[0] + 1 if hits.size else 10
        np.testing.assert_array_equal(stopped[row, :end], free[row, :end])
        assert (stopped[row, end:] == 0).all()
    assert (stopped[0, 3:] == 0).all()


@pytest.mark.parametrize("jit_compile", [False, True])
def test_generation_runs_in_a_compiled_function(jit_compile):
    model = random_model()

    def compiled(**kwargs):
        return tf.function(
            lambda p: tt.generate(model, p, 12, **kwargs),
            jit_compile=jit_compile,
            input_signature=[tf.TensorSpec((None, 4), tf.int32)],
        )

    greedy = compiled(temperature=0)(PROMPTS).numpy()
    np.testing.assert_array_equal(
        greedy, tt.generate(model, PROMPTS, 12, temperature=0).numpy()
    )
    sampling = dict(temperature=0.8, top_k=4, top_p=0.9, seed=3)
    sample = compiled(**sampling)
    first = sample(PROMPTS).numpy()
    np.testing.assert_array_equal(sample(PROMPTS).numpy(), first)
    if not jit_compile:
        # XLA draws its own (seeded, repeatable) random numbers.
        eager = tt.generate(model, PROMPTS, 12, **sampling).numpy()
        np.testing.assert_array_equal(first, eager)


def test_generation_under_mixed_precision_gives_valid_tokens():
    model = random_model(dtype="mixed_float16")
    generated = tt.generate(model, PROMPTS, 8, temperature=0).numpy()
    assert generated.shape == (3, 8)
    assert ((generated >= 0) & (generated < 30)).all()
    assert (generated[:, 0] != 0).all()


def test_generate_method_equals_the_function():
    model = random_model()
    np.testing.assert_array_equal(
        model.generate(PROMPTS, 5, temperature=0).numpy(),
        tt.generate(model, PROMPTS, 5, temperature=0).numpy(),
    )


@pytest.mark.parametrize(
    "prompt, kwargs, error, message",
    [
        ([[0, 5, 6]], {}, ValueError, "padded on the right"),
        ([[5, 6], [0, 0]], {}, ValueError, "at least one token"),
        ([[5.0, 6.0]], {}, TypeError, "prompt_ids"),
        ([5, 6], {}, ValueError, "prompt_ids"),
        ([[5, 6]], dict(max_new_tokens=0), ValueError, "max_new_tokens"),
        ([[5, 6]], dict(max_new_tokens=39), ValueError, "max_length=40"),
        ([[5, 6]], dict(temperature=-1.0), ValueError, "temperature=-1.0"),
        ([[5, 6]], dict(top_k=0), ValueError, "top_k=0"),
        ([[5, 6]], dict(top_p=1.5), ValueError, "top_p=1.5"),
        ([[5, 6]], dict(seed="a"), ValueError, "seed='a'"),
        ([[5, 6]], dict(stop_token_ids=3), ValueError, "stop_token_ids=3"),
    ],
)
def test_bad_generate_input_raises_an_error_naming_it(prompt, kwargs, error, message):
    model = random_model()
    kwargs = {"max_new_tokens": 4, **kwargs}
    with pytest.raises(error, match=message):
        tt.generate(model, tf.constant(prompt), **kwargs)


def test_generate_refuses_a_model_without_a_cache_layout():
    translator = tt.Transformer(1, 16, 2, 32, 20, 20)
    with pytest.raises(TypeError, match="CausalLM"):
        tt.generate(translator, tf.constant([[5, 6]]), 4)
