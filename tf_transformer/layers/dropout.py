"""Dropout whose random mask is a hash of each element's position.

`Dropout` is a drop-in for `keras.layers.Dropout` (same arguments, same
behaviour: at training time each element is zeroed with probability `rate`
and the others are scaled by `1 / (1 - rate)`; at inference nothing
happens). Only the source of the random bits differs.

Keras draws the mask from TensorFlow's stateless Philox generator. Under XLA
on the CPU that generator is slow: in `bench/dropout_rng.py` Keras's dropout
of 2.7 million elements adds 36 to 63 ms to a forward and backward pass that
takes 5 ms without dropout. Here every element's bits are a counter-based
hash instead: the element's flat index, mixed with a key made from the
layer's seed, through a 32-bit multiply-xorshift finalizer (two
multiplications, three xorshifts). These are plain element-wise integer ops,
which XLA fuses into the surrounding loop: the same dropout adds under 1 ms
under `jit_compile=True`, and about what Keras's adds without XLA.

The seed comes from the layer's `keras.random.SeedGenerator`, which advances
at every call, exactly as in `keras.layers.Dropout`: each call draws a new
mask, and `keras.utils.set_random_seed` makes runs repeatable. The same seed
gives the same mask with and without XLA (integer arithmetic is exact).

These speeds were measured on the CPU only. On a GPU, Keras's
`jit_compile="auto"` compiles training steps with XLA (without a
distribution strategy), where these ops fuse as they do on the CPU; without
XLA each op has a GPU kernel that keeps the mask in GPU memory
(`tests/test_dropout.py` checks this in TensorFlow's kernel registry).

The bits are not a cryptographic stream, and need not be: each element is
kept with probability `1 - rate` (to 2**-32), and the masks of different
elements and of successive calls behave as independent draws
(`tests/test_dropout.py` measures both).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_transformer import validation

# Odd 32-bit constants of the finalizer, and the golden-ratio step that
# spreads consecutive indices over the 32-bit range before mixing.
_MULTIPLIERS = (np.uint32(0x7FEB352D), np.uint32(0x846CA68B))
_SHIFTS = (np.uint32(16), np.uint32(15), np.uint32(16))
_INDEX_STEP = np.uint32(0x9E3779B9)


def _xorshift(h, shift):
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, shift))


def _mix(h):
    """Scramble uint32 values: every input bit affects every output bit."""
    h = _xorshift(h, _SHIFTS[0]) * _MULTIPLIERS[0]
    h = _xorshift(h, _SHIFTS[1]) * _MULTIPLIERS[1]
    return _xorshift(h, _SHIFTS[2])


def _noise_shape(inputs, noise_shape):
    if noise_shape is None:
        return tf.shape(inputs)
    dynamic = tf.shape(inputs)
    return tf.stack(
        [dynamic[i] if size is None else size for i, size in enumerate(noise_shape)]
    )


def hash_dropout(inputs, rate, seed, noise_shape=None):
    """Apply dropout to `inputs` with a mask hashed from `seed`.

    Args:
        inputs: a float tensor.
        rate: the probability of dropping an element, a Python number in
            [0, 1].
        seed: an integer tensor of shape (2,) (what a
            `keras.random.SeedGenerator` returns from `next()`).
        noise_shape: the shape of the mask, broadcast to `inputs` (`None`
            entries take the input's size), as in `keras.layers.Dropout`.

    Returns:
        A tensor like `inputs`: elements dropped with probability `rate`, the
        others scaled by `1 / (1 - rate)`.
    """
    rate = validation.check_rate("rate", rate, allow_one=True)
    inputs = tf.convert_to_tensor(inputs)
    if not inputs.dtype.is_floating:
        raise TypeError(
            "`inputs` must be a float tensor. "
            f"Received: inputs of dtype {inputs.dtype.name}"
        )
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or tuple(seed.shape) != (2,):
        raise ValueError(
            "`seed` must be an integer tensor of shape (2,). Received: seed of "
            f"dtype {seed.dtype.name} and shape {tuple(seed.shape)}"
        )
    if noise_shape is not None and inputs.shape.rank not in (None, len(noise_shape)):
        raise ValueError(
            f"`noise_shape` must have one entry per axis of `inputs` (rank "
            f"{inputs.shape.rank}). Received: noise_shape={tuple(noise_shape)}"
        )
    if rate == 1.0:
        return tf.zeros_like(inputs)
    if rate == 0.0:
        return inputs
    seed = tf.cast(seed, tf.uint32)
    key = _mix(tf.bitwise.bitwise_xor(seed[0], _mix(seed[1])))
    shape = _noise_shape(inputs, noise_shape)
    # An int64 range: TensorFlow's GPU Range kernel for int32 writes to host
    # memory. The uint32 values are the same either way.
    index = tf.cast(tf.range(tf.reduce_prod(shape), dtype=tf.int64), tf.uint32)
    bits = tf.reshape(_mix(index * _INDEX_STEP + key), shape)
    # Keep when the 32 bits reach rate * 2**32: probability 1 - rate.
    keep = bits >= np.uint32(min(round(rate * 2**32), 2**32 - 1))
    scaled = inputs * tf.cast(1.0 / (1.0 - rate), inputs.dtype)
    return tf.where(keep, scaled, tf.zeros_like(scaled))


@keras.saving.register_keras_serializable(package="tf_transformer")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a hashed mask (see the module docstring).

    Same arguments (`rate`, `noise_shape`, `seed`), same config, same
    behaviour; much cheaper under XLA.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(
            validation.check_rate("rate", rate, allow_one=True),
            noise_shape=noise_shape,
            seed=seed,
            **kwargs,
        )

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return hash_dropout(
                inputs,
                self.rate,
                self.seed_generator.next(),
                noise_shape=self.noise_shape,
            )
        return inputs
