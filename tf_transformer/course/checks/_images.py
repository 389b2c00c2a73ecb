"""Shared by the image exercises (`extract_patches`, lesson 12; `tile_digits`,
lesson 13): their input tables, inputs whose every pixel differs, and the
loop that compares the learner's pictures with the reference's."""

import numpy as np

from tf_transformer.course.checks._core import Failure, close, to_numpy

# extract_patches: (batch, height, width, channels), patch_size — square and
# oblong images, one and several channels, patches of 1 pixel up to the whole
# image.
PATCH_CASES = [
    ((2, 4, 4, 1), 2),
    ((1, 4, 6, 2), 2),
    ((2, 6, 6, 3), 3),
    ((1, 8, 8, 1), 4),
    ((2, 4, 4, 2), 1),
    ((1, 4, 4, 1), 4),
]

# tile_digits: (num_digits, height, width, channels), max_digits — the
# lesson's 8×8 digits, then other sizes and channel counts so that nothing
# may be hard-coded.
DIGIT_CASES = [
    ((1, 8, 8, 1), 3),
    ((2, 8, 8, 1), 3),
    ((3, 8, 8, 1), 3),
    ((2, 5, 4, 2), 4),
    ((4, 3, 6, 1), 4),
    ((1, 2, 2, 3), 1),
]


def distinct_pixels(shape):
    """Every pixel and channel holds a different value in (0, 1], so that an
    order mistake shows."""
    count = int(np.prod(shape))
    return (np.arange(count, dtype="float32").reshape(shape) + 1) / count


def compare_cases(ctx, cases, run, shape_hint, likely_mistake, default_hint):
    """For each `(shape, size)` of `cases`: `run(pixels, size)` gives
    `(what, actual, expected)`; a wrong shape fails with `shape_hint(shape,
    pixels, size)`, wrong values with `likely_mistake(actual, pixels, size)`
    or `default_hint`. Returns the learner's arrays."""
    results = []
    for shape, size in cases:
        pixels = distinct_pixels(shape)
        what, actual, expected = run(pixels, size)
        actual, expected = to_numpy(actual, what), np.asarray(expected)
        if actual.shape != expected.shape:
            raise Failure(
                f"{what} has shape {actual.shape}, expected {expected.shape} — "
                + shape_hint(actual.shape, pixels, size)
            )
        if not close(actual, expected, atol=1e-6):
            hint = likely_mistake(actual, pixels, size) or default_hint
            raise Failure(f"{what}: wrong values — {hint}")
        results.append((what, actual))
    return results
