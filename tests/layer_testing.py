"""`run_layer_test`: the checks every tf_transformer layer must pass.

One call proves that a layer serializes (config -> JSON -> from_config), builds,
runs eagerly, symbolically (Keras functional API), inside `tf.function` with an
unknown batch size and under XLA, trains for a compiled `fit` step, reloads its
weights into a layer rebuilt from its config, and runs under the
`mixed_float16` and `mixed_bfloat16` dtype policies.
"""

import json

import keras
import numpy as np
import tensorflow as tf


def _flat(outputs):
    return [t for t in tf.nest.flatten(outputs)]


def _input_spec(x):
    return tf.TensorSpec((None,) + tuple(x.shape[1:]), x.dtype)


def _keras_input(x):
    return keras.Input(shape=tuple(x.shape[1:]), dtype=x.dtype.name)


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    call_kwargs=None,
    expected_output_shape=None,
    output_dtype=None,
    nested_input=False,
    run_fit=True,
    run_mixed_precision=True,
):
    """Check a layer end to end.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        inputs: list of positional input tensors (batch first). With
            `nested_input=True` they are passed as one tuple argument (as the
            `Transformer` takes `(source_ids, target_in_ids)`).
        call_kwargs: extra call arguments (Python values only).
        expected_output_shape: shape of the first output.
        output_dtype: dtype of the first output under mixed precision when it
            is not the compute dtype (e.g. "float32" for logits).
    """
    call_kwargs = call_kwargs or {}
    inputs = [tf.convert_to_tensor(x) for x in inputs]

    def call(layer, xs, **extra):
        if nested_input:
            return layer(tuple(xs), **call_kwargs, **extra)
        return layer(*xs, **call_kwargs, **extra)

    # 1. Config -> JSON -> from_config keeps every argument.
    layer = layer_cls(**init_kwargs)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is layer_cls
    assert restored.get_config() == layer.get_config()
    for key, value in init_kwargs.items():
        if isinstance(value, (int, float, str, bool, type(None))):
            assert layer.get_config()[key] == value, key

    # 2. Eager call (builds the layer).
    eager = call(layer, inputs, training=False)
    first = _flat(eager)[0]
    if expected_output_shape is not None:
        assert tuple(first.shape) == tuple(expected_output_shape)
    assert all(np.isfinite(t.numpy()).all() for t in _flat(eager))
    assert layer.built and layer.weights

    # 3. Symbolic call: shapes agree with the eager call (batch unknown).
    symbolic_inputs = [_keras_input(x) for x in inputs]
    symbolic = call(layer, symbolic_inputs)
    for sym, real in zip(_flat(symbolic), _flat(eager), strict=True):
        assert tuple(sym.shape)[1:] == tuple(real.shape)[1:]
    if not nested_input:
        shape = layer.compute_output_shape(*[tuple(x.shape) for x in inputs])
    else:
        shape = layer.compute_output_shape(tuple(tuple(x.shape) for x in inputs))
    assert tuple(shape) == tuple(first.shape)

    # 4. tf.function with a None batch dimension, and XLA: same numbers.
    specs = [_input_spec(x) for x in inputs]

    @tf.function(input_signature=specs, reduce_retracing=True)
    def graph_call(*xs):
        return call(layer, list(xs), training=False)

    @tf.function(input_signature=specs, jit_compile=True)
    def xla_call(*xs):
        return call(layer, list(xs), training=False)

    for fn in (graph_call, xla_call):
        for got, want in zip(_flat(fn(*inputs)), _flat(eager), strict=True):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)

    # 5. Weights survive a rebuild from config.
    twin = layer_cls.from_config(layer.get_config())
    call(twin, inputs, training=False)
    twin.set_weights(layer.get_weights())
    twin_outputs = _flat(call(twin, inputs, training=False))
    for got, want in zip(twin_outputs, _flat(eager), strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)

    # 6. One compiled (XLA) fit step changes the trainable weights.
    if run_fit:
        _fit_one_step(layer_cls, init_kwargs, inputs, call_kwargs, nested_input)

    # 7. Mixed precision: finite outputs in the documented dtype.
    if run_mixed_precision:
        for policy in ("mixed_float16", "mixed_bfloat16"):
            mixed = layer_cls(**init_kwargs, dtype=policy)
            outputs = _flat(call(mixed, inputs, training=False))
            compute = keras.DTypePolicy(policy).compute_dtype
            assert outputs[0].dtype.name == (output_dtype or compute), policy
            for t in outputs:
                assert np.isfinite(tf.cast(t, tf.float32).numpy()).all(), policy
            trainable = [w for w in mixed.trainable_weights]
            assert all(w.dtype == "float32" for w in trainable), policy
    return layer, eager


def _fit_one_step(layer_cls, init_kwargs, inputs, call_kwargs, nested_input):
    layer = layer_cls(**init_kwargs)
    symbolic_inputs = [_keras_input(x) for x in inputs]
    if nested_input:
        outputs = layer(tuple(symbolic_inputs), **call_kwargs)
    else:
        outputs = layer(*symbolic_inputs, **call_kwargs)
    first = _flat(outputs)[0]
    model = keras.Model(symbolic_inputs, first)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    target = np.ones(first.shape[1:], "float32")[np.newaxis]
    target = np.repeat(target, inputs[0].shape[0], axis=0)
    before = [w.numpy().copy() for w in layer.trainable_weights]
    history = model.fit(
        tuple(x.numpy() for x in inputs) if len(inputs) > 1 else inputs[0].numpy(),
        target,
        epochs=1,
        batch_size=inputs[0].shape[0],
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
    after = [w.numpy() for w in layer.trainable_weights]
    assert any(not np.allclose(b, a) for b, a in zip(before, after, strict=True))
