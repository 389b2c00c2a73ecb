"""Handwritten digits as small images: the Vision Transformer's data set.

scikit-learn ships 1,797 real 8×8 grey-level images of the digits 0–9 (the
UCI "optical recognition of handwritten digits" test set) inside its wheel, so
loading them needs no network. This module turns them into float32 images in
[0, 1] with a channel axis and cuts them into deterministic, stratified,
disjoint train / validation / test splits.
"""

from __future__ import annotations

import functools

import numpy as np

DIGIT_SPLITS = ("train", "validation", "test")
DIGIT_IMAGE_SHAPE = (8, 8, 1)
NUM_DIGIT_CLASSES = 10
# The data set's pixels count dark cells in a 4×4 block of a 32×32 bitmap: 0–16.
_MAX_PIXEL = 16.0


@functools.lru_cache(maxsize=4)
def _split_indices(
    validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    labels = _digits()[1]
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in DIGIT_SPLITS}
    # Stratified: every class is cut in the same proportions.
    for digit in range(NUM_DIGIT_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == digit))
        num_test = int(round(len(members) * test_fraction))
        num_validation = int(round(len(members) * validation_fraction))
        parts["test"].append(members[:num_test])
        parts["validation"].append(members[num_test : num_test + num_validation])
        parts["train"].append(members[num_test + num_validation :])
    # Shuffled once, so that any prefix of a split mixes all classes.
    return {name: rng.permutation(np.concatenate(p)) for name, p in parts.items()}


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images / _MAX_PIXEL).astype("float32")[..., np.newaxis]
    labels = bunch.target.astype("int32")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a number in (0, 1). "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1). Received: {name}={value!r}")
    return float(value)


def load_digits(
    split: str = "train",
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits as images and labels, one split.

    The 1,797 images are split per class: `test_fraction` of each digit's
    images go to "test", `validation_fraction` to "validation", the rest to
    "train" (1,259 / 269 / 269 with the defaults). The same arguments
    always give the same split, and the three splits never share an image.

    Args:
        split: `"train"`, `"validation"` or `"test"`. Defaults to `"train"`.
        validation_fraction: share of each class in the validation split.
            Defaults to 0.15.
        test_fraction: share of each class in the test split. Defaults to 0.15.
        seed: seed of the split's shuffling. Defaults to 0.

    Returns:
        `(images, labels)`: float32 images of shape (count, 8, 8, 1) with
        pixels in [0, 1] (white background 0, ink 1), and int32 labels
        0–9 of shape (count,). Fresh writable NumPy arrays.

    Example:

    >>> images, labels = load_digits("test")
    >>> images.shape, labels.shape
    ((269, 8, 8, 1), (269,))
    """
    if split not in DIGIT_SPLITS:
        raise ValueError(
            f"`split` must be one of {list(DIGIT_SPLITS)}. Received: split={split!r}"
        )
    validation_fraction = _check_fraction("validation_fraction", validation_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            "`validation_fraction` + `test_fraction` must be < 1 to leave "
            f"training images. Received: validation_fraction={validation_fraction}, "
            f"test_fraction={test_fraction}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"`seed` must be an integer. Received: seed={seed!r} "
            f"(type {type(seed).__name__})"
        )
    indices = _split_indices(validation_fraction, test_fraction, int(seed))[split]
    images, labels = _digits()
    return images[indices].copy(), labels[indices].copy()
