"""The schedule, the masked loss and the masked accuracy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt


def test_schedule_warms_up_linearly_then_decays_as_inverse_sqrt():
    schedule = tt.TransformerSchedule(d_model=512, warmup_steps=4000)
    steps = np.array([0, 999, 3999, 15999])
    rates = np.array([float(schedule(s)) for s in steps])
    paper_steps = steps + 1
    expected = 512**-0.5 * np.minimum(paper_steps**-0.5, paper_steps * 4000**-1.5)
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert rates[0] > 0
    np.testing.assert_allclose(rates[1] / rates[0], 1000, rtol=1e-5)  # linear
    np.testing.assert_allclose(rates[2] / rates[3], 2.0, rtol=1e-5)  # 1/sqrt
    assert rates.argmax() == 2  # the peak is at the end of the warm-up


def logits_and_labels():
    logits = tf.random.stateless_normal((2, 4, 7), seed=(1, 2))
    labels = tf.constant([[3, 1, 6, 0], [2, 0, 0, 0]])
    return labels, logits


def test_masked_loss_is_the_mean_over_real_tokens():
    labels, logits = logits_and_labels()
    mask = (labels != 0).numpy()
    reference = keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    ).numpy()
    expected = reference[mask].mean()
    np.testing.assert_allclose(
        float(tt.masked_loss(labels, logits)), expected, rtol=1e-6
    )


def test_masked_loss_ignores_whatever_sits_at_padding():
    labels, logits = logits_and_labels()
    noisy = tf.where((labels != 0)[..., None], logits, 100.0 * logits)
    for smoothing in (0.0, 0.1):
        np.testing.assert_allclose(
            float(tt.masked_loss(labels, noisy, label_smoothing=smoothing)),
            float(tt.masked_loss(labels, logits, label_smoothing=smoothing)),
            rtol=1e-6,
        )


def test_label_smoothing_matches_keras_categorical_crossentropy():
    labels, logits = logits_and_labels()
    mask = (labels != 0).numpy()
    reference = keras.losses.categorical_crossentropy(
        tf.one_hot(labels, 7), logits, from_logits=True, label_smoothing=0.1
    ).numpy()
    np.testing.assert_allclose(
        float(tt.masked_loss(labels, logits, label_smoothing=0.1)),
        reference[mask].mean(),
        rtol=1e-5,
    )


def test_masked_loss_accepts_float_labels_as_keras_passes_them():
    labels, logits = logits_and_labels()
    np.testing.assert_allclose(
        float(tt.masked_loss(tf.cast(labels, tf.float32), logits)),
        float(tt.masked_loss(labels, logits)),
    )


def test_masked_accuracy_counts_real_tokens_only():
    labels = tf.constant([[3, 1, 6, 0], [2, 0, 0, 0]])
    predicted = tf.constant([[3, 1, 5, 0], [2, 4, 4, 4]])
    logits = tf.one_hot(predicted, 7)
    assert float(tt.masked_accuracy(labels, logits)) == pytest.approx(3 / 4)
    assert float(tt.masked_accuracy(tf.zeros((1, 3), tf.int32), logits[:1, :3])) == 0.0


def test_a_tiny_transformer_learns_to_copy():
    """End to end: schedule + masked loss drive a 1-layer model to copy ids."""
    rng = np.random.default_rng(0)
    body = rng.integers(4, 12, size=(512, 5)).astype("int32")
    source = body
    target_in = np.concatenate([np.full((512, 1), 2, "int32"), body], 1)
    target_out = np.concatenate([body, np.full((512, 1), 3, "int32")], 1)
    model = tt.Transformer(1, 32, 2, 64, 12, 12, max_length=8, dropout=0.0)
    model.compile(
        optimizer=keras.optimizers.Adam(
            tt.TransformerSchedule(32, warmup_steps=50),
            beta_1=0.9,
            beta_2=0.98,
            epsilon=1e-9,
        ),
        loss=tt.masked_loss,
        metrics=[tt.masked_accuracy],
    )
    history = model.fit(
        (source, target_in), target_out, epochs=10, batch_size=32, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < losses[0] / 4
    assert history.history["masked_accuracy"][-1] > 0.9
