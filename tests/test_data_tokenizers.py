"""Tokenizers: reserved ids, exact round trips, files, SavedModel export, bad input."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_transformer.data import corpora
from tf_transformer.data.tokenizers import (
    CLS_ID,
    END_ID,
    FRAMING_TOKENS,
    MASK_ID,
    PAD_ID,
    RESERVED_TOKENS,
    SEP_ID,
    START_ID,
    UNK_ID,
    SubwordTokenizer,
    load_tokenizer,
    normalize,
    train_tokenizer,
    train_tokenizers,
    word_level_vectorizer,
)

tfds.disable_progress_bar()


def texts_of(pairs, side):
    return [
        text.decode()
        for batch in pairs.map(lambda s, t: (s, t)[side]).batch(8192)
        for text in batch.numpy()
    ]


@pytest.fixture(scope="session")
def en_fr(data_dir):
    """Tokenizers trained on the default training corpus, and its test split."""
    train = corpora.load_translation("mixed", "train", "en", "fr", data_dir=data_dir)
    test = corpora.load_translation("mixed", "test", "en", "fr", data_dir=data_dir)
    source_tokenizer, target_tokenizer = train_tokenizers(train)
    return {
        "source_tokenizer": source_tokenizer,
        "target_tokenizer": target_tokenizer,
        "test_sources": texts_of(test, 0),
        "test_targets": texts_of(test, 1),
    }


@pytest.fixture(scope="session")
def small_tokenizer():
    texts = [corpora.number_in_words(value, "fr") for value in range(0, 3000, 7)] + [
        "Sunday, November 22, 2026",
        "dimanche 22 novembre 2026",
        "l'an (deux) ¿sí? Cent.",
    ]
    return train_tokenizer(texts, 300)


def assert_round_trip(tokenizer, texts):
    restored = tokenizer.detokenize(tokenizer.tokenize(texts)).numpy()
    expected = normalize(texts)
    mismatches = [
        (e, r.decode())
        for e, r in zip(expected, restored, strict=True)
        if e != r.decode()
    ]
    assert not mismatches, mismatches[:5]


# ---------------------------------------------------------------- reserved ids


def test_reserved_tokens_have_the_project_ids(small_tokenizer):
    assert RESERVED_TOKENS == (
        "[PAD]",
        "[UNK]",
        "[START]",
        "[END]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    )
    assert (PAD_ID, UNK_ID, START_ID, END_ID) == (0, 1, 2, 3)
    assert (CLS_ID, SEP_ID, MASK_ID) == (4, 5, 6)
    assert small_tokenizer.get_vocabulary()[:7] == list(RESERVED_TOKENS)
    for token_id, token in enumerate(RESERVED_TOKENS):
        assert small_tokenizer.token_to_id(token) == token_id
        assert small_tokenizer.id_to_token(token_id) == token


def test_tokenize_frames_every_text_with_start_and_end(small_tokenizer):
    ids = small_tokenizer.tokenize(["vingt et un", "cent"])
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    for row in ids.to_list():
        assert row[0] == START_ID and row[-1] == END_ID
        assert PAD_ID not in row and START_ID not in row[1:] and END_ID not in row[:-1]


def test_tokenize_one_string_returns_one_dense_row(small_tokenizer):
    ids = small_tokenizer.tokenize("vingt et un")
    assert isinstance(ids, tf.Tensor) and ids.shape.rank == 1
    assert (
        ids.numpy().tolist()
        == small_tokenizer.tokenize(["vingt et un"])[0].numpy().tolist()
    )


# ---------------------------------------------------------------- round trips


def test_round_trip_on_every_test_pair_en_fr(en_fr):
    assert_round_trip(en_fr["source_tokenizer"], en_fr["test_sources"])
    assert_round_trip(en_fr["target_tokenizer"], en_fr["test_targets"])


@pytest.mark.parametrize("lang", corpora.LANGUAGES)
def test_round_trip_on_every_test_sentence_of_every_language(lang):
    other = "fr" if lang == "en" else "en"

    def sentences(split, size=None):
        numbers = corpora.number_pairs(split, other, lang, size)
        dates = corpora.date_pairs(split, other, lang, size)
        return [target for _, _, target in numbers] + [t for _, _, t in dates]

    tokenizer = train_tokenizer(sentences("train", 2000), 1000)
    assert_round_trip(tokenizer, sentences("test"))


def test_detokenize_gives_clean_text(en_fr):
    tokenizer = en_fr["source_tokenizer"]
    text = tokenizer.detokenize(tokenizer.tokenize("Two thousand ,  Twenty - One"))
    assert text.numpy().decode() == "two thousand, twenty-one"
    tokenizer = en_fr["target_tokenizer"]
    restored = tokenizer.detokenize(tokenizer.tokenize(en_fr["test_targets"]))
    assert not any(b"##" in t for t in restored.numpy())
    assert not any(b" -" in t or b"- " in t or b" ," in t for t in restored.numpy())


def test_german_compounds_are_split_into_subwords():
    texts = [corpora.number_in_words(v, "de") for v in range(0, 100_000, 37)]
    tokenizer = train_tokenizer(texts, 400)
    compound = corpora.number_in_words(987_654, "de")
    ids = tokenizer.tokenize(compound).numpy().tolist()
    assert len(ids) > 4 and UNK_ID not in ids
    assert tokenizer.detokenize(ids).numpy().decode() == compound.lower()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  Sunday ,November 22 , 2026", "sunday, november 22, 2026"),
        ("quatre - vingts", "quatre-vingts"),
        ("Sonntag,22 .März", "sonntag, 22. märz"),
        ("A\u00a0B\t\nC", "a b c"),  # no-break space, tab, newline
        ("zero\u200bwidth", "zerowidth"),
        ("( deux ) ¿ sí ?", "(deux) ¿sí?"),
        ("l ' an 2000 / 2001", "l'an 2000/2001"),
        ("ﬁn", "fin"),  # NFKC
        ("", ""),
        ("   \t ", ""),
    ],
)
def test_normalize_rules(text, expected):
    assert normalize(text) == expected


def test_normalize_is_idempotent_and_keeps_shapes(en_fr):
    once = normalize(en_fr["test_targets"][:50])
    assert normalize(once) == once
    tensor = tf.constant([["A ,b", "C"], ["d", "E - f"]])
    result = normalize(tensor)
    assert result.shape == (2, 2)
    assert result.numpy().tolist() == [[b"a, b", b"c"], [b"d", b"e-f"]]


def test_normalize_can_keep_case():
    assert normalize("Sunday ,November", lowercase=False) == "Sunday, November"


def test_round_trip_of_tricky_text(small_tokenizer):
    assert_round_trip(
        small_tokenizer,
        ["  Vingt-et-un ,  DEUX   cents ", "l'an (deux) ¿sí?", "", " \t", "Cent."],
    )


# ---------------------------------------------------------------- odd text


def test_characters_outside_the_vocabulary_become_unk(small_tokenizer):
    ids = small_tokenizer.tokenize(["vingt 😀 中文 ∑ un", "\ufffd", "\x07bell"])
    rows = ids.to_list()
    assert UNK_ID in rows[0] and UNK_ID in rows[1]
    text = small_tokenizer.detokenize(ids).numpy()[0].decode()
    assert text.startswith("vingt [UNK]") and text.endswith("un")


def test_invalid_utf8_bytes_do_not_crash(small_tokenizer):
    ids = small_tokenizer.tokenize([b"vingt \xff\xfe un"])
    assert ids.to_list()[0][0] == START_ID and UNK_ID in ids.to_list()[0]


def test_empty_and_whitespace_only_texts_give_start_end(small_tokenizer):
    ids = small_tokenizer.tokenize(["", "   ", "\n\t"])
    assert ids.to_list() == [[START_ID, END_ID]] * 3
    assert small_tokenizer.detokenize(ids).numpy().tolist() == [b""] * 3


def test_very_long_text_and_word_do_not_crash(small_tokenizer):
    long_text = " ".join(["quatre-vingt-dix-neuf"] * 20_000)
    ids = small_tokenizer.tokenize(long_text)
    assert ids.shape[0] > 20_000 and ids[-1] == END_ID
    long_word = "a" * 500  # longer than 100 bytes: one [UNK]
    assert small_tokenizer.tokenize(long_word).numpy().tolist() == [
        START_ID,
        UNK_ID,
        END_ID,
    ]


@pytest.mark.parametrize(
    "bad",
    [5, None, 3.5, [1, 2], ["ok", 3], tf.constant([1, 2]), {"a": 1}, np.array([1.0])],
)
def test_non_string_input_raises_type_error_naming_the_argument(small_tokenizer, bad):
    with pytest.raises(TypeError, match="`strings` must"):
        small_tokenizer.tokenize(bad)


def test_ragged_or_matrix_input_is_rejected(small_tokenizer):
    with pytest.raises(ValueError, match="`strings` must be a string or a 1-D batch"):
        small_tokenizer.tokenize([["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="RaggedTensor"):
        small_tokenizer.tokenize(tf.ragged.constant([["a"], ["b", "c"]]))


def test_detokenize_accepts_ragged_padded_int64_and_lists(small_tokenizer):
    ids = small_tokenizer.tokenize(["vingt et un", "cent"])
    expected = [b"vingt et un", b"cent"]
    assert small_tokenizer.detokenize(ids).numpy().tolist() == expected
    padded = ids.to_tensor()
    assert small_tokenizer.detokenize(padded).numpy().tolist() == expected
    assert small_tokenizer.detokenize(tf.cast(padded, tf.int64)).numpy().tolist() == (
        expected
    )
    assert small_tokenizer.detokenize(ids.to_list()).numpy().tolist() == expected
    assert small_tokenizer.detokenize(padded.numpy()[1]).numpy() == b"cent"


def test_detokenize_stops_at_end_and_skips_pad_start(small_tokenizer):
    word = small_tokenizer.tokenize("cent").numpy().tolist()[1:-1]
    ids = [PAD_ID, START_ID, *word, PAD_ID, *word, END_ID, *word, END_ID]
    assert small_tokenizer.detokenize(ids).numpy() == b"cent cent"


def test_out_of_range_ids_read_as_unk(small_tokenizer):
    size = small_tokenizer.vocabulary_size
    assert small_tokenizer.detokenize([START_ID, size, -4, END_ID]).numpy() == (
        b"[UNK] [UNK]"
    )


@pytest.mark.parametrize("bad", [[0.5, 1.0], ["a"], tf.constant([1.0]), None])
def test_detokenize_rejects_non_integer_ids(small_tokenizer, bad):
    with pytest.raises(TypeError, match="`token_ids` must be integer ids"):
        small_tokenizer.detokenize(bad)


def test_tokenizer_works_inside_tf_function(small_tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(strings):
        return small_tokenizer.detokenize(small_tokenizer.tokenize(strings))

    assert round_trip(tf.constant(["Vingt  et un"])).numpy().tolist() == [
        b"vingt et un"
    ]


# ---------------------------------------------------------------- training


def test_training_is_deterministic():
    texts = [corpora.number_in_words(v, "es") for v in range(0, 5000, 3)]
    first = train_tokenizer(texts, 300).get_vocabulary()
    second = train_tokenizer(tf.data.Dataset.from_tensor_slices(texts), 300)
    assert first == second.get_vocabulary()
    assert len(first) <= 300


def test_train_tokenizer_accepts_batched_datasets():
    texts = tf.data.Dataset.from_tensor_slices(["vingt et un", "cent"] * 10).batch(4)
    tokenizer = train_tokenizer(texts, 100)
    assert {"vingt", "cent"} <= set(tokenizer.get_vocabulary())
    assert_round_trip(tokenizer, ["Cent vingt", "un et vingt"])


def test_every_character_gets_a_token_even_in_long_words():
    # The learner skips words longer than max_subword_length; their characters
    # must still be spelled.
    tokenizer = train_tokenizer(
        ["abc", "abc", "xyzxyzxyzxyzq"], 100, max_subword_length=4
    )
    vocabulary = set(tokenizer.get_vocabulary())
    assert {"q", "##q", "x", "##x"} <= vocabulary
    assert_round_trip(tokenizer, ["qzyx cab", "xyzxyzxyzxyzq"])


@pytest.mark.parametrize(
    "texts, size, error, match",
    [
        (["a b"], 7, ValueError, "`vocabulary_size` must be >= 8"),
        (["a b"], "big", TypeError, "`vocabulary_size` must be an int"),
        (["a b"], 5.0, TypeError, "`vocabulary_size` must be an int"),
        ([], 100, ValueError, "holds no words"),
        (["", "  "], 100, ValueError, "holds no words"),
        ("just one string", 100, TypeError, "`texts` must be"),
        ([1, 2], 100, TypeError, "`texts` must contain only strings"),
        (tf.data.Dataset.range(3), 100, TypeError, "`texts` must be a dataset of"),
        (
            tf.data.Dataset.from_tensor_slices((["a"], ["b"])),
            100,
            TypeError,
            "for pairs, map to one side",
        ),
    ],
)
def test_train_tokenizer_rejects_bad_arguments(texts, size, error, match):
    with pytest.raises(error, match=match):
        train_tokenizer(texts, size)


def test_train_tokenizers_rejects_a_dataset_that_is_not_pairs():
    with pytest.raises(TypeError, match="`pairs` must be a tf.data.Dataset of"):
        train_tokenizers(tf.data.Dataset.from_tensor_slices(["a", "b"]))


@pytest.mark.parametrize(
    "vocabulary, error, match",
    [
        (["[PAD]", "[UNK]", "a"], ValueError, "must start with the reserved tokens"),
        ([*RESERVED_TOKENS, "a", "a"], ValueError, "duplicate tokens"),
        ([*RESERVED_TOKENS, "a b"], ValueError, "whitespace"),
        ([*RESERVED_TOKENS, ""], ValueError, "empty tokens"),
        ([*RESERVED_TOKENS, 7], TypeError, "only str tokens"),
        ("[PAD][UNK]", TypeError, "must be a list of str"),
    ],
)
def test_constructor_rejects_bad_vocabularies(vocabulary, error, match):
    with pytest.raises(error, match=match):
        SubwordTokenizer(vocabulary)


# ---------------------------------------------------------------- files


def test_save_and_load_round_trip(small_tokenizer, tmp_path):
    small_tokenizer.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert loaded.get_vocabulary() == small_tokenizer.get_vocabulary()
    texts = ["Vingt et un", "dimanche 22 novembre 2026", "😀"]
    assert loaded.tokenize(texts).to_list() == small_tokenizer.tokenize(texts).to_list()
    assert SubwordTokenizer.load(str(tmp_path / "tok")).vocabulary_size == (
        small_tokenizer.vocabulary_size
    )


def test_loading_a_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_tokenizer(missing)


def corrupt(directory, name, content):
    (directory / name).write_bytes(content)


@pytest.mark.parametrize(
    "damage, error, match",
    [
        (
            lambda d: (d / "vocabulary.txt").unlink(),
            FileNotFoundError,
            "vocabulary.txt",
        ),
        (
            lambda d: (d / "tokenizer.json").unlink(),
            FileNotFoundError,
            "tokenizer.json",
        ),
        (lambda d: corrupt(d, "tokenizer.json", b"{not json"), ValueError, "Corrupt"),
        (lambda d: corrupt(d, "tokenizer.json", b"[]"), ValueError, "format"),
        (
            lambda d: corrupt(d, "vocabulary.txt", b"[PAD]\n[UNK]\n"),
            ValueError,
            "Corrupt vocabulary .* 2 tokens",
        ),
        (
            lambda d: corrupt(d, "vocabulary.txt", b"\xff\xfe\n"),
            ValueError,
            "Corrupt vocabulary",
        ),
        (
            lambda d: corrupt(
                d,
                "vocabulary.txt",
                (d / "vocabulary.txt").read_bytes()[:-1],
            ),
            ValueError,
            "truncated",
        ),
    ],
)
def test_loading_a_corrupt_directory_raises_a_clear_error(
    small_tokenizer, tmp_path, damage, error, match
):
    directory = tmp_path / "tok"
    small_tokenizer.save(directory)
    damage(directory)
    with pytest.raises(error, match=match) as info:
        load_tokenizer(directory)
    assert str(directory) in str(info.value)


def test_loading_a_vocabulary_with_wrong_reserved_tokens_fails(
    small_tokenizer, tmp_path
):
    directory = tmp_path / "tok"
    small_tokenizer.save(directory)
    tokens = small_tokenizer.get_vocabulary()
    tokens[0], tokens[1] = tokens[1], tokens[0]
    (directory / "vocabulary.txt").write_text("".join(t + "\n" for t in tokens))
    with pytest.raises(ValueError, match="reserved tokens"):
        load_tokenizer(directory)


def save_as_format_version_1(tokenizer, directory):
    """Writes `tokenizer`'s learned tokens the way version 1 saved them."""
    learned = tokenizer.get_vocabulary()[len(RESERVED_TOKENS) :]
    tokens = [*FRAMING_TOKENS, *learned]
    (directory / "vocabulary.txt").write_text("".join(t + "\n" for t in tokens))
    config = {
        "format": "tf_transformer.SubwordTokenizer",
        "format_version": 1,
        "lowercase": True,
        "vocabulary_size": len(tokens),
        "reserved_tokens": list(FRAMING_TOKENS),
    }
    (directory / "tokenizer.json").write_text(json.dumps(config))
    return tokens


def test_a_tokenizer_of_format_version_1_loads_with_its_ids_unchanged(
    small_tokenizer, tmp_path
):
    directory = tmp_path / "old"
    directory.mkdir()
    tokens = save_as_format_version_1(small_tokenizer, directory)
    loaded = load_tokenizer(directory)
    assert loaded.get_vocabulary() == tokens
    assert loaded.reserved_tokens == FRAMING_TOKENS
    ids = loaded.tokenize("vingt et un").numpy().tolist()
    assert ids[0] == START_ID and ids[-1] == END_ID
    assert [tokens[i] for i in ids[1:-1]] == ["vingt", "et", "un"]
    assert loaded.detokenize(ids).numpy() == b"vingt et un"
    loaded.save(tmp_path / "again")  # saved again as what it is
    assert load_tokenizer(tmp_path / "again").get_vocabulary() == tokens


@pytest.mark.parametrize("token", ["[CLS]", "[SEP]", "[MASK]"])
def test_a_tokenizer_of_format_version_1_says_it_lacks_the_new_tokens(
    small_tokenizer, tmp_path, token
):
    save_as_format_version_1(small_tokenizer, tmp_path)
    with pytest.raises(ValueError, match=r"format_version 1.*train_tokenizer"):
        load_tokenizer(tmp_path).token_to_id(token)


def test_a_vocabulary_without_the_new_reserved_tokens_is_rejected():
    with pytest.raises(ValueError, match=r"must start with the reserved tokens"):
        SubwordTokenizer([*FRAMING_TOKENS, "vingt", "un"])


@pytest.mark.slow
def test_saved_model_carries_the_tokenizer_to_a_fresh_process(
    small_tokenizer, tmp_path
):
    module = tf.Module()
    module.tokenizer = small_tokenizer
    tf.saved_model.save(module, str(tmp_path / "model"))
    texts = ["Quatre-vingt-dix-neuf, cent", "", "😀 vingt"]
    ids = small_tokenizer.tokenize(texts)
    expected = {
        "ids": ids.to_list(),
        "text": [t.decode() for t in small_tokenizer.detokenize(ids).numpy()],
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # registers the WordPiece ops
        assert "tf_transformer" not in sys.modules
        loaded = tf.saved_model.load({str(tmp_path / "model")!r})
        ids = loaded.tokenizer.tokenize(tf.constant({texts!r}))
        text = loaded.tokenizer.detokenize(ids.to_tensor())
        print(json.dumps({{
            "ids": ids.to_list(),
            "text": [t.decode() for t in text.numpy()],
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


# ---------------------------------------------------------------- word level


def test_word_level_vectorizer_uses_the_reserved_ids():
    vectorizer = word_level_vectorizer(
        ["vingt et un", "vingt-deux", "Vingt, et un"], output_sequence_length=8
    )
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:4] == ["", "[UNK]", "[START]", "[END]"]
    assert vocabulary[4] == "vingt"  # most frequent first
    ids = vectorizer(tf.constant(["Vingt et UN", "trente"])).numpy()
    assert ids.shape == (2, 8)
    assert ids[0].tolist()[:5] == [
        START_ID,
        vocabulary.index("vingt"),
        vocabulary.index("et"),
        vocabulary.index("un"),
        END_ID,
    ]
    assert ids[1].tolist()[:3] == [START_ID, UNK_ID, END_ID]
    assert ids[0].tolist()[5:] == [PAD_ID] * 3


def test_word_level_vectorizer_is_deterministic_and_bounded():
    texts = ["b a", "a c", "c b a"]
    first = word_level_vectorizer(texts).get_vocabulary()
    assert first == word_level_vectorizer(texts[::-1]).get_vocabulary()
    assert first[4:] == ["a", "b", "c"]
    assert len(word_level_vectorizer(texts, max_tokens=5).get_vocabulary()) == 5


@pytest.mark.parametrize("bad", [3, "many", True])
def test_word_level_vectorizer_rejects_bad_max_tokens(bad):
    with pytest.raises(ValueError, match="`max_tokens`"):
        word_level_vectorizer(["a"], max_tokens=bad)
