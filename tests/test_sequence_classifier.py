"""`SequenceClassifier` and `MaskedLanguageModel`: the encoder-only models."""

import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tests.test_equivalence import copy_keras_hub_block

IDS = np.array([[4, 17, 9, 33, 21, 3], [4, 41, 3, 0, 0, 0]], "int32")


def encoder(**kwargs):
    settings = dict(num_layers=2, d_model=16, num_heads=4, dff=32, vocab_size=50)
    return tt.Encoder(**{**settings, **kwargs})


def keras_hub_logits(classifier, ids, pooling):
    """The same forward pass with keras-hub TransformerEncoder blocks.

    Each block's weights are copied into our encoder's layer (through a
    standalone `EncoderLayer`, see test_equivalence), so both compute with the
    same numbers.
    """
    ours = classifier.encoder
    mask = ids != 0
    x = ours.embedding(ids)
    for layer in ours.stack:
        block = keras_hub.layers.TransformerEncoder(
            32, 4, dropout=0.0, layer_norm_epsilon=1e-5
        )
        block(x)
        standalone = tt.EncoderLayer(16, 4, 32)
        standalone(x)
        copy_keras_hub_block(standalone, block)
        layer.set_weights(standalone.get_weights())
        x = block(x, padding_mask=mask, training=False)
    x = np.asarray(x)
    if pooling == "class_token":
        pooled = x[:, 0]
    else:
        weights = mask[..., None].astype("float32")
        pooled = (x * weights).sum(1) / weights.sum(1)
    kernel, bias = (w.numpy() for w in classifier.classifier.weights)
    return pooled @ kernel + bias


@pytest.mark.parametrize("pooling", ["class_token", "mean"])
def test_classifier_matches_keras_hub_transformer_encoder(pooling):
    classifier = tt.SequenceClassifier(encoder(), num_classes=3, pooling=pooling)
    classifier(IDS)
    theirs = keras_hub_logits(classifier, IDS, pooling)
    ours = classifier(IDS, training=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-5


@pytest.mark.parametrize("pooling", ["class_token", "mean"])
def test_padding_appended_leaves_the_logits_unchanged(pooling):
    classifier = tt.SequenceClassifier(encoder(), num_classes=3, pooling=pooling)
    logits = classifier(IDS, training=False).numpy()
    padded = np.pad(IDS, ((0, 0), (0, 5)))
    np.testing.assert_allclose(classifier(padded, training=False), logits, atol=1e-5)


def test_explicit_padding_mask_takes_precedence_over_the_implicit_one():
    classifier = tt.SequenceClassifier(encoder(), num_classes=3, pooling="mean")
    implicit = classifier(IDS, training=False)
    explicit = classifier(IDS, padding_mask=IDS != 0, training=False)
    np.testing.assert_allclose(explicit, implicit, atol=1e-6)
    shorter = (IDS != 0) & (np.arange(6) < 3)
    changed = classifier(IDS, padding_mask=shorter, training=False)
    cut = classifier(np.where(shorter, IDS, 0), training=False)
    np.testing.assert_allclose(changed, cut, atol=1e-5)
    assert not np.allclose(changed[0], implicit[0])


def test_classifier_returns_the_attention_of_every_layer():
    classifier = tt.SequenceClassifier(encoder(), num_classes=3)
    logits, weights = classifier(IDS, return_attention_scores=True)
    assert logits.shape == (2, 3) and len(weights) == 2
    assert weights[0].shape == (2, 4, 6, 6)
    np.testing.assert_allclose(weights[0][1, :, :, 3:], 0.0)  # padding keys


def test_models_run_under_mixed_precision_with_float32_outputs():
    for model in (
        tt.SequenceClassifier(encoder(dtype="mixed_float16"), 3, pooling="mean"),
        tt.MaskedLanguageModel(encoder(dtype="mixed_float16"), dtype="mixed_float16"),
    ):
        outputs = model(IDS, training=False)
        assert outputs.dtype == tf.float32
        assert np.isfinite(outputs.numpy()).all()


def masked_batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(7, 50, size=(16, 12)).astype("int32")
    ids[:, 0] = 4
    ids[8:, 9:] = 0
    masked, selected = tt.mask_tokens(ids, 50, 6, rate=0.3, seed=seed)
    return masked.numpy(), ids, selected.numpy()


def test_masked_lm_loss_counts_only_the_selected_positions():
    model = tt.MaskedLanguageModel(encoder())
    masked, ids, selected = masked_batch()
    logits = model(masked, training=False)
    per_token = keras.losses.sparse_categorical_crossentropy(
        ids, logits, from_logits=True
    ).numpy()
    expected = per_token[selected].mean()
    loss = model.compute_loss(masked, ids, logits, selected)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    other_targets = np.where(selected, ids, 7)  # unselected targets do not count
    np.testing.assert_allclose(
        model.compute_loss(masked, other_targets, logits, selected), loss, rtol=1e-6
    )


@pytest.mark.slow
def test_masked_lm_trains_with_tied_weights_and_hands_its_encoder_on():
    keras.utils.set_random_seed(0)
    model = tt.MaskedLanguageModel(encoder(dropout=0.0))
    model.compile(keras.optimizers.Adam(3e-3), metrics=["sparse_categorical_accuracy"])
    masked, ids, selected = masked_batch(1)
    first = model.evaluate(masked, ids, sample_weight=selected, verbose=0)[0]
    before = model.encoder.embedding.token_embedding.embeddings.numpy().copy()
    model.fit(masked, ids, sample_weight=selected, epochs=30, verbose=0)
    last = model.evaluate(masked, ids, sample_weight=selected, verbose=0)[0]
    assert last < first * 0.8
    after = model.encoder.embedding.token_embedding.embeddings.numpy()
    assert not np.allclose(before, after)
    assert not any("output_kernel" in w.path for w in model.weights)
    classifier = tt.SequenceClassifier(model.encoder, num_classes=2)
    assert classifier(ids).shape == (16, 2)


@pytest.mark.slow
def test_saved_models_reload_in_a_fresh_process(tmp_path):
    classifier = tt.SequenceClassifier(encoder(), num_classes=3, pooling="mean")
    language_model = tt.MaskedLanguageModel(encoder(), tie_weights=True)
    expected = {}
    for name, model in (("classifier", classifier), ("mlm", language_model)):
        expected[name] = model(IDS, training=False).numpy()
        model.save(tmp_path / f"{name}.keras")
    np.save(tmp_path / "ids.npy", IDS)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import tf_transformer  # registers the serializable classes
        ids = np.load({str(tmp_path / "ids.npy")!r})
        for name in ("classifier", "mlm"):
            model = keras.models.load_model({str(tmp_path)!r} + f"/{{name}}.keras")
            out = model(ids, training=False)
            np.save({str(tmp_path)!r} + f"/{{name}}.npy", np.asarray(out))
            print(type(model).__name__, model.get_config().get("pooling"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SequenceClassifier mean" in result.stdout
    assert "MaskedLanguageModel None" in result.stdout
    for name in expected:
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), expected[name])


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: tt.SequenceClassifier("encoder", 3), TypeError, "`encoder`"),
        (
            lambda: tt.SequenceClassifier(encoder(vocab_size=None), 3),
            ValueError,
            "vocab_size",
        ),
        (lambda: tt.SequenceClassifier(encoder(), 0), ValueError, "num_classes"),
        (
            lambda: tt.SequenceClassifier(encoder(), 3, pooling="max"),
            ValueError,
            "pooling",
        ),
        (
            lambda: tt.SequenceClassifier(encoder(), 3)(tf.ones((2, 4, 1), tf.int32)),
            ValueError,
            "token_ids",
        ),
        (
            lambda: tt.MaskedLanguageModel(encoder()).compile("adam", loss="mse"),
            ValueError,
            "loss",
        ),
        (
            lambda: tt.MaskedLanguageModel(encoder(), tie_weights=1),
            TypeError,
            "tie_weights",
        ),
    ],
)
def test_models_reject_bad_arguments_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_cls_is_an_alias_of_the_class_token_spelling():
    encoder = tt.Encoder(num_layers=1, d_model=8, num_heads=2, dff=16, vocab_size=20)
    classifier = tt.SequenceClassifier(encoder, 3, pooling="cls")
    assert classifier.pooling == "class_token"
    assert classifier.get_config()["pooling"] == "class_token"
