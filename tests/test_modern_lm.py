"""Lesson 14's library: RMSNorm, rotary embeddings, SwiGLU, grouped-query
attention and the Llama-style model, each equal to its Keras / KerasHub
counterpart with copied weights; cached generation equals uncached."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

import tf_transformer as tt
from tf_transformer.inference.decoding import DecoderCache, decoder_step
from tf_transformer.models.modern_causal_lm import load_llama_weights

IDS = np.array([[5, 6, 7, 8, 9, 4], [10, 11, 12, 13, 0, 0]], "int32")
SMALL = dict(
    num_layers=2,
    d_model=32,
    num_heads=4,
    num_key_value_heads=2,
    dff=40,
    vocabulary_size=24,
    max_length=32,
)


def random(shape, seed=0, dtype="float32"):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(dtype))


# --- RMSNorm ---------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [1e-6, 1e-2])
def test_rms_norm_equals_keras_rms_normalization(epsilon):
    x = random((2, 5, 16)) * 3.0 + 1.0  # a mean RMSNorm must NOT remove
    scale = np.random.default_rng(1).uniform(0.5, 2, 16).astype("float32")
    reference = keras.layers.RMSNormalization(epsilon=epsilon)
    reference.build(x.shape)
    reference.set_weights([scale])
    np.testing.assert_allclose(
        tt.rms_norm(x, scale, epsilon).numpy(), reference(x).numpy(), atol=1e-6
    )
    layer = tt.RMSNorm(epsilon=epsilon)
    layer.build(x.shape)
    layer.set_weights([scale])
    np.testing.assert_allclose(layer(x).numpy(), reference(x).numpy(), atol=1e-6)


def test_rms_norm_of_large_float16_inputs_does_not_overflow():
    x = tf.constant([[300.0, -400.0, 500.0, 200.0]], tf.float16)  # x² > 65504
    y = tt.rms_norm(x, tf.ones(4))
    assert y.dtype == tf.float16
    expected = x.numpy().astype("float32") / np.sqrt(
        np.mean(x.numpy().astype("float32") ** 2)
    )
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-2)


@pytest.mark.slow  # compiled fit steps and XLA
def test_rms_norm_layer_passes_the_layer_checks():
    run_layer_test(tt.RMSNorm, dict(epsilon=1e-5), [random((2, 5, 8))])


# --- Rotary embeddings ------------------------------------------------------


@pytest.mark.parametrize("start_index", [0, 7, "tensor"])
@pytest.mark.parametrize("shape", [(2, 6, 8), (2, 6, 3, 8)])
def test_apply_rotary_embedding_equals_keras_hub(start_index, shape):
    if start_index == "tensor":
        start_index = tf.constant(11)
    x = random(shape)
    for wavelength in (10000, 500):
        reference = keras_hub.layers.RotaryEmbedding(max_wavelength=wavelength)
        np.testing.assert_allclose(
            tt.apply_rotary_embedding(x, start_index, wavelength).numpy(),
            reference(x, start_index=start_index).numpy(),
            atol=1e-5,
        )


def test_rotary_embedding_works_in_a_compiled_function_with_a_tensor_start():
    x = random((1, 4, 2, 8))
    compiled = tf.function(tt.apply_rotary_embedding, jit_compile=True)
    np.testing.assert_allclose(
        compiled(x, tf.constant(5)).numpy(),
        tt.apply_rotary_embedding(x, 5).numpy(),
        atol=1e-6,
    )


def test_rotated_dot_products_depend_only_on_the_offset():
    q, k = random((1, 1, 16), seed=1), random((1, 1, 16), seed=2)

    def score(m, n):
        rotated_q = tt.apply_rotary_embedding(q, m)
        rotated_k = tt.apply_rotary_embedding(k, n)
        return float(tf.reduce_sum(rotated_q * rotated_k))

    for offset in (0, 3, -5):
        scores = [score(m, m - offset) for m in (5, 20, 300)]
        np.testing.assert_allclose(scores, scores[0], rtol=1e-4)
    assert abs(score(10, 7) - score(10, 4)) > 1e-3  # the offset matters
    # and lengths are preserved: a rotation
    np.testing.assert_allclose(
        tf.norm(tt.apply_rotary_embedding(q, 123)).numpy(),
        tf.norm(q).numpy(),
        rtol=1e-5,
    )


def test_rotary_embedding_layer_round_trips_and_applies_the_function():
    layer = tt.RotaryEmbedding(max_wavelength=100.0)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert restored.get_config() == layer.get_config()
    x = random((2, 5, 2, 8))
    np.testing.assert_allclose(
        restored(x, start_index=3).numpy(),
        tt.apply_rotary_embedding(x, 3, 100.0).numpy(),
    )
    assert layer(tf.cast(x, "float16")).dtype == tf.float32  # the compute dtype
    assert tt.RotaryEmbedding(dtype="mixed_float16")(x).dtype == tf.float16


# --- SwiGLU -----------------------------------------------------------------


def test_swiglu_width_keeps_the_parameter_count_of_the_paper():
    for d_model in (48, 96, 4096):
        width = tt.swiglu_width(d_model)
        assert abs(3 * d_model * width - 2 * d_model * 4 * d_model) <= 3 * d_model
    assert tt.swiglu_width(4096, multiple_of=256) == 11008  # Llama-7B's width


def test_swiglu_feed_forward_is_silu_gate_times_up_then_down():
    ffn = tt.SwiGLUFeedForward(d_model=8, dff=12)
    x = random((2, 3, 8))
    y = ffn(x).numpy()
    gate = x.numpy() @ ffn.gate_dense.kernel.numpy()
    up = x.numpy() @ ffn.up_dense.kernel.numpy()
    silu = gate / (1 + np.exp(-gate))
    np.testing.assert_allclose(
        y, (silu * up) @ ffn.down_dense.kernel.numpy(), atol=1e-5
    )
    assert len(ffn.weights) == 3  # no biases


@pytest.mark.slow  # compiled fit steps and XLA
def test_swiglu_feed_forward_passes_the_layer_checks():
    run_layer_test(tt.SwiGLUFeedForward, dict(d_model=8, dff=12), [random((2, 5, 8))])


# --- Grouped-query attention -------------------------------------------------


def copy_keras_gqa_weights(keras_layer, layer):
    query, key, value, output = (w.numpy() for w in keras_layer.weights)
    layer.query_dense.kernel.assign(query.reshape(query.shape[0], -1))
    layer.key_dense.kernel.assign(key.reshape(key.shape[0], -1))
    layer.value_dense.kernel.assign(value.reshape(value.shape[0], -1))
    layer.output_dense.kernel.assign(output.reshape(-1, output.shape[-1]))


@pytest.mark.parametrize("kv_heads", [1, 2, 8])
def test_grouped_query_attention_equals_keras_group_query_attention(kv_heads):
    reference = keras.layers.GroupQueryAttention(
        head_dim=4, num_query_heads=8, num_key_value_heads=kv_heads, use_bias=False
    )
    query, value = random((2, 5, 16), 1), random((2, 6, 16), 2)
    mask = tf.constant(np.random.default_rng(3).uniform(size=(2, 5, 6)) > 0.3)
    expected, expected_weights = reference(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    layer = tt.GroupedQueryAttention(8, kv_heads, head_dim=4, use_rotary=False)
    layer.build(query.shape, value.shape)
    copy_keras_gqa_weights(reference, layer)
    output, weights = layer(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    np.testing.assert_allclose(output.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), expected_weights.numpy(), atol=1e-6)


def test_grouped_query_attention_function_groups_heads_consecutively():
    query = random((1, 3, 4, 8), 1)
    key, value = random((1, 5, 2, 8), 2), random((1, 5, 2, 8), 3)
    output, weights = tt.grouped_query_attention(query, key, value)
    for head in range(4):
        kv = head // 2  # heads 0, 1 read key/value head 0; heads 2, 3 head 1
        alone, alone_weights = tt.scaled_dot_product_attention(
            query[:, :, head], key[:, :, kv], value[:, :, kv]
        )
        np.testing.assert_allclose(output[:, :, head].numpy(), alone.numpy(), atol=1e-6)
        np.testing.assert_allclose(
            weights[:, head].numpy(), alone_weights.numpy(), atol=1e-6
        )


def test_grouped_query_attention_masked_weights_are_zero_and_full_rows_zero():
    query = random((1, 2, 4, 8), 1)
    key = value = random((1, 3, 1, 8), 2)
    mask = tf.constant([[[True, False, True], [False, False, False]]])
    output, weights = tt.grouped_query_attention(query, key, value, mask)
    assert (weights.numpy()[:, :, 0, 1] == 0).all()
    assert (weights.numpy()[:, :, 1] == 0).all()
    assert (output.numpy()[:, 1] == 0).all()
    head_mask = tf.ones((1, 4, 2, 3), tf.bool)  # the per-head form
    _, weights = tt.grouped_query_attention(query, key, value, head_mask)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-6)


def test_grouped_query_attention_softmax_runs_in_float32_outputs_in_value_dtype():
    query = random((1, 2, 2, 8), 1, "float16") * 40
    key = value = random((1, 3, 1, 8), 2, "float16") * 40
    output, weights = tt.grouped_query_attention(query, key, value)
    assert output.dtype == weights.dtype == tf.float16
    assert np.isfinite(output.numpy()).all()


@pytest.mark.slow  # compiled fit steps and XLA
def test_grouped_query_attention_layer_passes_the_layer_checks():
    run_layer_test(
        tt.GroupedQueryAttention,
        dict(num_heads=4, num_key_value_heads=2),
        [random((2, 5, 16))],
        call_kwargs=dict(use_causal_mask=True),
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: tt.grouped_query_attention(
                random((1, 2, 3, 8)), random((1, 2, 2, 8)), random((1, 2, 2, 8))
            ),
            "multiple of the heads",
        ),
        (lambda: tt.GroupedQueryAttention(6, 4), "num_heads"),
        (lambda: tt.apply_rotary_embedding(random((1, 2, 7))), "even"),
        (lambda: tt.apply_rotary_embedding(random((1, 2, 8)), 1.5), "start_index"),
        (lambda: tt.rms_norm(tf.constant([[1, 2]]), tf.ones(2)), "`x` must be a float"),
        (lambda: tt.rms_norm(random((1, 4)), tf.ones(3)), "scale"),
        (lambda: tt.SwiGLUFeedForward(8, 0), "dff"),
    ],
)
def test_bad_input_gets_an_error_naming_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# --- The whole model ----------------------------------------------------------


def randomise(model, seed):
    """Every weight random (RMSNorm scales start at one, hiding a mix-up)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))


@pytest.mark.parametrize("tied", [False, True])
def test_modern_causal_lm_equals_keras_hub_llama_backbone(tied):
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=24,
        num_layers=2,
        num_query_heads=4,
        hidden_dim=32,
        intermediate_dim=40,
        num_key_value_heads=2,
        layer_norm_epsilon=1e-6,
        tie_word_embeddings=tied,
    )
    randomise(backbone, seed=1)
    model = tt.ModernCausalLM(**SMALL)
    model.build((None, None))
    load_llama_weights(model, backbone)
    hidden = backbone({"token_ids": IDS, "padding_mask": IDS != 0})
    expected = backbone.token_embedding(hidden, reverse=True)
    logits = model(IDS)
    real = IDS != 0
    np.testing.assert_allclose(logits.numpy()[real], expected.numpy()[real], atol=1e-5)


def small_model(**kwargs):
    keras.utils.set_random_seed(2)
    model = tt.ModernCausalLM(**{**SMALL, **kwargs})
    model.build((None, None))
    randomise(model, seed=3)
    return model


@pytest.mark.slow  # compiled fit steps and XLA
def test_modern_causal_lm_passes_the_layer_checks():
    run_layer_test(
        tt.ModernCausalLM,
        {**SMALL, "num_layers": 1},
        [IDS],
        expected_output_shape=(2, 6, 24),
        output_dtype="float32",
    )


def test_changing_a_later_token_never_changes_earlier_logits():
    model = small_model()
    logits = model(IDS).numpy()
    for position in range(IDS.shape[1]):
        changed = IDS.copy()
        changed[:, position] = 14
        other = model(changed).numpy()
        np.testing.assert_allclose(other[:, :position], logits[:, :position], atol=1e-5)
        assert not np.allclose(other[0, position:], logits[0, position:])


def test_right_padding_does_not_change_real_positions():
    model = small_model()
    short = model(IDS[1:, :4]).numpy()
    np.testing.assert_allclose(model(IDS[1:]).numpy()[:, :4], short, atol=1e-5)


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_cached_step_logits_equal_the_full_model_at_every_position(kv_heads):
    model = small_model(num_key_value_heads=kv_heads)
    full = model(IDS).numpy()
    cache = DecoderCache.create_self_attention(model, 2, IDS.shape[1])
    for index in range(IDS.shape[1]):
        logits, cache = decoder_step(model, tf.constant(IDS[:, index]), index, cache)
        real = IDS[:, index] != 0
        np.testing.assert_allclose(logits.numpy()[real], full[real, index], atol=1e-4)


def test_cached_generation_gives_the_tokens_of_uncached_generation():
    model = small_model()
    prompts = tf.constant([[5, 6, 7], [8, 9, 0]])
    cached = model.generate(prompts, 10, temperature=0, stop_token_ids=())
    uncached = model.generate(
        prompts, 10, temperature=0, stop_token_ids=(), use_cache=False
    )
    np.testing.assert_array_equal(cached.numpy(), uncached.numpy())
    sampled = [
        model.generate(prompts, 10, seed=4, use_cache=use_cache, stop_token_ids=())
        for use_cache in (True, False)
    ]
    np.testing.assert_array_equal(sampled[0].numpy(), sampled[1].numpy())


@pytest.mark.slow  # compiled fit steps and XLA
def test_generation_runs_under_xla():
    model = small_model()
    prompts = tf.constant([[5, 6, 7], [8, 9, 0]])
    eager = model.generate(prompts, 6, temperature=0)
    compiled = tf.function(
        lambda p: tt.generate(model, p, 6, temperature=0), jit_compile=True
    )
    np.testing.assert_array_equal(compiled(prompts).numpy(), eager.numpy())


def test_the_cache_shrinks_with_the_key_value_heads():
    sizes = {
        kv: DecoderCache.bytes_per_token(small_model(num_key_value_heads=kv))
        for kv in (4, 2, 1)
    }
    # 2 layers x (key + value) x kv heads x head_dim 8 x 4 bytes
    assert sizes == {kv: 2 * 2 * kv * 8 * 4 for kv in (4, 2, 1)}


def test_an_unbuilt_model_gives_its_cache_size_without_weights():
    # Llama 2 70B: 80 layers, d_model 8192, 64 query heads, 8 key/value heads.
    model = tt.ModernCausalLM(80, 8192, 64, 8, 28672, 32000, dtype="float16")
    assert DecoderCache.bytes_per_token(model) == 2 * 80 * 8 * 128 * 2
    assert not model.built


def test_the_model_reads_sequences_longer_than_max_length():
    model = small_model(max_length=8)
    ids = np.arange(4, 24, dtype="int32")[np.newaxis]  # 20 tokens
    assert np.isfinite(model(ids).numpy()).all()


def test_modern_causal_lm_saves_and_reloads(tmp_path):
    model = small_model()
    path = tmp_path / "modern.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(IDS).numpy(), model(IDS).numpy(), atol=1e-6)
