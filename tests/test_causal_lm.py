"""CausalLM: a decoder-only model that never looks ahead, saves, and checks input."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

import tf_transformer as tt

IDS = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]], "int32")


def small_model(**kwargs):
    keras.utils.set_random_seed(1)
    config = dict(
        num_layers=2,
        d_model=16,
        num_heads=2,
        dff=32,
        vocabulary_size=20,
        max_length=32,
        dropout=0.0,
    )
    config.update(kwargs)
    return tt.CausalLM(**config)


def test_causal_lm_passes_the_layer_checks():
    run_layer_test(
        tt.CausalLM,
        dict(
            num_layers=1,
            d_model=16,
            num_heads=2,
            dff=32,
            vocabulary_size=20,
            max_length=16,
            position="learned",
        ),
        [IDS],
        expected_output_shape=(2, 5, 20),
        output_dtype="float32",
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_changing_a_later_token_never_changes_earlier_logits(norm_first):
    model = small_model(norm_first=norm_first)
    logits = model(IDS).numpy()
    for position in range(IDS.shape[1]):
        changed = IDS.copy()
        changed[:, position] = 13
        other = model(changed).numpy()
        np.testing.assert_allclose(other[:, :position], logits[:, :position], atol=1e-6)
        assert not np.allclose(other[0, position:], logits[0, position:])


def test_right_padding_does_not_change_real_positions():
    model = small_model()
    short = model(IDS[1:, :3]).numpy()
    padded = model(IDS[1:]).numpy()
    np.testing.assert_allclose(padded[:, :3], short, atol=1e-6)


def test_explicit_padding_mask_takes_precedence_over_the_ids():
    model = small_model()
    # Id 0 read as a real token when the mask says so: its key is visible.
    everything = tf.ones_like(IDS, tf.bool)
    with_pad_keys = model(IDS, padding_mask=everything).numpy()
    default = model(IDS).numpy()
    np.testing.assert_allclose(with_pad_keys[1, :3], default[1, :3], atol=1e-6)
    assert not np.allclose(with_pad_keys[1, 3:], default[1, 3:])
    # Left padding: the padded keys are masked, the real positions are finite.
    left = np.array([[0, 0, 10, 11, 12]], "int32")
    assert np.isfinite(model(left).numpy()).all()


def test_the_block_is_an_encoder_layer_under_a_causal_mask():
    model = small_model(num_layers=1)
    model(IDS)
    x = model.embedding(IDS)
    layer = model.decoder.stack[0]
    expected = layer(
        x, padding_mask=IDS != 0, attention_mask=tt.causal_mask(IDS.shape[1])
    )
    np.testing.assert_allclose(
        model(IDS).numpy(), model.output_projection(expected).numpy(), atol=1e-5
    )
    assert not any("cross" in w.path for w in model.weights)


def test_attention_scores_are_zero_above_the_diagonal():
    model = small_model()
    _, weights = model(IDS, return_attention_scores=True)
    assert len(weights) == 2
    for layer_weights in weights:
        assert layer_weights.shape == (2, 2, 5, 5)
        upper = np.triu(np.ones((5, 5), bool), 1)
        assert (layer_weights.numpy()[..., upper] == 0).all()


@pytest.mark.slow
def test_causal_lm_learns_to_count():
    # Sequences 4, 5, 6, ... (cyclic over ids 4..19): the next token is known.
    keras.utils.set_random_seed(0)
    starts = np.random.default_rng(0).integers(0, 16, size=(256, 1))
    sequences = (4 + (starts + np.arange(9)) % 16).astype("int32")
    model = small_model(num_layers=1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=tt.masked_loss)
    model.fit(sequences[:, :-1], sequences[:, 1:], epochs=15, batch_size=32, verbose=0)
    predictions = model.predict(sequences[:8, :-1], verbose=0).argmax(-1)
    assert (predictions[:, 1:] == sequences[:8, 2:]).mean() > 0.95


@pytest.mark.slow
def test_trained_causal_lm_reloads_in_a_fresh_process(tmp_path):
    model = small_model(num_layers=1, norm_first=True)
    model.compile(optimizer="adam", loss=tt.masked_loss)
    model.fit(IDS[:, :-1], IDS[:, 1:], epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    prompts = np.array([[5, 6, 7], [10, 0, 0]], "int32")
    expected_logits = model(IDS, training=False).numpy()
    expected_ids = tt.generate(model, prompts, 6, temperature=0).numpy()
    np.save(tmp_path / "ids.npy", IDS)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import tf_transformer as tt
        model = keras.models.load_model({str(path)!r})
        assert type(model) is tt.CausalLM
        ids = np.load({str(tmp_path / "ids.npy")!r})
        np.save({str(tmp_path / "logits.npy")!r}, np.asarray(model(ids)))
        prompts = np.array([[5, 6, 7], [10, 0, 0]], "int32")
        generated = tt.generate(model, prompts, 6, temperature=0)
        np.save({str(tmp_path / "generated.npy")!r}, np.asarray(generated))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), expected_logits)
    np.testing.assert_array_equal(np.load(tmp_path / "generated.npy"), expected_ids)


def test_config_round_trip_keeps_every_argument():
    model = small_model(activation="gelu", position="learned", norm_first=True)
    config = model.get_config()
    twin = tt.CausalLM.from_config(config)
    assert twin.get_config() == config
    assert config["vocabulary_size"] == 20 and config["max_length"] == 32


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(vocabulary_size=0), ValueError, "vocabulary_size"),
        (dict(d_model=15), ValueError, "num_heads"),
        (dict(position="rotary"), ValueError, "position"),
        (dict(max_length="32"), TypeError, "max_length"),
    ],
)
def test_bad_constructor_arguments_raise_errors_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        small_model(**kwargs)


def test_bad_call_input_raises_errors_naming_it():
    model = small_model()
    with pytest.raises(TypeError, match="token_ids"):
        model(tf.zeros((2, 3)))
    with pytest.raises(ValueError, match="token_ids"):
        model(tf.zeros((2, 3, 4), tf.int32))
    with pytest.raises(ValueError, match="max_length"):
        model(tf.ones((1, 40), tf.int32))
    with pytest.raises(ValueError, match="vocab_size=20"):
        model(tf.constant([[5, 25]]))
