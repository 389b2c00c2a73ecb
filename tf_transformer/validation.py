"""Argument checks shared by every layer: fail fast, name the argument and value.

Public so that any code (the lessons' exercise cells, your own layers) can
give the same clear errors: `validation.check_int("num_heads", num_heads)`.
Each check returns the (normalised) value it accepts, or raises a
`TypeError`/`ValueError` whose message names the argument and the value
received.

TensorFlow reports a bad size or a bad shape deep inside a graph, with a message
about an op the user never wrote. These helpers run in constructors and at the
top of `call`, on Python values and static shapes only, so they cost nothing in
a compiled graph and never depend on data.
"""

import numbers

import keras
import numpy as np
import tensorflow as tf


def check_int(name, value, minimum=1):
    """Return `value` if it is an int >= `minimum`, else raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def check_optional_int(name, value, minimum=1):
    """`None`, or an int >= `minimum` (see `check_int`)."""
    return None if value is None else check_int(name, value, minimum)


def check_rate(name, value, allow_one=False):
    """Return a dropout-like rate in [0, 1), or [0, 1] with `allow_one`."""
    interval = "[0, 1]" if allow_one else "[0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number in {interval}. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if not (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in {interval}. Received: {name}={value!r}")
    return float(value)


def check_positive_float(name, value):
    """Return `value` as a float if it is a real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a positive number. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if not value > 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")
    return float(value)


def check_bool(name, value):
    """Return `value` if it is exactly True or False (not 0/1)."""
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be True or False. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    return value


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}"
        )
    return value


def check_activation(name, value):
    """Resolve a Keras activation, raising a ValueError that names `name`."""
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras activation name or a callable. "
            f"Received: {name}={value!r}"
        ) from error


def check_divisible(name, value, divisor_name, divisor):
    """Raise unless `value` is a multiple of `divisor`."""
    if value % divisor:
        raise ValueError(
            f"`{name}` must be divisible by `{divisor_name}`. "
            f"Received: {name}={value}, {divisor_name}={divisor}"
        )


def static_shape(x):
    """The static shape of a tensor or of a shape, as a tuple (None where unknown)."""
    if isinstance(x, (tuple, list)):
        return tuple(x)
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    return tuple(shape)


def check_rank(name, x, ranks):
    """Raise if the static rank of `x` is known and not in `ranks`."""
    shape = static_shape(x)
    if shape is not None and len(shape) not in ranks:
        expected = " or ".join(str(r) for r in sorted(ranks))
        raise ValueError(
            f"`{name}` must have rank {expected}. "
            f"Received: {name} with shape {shape} (rank {len(shape)})"
        )
    return shape


def check_last_dim(name, x, expected, expected_name):
    """Raise if the static last dimension of `x` is known and not `expected`."""
    shape = static_shape(x)
    if shape and shape[-1] is not None and shape[-1] != expected:
        raise ValueError(
            f"The last dimension of `{name}` must equal {expected_name}={expected}. "
            f"Received: {name} with shape {shape}"
        )


def check_mask_dtype(name, mask):
    """Masks are boolean (True = may attend); ints are read as 1 = attend."""
    dtype = getattr(mask, "dtype", None)
    if dtype is None:
        return
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype == "bool" or "int" in dtype:
        return
    raise TypeError(
        f"`{name}` must be a boolean tensor where True means 'may attend'. "
        f"Received: {name} with dtype {dtype}. If your mask uses 1 for *blocked* "
        "positions (the convention of older TensorFlow tutorials), pass "
        "`mask == 0` instead."
    )


def check_integer_ids(name, ids):
    """Raise unless `ids` (when it has a dtype) holds integers."""
    dtype = getattr(ids, "dtype", None)
    if dtype is None:
        return
    dtype = keras.backend.standardize_dtype(dtype)
    if "int" not in dtype:
        raise TypeError(
            f"`{name}` must hold integer token ids. Received: {name} with dtype {dtype}"
        )


def check_seed(name, seed, dtype="int64"):
    """A random seed: None, an int, or a shape-(2,) integer tensor/array.

    Returns None, or the seed as a shape-(2,) tensor of `dtype` (an int `s`
    becomes `[s, 0]`), ready for stateless random ops.
    """
    if seed is None:
        return None
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], dtype)
    if tf.is_tensor(seed) or isinstance(seed, (np.ndarray, list, tuple)):
        tensor = tf.convert_to_tensor(seed)
        if tensor.dtype.is_integer and tensor.shape.as_list() == [2]:
            return tf.cast(tensor, dtype)
    raise ValueError(
        f"`{name}` must be None, an int, or a shape-(2,) integer tensor. "
        f"Received: {name}={seed!r}"
    )
