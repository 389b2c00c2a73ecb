"""`tf_transformer.Dropout`: a drop-in for `keras.layers.Dropout` whose mask
is hashed from each element's position and the layer's seed.

The statistical tests use a million elements and allow 5 standard errors.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels

import tf_transformer as tt
from tf_transformer.layers import hash_dropout

SIZE = 1_000_000
ONES = tf.ones((1000, SIZE // 1000))


def dropped(outputs):
    return np.asarray(outputs) == 0


def assert_probability(events, p, what):
    """`events` (booleans) happen with probability `p`, within 5 standard errors."""
    n = events.size
    observed = events.mean()
    tolerance = 5 * np.sqrt(p * (1 - p) / n)
    assert abs(observed - p) <= tolerance, f"{what}: {observed:.5f} vs {p:.5f}"


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_drops_each_element_with_probability_rate(rate):
    outputs = tt.Dropout(rate, seed=1)(ONES, training=True)
    assert_probability(dropped(outputs), rate, f"dropped fraction at rate {rate}")


def test_kept_elements_are_scaled_so_the_mean_is_unchanged():
    x = tf.random.stateless_normal((400, 500), seed=(3, 4))
    outputs = tt.Dropout(0.25, seed=1)(x, training=True).numpy()
    kept = ~dropped(outputs)
    np.testing.assert_allclose(outputs[kept], x.numpy()[kept] / 0.75, rtol=1e-6)
    ones = tt.Dropout(0.25, seed=1)(ONES, training=True).numpy()
    assert abs(ones.mean() - 1.0) < 5 * np.sqrt(0.25 / 0.75 / SIZE)


def test_masks_of_successive_calls_are_independent():
    layer = tt.Dropout(0.3, seed=7)
    first, second = (dropped(layer(ONES, training=True)) for _ in range(2))
    assert not np.array_equal(first, second)
    assert_probability(first & second, 0.3**2, "dropped by both calls")


def test_layers_with_different_seeds_draw_independent_masks():
    first = dropped(tt.Dropout(0.3, seed=1)(ONES, training=True))
    second = dropped(tt.Dropout(0.3, seed=2)(ONES, training=True))
    assert_probability(first & second, 0.3**2, "dropped by both layers")


@pytest.mark.parametrize("offset", [1, 2, 1000])
def test_neighbouring_elements_are_independent(offset):
    """Elements `offset` apart in the flat order (1000 = the next row)."""
    mask = dropped(tt.Dropout(0.3, seed=5)(ONES, training=True)).ravel()
    assert_probability(mask[:-offset] & mask[offset:], 0.3**2, f"offset {offset}")


def test_seeded_runs_repeat():
    def masks():
        keras.utils.set_random_seed(11)
        layer = tt.Dropout(0.5)  # seed drawn from the global seed
        return [dropped(layer(ONES[:10], training=True)) for _ in range(3)]

    first, second = masks(), masks()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


def test_same_seed_same_mask_eagerly_in_graph_and_under_xla():
    x = tf.random.stateless_normal((64, 24, 128), seed=(1, 2))
    seed = tf.constant([123, 4])
    eager = hash_dropout(x, 0.1, seed)
    graph = tf.function(hash_dropout)(x, 0.1, seed)
    xla = tf.function(hash_dropout, jit_compile=True)(x, 0.1, seed)
    np.testing.assert_array_equal(eager.numpy(), graph.numpy())
    np.testing.assert_array_equal(eager.numpy(), xla.numpy())


def _has_device_memory_gpu_kernel(op):
    """Whether TensorFlow registers a GPU kernel for `op`'s dtypes whose
    outputs stay in GPU memory (read from the kernel registry: no GPU needed)."""
    outputs = {arg.name for arg in op.op_def.output_arg}
    for kernel in kernels.get_registered_kernels_for_op(op.type).kernel:
        if kernel.device_type != "GPU" or outputs & set(kernel.host_memory_arg):
            continue
        if all(
            op.get_attr(c.name) in c.allowed_values.list.type for c in kernel.constraint
        ):
            return True
    return False


def test_the_mask_is_computed_by_gpu_kernels_in_gpu_memory():
    # Without XLA, an op with no such kernel for its dtype (Range on int32
    # is one) runs on the host, and its mask-sized output is copied to the
    # GPU at every call.
    function = tf.function(lambda x, seed: hash_dropout(x, 0.1, seed))
    graph = function.get_concrete_function(
        tf.TensorSpec((None, 8, 16)), tf.TensorSpec((2,), tf.int64)
    ).graph
    (start,) = [op for op in graph.get_operations() if op.type == "Range"]
    mask_path, frontier = set(), [start]
    while frontier:  # every op downstream of the element indices
        op = frontier.pop()
        if op not in mask_path:
            mask_path.add(op)
            frontier.extend(c for out in op.outputs for c in out.consumers())
    assert {op.type for op in mask_path} >= {"Range", "BitwiseXor", "SelectV2"}
    on_host = sorted(
        f"{op.type} ({op.outputs[0].dtype.name})"
        for op in mask_path
        if not _has_device_memory_gpu_kernel(op)
    )
    assert on_host == []


def test_the_layer_advances_its_seed_inside_compiled_functions():
    layer = tt.Dropout(0.5, seed=3)
    step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    first, second = dropped(step(ONES[:10])), dropped(step(ONES[:10]))
    assert not np.array_equal(first, second)


def test_inference_and_rate_zero_return_the_inputs():
    x = tf.random.stateless_normal((4, 5), seed=(1, 1))
    np.testing.assert_array_equal(tt.Dropout(0.5)(x, training=False), x)
    np.testing.assert_array_equal(tt.Dropout(0.5)(x), x)
    np.testing.assert_array_equal(tt.Dropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(tt.Dropout(1.0)(x, training=True), tf.zeros_like(x))


def test_noise_shape_broadcasts_one_mask():
    outputs = tt.Dropout(0.5, noise_shape=(None, 1, 8), seed=2)(
        tf.ones((3, 50, 8)), training=True
    ).numpy()
    np.testing.assert_array_equal(outputs, np.broadcast_to(outputs[:, :1], (3, 50, 8)))
    assert 0 < dropped(outputs).mean() < 1


def test_gradient_is_the_scaled_mask():
    x = tf.random.stateless_normal((30, 40), seed=(2, 2))
    layer = tt.Dropout(0.2, seed=9)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, training=True)
        total = tf.reduce_sum(outputs)
    gradient = tape.gradient(total, x).numpy()
    expected = np.where(dropped(outputs), 0.0, 1 / 0.8)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_compute_dtype(policy):
    layer = tt.Dropout(0.1, dtype=policy, seed=1)
    outputs = layer(ONES, training=True)
    assert outputs.dtype.name == keras.DTypePolicy(policy).compute_dtype
    assert_probability(dropped(outputs), 0.1, policy)


def test_config_round_trip_and_symbolic_call():
    layer = tt.Dropout(0.3, noise_shape=(None, 1, 4), seed=5, name="drop")
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is tt.Dropout
    assert restored.get_config() == layer.get_config()
    symbolic = layer(keras.Input((7, 4)))
    assert tuple(symbolic.shape) == (None, 7, 4)


@pytest.mark.parametrize(
    "rate, error", [(1.5, ValueError), (-0.1, ValueError), ("0.1", TypeError)]
)
def test_bad_rate_names_the_argument_and_value(rate, error):
    with pytest.raises(error, match=f"rate={rate!r}"):
        tt.Dropout(rate)
    with pytest.raises(error, match=f"rate={rate!r}"):
        hash_dropout(ONES, rate, tf.constant([1, 2]))


@pytest.mark.parametrize(
    "arguments, error, named",
    [
        (dict(inputs=tf.ones((2, 3), tf.int32)), TypeError, "inputs"),
        (dict(seed=tf.constant([1.0, 2.0])), ValueError, "seed"),
        (dict(seed=tf.constant([1, 2, 3])), ValueError, "seed"),
        (dict(seed=7), ValueError, "seed"),
        (dict(noise_shape=(None, 1, 1)), ValueError, "noise_shape"),
    ],
)
def test_bad_inputs_seed_and_noise_shape_name_the_argument(arguments, error, named):
    arguments = dict(
        dict(inputs=tf.ones((2, 3)), rate=0.5, seed=tf.constant([1, 2])), **arguments
    )
    with pytest.raises(error, match=f"`{named}`"):
        hash_dropout(**arguments)


def test_a_layer_whose_noise_shape_does_not_fit_names_it():
    with pytest.raises(ValueError, match="`noise_shape`.*noise_shape=\\(None, 1\\)"):
        tt.Dropout(0.5, noise_shape=(None, 1))(tf.ones((2, 3, 4)), training=True)


def test_every_dropout_of_the_library_layers_is_hashed():
    model = tt.Transformer(
        num_layers=1,
        d_model=8,
        num_heads=2,
        dff=16,
        input_vocab_size=20,
        target_vocab_size=20,
        dropout=0.1,
        attention_dropout=0.1,
    )
    model((tf.ones((2, 5), tf.int32), tf.ones((2, 4), tf.int32)))
    layers = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.Dropout)
    ]
    # embeddings (2), encoder layer (attention weights, 2 residual branches),
    # decoder layer (2 attention weights, 3 residual branches)
    assert len(layers) == 10
    assert all(type(layer) is tt.Dropout for layer in layers)
