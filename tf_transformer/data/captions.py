"""Pictures of handwritten numbers and their captions in words.

The image captioner's data set, made on the machine from real handwriting:
a number from 0 to 999 is drawn by placing scikit-learn's 8×8 handwritten
digits (see `digits.py`) side by side, right-aligned in a strip of
`MAX_DIGITS` slots, so that the units digit is always in the last slot, the
tens digit in the one before and the hundreds digit in the first. The
caption is the number in words (num2words), in each of `LANGUAGES`.

Splits are disjoint twice over:

- **by number**: the numbers of each length (1, 2 or 3 digits) are shuffled
  with a fixed seed and cut 80 / 10 / 10 % into train / validation / test,
  so a test caption names a number never seen in training;
- **by digit image**: a split draws its digits only from the same split of
  `load_digits`, so a test picture never reuses a training digit image.

Each number of a split is drawn `RENDERINGS_PER_NUMBER[split]` times, each
time with other digit images, chosen by a generator seeded with the split,
the number and the rendering's index: the same arguments always draw the
same pictures.

One captioner writes all five languages: the caption's first token names
the language (`LANGUAGE_TOKENS`, the language's own name, e.g. "deutsch"),
and the model is asked for a language by starting its decoder with that
token instead of `[START]`.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_transformer.data.corpora import (
    LANGUAGES,
    SPLITS,
    _check_choice,
    _check_split,
    _OfflineTranslation,
    _prepare,
    _without_variant_folder_warnings,
    number_in_words,
)
from tf_transformer.data.digits import DIGIT_IMAGE_SHAPE, _digits, _split_indices

MAX_DIGITS = 3
"""Slots of a number image: numbers 0 to 10**MAX_DIGITS - 1."""

NUMBER_IMAGE_SHAPE = (
    DIGIT_IMAGE_SHAPE[0],
    DIGIT_IMAGE_SHAPE[1] * MAX_DIGITS,
    DIGIT_IMAGE_SHAPE[2],
)
"""(height, width, channels) of a number image: (8, 24, 1)."""

LANGUAGE_TOKENS = {
    "de": "deutsch",
    "en": "english",
    "es": "español",
    "fr": "français",
    "pt": "português",
}
"""The word that opens a caption in each language and selects it when decoding."""

RENDERINGS_PER_NUMBER = {"train": 12, "validation": 4, "test": 4}
"""How many pictures of each number a split holds."""

NUMBER_SPLIT_PERCENT = {"train": 80, "validation": 10, "test": 10}

CAPTION_BUILDER_NAME = "tf_transformer_number_captions"

_SEED = 0x63617074  # fixed: the splits and renderings never change


def tile_digits(digit_images, max_digits=MAX_DIGITS):
    """Places digit images side by side, right-aligned, in `max_digits` slots.

    Args:
        digit_images: array (num_digits, height, width, channels), the digits
            of a number from the most significant to the units, with
            1 <= num_digits <= `max_digits`.
        max_digits: number of slots of the strip. Defaults to `MAX_DIGITS`.

    Returns:
        float32 NumPy array (height, width · max_digits, channels): slot
        `max_digits - num_digits + i` holds `digit_images[i]`, so the units
        digit is always in the last slot; the empty slots on the left are 0
        (background).

    Example:

    >>> tile_digits(np.ones((2, 8, 8, 1))).shape
    (8, 24, 1)
    """
    digit_images = np.asarray(digit_images, dtype="float32")
    if digit_images.ndim != 4:
        raise ValueError(
            "`digit_images` must have shape (num_digits, height, width, channels). "
            f"Received: digit_images with shape {digit_images.shape}"
        )
    if isinstance(max_digits, bool) or not isinstance(max_digits, int):
        raise TypeError(f"`max_digits` must be an int. Received: {max_digits!r}")
    num_digits, height, width, channels = digit_images.shape
    if not 1 <= num_digits <= max_digits:
        raise ValueError(
            f"`digit_images` must hold 1 to max_digits={max_digits} digits. "
            f"Received: digit_images with shape {digit_images.shape}"
        )
    strip = np.zeros((height, width * max_digits, channels), "float32")
    first = max_digits - num_digits  # the empty slots come first
    for i, image in enumerate(digit_images):
        slot = first + i
        strip[:, slot * width : (slot + 1) * width] = image
    return strip


def _check_number(number) -> int:
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise TypeError(
            f"`number` must be an int. Received: number={number!r} "
            f"(type {type(number).__name__})"
        )
    if not 0 <= number < 10**MAX_DIGITS:
        raise ValueError(
            f"`number` must be in [0, {10**MAX_DIGITS - 1}]. Received: number={number}"
        )
    return int(number)


@functools.lru_cache(maxsize=1)
def number_splits() -> dict[str, tuple[int, ...]]:
    """The numbers each split owns, sorted; every number 0–999 in exactly one.

    Cut per number of digits (1, 2, 3) in the proportions of
    `NUMBER_SPLIT_PERCENT`, so that every split holds numbers of each length.
    """
    rng = np.random.default_rng(_SEED)
    owned: dict[str, list[int]] = {split: [] for split in SPLITS}
    for digits in range(1, MAX_DIGITS + 1):
        low = 0 if digits == 1 else 10 ** (digits - 1)
        numbers = rng.permutation(np.arange(low, 10**digits))
        num_test = max(1, round(len(numbers) * NUMBER_SPLIT_PERCENT["test"] / 100))
        num_validation = max(
            1, round(len(numbers) * NUMBER_SPLIT_PERCENT["validation"] / 100)
        )
        owned["test"] += numbers[:num_test].tolist()
        owned["validation"] += numbers[num_test : num_test + num_validation].tolist()
        owned["train"] += numbers[num_test + num_validation :].tolist()
    return {split: tuple(sorted(numbers)) for split, numbers in owned.items()}


@functools.lru_cache(maxsize=1)
def _digit_pools() -> dict[str, list[np.ndarray]]:
    """Per split, per digit 0–9: indices into scikit-learn's digit images."""
    labels = _digits()[1]
    pools = {}
    for split, indices in _split_indices(0.15, 0.15, 0).items():
        pools[split] = [np.sort(indices[labels[indices] == d]) for d in range(10)]
    return pools


def render_number(number: int, split: str = "train", rendering: int = 0):
    """One picture of `number` drawn with handwritten digits of `split`.

    Args:
        number: int in [0, 999].
        split: which split's digit images to draw from. Defaults to "train".
        rendering: index of the picture; each index draws other digit images.
            Defaults to 0.

    Returns:
        `(image, digit_indices)`: the float32 image of shape
        `NUMBER_IMAGE_SHAPE`, and the int32 indices (MAX_DIGITS,) of the digit
        images used in scikit-learn's data set, -1 for an empty slot.
        The same arguments always give the same picture.
    """
    number = _check_number(number)
    _check_choice("split", split, SPLITS)
    if isinstance(rendering, bool) or not isinstance(rendering, (int, np.integer)):
        raise TypeError(
            f"`rendering` must be an int. Received: rendering={rendering!r}"
        )
    rng = np.random.default_rng([_SEED, SPLITS.index(split), number, int(rendering)])
    pools = _digit_pools()[split]
    chosen = [int(rng.choice(pools[int(d)])) for d in str(number)]
    image = tile_digits(_digits()[0][chosen])
    slots = [-1] * (MAX_DIGITS - len(chosen)) + chosen
    return image, np.asarray(slots, "int32")


def caption_examples(split: str):
    """Yields `(key, features)` of every picture of a split (the builder's rows).

    features: `image`, `number`, `digit_indices` and one caption per language.
    """
    _check_choice("split", split, SPLITS)
    for number in number_splits()[split]:
        captions = {lang: number_in_words(number, lang) for lang in LANGUAGES}
        for rendering in range(RENDERINGS_PER_NUMBER[split]):
            image, digit_indices = render_number(number, split, rendering)
            yield (
                f"{number:03d}/{rendering}",
                {
                    "image": image,
                    "number": number,
                    "digit_indices": digit_indices,
                    "captions": captions,
                },
            )


class TfTransformerNumberCaptions(_OfflineTranslation):
    """Pictures of 0–999 in handwritten digits, captioned in five languages."""

    BUILDER_CONFIGS = None
    DEFAULT_CONFIG_NAME = None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Numbers 0-999 drawn with scikit-learn's handwritten digits, "
                "right-aligned in three 8x8 slots, captioned in words in "
                "de/en/es/fr/pt. Splits disjoint by number and by digit image."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(
                        shape=NUMBER_IMAGE_SHAPE, dtype=np.float32
                    ),
                    "number": tfds.features.Scalar(dtype=np.int32),
                    "digit_indices": tfds.features.Tensor(
                        shape=(MAX_DIGITS,), dtype=np.int32
                    ),
                    "captions": tfds.features.FeaturesDict(
                        {lang: tfds.features.Text() for lang in LANGUAGES}
                    ),
                }
            ),
            homepage="https://github.com/tf-transformer/tf_transformer",
        )

    def _generate_examples(self, split: str):
        yield from caption_examples(split)


def load_number_captions(
    split: str = "train",
    languages=LANGUAGES,
    data_dir: str | None = None,
) -> tf.data.Dataset:
    """Pictures of handwritten numbers with their captions, one split.

    Generated on first use (seconds) and cached in the TFDS data directory.
    Each picture comes once per language of `languages`, in a fixed
    pseudo-random order of pictures.

    Args:
        split: `"train"` (800 numbers × 12 pictures), `"validation"` or
            `"test"` (100 numbers × 4 pictures each); TFDS slicing such as
            `"train[:500]"` is accepted (it slices pictures). Defaults to
            `"train"`.
        languages: codes from `LANGUAGES` (a str for one). Defaults to all.
        data_dir: TFDS data directory. Defaults to TFDS's own default.

    Returns:
        A `tf.data.Dataset` of dicts: `image` float32 `NUMBER_IMAGE_SHAPE`
        (ink 1, background 0), `number` int32, `language` (a code of
        `LANGUAGES`) and `caption` (the number in words) scalar `tf.string`.

    Example:

    >>> examples = load_number_captions("test", languages="de")
    >>> next(iter(examples))["caption"]  # e.g. b"vierhundertdreiundzwanzig"
    """
    _check_split(split)
    if isinstance(languages, str):
        languages = (languages,)
    if not isinstance(languages, (tuple, list)) or not languages:
        raise ValueError(
            f"`languages` must be a non-empty list of codes from {list(LANGUAGES)}. "
            f"Received: languages={languages!r}"
        )
    for lang in languages:
        _check_choice("languages", lang, LANGUAGES)
    builder = tfds.builder(CAPTION_BUILDER_NAME, data_dir=data_dir)
    with _without_variant_folder_warnings():
        prepared = builder.is_prepared()
    if not prepared:
        builder = _prepare(CAPTION_BUILDER_NAME, data_dir, progress_bar=False)
    pictures = builder.as_dataset(split=split)
    languages = tuple(languages)

    def per_language(example):
        captions = tf.stack([example["captions"][lang] for lang in languages])
        return tf.data.Dataset.from_tensor_slices(
            {
                "image": tf.repeat(example["image"][tf.newaxis], len(languages), 0),
                "number": tf.fill((len(languages),), example["number"]),
                "language": tf.constant(languages),
                "caption": captions,
            }
        )

    return pictures.flat_map(per_language)


def captions_with_language(languages, captions):
    """Prefixes each caption with its language's token: `"deutsch zwölf"`.

    Args:
        languages: `tf.string` codes of `LANGUAGES`, any shape.
        captions: `tf.string` captions of the same shape.

    Returns:
        `tf.string` texts of that shape, what the caption tokenizer is
        trained on and what `make_caption_batches` tokenizes.
    """
    languages = tf.convert_to_tensor(languages, tf.string)
    codes = tf.constant(LANGUAGES)
    words = tf.constant([LANGUAGE_TOKENS[lang] for lang in LANGUAGES])
    matches = tf.equal(languages[..., tf.newaxis], codes)  # (..., 5)
    tf.debugging.assert_equal(
        tf.reduce_any(matches, axis=-1),
        True,
        message=f"`languages` must be codes of {list(LANGUAGES)}",
    )
    prefix = tf.gather(words, tf.argmax(tf.cast(matches, tf.int32), axis=-1))
    return tf.strings.join([prefix, captions], separator=" ")


def make_caption_batches(
    dataset: tf.data.Dataset,
    tokenizer,
    batch_size: int = 64,
    *,
    shuffle: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """`load_number_captions` examples → teacher-forced captioner batches.

    A caption is tokenized with its language token in front,
    `[START] deutsch zwölf [END]`; the decoder reads the caption from the
    language token on (the token replaces `[START]` and names the language
    to write) and predicts it shifted by one:

        ((images, target_in_ids), target_out_ids)
        target_in_ids  = deutsch zwölf      (batch, T) int32, 0-padded
        target_out_ids = zwölf   [END]      (batch, T) int32, 0-padded

    Args:
        dataset: dicts with `image`, `language` and `caption`, as
            `load_number_captions` gives them.
        tokenizer: a `SubwordTokenizer` whose vocabulary holds the
            `LANGUAGE_TOKENS` as whole tokens.
        batch_size: Defaults to 64.
        shuffle: shuffle the examples (all of them) before batching.
            Defaults to True.
        seed: shuffling seed. Defaults to None.

    Returns:
        A cached `tf.data.Dataset` of batches, padded per batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"`batch_size` must be an int. Received: {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: {batch_size}")
    if not callable(getattr(tokenizer, "tokenize", None)):
        raise TypeError(
            "`tokenizer` must be a tokenizer with a `tokenize(strings)` method. "
            f"Received: tokenizer={tokenizer!r}"
        )

    def tokenize(batch):
        texts = captions_with_language(batch["language"], batch["caption"])
        ids = tokenizer.tokenize(texts)  # ragged [START] lang … [END]
        target_in = ids[:, 1:-1].to_tensor(0)
        target_out = ids[:, 2:].to_tensor(0)
        return (batch["image"], target_in), target_out

    batches = dataset.cache()
    if shuffle:
        batches = batches.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    return batches.batch(batch_size).map(tokenize).prefetch(tf.data.AUTOTUNE)
