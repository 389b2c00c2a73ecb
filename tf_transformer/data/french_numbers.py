"""Reading French numbers in words back: which texts are numbers at all.

A model that writes French numbers can be wrong in two ways: it writes the
wrong number ("soixante et douze" for 71), or it writes something that is no
number ("soixante et douze", "deux cent" without its "s", "quatre-vingt"
alone, "mille mille"). Lesson 11 counts the second kind when it samples
with a high temperature. A valid French number is a text the corpus' own
writer (`number_in_words(value, "fr")`, num2words) produces for some value
in `[0, NUMBERS_MAX]`: the French targets of the whole range the corpus
covers. Listing those ten million texts is slow; instead `french_number_value`
reads a text into the value it could stand for and writes that value back:
the text is valid exactly when the two agree.
"""

from __future__ import annotations

from tf_transformer.data.corpora import NUMBERS_MAX, number_in_words

_UNITS = {
    "zéro": 0, "un": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
    "six": 6, "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "onze": 11,
    "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
    "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40,
    "cinquante": 50, "soixante": 60,
}  # fmt: skip
_MULTIPLIERS = {"cent": 100, "cents": 100, "mille": 1_000}
_MILLIONS = {"million": 1_000_000, "millions": 1_000_000}


def _read(words: list[str]) -> int | None:
    """A value the words could stand for, read leniently; None if no word fits.

    Lenient on purpose: `french_number_value` writes the value back and
    compares, so a misspelt text that reads as some value is still rejected.
    """
    total, current, previous = 0, 0, None
    for word in words:
        if word == "et":
            pass  # "vingt et un": the "and" adds nothing
        elif word in ("vingt", "vingts") and previous == "quatre":
            current += 80 - 4  # quatre-vingt(s): four twenties, not 4 + 20
        elif word in _UNITS:
            current += _UNITS[word]
        elif word in _MULTIPLIERS:
            # "cent" multiplies what stands before it within the thousand
            # ("deux cents"); "mille" closes the thousands.
            if word.startswith("cent"):
                current = (current or 1) * 100
            else:
                total += (current or 1) * 1_000
                current = 0
        elif word in _MILLIONS:
            total += (current or 1) * 1_000_000
            current = 0
        else:
            return None
        previous = word
    return total + current


def french_number_value(text: str) -> int | None:
    """The number a French text writes, or None if it writes none.

    Valid means: the corpus writes exactly this text for the value,
    `number_in_words(value, "fr") == text` with `value` in
    `[0, NUMBERS_MAX]` (lowercase, words separated by single spaces or
    hyphens, as `normalize` and the tokenizer's `detokenize` return them).

    Args:
        text: a `str` (or UTF-8 `bytes`, as a `tf.string` tensor's numpy
            values are).

    Returns:
        An int, or None.

    Example:

    >>> french_number_value("soixante et onze")
    71
    >>> french_number_value("soixante et douze") is None  # 72: soixante-douze
    True
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise TypeError(
            f"`text` must be a str. Received: text={text!r} "
            f"(type {type(text).__name__})"
        )
    value = _read(text.replace("-", " ").split(" "))
    if value is None or value > NUMBERS_MAX:
        return None
    return value if number_in_words(value, "fr") == text else None


def is_french_number(text: str) -> bool:
    """Whether `text` is a French number as the corpus writes it.

    See `french_number_value`.

    Example:

    >>> is_french_number("quatre-vingts"), is_french_number("quatre-vingt")
    (True, False)
    """
    return french_number_value(text) is not None


__all__ = ["french_number_value", "is_french_number"]
