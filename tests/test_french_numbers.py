"""Reading French numbers back: the texts the corpus writes, and no others."""

import random

import pytest

from tf_transformer.data import (
    french_number_value,
    is_french_number,
    number_in_words,
)
from tf_transformer.data.corpora import NUMBERS_MAX, sample_numbers


def test_every_number_up_to_twenty_thousand_reads_back_as_itself():
    wrong = [
        value
        for value in range(20_001)
        if french_number_value(number_in_words(value, "fr")) != value
    ]
    assert wrong == []


def test_numbers_across_the_whole_range_read_back_as_themselves():
    rng = random.Random(0)
    values = [rng.randrange(NUMBERS_MAX + 1) for _ in range(5_000)]
    values += sample_numbers("test") + [NUMBERS_MAX, 1_000_000, 2_080_000, 200_080]
    wrong = [v for v in values if french_number_value(number_in_words(v, "fr")) != v]
    assert wrong == []


def test_bytes_from_a_string_tensor_are_read_like_str():
    assert french_number_value(b"soixante et onze") == 71


@pytest.mark.parametrize(
    "text",
    [
        "quatre-vingt",  # 80 takes its "s" when nothing follows
        "deux cent",  # 200 likewise: "deux cents"
        "deux cents un",  # and loses it when something follows
        "un mille",  # 1000 is "mille"
        "deux million",  # plural "millions"
        "soixante et douze",  # 72 is "soixante-douze"
        "vingt-et-un",  # 21 is "vingt et un"
        "quatre vingts",  # the hyphen belongs there
        "mille mille",
        "cent cent",
        "onze douze",
        "zéro un",
        "dix millions",  # past NUMBERS_MAX
        "Cent",  # the corpus and `normalize` write lowercase
        "mille  un",
        "",
        "soixante [UNK]",
    ],
)
def test_texts_the_corpus_never_writes_are_not_numbers(text):
    assert french_number_value(text) is None
    assert not is_french_number(text)


def test_a_non_string_text_is_a_type_error_naming_text():
    with pytest.raises(TypeError, match="`text` must be a str. Received: text=71"):
        french_number_value(71)
