"""Number pictures and captions: deterministic, disjoint by number and digit image."""

import numpy as np
import pytest

from tf_transformer.data import (
    LANGUAGE_TOKENS,
    LANGUAGES,
    MAX_DIGITS,
    NUMBER_IMAGE_SHAPE,
    load_number_captions,
    number_in_words,
    number_splits,
    render_number,
    tile_digits,
)
from tf_transformer.data.captions import RENDERINGS_PER_NUMBER, caption_examples
from tf_transformer.data.digits import _digits


def test_tile_digits_right_aligns_and_leaves_empty_slots_blank():
    digits = np.stack([np.full((8, 8, 1), value, "float32") for value in (0.25, 0.5)])
    strip = tile_digits(digits)
    assert strip.shape == NUMBER_IMAGE_SHAPE and strip.dtype == np.float32
    np.testing.assert_array_equal(strip[:, :8], 0.0)  # the empty hundreds slot
    np.testing.assert_array_equal(strip[:, 8:16], 0.25)  # tens
    np.testing.assert_array_equal(strip[:, 16:], 0.5)  # units, always last


def test_rendering_is_deterministic_and_each_index_draws_other_digits():
    first, first_indices = render_number(407, "train", rendering=3)
    again, again_indices = render_number(407, "train", rendering=3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_indices, again_indices)
    other, other_indices = render_number(407, "train", rendering=4)
    assert not np.array_equal(first_indices, other_indices)
    assert not np.array_equal(first, other)


def test_a_picture_is_made_of_the_named_handwritten_digits():
    images, labels = _digits()
    image, indices = render_number(58, "validation", rendering=1)
    assert indices[0] == -1  # a two-digit number leaves the first slot empty
    np.testing.assert_array_equal(image[:, :8], 0.0)
    assert labels[indices[1]] == 5 and labels[indices[2]] == 8
    np.testing.assert_array_equal(image[:, 8:16], images[indices[1]])
    np.testing.assert_array_equal(image[:, 16:], images[indices[2]])


def test_splits_are_disjoint_by_number_and_cover_every_length():
    splits = number_splits()
    owned = [set(numbers) for numbers in splits.values()]
    assert sum(len(numbers) for numbers in owned) == 10**MAX_DIGITS
    assert set().union(*owned) == set(range(10**MAX_DIGITS))
    for split, numbers in splits.items():
        lengths = {len(str(number)) for number in numbers}
        assert lengths == {1, 2, 3}, split


def test_splits_are_disjoint_by_digit_image():
    used = {}
    for split in ("train", "validation", "test"):
        rows = list(caption_examples(split))
        assert len(rows) == len(number_splits()[split]) * RENDERINGS_PER_NUMBER[split]
        indices = np.concatenate([features["digit_indices"] for _, features in rows])
        used[split] = set(indices[indices >= 0].tolist())
    assert not used["train"] & used["test"]
    assert not used["train"] & used["validation"]
    assert not used["validation"] & used["test"]


def test_language_tokens_are_never_words_of_a_caption():
    for number in range(0, 1000, 7):
        for lang in LANGUAGES:
            words = number_in_words(number, lang).replace("-", " ").split()
            assert not set(words) & set(LANGUAGE_TOKENS.values())


def test_loader_gives_each_picture_once_per_language_with_its_caption(data_dir):
    examples = load_number_captions(
        "test[:3]", languages=("de", "fr"), data_dir=data_dir
    )
    rows = list(examples.as_numpy_iterator())
    assert len(rows) == 6
    assert [row["language"] for row in rows] == [b"de", b"fr"] * 3
    for row in rows:
        assert row["image"].shape == NUMBER_IMAGE_SHAPE
        assert row["number"] in number_splits()["test"]
        expected = number_in_words(int(row["number"]), row["language"].decode())
        assert row["caption"].decode() == expected


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"split": "tests"}, "split"),
        ({"languages": ("de", "xx")}, "languages"),
        ({"languages": ()}, "languages"),
    ],
)
def test_loader_rejects_bad_arguments_by_name(kwargs, named):
    with pytest.raises(ValueError, match=named):
        load_number_captions(**kwargs)


def test_render_number_rejects_numbers_outside_the_slots():
    with pytest.raises(ValueError, match="number"):
        render_number(1000)
    with pytest.raises(TypeError, match="number"):
        render_number(4.0)
    with pytest.raises(ValueError, match="digit_images"):
        tile_digits(np.zeros((4, 8, 8, 1)))
