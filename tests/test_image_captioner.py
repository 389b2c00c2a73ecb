"""The ImageCaptioner: a ViT encoder as the decoder's memory, decoded by the
library's cached loops, saved, exported and reloaded in fresh processes."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer.data import (
    LANGUAGE_TOKENS,
    LANGUAGES,
    NUMBER_IMAGE_SHAPE,
    number_in_words,
    render_number,
    train_tokenizer,
)
from tf_transformer.data.captions import captions_with_language, make_caption_batches

END_ID = 3
VOCAB = 40


def captioner(**overrides):
    kwargs = dict(
        image_shape=NUMBER_IMAGE_SHAPE,
        patch_size=4,
        num_layers=2,
        d_model=16,
        num_heads=2,
        dff=32,
        target_vocab_size=VOCAB,
        max_length=12,
        dropout=0.0,
    )
    kwargs.update(overrides)
    keras.utils.set_random_seed(0)
    return tt.ImageCaptioner(**kwargs)


def pictures(numbers, split="test"):
    return np.stack([render_number(n, split)[0] for n in numbers])


@pytest.fixture(scope="module")
def tokenizer():
    numbers = range(0, 1000, 3)
    languages = [lang for _ in numbers for lang in LANGUAGES]
    captions = [number_in_words(n, lang) for n in numbers for lang in LANGUAGES]
    texts = captions_with_language(tf.constant(languages), tf.constant(captions))
    return train_tokenizer([t.decode() for t in texts.numpy()], 200)


def test_logits_have_one_row_per_decoder_input_and_float32_under_mixed_precision():
    model = captioner()
    images = pictures([7, 42, 913])
    logits = model((images, tf.constant([[5, 6, 7], [5, 6, 0], [5, 0, 0]])))
    assert logits.shape == (3, 3, VOCAB) and logits.dtype == tf.float32
    mixed = captioner(dtype="mixed_float16")
    assert mixed((images, tf.constant([[5, 6]] * 3))).dtype == tf.float32


def test_cross_attention_reads_every_patch_of_the_image():
    model = captioner()
    _, weights = model(
        (pictures([123]), tf.constant([[5, 6, 7]])), return_attention_scores=True
    )
    cross = weights["decoder_cross_attention"]
    assert len(cross) == 2
    patches = (8 // 4) * (24 // 4)
    assert cross[0].shape == (1, 2, 3, patches)
    np.testing.assert_allclose(tf.reduce_sum(cross[0], -1), 1.0, atol=1e-5)


def test_padding_of_the_decoder_input_does_not_change_real_positions():
    model = captioner()
    images = pictures([58])
    short = model((images, tf.constant([[5, 6]])))
    padded = model((images, tf.constant([[5, 6, 0, 0]])))
    np.testing.assert_allclose(short, padded[:, :2], atol=1e-5)


@pytest.mark.parametrize("start_ids", [None, 7, [7, 8, 9, 10]])
def test_cached_greedy_decoding_equals_rerunning_the_full_model(start_ids):
    model = captioner()
    images = pictures([3, 47, 512, 999])
    cached = tt.greedy_decode(model, images, start_ids=start_ids)
    full = tt.greedy_decode(model, images, start_ids=start_ids, use_cache=False)
    assert cached.shape == (4, 11)
    np.testing.assert_array_equal(cached, full)


def test_the_start_token_is_read_by_the_decoder():
    model = captioner()
    images = pictures([47, 47])
    logits = model((images, tf.constant([[7], [8]])))
    assert not np.allclose(logits[0], logits[1])
    np.testing.assert_array_equal(
        tt.greedy_decode(model, images), tt.greedy_decode(model, images, start_ids=2)
    )


def test_beam_of_width_one_is_greedy_and_compiled_decoding_equals_eager():
    model = captioner()
    images = pictures([3, 47, 512])
    greedy = tt.greedy_decode(model, images, start_ids=7)
    beam, _ = tt.beam_search(model, images, beam_width=1, start_ids=7)
    np.testing.assert_array_equal(greedy, beam)
    compiled = tf.function(
        lambda x: tt.greedy_decode(model, x, start_ids=7), jit_compile=True
    )
    np.testing.assert_array_equal(compiled(images), greedy)


def test_decoding_stops_at_end_and_pads_after_it():
    model = captioner()
    model.build(((None,) + NUMBER_IMAGE_SHAPE, (None, None)))
    # An output layer that always prefers [END].
    kernel, bias = model.output_projection.get_weights()
    bias = np.zeros_like(bias)
    bias[END_ID] = 100.0
    model.output_projection.set_weights([np.zeros_like(kernel), bias])
    images = pictures([5, 60])
    for ids in (
        tt.greedy_decode(model, images, start_ids=7),
        tt.beam_search(model, images, beam_width=3, start_ids=7)[0],
    ):
        np.testing.assert_array_equal(ids[:, 0], [END_ID, END_ID])
        np.testing.assert_array_equal(ids[:, 1:], 0)


def twelve_and_345():
    """Two test examples of different lengths: 12 in German, 345 in French."""
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": pictures([12, 345]),
            "number": [12, 345],
            "language": ["de", "fr"],
            "caption": [number_in_words(12, "de"), number_in_words(345, "fr")],
        }
    )


def test_caption_batches_start_with_the_language_token_and_end_with_end(tokenizer):
    examples = twelve_and_345()
    (images, target_in), target_out = next(
        iter(make_caption_batches(examples, tokenizer, 2, shuffle=False))
    )
    assert images.shape == (2,) + NUMBER_IMAGE_SHAPE
    assert target_in[0, 0] == tokenizer.token_to_id(LANGUAGE_TOKENS["de"])
    assert target_in[1, 0] == tokenizer.token_to_id(LANGUAGE_TOKENS["fr"])
    np.testing.assert_array_equal(target_in[:, 1:], target_out[:, :-1])
    for row in target_out.numpy():
        real = row[row != 0]
        assert real[-1] == END_ID
    words = tokenizer.detokenize(tf.where(target_out == END_ID, 0, target_out)).numpy()
    assert [w.decode() for w in words] == ["zwölf", "trois cent quarante-cinq"]


def test_caption_inputs_frames_captions_as_the_caption_batches_do(tokenizer):
    # The lesson's exercise and the training pipeline agree: the caption
    # tokenized alone, [START] w1 … wn [END], with the language token in place
    # of [START], is the batches' decoder input; the labels are the same.
    # (Two captions of different lengths, so that padding is part of it.)
    examples = twelve_and_345()
    (_, target_in), target_out = next(
        iter(make_caption_batches(examples, tokenizer, 2, shuffle=False))
    )
    caption_ids = tokenizer.tokenize(
        tf.constant([number_in_words(12, "de"), number_in_words(345, "fr")])
    ).to_tensor()  # (2, length), 0-padded
    languages = [tokenizer.token_to_id(LANGUAGE_TOKENS[lang]) for lang in ("de", "fr")]
    encoded = tf.random.stateless_normal((2, 13, 16), seed=(1, 2))
    memory, ours_in, ours_out = tt.caption_inputs(encoded, caption_ids, languages)
    np.testing.assert_array_equal(memory, encoded[:, 1:])
    # Wherever there is a label to predict; a shorter caption keeps its [END]
    # in the input at a position whose label is padding (the loss ignores it).
    width = target_in.shape[1]
    np.testing.assert_array_equal(ours_out[:, :width], target_out)
    assert not np.any(ours_out[:, width:])
    labelled = ours_out[:, :width] != 0
    np.testing.assert_array_equal(np.where(labelled, ours_in[:, :width], 0), target_in)


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((tf.zeros((2, 13)), [[2, 5, 3]] * 2, [40, 41]), ValueError, "encoded"),
        ((tf.zeros((2, 13, 8)), tf.zeros((2, 3)), [40, 41]), TypeError, "caption_ids"),
        ((tf.zeros((2, 13, 8)), [2, 5, 3], [40, 41]), ValueError, "caption_ids"),
    ],
)
def test_caption_inputs_bad_input_names_the_argument(args, error, words):
    with pytest.raises(error, match=words):
        tt.caption_inputs(*args)


def train_briefly(model, tokenizer, steps=30):
    numbers = list(range(0, 1000, 37))
    examples = tf.data.Dataset.from_tensor_slices(
        {
            "image": pictures(numbers, "train"),
            "number": numbers,
            "language": ["en"] * len(numbers),
            "caption": [number_in_words(n, "en") for n in numbers],
        }
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=tt.masked_loss)
    batches = make_caption_batches(examples, tokenizer, 16, seed=0)
    model.fit(batches.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return model


@pytest.mark.slow
def test_trained_captioner_reloads_from_keras_file_in_a_fresh_process(
    tokenizer, tmp_path
):
    model = train_briefly(
        captioner(target_vocab_size=tokenizer.vocabulary_size), tokenizer
    )
    path = tmp_path / "captioner.keras"
    model.save(path)
    images = pictures([8, 64, 512])
    np.save(tmp_path / "images.npy", images)
    expected = tt.greedy_decode(model, images, start_ids=41).numpy()
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import tf_transformer as tt
        model = keras.models.load_model({str(path)!r})
        assert type(model) is tt.ImageCaptioner
        images = np.load({str(tmp_path / "images.npy")!r})
        ids = tt.greedy_decode(model, images, start_ids=41).numpy()
        print(" ".join(str(i) for i in ids.ravel()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [str(i) for i in expected.ravel()]


def test_config_round_trip_rebuilds_the_same_model():
    model = captioner(num_encoder_layers=1, norm_first=True, position="learned")
    clone = tt.ImageCaptioner.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.num_encoder_layers == 1 and clone.decoder.num_layers == 2


@pytest.mark.slow
def test_exported_captioner_reloads_with_only_tensorflow_and_text(tokenizer, tmp_path):
    model = train_briefly(
        captioner(target_vocab_size=tokenizer.vocabulary_size), tokenizer
    )
    captioner_module = tt.Captioner(model, tokenizer)
    images = pictures([8, 64, 512])
    languages = ["en", "de", "fr"]
    expected = captioner_module(images, languages).numpy()
    assert captioner_module(images[0], "en").numpy() == expected[0]
    path = tmp_path / "captioner"
    captioner_module.export(path)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops)
        assert "tf_transformer" not in sys.modules
        loaded = tf.saved_model.load({str(path)!r})
        images = tf.constant(np.load({str(tmp_path / "images.npy")!r}))
        out = loaded.caption(images, tf.constant({languages!r}))
        served = loaded.signatures["serving_default"](
            images=images, languages=tf.constant({languages!r})
        )
        assert (served["output_0"].numpy() == out.numpy()).all()
        print("\\n".join(s.decode() for s in out.numpy()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:3] == [s.decode() for s in expected]


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"target_vocab_size": 0}, ValueError, "target_vocab_size"),
        ({"patch_size": 3}, ValueError, "patch_size=3"),
        ({"image_shape": (8, 24)}, ValueError, "image_shape"),
        ({"position": "rotary"}, ValueError, "position"),
        ({"num_encoder_layers": 0}, ValueError, "num_encoder_layers"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        captioner(**kwargs)


def test_bad_inputs_name_the_argument_and_the_value():
    model = captioner()
    with pytest.raises(TypeError, match="images.*int32"):
        model((tf.zeros((1,) + NUMBER_IMAGE_SHAPE, tf.int32), tf.constant([[5]])))
    with pytest.raises(ValueError, match="images.*shape"):
        model.encode(tf.zeros((1, 8, 16, 1)))
    with pytest.raises(ValueError, match="pair"):
        model(pictures([5]))
    with pytest.raises(TypeError, match="source_ids.*float"):
        tt.greedy_decode(model, tf.zeros((1,) + NUMBER_IMAGE_SHAPE, tf.int32))
    with pytest.raises(TypeError, match="start_ids"):
        tt.greedy_decode(model, pictures([5]), start_ids=tf.constant([1.5]))


def test_captioner_rejects_unknown_languages_and_foreign_tokenizers(tokenizer):
    model = captioner(target_vocab_size=tokenizer.vocabulary_size)
    module = tt.Captioner(model, tokenizer)
    with pytest.raises(ValueError, match="languages.*'xx'"):
        module(pictures([5]), "xx")
    with pytest.raises(ValueError, match="images"):
        module(np.zeros((8, 8, 1)), "en")
    other = train_tokenizer(["one two three"] * 20, 30)
    with pytest.raises(ValueError, match="tokenizer.*deutsch"):
        tt.Captioner(model, other)
    with pytest.raises(TypeError, match="ImageCaptioner"):
        tt.Captioner(tt.VisionTransformer((8, 8, 1), 4, 1, 8, 2, 8), tokenizer)
