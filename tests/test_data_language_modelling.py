"""Translation as language modelling: streams, continuation-only labels, prompts."""

import numpy as np
import pytest
import tensorflow as tf

from tf_transformer.data import (
    END_ID,
    PAD_ID,
    START_ID,
    language_model_texts,
    load_translation,
    make_language_model_batches,
    tokenize_prompts,
    train_tokenizer,
    translation_prompt,
)


@pytest.fixture(scope="module")
def pairs():
    return load_translation("numbers", split="train").take(300)


@pytest.fixture(scope="module")
def tokenizer(pairs):
    return train_tokenizer(language_model_texts(pairs), 300)


def test_prompt_writes_the_languages_and_an_arrow():
    assert translation_prompt("seventy-one") == "en: seventy-one => fr:"
    assert translation_prompt("one", "de", "en") == "de: one => en:"
    joined = translation_prompt(tf.constant(["two", "three"]))
    assert joined.numpy().tolist() == [b"en: two => fr:", b"en: three => fr:"]


def test_labels_are_the_inputs_shifted_with_the_prompt_hidden(pairs, tokenizer):
    batches = make_language_model_batches(pairs, tokenizer, 16, shuffle=False)
    inputs, labels = next(iter(batches))
    inputs, labels = inputs.numpy(), labels.numpy()
    assert inputs.shape == labels.shape and inputs.dtype == np.int32
    for (source, target), row_in, row_out in zip(
        pairs.take(16).as_numpy_iterator(), inputs, labels, strict=True
    ):
        prompt = tokenize_prompts(tokenizer, [source.decode()]).numpy()[0]
        continuation = tokenizer.tokenize(target.decode()).numpy()[1:]
        stream = np.concatenate([prompt, continuation])  # [START] … [END]
        length = len(stream) - 1
        np.testing.assert_array_equal(row_in[:length], stream[:-1])
        assert (row_in[length:] == PAD_ID).all()
        # Only the continuation is graded; its last label is [END].
        hidden = len(prompt) - 1
        assert (row_out[:hidden] == PAD_ID).all()
        np.testing.assert_array_equal(row_out[hidden:length], continuation)
        assert row_out[length - 1] == END_ID and row_in[0] == START_ID


def test_streams_longer_than_max_length_are_left_out(pairs, tokenizer):
    batches = make_language_model_batches(
        pairs, tokenizer, 300, max_length=24, shuffle=False
    )
    inputs, labels = next(iter(batches))
    assert inputs.shape[1] <= 24 and 0 < inputs.shape[0] < 300
    lengths = tf.reduce_sum(tf.cast(inputs != 0, tf.int32), axis=1).numpy()
    last_labels = labels.numpy()[np.arange(len(lengths)), lengths - 1]
    assert (last_labels == END_ID).all()


def test_shuffling_with_a_seed_repeats(pairs, tokenizer):
    def first_batch(seed):
        batches = make_language_model_batches(pairs, tokenizer, 8, seed=seed)
        return next(iter(batches))[0].numpy()

    np.testing.assert_array_equal(first_batch(3), first_batch(3))


def test_prompts_are_right_padded_without_end(tokenizer):
    ids = tokenize_prompts(tokenizer, ["seventy-one", "two"]).numpy()
    assert ids.dtype == np.int32 and (ids[:, 0] == START_ID).all()
    assert END_ID not in ids
    assert ids[1, -1] == PAD_ID and ids[0, -1] != PAD_ID


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda p, t: make_language_model_batches(p, None), TypeError, "tokenizer"),
        (lambda p, t: make_language_model_batches(p, t, 0), ValueError, "batch_size"),
        (lambda p, t: make_language_model_batches(["a"], t), TypeError, "pairs"),
        (
            lambda p, t: translation_prompt("one", source_lang=""),
            ValueError,
            "source_lang",
        ),
    ],
)
def test_bad_arguments_raise_errors_naming_them(pairs, tokenizer, call, error, message):
    with pytest.raises(error, match=message):
        call(pairs, tokenizer)


def test_padding_to_max_length_gives_one_static_shape(pairs, tokenizer):
    batches = make_language_model_batches(
        pairs, tokenizer, 16, max_length=40, pad_to_max_length=True
    )
    assert batches.element_spec[0].shape == (16, 40)
    assert all(ids.shape == (16, 40) for ids, _ in batches.take(3))
