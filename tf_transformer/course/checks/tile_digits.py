"""Check of `tile_digits` (lesson 13).

Contract (the docstring of `tf_transformer.data.captions.tile_digits`):
`tile_digits(digit_images, max_digits)` takes (num_digits, height, width,
channels) images, most significant digit first, 1 <= num_digits <=
max_digits, and returns a float32 array (height, width · max_digits,
channels) in which slot `max_digits - num_digits + i` (slot k = columns
k · width to (k + 1) · width) holds `digit_images[i]` and the slots on the
left are 0. The units digit is always in the last slot.
"""

import numpy as np

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    exercise,
    expect_dtype,
)
from tf_transformer.course.checks._images import (
    DIGIT_CASES,
    compare_cases,
    distinct_pixels,
)


def _strip(digits, max_digits, slots):
    """Digits placed in the given slots of a zero strip."""
    _, height, width, channels = digits.shape
    strip = np.zeros((height, width * max_digits, channels), "float32")
    for digit, slot in zip(digits, slots, strict=True):
        strip[:, slot * width : (slot + 1) * width] = digit
    return strip


def _likely_mistake(actual, digits, max_digits):
    count = len(digits)
    first = max_digits - count
    right = list(range(first, max_digits))
    candidates = [
        (
            _strip(digits, max_digits, range(count)),
            "the digits sit in the first slots: right-align them, so that the "
            "units digit is always in the last slot (slot max_digits - num_digits "
            "+ i holds digit i)",
        ),
        (
            _strip(digits[::-1], max_digits, right),
            "the digits are in reverse order: digit_images[0] is the most "
            "significant digit and goes furthest left",
        ),
        (
            _strip(np.transpose(digits, (0, 2, 1, 3)), max_digits, right),
            "each digit is transposed (rows and columns swapped): copy the "
            "digit images as they are",
        ),
    ]
    if count < max_digits:
        filled = _strip(digits, max_digits, right)
        filled[:, : first * digits.shape[2]] = 1.0
        candidates.append(
            (filled, "the empty slots are not 0: leave them blank (background 0)")
        )
    for candidate, hint in candidates:
        if candidate.shape == actual.shape and close(actual, candidate, atol=1e-6):
            return hint
    return None


def _shape_hint(actual_shape, digits, max_digits):
    count, height, width, channels = digits.shape
    if actual_shape == (height * max_digits, width, channels):
        return "the digits are stacked vertically: place them side by side (axis 1)"
    if actual_shape == (height, width * count, channels) and count != max_digits:
        return (
            "the strip holds only the digits: it must have max_digits slots, "
            "the empty ones on the left"
        )
    if actual_shape == (height, width * max_digits):
        return "the channel axis is missing: keep (height, width, channels)"
    if len(actual_shape) == 3 and actual_shape[0] == height:
        return (
            f"the strip must be width · max_digits = {width} · {max_digits} = "
            f"{width * max_digits} pixels wide — use the digits' own size and "
            "max_digits, nothing hard-coded"
        )
    return "expected (height, width · max_digits, channels)"


@exercise(
    "tile_digits",
    lesson=13,
    points=0,
    kind="function",
    reference="tile_digits",
)
def check_tile_digits(ctx, student, reference):
    def run(digits, max_digits):
        what = (
            f"tile_digits(digit images of shape {digits.shape}, "
            f"max_digits={max_digits})"
        )
        result = ctx.call(student, digits.copy(), max_digits, what=what)
        return what, result, reference(digits.copy(), max_digits)

    for what, actual in compare_cases(
        ctx,
        DIGIT_CASES,
        run,
        _shape_hint,
        _likely_mistake,
        "slot max_digits - num_digits + i should hold digit_images[i], and the "
        "slots on the left should be 0",
    ):
        expect_dtype(
            actual, "float32", what, "return float32 pixels (np.zeros(..., 'float32'))"
        )
    ctx.ok(
        f"{len(DIGIT_CASES)} cases: digits side by side, right-aligned, empty slots 0, "
        "float32"
    )

    digits = distinct_pixels((2, 8, 8, 1))
    kept = digits.copy()
    ctx.call(student, digits, 3, what="tile_digits(two digits, 3)")
    if not np.array_equal(digits, kept):
        raise Failure(
            "tile_digits changed the digit images it was given: write into a new array"
        )
    ctx.ok("leaves its input unchanged")


# ------------------------------------------------- catalogue of typical bugs


def _tile(slots="right", order=1, fill=0.0, transpose=False, dtype="float32"):
    """tile_digits with one choice made differently from the contract."""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")[::order]
        if transpose:
            digits = np.transpose(digits, (0, 2, 1, 3))
        count, height, width, channels = digits.shape
        strip = np.full((height, width * max_digits, channels), fill, dtype)
        first = max_digits - count if slots == "right" else 0
        strip[:, first * width :] = 0.0
        for i, digit in enumerate(digits):
            strip[:, (first + i) * width : (first + i + 1) * width] = digit
        return strip

    return tile_digits


@bug("tile_digits", "right-align them")
def tile_left_aligned():
    """digits in the first slots (left-aligned)"""
    return _tile(slots="left")


@bug("tile_digits", "reverse order")
def tile_reversed():
    """units digit first"""
    return _tile(order=-1)


@bug("tile_digits", "transposed")
def tile_transposed():
    """each digit image transposed"""
    return _tile(transpose=True)


@bug("tile_digits", "empty slots are not 0")
def tile_filled_with_ink():
    """empty slots filled with 1 (ink) instead of 0"""
    return _tile(fill=1.0)


@bug("tile_digits", "return float32")
def tile_float64():
    """the strip made with np.zeros(...) in float64"""
    return _tile(dtype="float64")


@bug("tile_digits", "stacked vertically")
def tile_stacked_vertically():
    """digits stacked along the height"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        count, height, width, channels = digits.shape
        strip = np.zeros((height * max_digits, width, channels), "float32")
        first = max_digits - count
        for i, digit in enumerate(digits):
            strip[(first + i) * height : (first + i + 1) * height] = digit
        return strip

    return tile_digits


@bug("tile_digits", "holds only the digits")
def tile_without_empty_slots():
    """the digits concatenated, without the empty slots"""
    return lambda digit_images, max_digits=3: np.concatenate(
        list(np.asarray(digit_images, "float32")), axis=1
    )


@bug("tile_digits", "nothing hard-coded")
def tile_three_slots_always():
    """always three slots of 8 pixels (the lesson's sizes hard-coded)"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        strip = np.zeros((digits.shape[1], 24, digits.shape[3]), "float32")
        for i, digit in enumerate(digits):
            slot = 3 - len(digits) + i
            strip[:, slot * 8 : slot * 8 + digits.shape[2]] = digit
        return strip

    return tile_digits


@bug("tile_digits", "channel axis is missing")
def tile_without_channels():
    """the channel axis dropped (2-D strip)"""
    return lambda digit_images, max_digits=3: _tile()(digit_images, max_digits)[:, :, 0]


@bug("tile_digits", "changed the digit images")
def tile_in_place():
    """writes the strip into the caller's array"""

    def tile_digits(digit_images, max_digits=3):
        strip = _tile()(digit_images, max_digits)
        digit_images[...] = 0.0
        return strip

    return tile_digits


@alternative("tile_digits")
def tile_by_concatenation():
    """blank slots and digits concatenated along the width"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        blank = np.zeros_like(digits[0])
        slots = [blank] * (max_digits - len(digits)) + list(digits)
        return np.concatenate(slots, axis=1)

    return tile_digits
