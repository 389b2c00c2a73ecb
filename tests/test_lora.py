"""LoRADense equals Keras's `Dense.enable_lora`; add_lora / merge_lora on a CausalLM."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tests.layer_testing import run_layer_test
from tf_transformer.models.lora import ATTENTION_AND_FEED_FORWARD
from tf_transformer.training import new_head, optimizer_bytes, trainable_parameters


def _dense(units=6, input_dim=8, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    dense = keras.layers.Dense(units, **kwargs)
    dense.build((None, input_dim))
    dense.bias.assign(np.random.default_rng(seed).normal(size=units))
    return dense


def _inputs(shape, seed=1):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _trained_adapter(dense, rank, alpha, seed=2):
    """A LoRADense whose B is no longer zero (as after some training)."""
    layer = tt.LoRADense(dense, rank, alpha)
    layer.build((None, dense.kernel.shape[0]))
    rng = np.random.default_rng(seed)
    layer.lora_b.assign(rng.normal(size=layer.lora_b.shape))
    return layer


@pytest.mark.parametrize("activation", [None, "gelu"])
@pytest.mark.parametrize("rank, alpha", [(2, 6.0), (4, None)])
def test_equals_keras_enable_lora_with_copied_weights(activation, rank, alpha):
    dense = _dense(activation=activation)
    layer = _trained_adapter(dense, rank, alpha)
    keras_dense = keras.layers.Dense(6, activation=activation)
    keras_dense.build((None, 8))
    keras_dense.set_weights(dense.get_weights())
    keras_dense.enable_lora(rank, lora_alpha=alpha)
    keras_dense.lora_kernel_a.assign(layer.lora_a)
    keras_dense.lora_kernel_b.assign(layer.lora_b)
    x = _inputs((3, 5, 8))
    np.testing.assert_allclose(layer(x), keras_dense(x), atol=1e-5)


def test_b_starts_at_zero_so_the_layer_starts_as_the_dense():
    dense = _dense(activation="relu")
    layer = tt.LoRADense(dense, rank=3, alpha=12)
    x = _inputs((4, 8))
    np.testing.assert_array_equal(layer(x), dense(x))
    np.testing.assert_array_equal(layer.lora_b, np.zeros((3, 6)))
    assert np.abs(layer.lora_a.numpy()).max() > 0  # A random: B's gradient is not 0


def test_the_update_is_scaled_by_alpha_over_rank():
    dense = _dense()
    layer = _trained_adapter(dense, rank=4, alpha=2.0)
    x = _inputs((2, 8))
    update = x.numpy() @ layer.lora_a.numpy() @ layer.lora_b.numpy()
    np.testing.assert_allclose(layer(x) - dense(x), update * 0.5, atol=1e-5)


def test_merge_gives_a_plain_dense_with_the_same_outputs():
    dense = _dense(activation="gelu")
    layer = _trained_adapter(dense, rank=2, alpha=6.0)
    x = _inputs((3, 5, 8))
    before = layer(x).numpy()
    merged = layer.merge()
    assert type(merged) is keras.layers.Dense
    assert merged.trainable and merged.activation is dense.activation
    np.testing.assert_allclose(merged(x), before, atol=1e-5)
    np.testing.assert_allclose(layer(x), before)  # the adapter is unchanged


def test_only_a_and_b_are_trainable_and_receive_gradients():
    dense = _dense()
    layer = _trained_adapter(dense, rank=2, alpha=4.0)
    assert [w.path.split("/")[-1] for w in layer.trainable_weights] == [
        "lora_a",
        "lora_b",
    ]
    x = _inputs((3, 8))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(float(tf.norm(g)) > 0 for g in grads)
    # Keras passes `trainable` on to sublayers; the wrapped Dense stays frozen.
    layer.trainable = False
    layer.trainable = True
    assert not dense.trainable and len(layer.trainable_weights) == 2


def test_at_the_start_only_b_receives_a_gradient():
    layer = tt.LoRADense(_dense(), rank=2)
    x = _inputs((3, 8))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grad_a, grad_b = tape.gradient(loss, [layer.lora_a, layer.lora_b])
    assert float(tf.norm(grad_a)) == 0 and float(tf.norm(grad_b)) > 0


@pytest.mark.slow  # a compiled fit step
def test_layer_contract():
    run_layer_test(
        tt.LoRADense,
        {"dense": _dense(), "rank": 2, "alpha": 4.0},
        [_inputs((2, 5, 8))],
        expected_output_shape=(2, 5, 6),
    )


def test_saved_in_a_model_and_reloaded(tmp_path):
    dense = _dense()
    inputs = keras.Input((8,))
    model = keras.Model(inputs, _trained_adapter(dense, 2, 4.0)(inputs))
    path = tmp_path / "lora.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = _inputs((3, 8))
    np.testing.assert_allclose(reloaded(x), model(x), atol=1e-6)
    assert len(reloaded.trainable_weights) == 2


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"rank": 0}, ValueError, "rank=0"),
        ({"rank": 2.0}, TypeError, "rank=2.0"),
        ({"rank": 2, "alpha": 0}, ValueError, "alpha=0"),
        ({"rank": 2, "alpha": "big"}, TypeError, "alpha='big'"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        tt.LoRADense(_dense(), **kwargs)


def test_the_dense_must_be_a_built_plain_dense():
    with pytest.raises(ValueError, match="must be built"):
        tt.LoRADense(keras.layers.Dense(4), rank=2)
    with pytest.raises(TypeError, match="keras.layers.Dense"):
        tt.LoRADense(keras.layers.LayerNormalization(), rank=2)
    dense = _dense()
    dense.enable_lora(2)
    with pytest.raises(ValueError, match="enable_lora"):
        tt.LoRADense(dense, rank=2)


def _causal_lm():
    keras.utils.set_random_seed(0)
    model = tt.CausalLM(2, 16, 2, 32, vocabulary_size=40, max_length=24, dropout=0)
    model.build((None, None))
    return model


IDS = tf.constant([[2, 5, 6, 7, 8, 0], [2, 9, 10, 0, 0, 0]])


@pytest.mark.slow
def test_add_lora_starts_from_the_model_and_trains_only_the_adapters():
    model = _causal_lm()
    before = model(IDS).numpy()
    adapters = tt.add_lora(model, rank=4, alpha=8)
    # 2 blocks × (query, value), each A (16, 4) + B (4, 16)
    assert len(adapters) == 4
    assert sum(w.shape.num_elements() for w in model.trainable_weights) == 4 * 128
    np.testing.assert_array_equal(model(IDS), before)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=tt.masked_loss)
    frozen = [w.numpy().copy() for w in model.non_trainable_weights]
    model.fit(IDS, tf.roll(IDS, -1, axis=1), epochs=2, verbose=0)
    for old, w in zip(frozen, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(old, w.numpy())
    assert not np.allclose(model(IDS), before)


def test_add_lora_works_with_cached_generation_and_merges_back(tmp_path):
    model = _causal_lm()
    adapters = tt.add_lora(model, rank=2, targets=ATTENTION_AND_FEED_FORWARD)
    assert len(adapters) == 2 * 6  # per block: q, k, v, attention output; FFN in, out
    for adapter in [w for w in model.trainable_weights if "lora_b" in w.path]:
        adapter.assign(np.random.default_rng(0).normal(size=adapter.shape) * 0.3)
    logits = model(IDS).numpy()
    generated = model.generate(IDS[:, :3], 5, temperature=0).numpy()
    assert tt.merge_lora(model) == 2 * 6
    assert not any(isinstance(layer, tt.LoRADense) for layer in _all_layers(model))
    np.testing.assert_allclose(model(IDS), logits, atol=1e-4)
    np.testing.assert_array_equal(
        model.generate(IDS[:, :3], 5, temperature=0), generated
    )
    path = tmp_path / "merged.keras"
    model.save(path)  # a merged model is a plain CausalLM again
    np.testing.assert_allclose(keras.saving.load_model(path)(IDS), logits, atol=1e-4)


def _all_layers(model):
    return list(model._flatten_layers(include_self=False))


def test_add_lora_rejects_bad_targets_and_unbuilt_models():
    with pytest.raises(ValueError, match="targets=\\('nothing_here',\\)"):
        tt.add_lora(_causal_lm(), rank=2, targets=["nothing_here"])
    with pytest.raises(ValueError, match="targets="):
        tt.add_lora(_causal_lm(), rank=2, targets=[])
    with pytest.raises(ValueError, match="must be built"):
        tt.add_lora(tt.CausalLM(1, 16, 2, 32, vocabulary_size=40), rank=2)


def test_new_head_freezes_the_body_and_trains_a_fresh_output_layer():
    model = _causal_lm()
    old = model.output_projection
    head = new_head(model)
    assert model.output_projection is head and head is not old
    assert trainable_parameters(model) == 16 * 40 + 40
    assert not np.allclose(head.kernel, old.kernel)
    assert head.trainable_weights and not old.trainable_weights
    with pytest.raises(ValueError, match="attribute='decoder'"):
        new_head(_causal_lm(), attribute="decoder")


def test_optimizer_bytes_counts_adams_two_moments_per_trainable_number():
    model = _causal_lm()
    tt.add_lora(model, rank=4)
    optimizer = keras.optimizers.Adam()
    # 512 trainable float32 numbers, two moments each, plus the step counter
    # and the learning rate (int64/float32 scalars).
    counters = optimizer_bytes(keras.optimizers.Adam(), keras.layers.Dense(1))
    assert optimizer_bytes(optimizer, model) == 2 * 512 * 4 + counters
