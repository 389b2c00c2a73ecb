"""Sequence → label corpora and unlabelled text, generated on the machine.

The same generators as the translation corpora (numbers in words by
num2words, dates by babel/CLDR, in `LANGUAGES`) give three offline datasets
for the encoder-only models of lesson 10:

- **language** (`load_classification("language")`): a number or a date
  written in one of the five languages → which language (label = index in
  `LANGUAGES`). Every sampled value appears in all five languages, so the
  classes are balanced. Some strings belong to two languages ("six" is
  English and French, "seis" Spanish and Portuguese, "noventa" Spanish and
  Portuguese, "zero" English and Portuguese): no model can tell them apart.
  `language_identification_floor` measures that irreducible error.
- **parity** (`load_classification("parity")`): a number in words, in a
  language drawn per number → 0 if it is even, 1 if odd. The deciding word
  is the last one in English, French, Spanish and Portuguese, and the first
  part of the compound in German ("dreiundzwanzig" is three-and-twenty).
- **pretraining text** (`load_pretraining_text`): unlabelled numbers and
  dates in words, in all five languages, for masked-language-model
  pretraining.

Splits are deterministic and disjoint: a number (or a date) belongs to
exactly one split, decided by a hash of its value, and that ownership is the
same for the three datasets, so text pretrained on in "train" never holds a
number or date of a "validation" or "test" split.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator

import tensorflow as tf
import tensorflow_datasets as tfds

from tf_transformer.data.corpora import (
    _VERSION,
    DATES_FIRST,
    DATES_LAST,
    LANGUAGES,
    NUMBERS_MAX,
    SPLITS,
    _check_choice,
    _check_split,
    _draw_number,
    _OfflineTranslation,
    _prepare,
    _split_of,
    date_in_words,
    number_in_words,
)

CLASSIFICATION_TASKS = {"language": LANGUAGES, "parity": ("even", "odd")}
"""The labelled datasets of `load_classification` and their class names."""

CLASSIFICATION_BUILDER_NAMES = {
    "language": "tf_transformer_language",
    "parity": "tf_transformer_parity",
    "pretraining": "tf_transformer_pretraining_text",
}
"""Registered TFDS names of the datasets."""

# Values (numbers, then dates) sampled per split.
LANGUAGE_SPLIT_SIZES = {
    "train": (2_000, 400),
    "validation": (200, 40),
    "test": (200, 40),
}
PARITY_SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
PRETRAINING_SPLIT_SIZES = {
    "train": (4_000, 400),
    "validation": (400, 40),
    "test": (400, 40),
}

# One salt for the three datasets: a value is owned by the same split in each.
_SALT = 0x636C6173


def value_split(value: int | datetime.date) -> str:
    """The split that owns a number or a date in these datasets."""
    key = value.toordinal() if isinstance(value, datetime.date) else value
    salt = _SALT ^ 0xDA7E if isinstance(value, datetime.date) else _SALT
    return _split_of(key, salt)


def _sample_numbers(split: str, size: int, purpose: str) -> list[int]:
    """Distinct numbers owned by `split`.

    A third of the draws is below 100 (the irregular words, most of the
    strings two languages share), a third below 10,000, a third of any size
    up to `NUMBERS_MAX`; the small values run out first, so larger splits hold
    mostly large numbers.
    """
    rng = random.Random(f"tf_transformer/{purpose}/numbers/{split}")
    chosen: dict[int, None] = {}
    while len(chosen) < size:
        kind = rng.randrange(3)
        if kind < 2:
            value = rng.randrange(0, 100 if kind == 0 else 10_000)
        else:
            value = min(_draw_number(rng), NUMBERS_MAX)
        if value not in chosen and value_split(value) == split:
            chosen[value] = None
    return list(chosen)


def _sample_dates(split: str, size: int, purpose: str) -> list[datetime.date]:
    rng = random.Random(f"tf_transformer/{purpose}/dates/{split}")
    first, last = DATES_FIRST.toordinal(), DATES_LAST.toordinal()
    chosen: dict[datetime.date, None] = {}
    while len(chosen) < size:
        date = datetime.date.fromordinal(rng.randint(first, last))
        if date not in chosen and value_split(date) == split:
            chosen[date] = None
    return list(chosen)


def _in_words(value, lang: str) -> str:
    if isinstance(value, datetime.date):
        return date_in_words(value, lang)
    return number_in_words(value, lang)


def language_examples(split: str) -> Iterator[tuple[str, str, int, int]]:
    """Yields `(key, text, label, languages_sharing_the_text)` for one split.

    Each sampled number or date is written in all five languages. The last
    field counts the languages that write that value as the same string
    (1 for most texts, 2 for "six", "seis", ...).
    """
    _check_choice("split", split, SPLITS)
    numbers, dates = LANGUAGE_SPLIT_SIZES[split]
    values = _sample_numbers(split, numbers, "language")
    values += _sample_dates(split, dates, "language")
    for value in values:
        texts = {lang: _in_words(value, lang) for lang in LANGUAGES}
        name = value.isoformat() if isinstance(value, datetime.date) else value
        for label, lang in enumerate(LANGUAGES):
            sharing = sum(text == texts[lang] for text in texts.values())
            yield f"{name}/{lang}", texts[lang], label, sharing


def language_identification_floor(split: str = "test") -> float:
    """The error no classifier can avoid on a split of the language dataset.

    A text that k languages write identically gets, at best, a correct guess
    one time in k (the five languages are equally frequent), so it adds
    `1 - 1/k` errors. Returns the mean over the split.
    """
    shares = [1 - 1 / sharing for *_, sharing in language_examples(split)]
    return sum(shares) / len(shares)


def parity_examples(split: str) -> Iterator[tuple[str, str, int]]:
    """Yields `(key, text, label)`: a number in words, 0 if even, 1 if odd.

    The language of each number is drawn with a fixed seed per split.
    """
    _check_choice("split", split, SPLITS)
    rng = random.Random(f"tf_transformer/parity/languages/{split}")
    for value in _sample_numbers(split, PARITY_SPLIT_SIZES[split], "parity"):
        lang = rng.choice(LANGUAGES)
        yield f"{value}/{lang}", number_in_words(value, lang), value % 2


def pretraining_texts(split: str) -> Iterator[tuple[str, str]]:
    """Yields `(key, text)`: unlabelled numbers and dates in words.

    Each sampled value is written in all five languages.
    """
    _check_choice("split", split, SPLITS)
    numbers, dates = PRETRAINING_SPLIT_SIZES[split]
    values = _sample_numbers(split, numbers, "pretraining")
    values += _sample_dates(split, dates, "pretraining")
    for value in values:
        name = value.isoformat() if isinstance(value, datetime.date) else value
        for lang in LANGUAGES:
            yield f"{name}/{lang}", _in_words(value, lang)


class _OfflineText(_OfflineTranslation):
    """The offline builders' plumbing with one config and text features."""

    BUILDER_CONFIGS = None
    DEFAULT_CONFIG_NAME = None
    _CLASS_NAMES: tuple[str, ...] | None = None

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"text": tfds.features.Text()}
        supervised_keys = None
        if self._CLASS_NAMES is not None:
            features["label"] = tfds.features.ClassLabel(names=self._CLASS_NAMES)
            supervised_keys = ("text", "label")
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=supervised_keys,
            homepage="https://github.com/tf-transformer/tf_transformer",
        )


class TfTransformerLanguage(_OfflineText):
    """Numbers and dates in words → their language (language identification)."""

    VERSION = _VERSION
    _CLASS_NAMES = LANGUAGES
    _DESCRIPTION = (
        "Numbers and dates written in de/en/es/fr/pt, labelled with their "
        "language; every value in all five languages. Splits disjoint by value."
    )

    def _generate_examples(self, split: str):
        for key, text, label, _ in language_examples(split):
            yield key, {"text": text, "label": label}


class TfTransformerParity(_OfflineText):
    """A number in words in one of five languages → even (0) or odd (1)."""

    VERSION = _VERSION
    _CLASS_NAMES = ("even", "odd")
    _DESCRIPTION = (
        "Integers written in words in de/en/es/fr/pt, labelled even or odd. "
        "Splits disjoint by value."
    )

    def _generate_examples(self, split: str):
        for key, text, label in parity_examples(split):
            yield key, {"text": text, "label": label}


class TfTransformerPretrainingText(_OfflineText):
    """Unlabelled numbers and dates in words, in all five languages."""

    VERSION = _VERSION
    _DESCRIPTION = (
        "Numbers and dates written in de/en/es/fr/pt, without labels, for "
        "masked-language-model pretraining. Splits disjoint by value, with the "
        "same owners as tf_transformer_language and tf_transformer_parity."
    )

    def _generate_examples(self, split: str):
        for key, text in pretraining_texts(split):
            yield key, {"text": text}


def _builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        builder = _prepare(name, data_dir, progress_bar=False)
    return builder


def load_classification(
    name: str = "parity", split: str = "train", data_dir: str | None = None
) -> tf.data.Dataset:
    """Loads a labelled dataset as `(text, label)` pairs.

    Generated on first use (seconds) and cached in the TFDS data directory.

    Args:
        name: `"language"` (label = index in `LANGUAGES`) or `"parity"`
            (0 = even, 1 = odd). Class names: `CLASSIFICATION_TASKS[name]`.
            Defaults to `"parity"`.
        split: `"train"`, `"validation"` or `"test"`; TFDS slicing such as
            `"train[:200]"` is accepted. Defaults to `"train"`.
        data_dir: TFDS data directory. Defaults to TFDS's own default.

    Returns:
        A `tf.data.Dataset` of `(text, label)`: a scalar `tf.string` and a
        scalar `tf.int64`, in a fixed pseudo-random order.

    Example:

    >>> pairs = load_classification("parity", split="train[:200]")
    >>> text, label = next(iter(pairs))  # e.g. "vingt-trois", 1
    """
    if not isinstance(name, str) or name not in CLASSIFICATION_TASKS:
        raise ValueError(
            f"`name` must be one of {list(CLASSIFICATION_TASKS)}. "
            f"Received: name={name!r}"
        )
    _check_split(split)
    builder = _builder(CLASSIFICATION_BUILDER_NAMES[name], data_dir)
    return builder.as_dataset(split=split, as_supervised=True)


def load_pretraining_text(
    split: str = "train", data_dir: str | None = None
) -> tf.data.Dataset:
    """Loads unlabelled text for masked-language-model pretraining.

    Args:
        split: `"train"` (22,000 texts), `"validation"` or `"test"` (2,200
            each); TFDS slicing is accepted. Defaults to `"train"`.
        data_dir: TFDS data directory. Defaults to TFDS's own default.

    Returns:
        A `tf.data.Dataset` of scalar `tf.string` texts.
    """
    _check_split(split)
    builder = _builder(CLASSIFICATION_BUILDER_NAMES["pretraining"], data_dir)
    return builder.as_dataset(split=split).map(lambda example: example["text"])
