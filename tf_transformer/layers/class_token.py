"""The class token: a learned vector prepended to a sequence."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_transformer")
class ClassToken(keras.layers.Layer):
    """Prepend one learned d_model vector, the same for every example.

    BERT's `[CLS]` and the Vision Transformer's class token: the token has no
    content of its own, so what self-attention gathers into it is a summary of
    the whole sequence, and a classifier reads the encoder's output at
    position 0.

    Args:
        initializer: initializer of the token. Defaults to `"zeros"` (the
            position embedding added next tells it apart).
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model).

    Returns:
        (batch, 1 + seq_len, d_model). A Keras mask on `inputs` is extended
        by True for the class token.

    Example:

    >>> ClassToken()(tf.ones((2, 4, 8))).shape
    TensorShape([2, 5, 8])

    References:
        Dosovitskiy et al., arXiv:2010.11929, section 3.1.
    """

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "`inputs` must be (batch, seq_len, d_model) with a known d_model. "
                f"Received: inputs with shape {tuple(input_shape)}"
            )
        self.token = self.add_weight(
            name="token", shape=(input_shape[-1],), initializer=self.initializer
        )
        self.built = True

    def call(self, inputs):
        batch = tf.shape(inputs)[0]
        token = tf.cast(self.token, inputs.dtype)[tf.newaxis, tf.newaxis, :]
        token = tf.tile(token, (batch, 1, 1))  # (batch, 1, d_model)
        return tf.concat([token, inputs], axis=1)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        token_mask = keras.ops.ones_like(mask[:, :1])
        return keras.ops.concatenate([token_mask, mask], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
