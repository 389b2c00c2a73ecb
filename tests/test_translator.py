"""The Translator: text in, text out, exported and reloaded in a fresh process."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer.data import train_tokenizer
from tf_transformer.inference import plot_attention

SOURCES = ["twenty-one", "four hundred and twenty-one", "seven", "ninety-nine"]
TARGETS = ["vingt et un", "quatre cent vingt et un", "sept", "quatre-vingt-dix-neuf"]


@pytest.fixture(scope="module")
def translator():
    source_tokenizer = train_tokenizer(SOURCES, 60)
    target_tokenizer = train_tokenizer(TARGETS, 60)
    model = tt.Transformer(
        1,
        16,
        2,
        32,
        source_tokenizer.vocabulary_size,
        target_tokenizer.vocabulary_size,
        max_length=48,
    )
    return tt.Translator(model, source_tokenizer, target_tokenizer)


def test_translates_strings_lists_and_tensors(translator):
    batch = translator(SOURCES[:2])
    assert batch.shape == (2,) and batch.dtype == tf.string
    single = translator(SOURCES[0])
    assert single.shape == () and single.numpy() == batch.numpy()[0]
    np.testing.assert_array_equal(
        translator.translate(tf.constant(SOURCES[:2])).numpy(), batch.numpy()
    )


def test_overlong_input_is_truncated_not_an_error(translator):
    long_sentence = " ".join(["four hundred and twenty-one"] * 40)
    assert translator(long_sentence).dtype == tf.string
    ids = translator._source_ids(tf.constant([long_sentence]))
    assert ids.shape[1] == translator.max_source_length and ids[0, -1] == 3


def test_empty_input_translates_to_something_not_a_crash(translator):
    assert translator(["", "   "]).shape == (2,)


@pytest.mark.slow
def test_exported_translator_reloads_with_only_tensorflow_and_text(
    translator, tmp_path
):
    path = tmp_path / "translator"
    translator.export(path)
    expected = translator(SOURCES).numpy()
    script = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops)
        assert "tf_transformer" not in sys.modules and "keras_hub" not in sys.modules
        loaded = tf.saved_model.load({str(path)!r})
        out = loaded.translate(tf.constant({SOURCES!r}))
        served = loaded.signatures["serving_default"](strings=tf.constant({SOURCES!r}))
        assert (served["output_0"].numpy() == out.numpy()).all()
        print("\\n".join(s.decode() for s in out.numpy()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [s.decode() for s in expected]


def test_attention_for_plotting(translator, tmp_path):
    info = translator.translate_with_attention("four hundred and twenty-one")
    layers, heads, rows, columns = info["cross_attention"].shape
    assert (layers, heads) == (1, 2)
    assert columns == len(info["source_tokens"]) and rows == len(info["target_tokens"])
    assert (
        info["source_tokens"][0] == "[START]" and info["source_tokens"][-1] == "[END]"
    )
    np.testing.assert_allclose(info["cross_attention"].sum(-1), 1.0, atol=1e-5)
    path = tmp_path / "attention.png"
    plot_attention(
        info["cross_attention"], info["source_tokens"], info["target_tokens"], path=path
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_named(translator):
    with pytest.raises(ValueError, match="margin"):
        tt.Translator(
            translator.model,
            translator.source_tokenizer,
            translator.target_tokenizer,
            max_source_length=40,
            margin=20,
        )
    with pytest.raises(TypeError, match="sentence"):
        translator.translate_with_attention(["a list"])
    with pytest.raises(ValueError, match="weights"):
        plot_attention(np.zeros((2, 3)), ["a"], ["b"])
    with pytest.raises(ValueError, match="source_tokens"):
        plot_attention(np.zeros((1, 2, 3)), ["a"], ["b", "c"])
