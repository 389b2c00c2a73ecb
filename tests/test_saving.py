"""A trained Transformer saved as .keras reloads in a new process to the same logits."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt


@pytest.mark.slow
def test_trained_transformer_reloads_in_a_fresh_process(tmp_path):
    model = tt.Transformer(
        num_layers=1,
        d_model=16,
        num_heads=2,
        dff=32,
        input_vocab_size=20,
        target_vocab_size=24,
        max_length=16,
    )
    source = np.array([[4, 9, 11, 0], [5, 6, 0, 0]], "int32")
    target_in = np.array([[2, 7, 8], [2, 3, 0]], "int32")
    target_out = np.array([[7, 8, 3], [3, 0, 0]], "int32")
    model.compile(
        optimizer=keras.optimizers.Adam(tt.TransformerSchedule(16, warmup_steps=10)),
        loss=tt.masked_loss,
        metrics=[tt.masked_accuracy],
    )
    model.fit((source, target_in), target_out, epochs=1, batch_size=2, verbose=0)
    assert model.optimizer.iterations.numpy() == 1

    path = tmp_path / "model.keras"
    model.save(path)
    expected = model((source, target_in), training=False).numpy()
    np.savez(tmp_path / "inputs.npz", source=source, target_in=target_in)

    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import tf_transformer  # registers the serializable classes
        data = np.load({str(tmp_path / "inputs.npz")!r})
        model = keras.models.load_model({str(path)!r})
        logits = model((data["source"], data["target_in"]), training=False)
        np.save({str(tmp_path / "logits.npy")!r}, np.asarray(logits))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    reloaded = np.load(tmp_path / "logits.npy")
    np.testing.assert_array_equal(reloaded, expected)


def test_schedule_and_losses_survive_serialization():
    schedule = tt.TransformerSchedule(64, warmup_steps=100, scale=2.0)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert float(restored(tf.constant(50))) == float(schedule(tf.constant(50)))
    for fn in (tt.masked_loss, tt.masked_accuracy):
        assert (
            keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(fn)
            )
            is fn
        )
