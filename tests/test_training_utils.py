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


@pytest.mark.slow
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


class CountingTransformer(tt.Transformer):
    """Counts how often Keras traces each step function."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.traces = {"train": 0, "test": 0, "predict": 0}

    def train_step(self, data):
        self.traces["train"] += 1  # Python runs once per trace, not per step
        return super().train_step(data)

    def test_step(self, data):
        self.traces["test"] += 1
        return super().test_step(data)

    def predict_step(self, data):
        self.traces["predict"] += 1
        return super().predict_step(data)


@pytest.mark.slow
@pytest.mark.parametrize("evaluate_first", [False, True])
def test_a_compiled_transformer_traces_each_step_once(evaluate_first):
    # Keras would create the model's, the optimizer's and the metrics'
    # variables inside the first traced step; TensorFlow then traces the step
    # a second time (bench/first_step.py: about 10 s on 2 cores).
    rng = np.random.default_rng(0)
    source = rng.integers(1, 20, (8, 5)).astype("int32")
    target = rng.integers(1, 20, (8, 4)).astype("int32")
    model = CountingTransformer(1, 16, 2, 32, 20, 20, max_length=8)
    model.compile(optimizer="adam", loss=tt.masked_loss, metrics=[tt.masked_accuracy])
    if evaluate_first:
        model.evaluate((source, target), target, batch_size=4, verbose=0)
    history = model.fit(
        (source, target),
        target,
        validation_data=((source, target), target),
        epochs=2,
        batch_size=4,
        verbose=0,
    )
    assert model.traces["train"] == 1 and model.traces["test"] == 1, model.traces
    assert history.history["masked_accuracy"][0] >= 0  # the metric was measured
    # The state built before the trace is reset: a second evaluate agrees
    # with the first, whatever the first batches were.
    first = model.evaluate((source, target), target, batch_size=4, verbose=0)
    second = model.evaluate((source, target), target, batch_size=4, verbose=0)
    np.testing.assert_allclose(first, second, rtol=1e-6)

    fresh = CountingTransformer(1, 16, 2, 32, 20, 20, max_length=8)
    assert fresh.predict((source, target), verbose=0).shape == (8, 4, 20)
    assert fresh.traces["predict"] == 1
