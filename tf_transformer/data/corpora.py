"""Bilingual corpora generated on the machine: no download, no link that can rot.

Three TensorFlow Datasets builders write sentence pairs produced by two
well-kept libraries:

- `tf_transformer_numbers`: a number written in words in two languages
  (num2words), e.g. "seventy-one" → "soixante et onze".
- `tf_transformer_dates`: a date in two locales' long format (babel/CLDR),
  e.g. "Sunday, November 22, 2026" → "dimanche 22 novembre 2026". The word
  order changes between languages, which makes cross-attention plots worth
  looking at.
- `tf_transformer_mixed`: both, the default training corpus.

Each builder has one config per ordered language pair, named
`"{source}-{target}"` (e.g. `tf_transformer_numbers/en-fr`), so
`tfds.load("tf_transformer_mixed/en-fr", split="test", as_supervised=True)`
works once this module is imported. Generation is deterministic (a fixed seed
per split) and the splits are disjoint by construction: a number or a date
belongs to exactly one split, decided by a hash of its value.

`load_translation` is the short way in. It also names the TF tutorial's
`ted_hrlr_translate/pt_to_en`, but that corpus's download has been dead
since 2026-04 (tensorflow/text#1497): it loads from a TFDS data directory
that already holds it, and otherwise fails within seconds with a message
that says so and names the offline corpora.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import datetime
import functools
import inspect
import io
import logging
import os
import random
import socket
import threading
import urllib.request
from collections.abc import Iterator

import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

LANGUAGES = ("de", "en", "es", "fr", "pt")
"""Languages of the offline corpora (ISO 639-1 codes)."""

OFFLINE_CORPORA = ("numbers", "dates", "mixed")
"""Corpora generated locally; `load_translation` never needs a network for them."""

ONLINE_CORPORA = {"ted_hrlr_translate/pt_to_en": ("pt", "en")}
"""Downloaded corpora reachable through `load_translation`, with their languages."""

SPLITS = ("train", "validation", "test")

BUILDER_NAMES = {
    "numbers": "tf_transformer_numbers",
    "dates": "tf_transformer_dates",
    "mixed": "tf_transformer_mixed",
}
"""Registered TFDS names of the offline corpora (prefixed to avoid collisions)."""

# Numbers: every integer in [0, NUMBERS_MAX] may appear. The irregular words
# (zero to one hundred: teens, "soixante et onze", "quatre-vingt-dix-neuf", ...)
# are all in the training split so that no held-out sentence contains a word the
# model has never seen.
NUMBERS_MAX = 9_999_999
NUMBERS_ALWAYS_TRAIN = range(0, 101)
NUMBERS_SPLIT_SIZES = {"train": 40_000, "validation": 1_000, "test": 1_000}

# Dates: every day of DATES_FIRST..DATES_LAST may appear.
DATES_FIRST = datetime.date(1950, 1, 1)
DATES_LAST = datetime.date(2049, 12, 31)
DATES_SPLIT_SIZES = {"train": 30_000, "validation": 1_000, "test": 1_000}

# Share of the value space (numbers or days) held by each split, in percent.
_SPLIT_PERCENT = {"train": 90, "validation": 5, "test": 5}

# num2words and babel names of each language. CLDR's "pt" is Brazilian
# Portuguese, so the numbers use the Brazilian spelling as well ("dezesseis").
_NUM2WORDS_LANG = {"de": "de", "en": "en", "es": "es", "fr": "fr", "pt": "pt_BR"}
_BABEL_LOCALE = {"de": "de", "en": "en", "es": "es", "fr": "fr", "pt": "pt"}

_VERSION = tfds.core.Version("1.0.0")
_SEED = "tf_transformer"


class OfflineError(ConnectionError):
    """A corpus must be downloaded and the machine cannot reach its server."""


# --------------------------------------------------------------------------
# Argument checks


def _check_choice(argument: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"`{argument}` must be one of {sorted(choices)}. "
            f"Received: {argument}={value!r}"
        )


def _check_language_pair(source_lang, target_lang) -> None:
    _check_choice("source_lang", source_lang, LANGUAGES)
    _check_choice("target_lang", target_lang, LANGUAGES)
    if source_lang == target_lang:
        raise ValueError(
            "`source_lang` and `target_lang` must differ. "
            f"Received: source_lang={source_lang!r}, target_lang={target_lang!r}"
        )


def _check_split(split) -> None:
    """Accept "train", "test[:10%]", "train+validation", ... (TFDS syntax)."""
    if not isinstance(split, str) or not split:
        raise ValueError(
            f"`split` must be one of {list(SPLITS)} (TFDS slicing such as "
            f"'train[:10%]' is allowed). Received: split={split!r}"
        )
    for part in split.split("+"):
        if part.split("[", 1)[0].strip() not in SPLITS:
            raise ValueError(
                f"`split` must be one of {list(SPLITS)} (TFDS slicing such as "
                f"'train[:10%]' is allowed). Received: split={split!r}"
            )


# --------------------------------------------------------------------------
# Sentences


@functools.cache
def _number_converter(lang: str):
    """num2words' converter for `lang`, trimmed for speed.

    num2words walks its whole table of named powers of ten (up to 10**600 for
    French) for every number; keeping the entries up to 10**12 gives the same
    words for our range about ten times faster.
    """
    from num2words import CONVERTER_CLASSES

    converter = CONVERTER_CLASSES[_NUM2WORDS_LANG[lang]]
    cards = getattr(converter, "cards", None)
    if isinstance(cards, collections.OrderedDict):
        converter = copy.copy(converter)
        converter.cards = collections.OrderedDict(
            (value, word) for value, word in cards.items() if value <= 10**12
        )
    return converter


def number_in_words(value: int, lang: str) -> str:
    """Writes a non-negative integer in words, the way num2words does.

    Args:
        value: int in `[0, NUMBERS_MAX]` (larger values work too, but are not
            part of the corpus).
        lang: one of `LANGUAGES`.

    Returns:
        The number in words, e.g. `number_in_words(71, "fr")` is
        `"soixante et onze"`.
    """
    _check_choice("lang", lang, LANGUAGES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"`value` must be a non-negative int. Received: value={value!r}"
        )
    return _number_converter(lang).to_cardinal(value)


@functools.cache
def _babel_locale(lang: str):
    from babel import Locale

    return Locale.parse(_BABEL_LOCALE[lang])


def date_in_words(date: datetime.date, lang: str) -> str:
    """Writes a date in the long ("full") format of a locale (babel/CLDR).

    Args:
        date: a `datetime.date`.
        lang: one of `LANGUAGES`.

    Returns:
        The date in words, e.g. `"Sunday, November 22, 2026"` in English and
        `"dimanche 22 novembre 2026"` in French.
    """
    from babel.dates import format_date

    _check_choice("lang", lang, LANGUAGES)
    return format_date(date, format="full", locale=_babel_locale(lang))


# --------------------------------------------------------------------------
# Deterministic, disjoint splits


def _mix64(key: int) -> int:
    """A fixed 64-bit integer hash (splitmix64 finaliser); stable across runs."""
    key = (key + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    key = ((key ^ (key >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    key = ((key ^ (key >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return key ^ (key >> 31)


def _split_of(key: int, salt: int) -> str:
    bucket = _mix64(key ^ salt) % 100
    if bucket < _SPLIT_PERCENT["train"]:
        return "train"
    if bucket < _SPLIT_PERCENT["train"] + _SPLIT_PERCENT["validation"]:
        return "validation"
    return "test"


_NUMBER_SALT = 0x6E756D62
_DATE_SALT = 0x64617465


def number_split(value: int) -> str:
    """The split that owns `value`: "train", "validation" or "test"."""
    if value in NUMBERS_ALWAYS_TRAIN:
        return "train"
    return _split_of(value, _NUMBER_SALT)


def date_split(date: datetime.date) -> str:
    """The split that owns `date`: "train", "validation" or "test"."""
    return _split_of(date.toordinal(), _DATE_SALT)


def _draw_number(rng: random.Random) -> int:
    """One number > 100, over-weighting the shapes that are hard to translate.

    The number of digits is uniform, so millions are as frequent as hundreds.
    A third of the draws zero some digits, which produces the forms that only
    round numbers have: "deux cents" but "deux cent un", "quatre-vingts" but
    "quatre-vingt mille", "un million", "deux millions", German "eintausend".
    """
    digits = rng.randint(3, len(str(NUMBERS_MAX)))
    value = rng.randrange(10 ** (digits - 1), 10**digits)
    if rng.random() < 1 / 3:
        text = list(str(value))
        for position in range(1, len(text)):
            if rng.random() < 0.5:
                text[position] = "0"
        value = int("".join(text))
    return value


def sample_numbers(split: str, size: int | None = None) -> list[int]:
    """The distinct numbers of one split, in a fixed order.

    Args:
        split: "train", "validation" or "test".
        size: how many numbers. Defaults to `NUMBERS_SPLIT_SIZES[split]`.

    Returns:
        A list of distinct ints, all owned by `split` (see `number_split`).
        The training split always holds every number from 0 to 100.
    """
    _check_choice("split", split, SPLITS)
    size = NUMBERS_SPLIT_SIZES[split] if size is None else size
    rng = random.Random(f"{_SEED}/numbers/{split}")
    chosen: dict[int, None] = {}
    if split == "train":
        chosen.update(dict.fromkeys(list(NUMBERS_ALWAYS_TRAIN)[:size]))
    while len(chosen) < size:
        value = _draw_number(rng)
        if value not in chosen and number_split(value) == split:
            chosen[value] = None
    return list(chosen)


def sample_dates(split: str, size: int | None = None) -> list[datetime.date]:
    """The distinct dates of one split, in calendar order.

    Args:
        split: "train", "validation" or "test".
        size: how many dates, at most the number of days the split owns.
            Defaults to `DATES_SPLIT_SIZES[split]`.

    Returns:
        A sorted list of distinct `datetime.date`s, all owned by `split`.
    """
    _check_choice("split", split, SPLITS)
    size = DATES_SPLIT_SIZES[split] if size is None else size
    first, last = DATES_FIRST.toordinal(), DATES_LAST.toordinal()
    pool = [
        datetime.date.fromordinal(day)
        for day in range(first, last + 1)
        if _split_of(day, _DATE_SALT) == split
    ]
    if size < len(pool):
        pool = sorted(random.Random(f"{_SEED}/dates/{split}").sample(pool, size))
    return pool


def number_pairs(
    split: str, source_lang: str, target_lang: str, size: int | None = None
) -> Iterator[tuple[int, str, str]]:
    """Yields `(number, source_words, target_words)` for one split."""
    _check_language_pair(source_lang, target_lang)
    source, target = _number_converter(source_lang), _number_converter(target_lang)
    for value in sample_numbers(split, size):
        yield value, source.to_cardinal(value), target.to_cardinal(value)


def date_pairs(
    split: str, source_lang: str, target_lang: str, size: int | None = None
) -> Iterator[tuple[datetime.date, str, str]]:
    """Yields `(date, source_words, target_words)` for one split."""
    from babel.dates import format_date

    _check_language_pair(source_lang, target_lang)
    source, target = _babel_locale(source_lang), _babel_locale(target_lang)
    for date in sample_dates(split, size):
        yield (
            date,
            format_date(date, format="full", locale=source),
            format_date(date, format="full", locale=target),
        )


# --------------------------------------------------------------------------
# TFDS builders


@dataclasses.dataclass(eq=False)
class TranslationConfig(tfds.core.BuilderConfig):
    """One ordered language pair of an offline corpus, with its split sizes.

    Args:
        source_lang: one of `LANGUAGES`.
        target_lang: one of `LANGUAGES`, different from `source_lang`.
        split_sizes: optional `{"train": n, "validation": n, "test": n}`
            overriding the corpus defaults (for the mixed corpus, each count
            applies to numbers and to dates). Give such a config its own
            `name`: TFDS caches one dataset per name.
    """

    source_lang: str = "en"
    target_lang: str = "fr"
    split_sizes: dict | None = None

    def __post_init__(self):
        _check_language_pair(self.source_lang, self.target_lang)
        if self.split_sizes is not None:
            unknown = set(self.split_sizes) - set(SPLITS)
            if unknown:
                raise ValueError(
                    f"`split_sizes` keys must be in {list(SPLITS)}. "
                    f"Received: split_sizes={self.split_sizes!r}"
                )


def _language_pair_configs(corpus: str) -> list[TranslationConfig]:
    return [
        TranslationConfig(
            name=f"{source}-{target}",
            version=_VERSION,
            description=f"{corpus.capitalize()} in words, {source} to {target}.",
            source_lang=source,
            target_lang=target,
        )
        for source in LANGUAGES
        for target in LANGUAGES
        if source != target
    ]


class _OfflineTranslation(tfds.core.GeneratorBasedBuilder):
    """Shared plumbing of the offline corpora; subclasses write `_pairs`."""

    VERSION = _VERSION
    RELEASE_NOTES = {"1.0.0": "First release."}
    DEFAULT_CONFIG_NAME = "en-fr"
    _DESCRIPTION = ""

    # TFDS 4.9.10 finds a builder's source file through the `importlib_resources`
    # backport, which recent installs lack (tensorflow/datasets#11212). The file
    # that defines the class is the answer, without the backport.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(inspect.getfile(cls))

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._DESCRIPTION,
            features=tfds.features.Translation(
                languages=(config.source_lang, config.target_lang)
            ),
            supervised_keys=(config.source_lang, config.target_lang),
            homepage="https://github.com/tf-transformer/tf_transformer",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        return {split: self._generate_examples(split) for split in SPLITS}

    def _size(self, split: str) -> int | None:
        sizes = self.builder_config.split_sizes or {}
        return sizes.get(split)

    # The default size of each split, one dict per kind of sentence it holds.
    _DEFAULT_SPLIT_SIZES: tuple[dict, ...] = ()

    def pair_count(self) -> int:
        """How many pairs the corpus holds, all splits together."""
        return sum(
            self._size(split) or defaults[split]
            for defaults in self._DEFAULT_SPLIT_SIZES
            for split in SPLITS
        )

    def _generate_examples(self, split: str):
        config = self.builder_config
        for key, source, target in self._pairs(
            split, config.source_lang, config.target_lang
        ):
            yield key, {config.source_lang: source, config.target_lang: target}

    def _pairs(self, split, source_lang, target_lang):
        raise NotImplementedError


class TfTransformerNumbers(_OfflineTranslation):
    """Numbers in words in two languages, generated with num2words."""

    BUILDER_CONFIGS = _language_pair_configs("numbers")
    _DEFAULT_SPLIT_SIZES = (NUMBERS_SPLIT_SIZES,)
    _DESCRIPTION = (
        "Integers from 0 to 9,999,999 written in words in two languages "
        "(num2words). Splits are disjoint by value; 0-100 are all in train."
    )

    def _pairs(self, split, source_lang, target_lang):
        for value, source, target in number_pairs(
            split, source_lang, target_lang, self._size(split)
        ):
            yield str(value), source, target


class TfTransformerDates(_OfflineTranslation):
    """Dates in the long format of two locales, generated with babel (CLDR)."""

    BUILDER_CONFIGS = _language_pair_configs("dates")
    _DEFAULT_SPLIT_SIZES = (DATES_SPLIT_SIZES,)
    _DESCRIPTION = (
        "Days from 1950-01-01 to 2049-12-31 in the long ('full') date format of "
        "two locales (babel/CLDR). Splits are disjoint by date."
    )

    def _pairs(self, split, source_lang, target_lang):
        for date, source, target in date_pairs(
            split, source_lang, target_lang, self._size(split)
        ):
            yield date.isoformat(), source, target


class TfTransformerMixed(_OfflineTranslation):
    """The numbers and dates corpora together: the default training corpus."""

    BUILDER_CONFIGS = _language_pair_configs("numbers and dates")
    _DEFAULT_SPLIT_SIZES = (NUMBERS_SPLIT_SIZES, DATES_SPLIT_SIZES)
    _DESCRIPTION = (
        "The union of tf_transformer_numbers and tf_transformer_dates, split by "
        "split (a held-out number or date is held out here too)."
    )

    def _pairs(self, split, source_lang, target_lang):
        size = self._size(split)
        for value, source, target in number_pairs(
            split, source_lang, target_lang, size
        ):
            yield f"number/{value}", source, target
        for date, source, target in date_pairs(split, source_lang, target_lang, size):
            yield f"date/{date.isoformat()}", source, target


# --------------------------------------------------------------------------
# Loading


def _can_reach(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to `host:port` opens within `timeout` seconds.

    The attempt runs in a daemon thread so that a slow DNS lookup cannot hold
    the caller longer than `timeout`.
    """
    reached = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                reached.append(True)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            pass

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(reached)


# Where each online corpus is downloaded from: checked before TFDS tries, so
# that an offline machine fails in seconds instead of retrying for minutes.
_ONLINE_HOSTS = {"ted_hrlr_translate/pt_to_en": ("www.phontron.com", 80)}
_CONNECT_TIMEOUT_S = 3.0
# What is known about a download that fails for everyone, said with the
# failure so that nobody debugs their own network for it. Reported, not
# re-checked here: this project's machines have no network.
KNOWN_DEAD_DOWNLOADS = {
    "ted_hrlr_translate/pt_to_en": (
        "its download source has been dead since 2026-04 (tensorflow/text#1497), "
        "so only a copy already in the TFDS data directory can be read"
    )
}


def _offline_message(name: str, reason: str) -> str:
    known = KNOWN_DEAD_DOWNLOADS.get(name)
    return (
        f"The corpus {name!r} must be downloaded, and {reason}"
        + (f"; {known}" if known else "")
        + ". The offline "
        f"corpora {list(OFFLINE_CORPORA)} are generated on this machine and need "
        "no network, e.g. load_translation('mixed', split='train', "
        "source_lang='en', target_lang='fr')."
    )


_PREPARING = threading.Lock()


class _VariantFolderFilter(logging.Filter):
    def filter(self, record):
        return not str(record.msg).startswith("Variant folder")


@contextlib.contextmanager
def _without_variant_folder_warnings():
    """Drops TFDS's warning about a corpus folder that is not written yet.

    Before and while a corpus is prepared, TFDS looks into its (empty or
    half-written) version folder and warns that it has no
    `dataset_info.json`: expected, and no use to the reader.
    """
    absl_logger = logging.getLogger("absl")
    variant_filter = _VariantFolderFilter()
    absl_logger.addFilter(variant_filter)
    try:
        yield
    finally:
        absl_logger.removeFilter(variant_filter)


@contextlib.contextmanager
def _preparing(progress_bar: bool):
    """Around `download_and_prepare`: leave the caller's state as it was.

    TFDS names its temporary folder with Python's global `random` module,
    so preparing a corpus would shift every later `random` draw, and with
    them the seeds Keras draws for unseeded initializers: a notebook's
    figures would depend on whether the corpus was already cached. The
    state is restored here. TFDS also prints to stdout ("Downloading and
    preparing dataset Unknown size ...", even for a corpus generated here)
    and shows progress bars (widgets in Jupyter); its messages are dropped
    (`_prepare` says what happens instead), and without `progress_bar` the
    bars are off (a generated corpus takes seconds). The saved and restored
    state is process-wide, so one thread prepares at a time.
    """
    from tensorflow_datasets.core.utils import tqdm_utils

    with _PREPARING, _without_variant_folder_warnings():
        state = random.getstate()
        # TFDS has a setter for its progress bars but no getter.
        shown = getattr(tqdm_utils, "_active", True)
        tfds.display_progress_bar(shown and progress_bar)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            tfds.display_progress_bar(shown)
            random.setstate(state)


@contextlib.contextmanager
def _one_process_at_a_time(builder: tfds.core.DatasetBuilder):
    """Hold a lock file in the data directory while a corpus is prepared.

    TFDS writes a corpus into a temporary folder and renames it into place;
    when two processes prepare the same corpus at once (notebooks run side
    by side, parallel tests), the second rename fails with
    `FileExistsError`. With the lock the second process waits, then finds
    the corpus prepared and reads it. Local directories on POSIX systems
    only; elsewhere nothing is locked.
    """
    root = os.fspath(builder.data_dir_root)
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None
    if fcntl is None or "://" in root:
        yield
        return
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".tf_transformer.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(name: str, data_dir: str | None, progress_bar: bool):
    """Prepare the TFDS corpus `name`; returns a builder that reads it.

    Says on stderr what is being prepared and, when it is done, how long it
    took. The builder that prepares is made once this process holds the
    lock: if another process prepared the corpus meanwhile, it finds it on
    disk.
    """
    from tf_transformer.progress import step

    with (
        _preparing(progress_bar),
        _one_process_at_a_time(tfds.builder(name, data_dir=data_dir)),
    ):
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            with step(_preparation_message(builder)):
                builder.download_and_prepare()
    return builder


def _preparation_message(builder: tfds.core.DatasetBuilder) -> str:
    """`"generating the mixed en→fr corpus (74,000 pairs)"`, or a download."""
    config = builder.builder_config
    if isinstance(builder, _OfflineTranslation) and config is None:
        return f"generating the dataset {builder.name}"  # one config, no pair
    if isinstance(builder, _OfflineTranslation):
        corpus = {name: key for key, name in BUILDER_NAMES.items()}
        return (
            f"generating the {corpus.get(builder.name, builder.name)} "
            f"{config.source_lang}→{config.target_lang} corpus "
            f"({builder.pair_count():,} pairs)"
        )
    full_name = builder.name if config is None else f"{builder.name}/{config.name}"
    return f"downloading and preparing the corpus {full_name}"


def _load_online(name, split, source_lang, target_lang, data_dir):
    languages = ONLINE_CORPORA[name]
    source_lang = languages[0] if source_lang is None else source_lang
    target_lang = languages[1] if target_lang is None else target_lang
    _check_choice("source_lang", source_lang, languages)
    _check_choice("target_lang", target_lang, languages)
    if source_lang == target_lang:
        _check_language_pair(source_lang, target_lang)
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        host, port = _ONLINE_HOSTS[name]
        # Behind an HTTP proxy a direct connection may fail while the download
        # works; leave the verdict to TFDS then.
        if not urllib.request.getproxies() and not _can_reach(
            host, port, _CONNECT_TIMEOUT_S
        ):
            raise OfflineError(
                _offline_message(name, f"{host}:{port} cannot be reached (offline?)")
            )
        try:
            builder = _prepare(name, data_dir, progress_bar=True)
        except ImportError:  # a broken installation, not a network problem
            raise
        except Exception as error:  # noqa: BLE001 - re-raised with a clear message
            raise OfflineError(
                _offline_message(name, f"the download failed ({error})")
            ) from error
    dataset = builder.as_dataset(split=split, as_supervised=True)
    if (source_lang, target_lang) != languages:
        dataset = dataset.map(lambda first, second: (second, first))
    return dataset


def load_translation(
    name: str = "mixed",
    split: str = "train",
    source_lang: str | None = None,
    target_lang: str | None = None,
    data_dir: str | None = None,
) -> tf.data.Dataset:
    """Loads a translation corpus as `(source, target)` string pairs.

    The offline corpora are generated on first use (a few seconds) and cached
    in the TFDS data directory; later calls read the cache. The pairs come in
    a fixed, pseudo-random order (TFDS stores them shuffled by key), the same
    order as `tfds.load(..., as_supervised=True)`.

    Args:
        name: `"numbers"`, `"dates"`, `"mixed"` (both; the default training
            corpus) or `"ted_hrlr_translate/pt_to_en"` (read from the TFDS
            data directory; its download has been dead since 2026-04, see
            `KNOWN_DEAD_DOWNLOADS`). Defaults to `"mixed"`.
        split: `"train"`, `"validation"` or `"test"`; TFDS slicing such as
            `"train[:1000]"` is accepted. Defaults to `"train"`.
        source_lang: language of the first element. Defaults to `"en"`
            (`"pt"` for TED).
        target_lang: language of the second element. Defaults to `"fr"`
            (`"en"` for TED).
        data_dir: TFDS data directory. Defaults to TFDS's own default
            (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).

    Returns:
        A `tf.data.Dataset` of `(source, target)` scalar `tf.string` pairs.

    Raises:
        ValueError: unknown `name`, `split` or language, naming the valid ones.
        OfflineError: a downloaded corpus is not cached and cannot be fetched.

    Example:

    >>> pairs = load_translation("numbers", split="test", target_lang="de")
    >>> source, target = next(iter(pairs))  # e.g. "seventy-one", "einundsiebzig"
    """
    valid_names = list(OFFLINE_CORPORA) + list(ONLINE_CORPORA)
    if not isinstance(name, str) or name not in valid_names:
        raise ValueError(
            f"`name` must be one of {valid_names}. Received: name={name!r}"
        )
    _check_split(split)
    if name in ONLINE_CORPORA:
        return _load_online(name, split, source_lang, target_lang, data_dir)
    source_lang = "en" if source_lang is None else source_lang
    target_lang = "fr" if target_lang is None else target_lang
    _check_language_pair(source_lang, target_lang)
    full_name = f"{BUILDER_NAMES[name]}/{source_lang}-{target_lang}"
    builder = tfds.builder(full_name, data_dir=data_dir)
    with _without_variant_folder_warnings():
        prepared = builder.is_prepared()
    if not prepared:
        builder = _prepare(full_name, data_dir, progress_bar=False)
    return _read_pairs(builder, split)


def _read_pairs(builder: tfds.core.DatasetBuilder, split: str) -> tf.data.Dataset:
    """`builder.as_dataset(split, as_supervised=True)`, several times faster.

    TFDS parses its records one at a time; the pairs are two strings, so the
    records are parsed a thousand at a time here. Same pairs, same order.
    """
    config = builder.builder_config
    if builder.info.file_format != tfds.core.FileFormat.TFRECORD:
        return builder.as_dataset(split=split, as_supervised=True)
    files = None
    for instruction in builder.info.splits[split].file_instructions:
        records = tf.data.TFRecordDataset(instruction.filename).skip(instruction.skip)
        if instruction.take >= 0:
            records = records.take(instruction.take)
        files = records if files is None else files.concatenate(records)
    if files is None:  # an empty slice
        return builder.as_dataset(split=split, as_supervised=True)
    features = {
        language: tf.io.FixedLenFeature([], tf.string)
        for language in (config.source_lang, config.target_lang)
    }

    def parse(serialized):
        example = tf.io.parse_example(serialized, features)
        return example[config.source_lang], example[config.target_lang]

    return files.batch(1024).map(parse).unbatch()
