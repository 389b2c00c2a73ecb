"""The offline corpora: deterministic, disjoint, learnable, and offline-safe."""

import datetime
import re
import socket
import time
import urllib.request

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from num2words import num2words

from tf_transformer.data import corpora
from tf_transformer.data.corpora import (
    LANGUAGES,
    OfflineError,
    TfTransformerDates,
    TfTransformerNumbers,
    TranslationConfig,
    load_translation,
)

tfds.disable_progress_bar()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    # One TFDS directory per test session, shared by the data test modules, so
    # each corpus is generated once (TFDS reuses what is prepared).
    path = tmp_path_factory.getbasetemp() / "tfds_data"
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture(scope="session")
def mixed_en_fr(data_dir):
    """All splits of the default training corpus, as lists of (source, target)."""
    return {
        split: decode(load_translation("mixed", split, "en", "fr", data_dir=data_dir))
        for split in corpora.SPLITS
    }


def decode(pairs):
    """A dataset of string pairs as a list of (str, str), read in large batches."""
    return [
        (source.decode(), target.decode())
        for sources, targets in pairs.batch(8192).as_numpy_iterator()
        for source, target in zip(sources, targets, strict=True)
    ]


def small_config(name, **sizes):
    return TranslationConfig(
        name=name,
        source_lang="en",
        target_lang="fr",
        split_sizes=sizes or {"train": 300, "validation": 50, "test": 50},
    )


def read_all(builder, split):
    return decode(builder.as_dataset(split=split, as_supervised=True))


def words(text):
    return re.findall(r"\w+", text.lower())


# ---------------------------------------------------------------- loading


def test_load_translation_returns_scalar_string_pairs(data_dir):
    pairs = load_translation("mixed", "test", data_dir=data_dir)
    source_spec, target_spec = pairs.element_spec
    assert source_spec == tf.TensorSpec([], tf.string)
    assert target_spec == tf.TensorSpec([], tf.string)
    source, target = next(iter(pairs))
    assert source.numpy() and target.numpy()


def test_default_split_sizes(mixed_en_fr):
    assert len(mixed_en_fr["train"]) == 70_000
    assert len(mixed_en_fr["validation"]) == 2_000
    assert len(mixed_en_fr["test"]) == 2_000


def test_tfds_load_reads_the_same_pairs_as_load_translation(data_dir, mixed_en_fr):
    pairs = tfds.load(
        "tf_transformer_mixed/en-fr",
        split="test",
        data_dir=data_dir,
        as_supervised=True,
    )
    assert decode(pairs) == mixed_en_fr["test"]


def test_tfds_split_slicing_is_accepted(data_dir, mixed_en_fr):
    pairs = load_translation("mixed", "test[:10]+validation[5:8]", data_dir=data_dir)
    assert decode(pairs) == mixed_en_fr["test"][:10] + mixed_en_fr["validation"][5:8]


def test_mixed_corpus_contains_numbers_and_dates(mixed_en_fr):
    sources = [source for source, _ in mixed_en_fr["test"]]
    dates = [s for s in sources if re.search(r"\d{4}$", s)]
    assert len(dates) == 1_000
    assert "Sunday" in " ".join(dates)
    assert len(sources) - len(dates) == 1_000


def test_prepared_corpus_is_reused_not_regenerated(data_dir, mixed_en_fr):
    builder = tfds.builder("tf_transformer_mixed/en-fr", data_dir=data_dir)
    assert builder.is_prepared()
    files = tf.io.gfile.glob(f"{builder.data_dir}/*.tfrecord*")
    before = {path: tf.io.gfile.stat(path).mtime_nsec for path in files}
    load_translation("mixed", "train", data_dir=data_dir)
    assert {path: tf.io.gfile.stat(path).mtime_nsec for path in files} == before


def test_data_dir_argument_is_respected(data_dir, mixed_en_fr):
    assert tf.io.gfile.exists(f"{data_dir}/tf_transformer_mixed/en-fr/1.0.0")


def test_preparing_a_corpus_leaves_the_callers_state_alone(
    tmp_path, capsys, monkeypatch
):
    """No shifted `random` draws, nothing on stdout, no progress bar.

    Otherwise a notebook's seeded figures and its compared outputs would
    depend on whether the corpus was already cached.
    """
    import random

    from tensorflow_datasets.core.utils import tqdm_utils

    monkeypatch.setattr(tqdm_utils, "_active", True)  # as in a fresh kernel
    bars = []

    def recording_bar(*args, **kwargs):
        bars.append(kwargs.get("desc"))
        return tqdm_utils.EmptyTqdm(*args, **kwargs)

    monkeypatch.setattr(tqdm_utils.tqdm_lib, "tqdm", recording_bar)
    random.seed(7)
    expected = random.getstate()
    pairs = load_translation("dates", "test", data_dir=str(tmp_path))
    assert random.getstate() == expected
    assert capsys.readouterr().out == ""
    assert bars == []
    assert tqdm_utils._active is True  # the user's setting is back
    assert len(decode(pairs)) == 1_000


def test_corpora_prepared_in_two_threads_leave_stdout_and_random_alone():
    """What `_preparing` saves and restores is process-wide: one at a time."""
    import random
    import sys
    import threading

    stdout = sys.stdout
    random.seed(3)
    expected = random.getstate()

    def prepare():
        with corpora._preparing(progress_bar=False):
            time.sleep(0.2)  # both threads inside at once, without the lock
            random.random()

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert sys.stdout is stdout
    assert random.getstate() == expected


@pytest.mark.slow
def test_two_processes_can_prepare_the_same_corpus_at_once(tmp_path):
    """Notebooks or test workers side by side, both loading a corpus first.

    TFDS renames its finished folder into place; without the lock file the
    second process to finish fails with FileExistsError.
    """
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from tf_transformer.data import load_translation\n"
        "pairs = load_translation('dates', 'test', data_dir=sys.argv[1])\n"
        "print(sum(1 for _ in pairs))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert out.split() == ["1000"]


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_same_pairs_in_two_data_dirs(tmp_path):
    first = TfTransformerNumbers(
        config=small_config("en-fr-determinism"), data_dir=str(tmp_path / "a")
    )
    second = TfTransformerNumbers(
        config=small_config("en-fr-determinism"), data_dir=str(tmp_path / "b")
    )
    first.download_and_prepare()
    second.download_and_prepare()
    for split in corpora.SPLITS:
        assert read_all(first, split) == read_all(second, split)
    assert len(read_all(first, "train")) == 300


def test_samplers_are_deterministic():
    assert corpora.sample_numbers("test") == corpora.sample_numbers("test")
    assert corpora.sample_dates("validation") == corpora.sample_dates("validation")


# ---------------------------------------------------------------- splits


def test_number_splits_are_disjoint_and_owned():
    splits = {split: corpora.sample_numbers(split) for split in corpora.SPLITS}
    for split, values in splits.items():
        assert len(values) == len(set(values)) == corpora.NUMBERS_SPLIT_SIZES[split]
        assert all(corpora.number_split(value) == split for value in values)
        assert all(0 <= value <= corpora.NUMBERS_MAX for value in values)
    assert not set(splits["train"]) & set(splits["validation"])
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["validation"]) & set(splits["test"])


def test_date_splits_are_disjoint_and_in_range():
    splits = {split: corpora.sample_dates(split) for split in corpora.SPLITS}
    for split, dates in splits.items():
        assert len(dates) == len(set(dates)) == corpora.DATES_SPLIT_SIZES[split]
        assert all(corpora.DATES_FIRST <= d <= corpora.DATES_LAST for d in dates)
    assert not set(splits["train"]) & set(splits["validation"])
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["validation"]) & set(splits["test"])


def test_no_pair_appears_in_two_splits_of_the_mixed_corpus(mixed_en_fr):
    sets = {split: set(pairs) for split, pairs in mixed_en_fr.items()}
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]


def test_every_held_out_word_appears_in_train_en_fr(mixed_en_fr):
    for side in (0, 1):
        train = {w for pair in mixed_en_fr["train"] for w in words(pair[side])}
        for split in ("validation", "test"):
            held_out = {w for pair in mixed_en_fr[split] for w in words(pair[side])}
            assert held_out <= train, sorted(held_out - train)[:10]


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_every_held_out_word_appears_in_train_other_languages(lang):
    # German is left out on purpose: it writes a number as one compound word
    # ("dreihundertvierundzwanzigtausend"), so held-out numbers are new words by
    # design. Subword tokens cover them (see the tokenizer round-trip tests).
    def vocabulary(split):
        texts = [t for _, _, t in corpora.number_pairs(split, "en", lang)]
        texts += [t for _, _, t in corpora.date_pairs(split, "en", lang)]
        return {w for text in texts for w in words(text)}

    train = vocabulary("train")
    for split in ("validation", "test"):
        assert vocabulary(split) <= train, sorted(vocabulary(split) - train)[:10]


# ---------------------------------------------------------------- content


def test_train_numbers_contain_every_number_up_to_one_hundred():
    assert set(range(101)) <= set(corpora.sample_numbers("train"))


def test_numbers_cover_the_hard_cases():
    values = corpora.sample_numbers("train")
    french = " | ".join(corpora.number_in_words(v, "fr") for v in values)
    english = " | ".join(corpora.number_in_words(v, "en") for v in values[:2000])
    german = " | ".join(corpora.number_in_words(v, "de") for v in values[:500])
    for phrase in [
        "seize",
        "soixante et onze",
        "quatre-vingts",
        "quatre-vingt-dix-neuf",
        "vingt et un",
        "deux cents",
        "deux cent ",
        "mille",
        "un million",
        "millions",
    ]:
        assert phrase in french, phrase
    assert "twenty-one" in english and "million" in english
    assert "einundzwanzig" in german
    digits = [len(str(v)) for v in values]
    assert digits.count(3) > 700  # nearly all of the ~810 three-digit train values
    assert min(digits.count(n) for n in range(4, 8)) > 5_000


@pytest.mark.parametrize(
    "lang, seventy_one, date",
    [
        ("en", "seventy-one", "Sunday, November 22, 2026"),
        ("fr", "soixante et onze", "dimanche 22 novembre 2026"),
        ("es", "setenta y uno", "domingo, 22 de noviembre de 2026"),
        ("de", "einundsiebzig", "Sonntag, 22. November 2026"),
        ("pt", "setenta e um", "domingo, 22 de novembro de 2026"),
    ],
)
def test_every_language_writes_numbers_and_dates(lang, seventy_one, date):
    assert corpora.number_in_words(71, lang) == seventy_one
    assert corpora.date_in_words(datetime.date(2026, 11, 22), lang) == date


@pytest.mark.parametrize("lang", LANGUAGES)
def test_fast_number_converter_writes_what_num2words_writes(lang):
    values = corpora.sample_numbers("validation", 300) + list(range(0, 2001, 7))
    expected = [num2words(v, lang=corpora._NUM2WORDS_LANG[lang]) for v in values]
    assert [corpora.number_in_words(v, lang) for v in values] == expected


def test_any_language_pair_can_be_built(tmp_path):
    builder = TfTransformerDates(
        config=TranslationConfig(
            name="de-pt-small",
            source_lang="de",
            target_lang="pt",
            split_sizes={"train": 20, "validation": 5, "test": 5},
        ),
        data_dir=str(tmp_path),
    )
    builder.download_and_prepare()
    source, target = read_all(builder, "test")[0]
    assert re.fullmatch(r"\w+, \d+\. \w+ \d{4}", source)
    assert " de " in target
    assert builder.info.supervised_keys == ("de", "pt")


def test_every_language_pair_has_a_registered_config():
    names = {config.name for config in TfTransformerNumbers.BUILDER_CONFIGS}
    assert len(names) == 20
    assert {"en-fr", "fr-en", "pt-de"} <= names


# ---------------------------------------------------------------- bad input


def test_unknown_corpus_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"`name` must be one of .*'numbers'") as info:
        load_translation("wmt14")
    assert "'dates'" in str(info.value) and "'mixed'" in str(info.value)
    assert "Received: name='wmt14'" in str(info.value)


@pytest.mark.parametrize("name", [None, 3, ["numbers"]])
def test_non_string_corpus_name_is_rejected(name):
    with pytest.raises(ValueError, match="`name` must be one of"):
        load_translation(name)


@pytest.mark.parametrize("argument", ["source_lang", "target_lang"])
def test_unknown_language_lists_the_valid_languages(argument):
    with pytest.raises(ValueError) as info:
        load_translation("numbers", **{argument: "xx"})
    message = str(info.value)
    assert f"`{argument}` must be one of ['de', 'en', 'es', 'fr', 'pt']" in message
    assert f"Received: {argument}='xx'" in message


def test_same_source_and_target_language_is_rejected():
    with pytest.raises(ValueError, match="must differ"):
        load_translation("dates", source_lang="fr", target_lang="fr")


@pytest.mark.parametrize("split", ["training", "", "dev[:10]", 0])
def test_unknown_split_lists_the_valid_splits(split):
    with pytest.raises(ValueError, match=r"`split` must be one of \['train'"):
        load_translation("numbers", split=split)


def test_bad_split_sizes_are_rejected():
    with pytest.raises(ValueError, match="split_sizes"):
        TranslationConfig(name="x", split_sizes={"dev": 3})


def test_bad_language_in_config_is_rejected():
    with pytest.raises(ValueError, match="target_lang"):
        TranslationConfig(name="x", source_lang="en", target_lang="klingon")


# ---------------------------------------------------------------- online corpus


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """No HTTP proxy, so the reachability check runs (behind one it is skipped)."""
    monkeypatch.setattr(urllib.request, "getproxies", dict)


@pytest.fixture
def no_dns(monkeypatch):
    """Name lookups fail as on a machine without network (conftest blocks connect)."""

    def fail(*args, **kwargs):
        raise socket.gaierror("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", fail)


def test_ted_fails_fast_offline_and_names_the_offline_corpora(tmp_path, no_dns):
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        load_translation("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "ted_hrlr_translate/pt_to_en" in message
    for name in ("'numbers'", "'dates'", "'mixed'"):
        assert name in message
    assert "dead since 2026-04" in message


def test_unreachable_server_fails_within_the_connect_timeout(tmp_path, monkeypatch):
    # A fake download host at a reserved, unroutable address (TEST-NET-1).
    monkeypatch.setitem(
        corpora._ONLINE_HOSTS, "ted_hrlr_translate/pt_to_en", ("192.0.2.1", 9)
    )
    start = time.monotonic()
    with pytest.raises(OfflineError, match="192.0.2.1:9 cannot be reached"):
        load_translation("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
    assert time.monotonic() - start < corpora._CONNECT_TIMEOUT_S + 5


def test_failed_download_names_the_offline_corpora(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "_can_reach", lambda host, port, timeout: True)
    builder_class = tfds.builder_cls("ted_hrlr_translate")

    def dead_link(self, *args, **kwargs):
        raise OSError("404 Not Found")

    monkeypatch.setattr(builder_class, "download_and_prepare", dead_link)
    with pytest.raises(OfflineError, match="download failed .*404.*'mixed'") as info:
        load_translation("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
    assert "dead since 2026-04 (tensorflow/text#1497)" in str(info.value)


def test_a_broken_installation_is_not_reported_as_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "_can_reach", lambda host, port, timeout: True)
    builder_class = tfds.builder_cls("ted_hrlr_translate")

    def missing_module(self, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'")

    monkeypatch.setattr(builder_class, "download_and_prepare", missing_module)
    with pytest.raises(ModuleNotFoundError, match="importlib_resources"):
        load_translation("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))


def test_ted_languages_are_checked(tmp_path):
    with pytest.raises(
        ValueError, match=r"`source_lang` must be one of \['en', 'pt'\]"
    ):
        load_translation("ted_hrlr_translate/pt_to_en", source_lang="fr")
