"""Learned position embeddings for sequences of vectors."""

import keras
import tensorflow as tf

from tf_transformer import validation


@keras.saving.register_keras_serializable(package="tf_transformer")
class LearnedPositionEmbedding(keras.layers.Layer):
    """Add a trained vector per position to a sequence of vectors.

    `PositionalEmbedding` embeds token ids; image patches are vectors already,
    so the Vision Transformer only adds positions: row t of a trained
    (max_length, d_model) table goes to position t. Nothing tells the table
    that patch 5 sits next to patch 6; training discovers the image's 2-D
    layout (the lesson plots the rows' cosine similarities).

    Args:
        max_length: the longest sequence the layer accepts.
        initializer: initializer of the table. Defaults to a normal
            distribution with standard deviation 0.02.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model), seq_len ≤ max_length.

    Returns:
        `inputs` + table[:seq_len], same shape. Keras masks pass through.

    Example:

    >>> LearnedPositionEmbedding(max_length=10)(tf.zeros((2, 4, 8))).shape
    TensorShape([2, 4, 8])
    """

    def __init__(self, max_length, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = validation.check_int("max_length", max_length)
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer,
        )
        self.built = True

    def _check_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                "`inputs` must be (batch, seq_len, d_model) with a known d_model. "
                f"Received: inputs with shape {shape}"
            )
        if shape[1] is not None and shape[1] > self.max_length:
            raise ValueError(
                f"Sequences are longer than `max_length`={self.max_length}. "
                f"Received: inputs with shape {shape}"
            )

    def call(self, inputs):
        self._check_shape(inputs.shape)
        length = tf.shape(inputs)[1]
        positions = self.position_embeddings[:length]  # (seq_len, d_model)
        return inputs + tf.cast(positions, inputs.dtype)  # broadcast over batch

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
