"""load_digits: deterministic, disjoint, stratified splits of 8×8 images in [0, 1]."""

import collections

import numpy as np
import pytest

from tf_transformer.data import DIGIT_SPLITS, load_digits


def test_splits_are_float_images_in_the_unit_range_with_int_labels():
    for split in DIGIT_SPLITS:
        images, labels = load_digits(split)
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert images.shape[1:] == (8, 8, 1)
        assert images.shape[0] == labels.shape[0] > 200
        assert images.min() == 0.0 and images.max() == 1.0
        assert set(np.unique(labels)) == set(range(10))


def test_splits_use_each_of_the_1797_images_exactly_once():
    from sklearn.datasets import load_digits as sklearn_digits

    def multiset(images, labels):
        return collections.Counter(
            (image.tobytes(), int(label))
            for image, label in zip(images, labels, strict=True)
        )

    original = sklearn_digits()
    expected = multiset(
        (original.images / 16.0).astype("float32")[..., np.newaxis], original.target
    )
    found = collections.Counter()
    for split in DIGIT_SPLITS:
        found += multiset(*load_digits(split))
    # Equal multisets: every image is in some split, and none in two.
    assert sum(found.values()) == 1797
    assert found == expected


def test_same_arguments_give_the_same_split_and_another_seed_another():
    first_images, first_labels = load_digits("validation")
    again_images, again_labels = load_digits("validation")
    np.testing.assert_array_equal(first_images, again_images)
    np.testing.assert_array_equal(first_labels, again_labels)
    other_images, _ = load_digits("validation", seed=1)
    assert not np.array_equal(first_images, other_images)


def test_each_split_keeps_the_class_proportions():
    for split, fraction in (("validation", 0.15), ("test", 0.15), ("train", 0.7)):
        _, labels = load_digits(split)
        counts = np.bincount(labels, minlength=10)
        _, all_labels = zip(*(load_digits(s) for s in DIGIT_SPLITS), strict=True)
        totals = np.bincount(np.concatenate(all_labels), minlength=10)
        assert np.all(np.abs(counts - fraction * totals) <= 1.5), (split, counts)


def test_fractions_change_the_split_sizes():
    _, test_labels = load_digits("test", test_fraction=0.3)
    assert 530 <= len(test_labels) <= 550


def test_returned_arrays_are_fresh_copies():
    images, _ = load_digits("test")
    images[:] = 5.0
    assert load_digits("test")[0].max() == 1.0


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"split": "valid"}, ValueError, "split='valid'"),
        ({"split": "train[:10]"}, ValueError, "split="),
        ({"test_fraction": 1.2}, ValueError, "test_fraction=1.2"),
        ({"validation_fraction": "0.1"}, TypeError, "validation_fraction='0.1'"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, ValueError, "< 1"),
        ({"seed": 1.5}, TypeError, "seed=1.5"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("(", r"\(")):
        load_digits(**kwargs)
