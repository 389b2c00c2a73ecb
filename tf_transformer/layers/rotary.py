"""Rotary position embeddings (RoPE): positions as rotations of q and k."""

import numbers

import keras
import tensorflow as tf

from tf_transformer import validation


def apply_rotary_embedding(x, start_index=0, max_wavelength=10000):
    """Rotate each pair of features of `x` by an angle proportional to its position.

    Feature i < head_dim/2 is paired with feature i + head_dim/2 (the
    "half-split" convention of GPT-NeoX, Llama and KerasHub) and the pair
    (a, b) at position p is rotated by the angle p · θ_i:

        (a, b) → (a·cos(pθ_i) − b·sin(pθ_i),  b·cos(pθ_i) + a·sin(pθ_i)),
        θ_i = max_wavelength^(−2i / head_dim).

    A rotation preserves lengths, and the dot product of a query rotated to
    position m with a key rotated to position n depends only on m − n: the
    attention scores see relative positions, with no position table.

    Args:
        x: float (batch, length, ..., head_dim), head_dim even; the row at
            sequence index t has position `start_index + t`. Any axes between
            the length and the features (e.g. heads) share the rotation.
        start_index: position of the first row, an int or a scalar integer
            tensor (decoding with a cache). Defaults to 0.
        max_wavelength: the base of the wavelengths. Defaults to 10000.

    Returns:
        A tensor of the shape and dtype of `x`; the rotation is computed in
        float32.

    Example:

    >>> q = tf.random.normal((1, 6, 2, 8))  # (batch, length, heads, head_dim)
    >>> apply_rotary_embedding(q, start_index=4).shape
    TensorShape([1, 6, 2, 8])
    """
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating or x.shape.rank is None or x.shape.rank < 3:
        raise TypeError(
            "`x` must be a float tensor (batch, length, ..., head_dim). "
            f"Received: x with dtype {x.dtype.name} and shape {x.shape}"
        )
    head_dim = x.shape[-1]
    if head_dim is None or head_dim % 2:
        raise ValueError(
            "The last axis of `x` (head_dim) must be known and even: its features "
            f"are rotated in pairs. Received: x with shape {x.shape}"
        )
    if isinstance(start_index, bool) or not (
        isinstance(start_index, numbers.Integral)
        or (tf.is_tensor(start_index) and start_index.dtype.is_integer)
    ):
        raise TypeError(
            "`start_index` must be an int or a scalar integer tensor. "
            f"Received: start_index={start_index!r}"
        )
    # θ_i = max_wavelength^(−2i/d): pair 0 turns one radian per position, the
    # last pair so slowly that its wavelength approaches max_wavelength.
    exponents = tf.range(0, head_dim, 2, dtype=tf.float32) / head_dim  # 2i / d
    inverse_wavelengths = tf.pow(float(max_wavelength), -exponents)  # θ_i
    positions = tf.range(tf.shape(x)[1]) + tf.cast(start_index, tf.int32)
    positions = tf.cast(positions, tf.float32)
    angles = positions[:, tf.newaxis] * inverse_wavelengths  # (length, d/2)
    angles = tf.concat([angles, angles], axis=-1)  # (length, d): pair i, i + d/2
    # (1, length, 1, ..., 1, d): broadcast over the batch and the heads.
    angles = tf.reshape(angles, [1, -1] + [1] * (x.shape.rank - 3) + [head_dim])
    x32 = tf.cast(x, tf.float32)
    first, second = tf.split(x32, 2, axis=-1)
    rotated_half = tf.concat([-second, first], axis=-1)  # (−b, a)
    rotated = x32 * tf.cos(angles) + rotated_half * tf.sin(angles)
    return tf.cast(rotated, x.dtype)


@keras.saving.register_keras_serializable(package="tf_transformer")
class RotaryEmbedding(keras.layers.Layer):
    """Applies `apply_rotary_embedding`; it has no weights.

    Args:
        max_wavelength: the base of the wavelengths. Defaults to 10000.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: float (batch, length, ..., head_dim), head_dim even.
        start_index: position of the first row (int or scalar tensor).
            Defaults to 0.

    Example:

    >>> RotaryEmbedding()(tf.random.normal((2, 5, 4, 8)), start_index=3).shape
    TensorShape([2, 5, 4, 8])

    References:
        Su et al., "RoFormer: Enhanced Transformer with Rotary Position
        Embedding", arXiv:2104.09864.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = validation.check_positive_float(
            "max_wavelength", max_wavelength
        )
        self.supports_masking = True

    def call(self, inputs, start_index=0):
        outputs = apply_rotary_embedding(inputs, start_index, self.max_wavelength)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config
