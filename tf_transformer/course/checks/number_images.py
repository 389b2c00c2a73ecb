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
    close,
    exercise,
    expect_dtype,
    to_numpy,
)

# (num_digits, height, width, channels), max_digits: the lesson's 8×8 digits,
# then other sizes and channel counts so that nothing may be hard-coded.
CASES = [
    ((1, 8, 8, 1), 3),
    ((2, 8, 8, 1), 3),
    ((3, 8, 8, 1), 3),
    ((2, 5, 4, 2), 4),
    ((4, 3, 6, 1), 4),
    ((1, 2, 2, 3), 1),
]


def _digits(shape):
    """Every pixel of every digit holds a different value in (0, 1]."""
    count = int(np.prod(shape))
    return (np.arange(count, dtype="float32").reshape(shape) + 1) / count


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


@exercise("tile_digits", lesson=13, points=1, kind="function")
def check_tile_digits(ctx, student, reference):
    for shape, max_digits in CASES:
        digits = _digits(shape)
        what = f"tile_digits(digit images of shape {shape}, max_digits={max_digits})"
        result = ctx.call(student, digits.copy(), max_digits, what=what)
        actual = to_numpy(result, what)
        expected = reference(digits.copy(), max_digits)
        if actual.shape != expected.shape:
            raise Failure(
                f"{what} has shape {actual.shape}, expected {expected.shape} — "
                + _shape_hint(actual.shape, digits, max_digits)
            )
        if not close(actual, expected, atol=1e-6):
            hint = _likely_mistake(actual, digits, max_digits) or (
                "slot max_digits - num_digits + i should hold digit_images[i], "
                "and the slots on the left should be 0"
            )
            raise Failure(f"{what}: wrong pixels — {hint}")
        expect_dtype(
            actual, "float32", what, "return float32 pixels (np.zeros(..., 'float32'))"
        )
    ctx.ok(
        f"{len(CASES)} cases: digits side by side, right-aligned, empty slots 0, "
        "float32"
    )

    digits = _digits((2, 8, 8, 1))
    kept = digits.copy()
    ctx.call(student, digits, 3, what="tile_digits(two digits, 3)")
    if not np.array_equal(digits, kept):
        raise Failure(
            "tile_digits changed the digit images it was given: write into a new array"
        )
    ctx.ok("leaves its input unchanged")
