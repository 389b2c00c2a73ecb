"""Positional encoding and the token + position embedding layer."""

import math

import keras
import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.initializers import clone_initializer

POSITION_KINDS = ("sinusoidal", "learned")


def positional_encoding(length, depth):
    """The sinusoidal position table of the paper (section 3.5).

    PE[pos, 2i] = sin(pos / 10000^(2i / depth)) and
    PE[pos, 2i + 1] = cos(pos / 10000^(2i / depth)): even channels hold sines,
    odd channels hold cosines of the same frequency, interleaved.

    Args:
        length: number of positions (rows).
        depth: size of each position vector (columns), usually `d_model`.

    Returns:
        A float32 tensor of shape (length, depth).

    Example:

    >>> positional_encoding(50, 16).shape
    TensorShape([50, 16])
    """
    validation.check_int("length", length)
    validation.check_int("depth", depth)
    positions = np.arange(length)[:, np.newaxis]  # (length, 1)
    channels = np.arange(depth)[np.newaxis, :]  # (1, depth)
    # Channels 2i and 2i + 1 share the frequency 1 / 10000^(2i / depth).
    frequencies = 1.0 / np.power(10000.0, (2 * (channels // 2)) / depth)
    angles = positions * frequencies  # (length, depth)
    table = np.where(channels % 2 == 0, np.sin(angles), np.cos(angles))
    return tf.constant(table, dtype=tf.float32)


@keras.saving.register_keras_serializable(package="tf_transformer")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding scaled by √d_model plus a position signal.

    The paper multiplies the embedding weights by √d_model (section 3.4) so
    that token vectors and position vectors have comparable size, then adds
    the positional encoding. Positions are the fixed sinusoidal table
    (`position="sinusoidal"`, the paper's choice) or a trained table
    (`position="learned"`, as in BERT and GPT).

    Args:
        vocab_size: number of token ids.
        d_model: size of the embedding vectors.
        max_length: the longest sequence the layer accepts. Defaults to 2048.
        position: `"sinusoidal"` or `"learned"`. Defaults to `"sinusoidal"`.
        mask_zero: whether id 0 (`[PAD]`) is padding; if True the layer
            outputs a Keras mask (batch, seq_len) that later layers honour.
            Defaults to True.
        embeddings_initializer: initializer of the token table. Defaults to
            a normal distribution with standard deviation d_model^-0.5, so
            scaled embeddings start with unit variance.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: integer token ids of shape (batch, seq_len).
        start_index: position of the first token. Defaults to 0; a decoder
            generating one token at a time passes the token's position.

    Returns:
        (batch, seq_len, d_model) in the layer's compute dtype.

    Example:

    >>> embed = PositionalEmbedding(vocab_size=100, d_model=8)
    >>> embed(tf.constant([[5, 7, 0]])).shape
    TensorShape([1, 3, 8])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def __init__(
        self,
        vocab_size,
        d_model,
        max_length=2048,
        position="sinusoidal",
        mask_zero=True,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = validation.check_int("vocab_size", vocab_size)
        self.d_model = validation.check_int("d_model", d_model)
        self.max_length = validation.check_int("max_length", max_length)
        self.position = validation.check_choice("position", position, POSITION_KINDS)
        self.mask_zero = validation.check_bool("mask_zero", mask_zero)
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(
                stddev=d_model**-0.5
            )
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = mask_zero

    def build(self, input_shape=None):
        self.token_embedding = keras.layers.Embedding(
            self.vocab_size,
            self.d_model,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.token_embedding.build(input_shape)
        if self.position == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(self.max_length, self.d_model),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )
        else:
            # A constant, not a weight: recomputed, never saved. init_scope
            # makes it eagerly even when Keras builds the layer while tracing.
            with tf.init_scope():
                self.position_embeddings = positional_encoding(
                    self.max_length, self.d_model
                )
        self.built = True

    def call(self, inputs, start_index=0):
        self._check_ids(inputs)
        length = tf.shape(inputs)[-1]
        tokens = self.token_embedding(inputs)  # (batch, seq_len, d_model)
        tokens = tokens * tf.cast(math.sqrt(self.d_model), self.compute_dtype)
        # Rows start_index .. start_index + seq_len - 1 of the position table
        # (start_index > 0 when decoding one token at a time).
        positions = tf.gather(self.position_embeddings, tf.range(length) + start_index)
        return tokens + tf.cast(positions, self.compute_dtype)  # broadcast over batch

    def _check_ids(self, inputs):
        validation.check_integer_ids("inputs", inputs)
        shape = validation.check_rank("inputs", inputs, {2})
        if shape[-1] is not None and shape[-1] > self.max_length:
            raise ValueError(
                f"Sequences are longer than `max_length`={self.max_length}. "
                f"Received: inputs with shape {shape}. Truncate the inputs or "
                "build the layer with a larger max_length."
            )
        # Out-of-range ids fail obscurely on CPU and silently on GPU; when the
        # values are at hand (eager mode) say so plainly.
        if tf.executing_eagerly() and tf.size(inputs) > 0:
            low = int(tf.reduce_min(inputs))
            high = int(tf.reduce_max(inputs))
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"Token ids must be in [0, vocab_size={self.vocab_size}). "
                    f"Received: inputs with ids from {low} to {high}"
                )

    def compute_mask(self, inputs, mask=None, start_index=0):
        if not self.mask_zero:
            return None
        # keras.ops, not tf: Keras also calls this on symbolic inputs.
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "d_model": self.d_model,
                "max_length": self.max_length,
                "position": self.position,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
