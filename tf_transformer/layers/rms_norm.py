"""Root-mean-square normalization (RMSNorm): LayerNorm without the mean."""

import keras
import tensorflow as tf

from tf_transformer import validation


def rms_norm(x, scale, epsilon=1e-6):
    """RMSNorm(x) = x / √(mean(x²) + ε) · scale, over the last axis.

    LayerNorm subtracts the mean, divides by the standard deviation, then
    scales and shifts. RMSNorm keeps only the division, by the root mean
    square: no mean is subtracted and there is no bias. It is cheaper and
    trains as well, which is why Llama, Gemma, Mistral and Qwen use it.

    Args:
        x: float tensor (..., features).
        scale: float (features,), the learned gain.
        epsilon: small number added under the square root. Defaults to 1e-6.

    Returns:
        A tensor of the shape and dtype of `x`. The statistics are computed in
        float32, so float16 or bfloat16 inputs do not overflow when squared.

    Example:

    >>> rms_norm(tf.constant([[3.0, 4.0]]), tf.ones(2)).numpy().round(3)
    array([[0.849, 1.131]], dtype=float32)
    """
    x, scale = tf.convert_to_tensor(x), tf.convert_to_tensor(scale)
    if not x.dtype.is_floating:
        raise TypeError(
            f"`x` must be a float tensor. Received: x with dtype {x.dtype.name}"
        )
    if scale.shape[-1] != x.shape[-1]:
        raise ValueError(
            "`scale` must have one entry per feature (the last axis of x). "
            f"Received: scale with shape {tuple(scale.shape)}, "
            f"x with shape {tuple(x.shape)}"
        )
    x32 = tf.cast(x, tf.float32)
    mean_square = tf.reduce_mean(tf.square(x32), axis=-1, keepdims=True)
    normalized = x32 * tf.math.rsqrt(mean_square + epsilon)
    return tf.cast(normalized * tf.cast(scale, tf.float32), x.dtype)


@keras.saving.register_keras_serializable(package="tf_transformer")
class RMSNorm(keras.layers.Layer):
    """Root-mean-square normalization with a learned `scale` (no bias).

    Applies `rms_norm` over the last axis; the statistics are computed in
    float32 and the result is cast to the layer's compute dtype.

    Args:
        epsilon: small number added under the square root. Defaults to 1e-6.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Example:

    >>> RMSNorm()(tf.random.normal((2, 5, 16))).shape
    TensorShape([2, 5, 16])

    References:
        Zhang and Sennrich, "Root Mean Square Layer Normalization",
        arXiv:1910.07467.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = validation.check_positive_float("epsilon", epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        features = tuple(input_shape)[-1]
        if features is None:
            raise ValueError(
                "The last axis of the input to RMSNorm must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.scale = self.add_weight(
            name="scale", shape=(features,), initializer="ones"
        )
        self.built = True

    def call(self, inputs):
        outputs = rms_norm(inputs, self.scale, self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
