"""The offline classification datasets and the unlabelled pretraining text."""

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tf_transformer import data
from tf_transformer.data import classification
from tf_transformer.data.corpora import LANGUAGES, SPLITS, number_in_words


def values_of(keys):
    return {key.rsplit("/", 1)[0] for key in keys}


@pytest.fixture(scope="module")
def examples():
    return {
        split: {
            "language": list(classification.language_examples(split)),
            "parity": list(classification.parity_examples(split)),
            "pretraining": list(classification.pretraining_texts(split)),
        }
        for split in SPLITS
    }


def test_splits_are_disjoint_by_value_and_by_text_across_the_datasets(examples):
    for first, second in [("train", "validation"), ("train", "test")]:
        for name in ("language", "parity", "pretraining"):
            for other in ("language", "parity", "pretraining"):
                a = {e[0].rsplit("/", 1)[0] for e in examples[first][name]}
                b = {e[0].rsplit("/", 1)[0] for e in examples[second][other]}
                assert not a & b, (first, name, second, other, sorted(a & b)[:3])
        held_out = {e[1] for e in examples[second]["parity"]}
        assert not held_out & {e[1] for e in examples[first]["pretraining"]}


def test_generation_is_deterministic():
    assert list(classification.parity_examples("test")) == list(
        classification.parity_examples("test")
    )
    assert list(classification.pretraining_texts("validation")) == list(
        classification.pretraining_texts("validation")
    )


def test_labels_are_the_language_and_the_parity(examples):
    for key, text, label, _ in examples["validation"]["language"]:
        value, lang = key.rsplit("/", 1)
        assert LANGUAGES[label] == lang
        if value.isdigit():
            assert text == number_in_words(int(value), lang)
    parity = examples["train"]["parity"]
    for key, text, label in parity:
        value, lang = key.rsplit("/", 1)
        assert label == int(value) % 2 and text == number_in_words(int(value), lang)
    assert 0.45 < np.mean([label for *_, label in parity]) < 0.55
    languages = collections.Counter(key.rsplit("/", 1)[1] for key, *_ in parity)
    assert set(languages) == set(LANGUAGES)
    counts = collections.Counter(
        label for _, _, label, _ in examples["train"]["language"]
    )
    assert set(counts.values()) == {len(examples["train"]["language"]) // 5}


def test_language_floor_counts_the_strings_two_languages_share(examples):
    train = examples["train"]["language"]
    shared = collections.defaultdict(set)
    for _, text, label, _ in train:
        shared[text].add(LANGUAGES[label])
    assert shared["six"] == {"en", "fr"} and shared["noventa"] == {"es", "pt"}
    by_hand = sum(1 - 1 / len(shared[text]) for _, text, _, _ in train) / len(train)
    floor = data.language_identification_floor("train")
    assert floor == pytest.approx(by_hand) and 0.001 < floor < 0.02


def test_loaders_read_what_the_generators_wrote(tmp_path):
    pairs = data.load_classification("language", "validation", data_dir=tmp_path)
    loaded = sorted((t.decode(), int(y)) for t, y in pairs.as_numpy_iterator())
    expected = sorted(
        (t, y) for _, t, y, _ in classification.language_examples("validation")
    )
    assert loaded == expected
    assert pairs.element_spec[1].dtype.name == "int64"
    sliced = data.load_classification("parity", "test[:20]", data_dir=tmp_path)
    assert len(list(sliced)) == 20
    texts = data.load_pretraining_text("validation", data_dir=tmp_path)
    assert sorted(t.decode() for t in texts.as_numpy_iterator()) == sorted(
        t for _, t in classification.pretraining_texts("validation")
    )
    builder = tfds.builder("tf_transformer_parity", data_dir=tmp_path)
    assert builder.info.features["label"].names == ["even", "odd"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: data.load_classification("sentiment"), "`name`"),
        (lambda: data.load_classification("parity", split="dev"), "`split`"),
        (lambda: data.load_pretraining_text(split=3), "`split`"),
        (lambda: list(classification.parity_examples("dev")), "`split`"),
    ],
)
def test_bad_names_and_splits_are_rejected_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
