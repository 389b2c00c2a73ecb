"""Plumbing shared by the models built on one token-reading `Encoder`."""

import keras
import tensorflow as tf

from tf_transformer.layers.encoder import Encoder
from tf_transformer.layers.masks import key_padding_to_attention_mask


class EncoderModel(keras.Model):
    """A model that owns an `Encoder` reading token ids (vocab_size set)."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, Encoder):
            raise TypeError(
                "`encoder` must be a tf_transformer Encoder. "
                f"Received: encoder={encoder!r} (type {type(encoder).__name__})"
            )
        if encoder.vocab_size is None:
            raise ValueError(
                "`encoder` must read token ids: build it with `vocab_size` set. "
                "Received: encoder with vocab_size=None"
            )
        self.encoder = encoder

    @property
    def input_dtype(self):
        """Token ids are int32."""
        return "int32"

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        self.build_head(tuple(input_shape) + (self.encoder.d_model,))
        self.built = True

    def build_head(self, hidden_shape):
        """Build the layers after the encoder; `hidden_shape` ends in d_model."""

    def make_predict_function(self, force=False):
        if not self.built:
            self.build((None, None))
        return super().make_predict_function(force)

    def encode(self, token_ids, padding_mask, training, return_attention_scores):
        """Runs the encoder. Returns `(hidden, mask (batch, length), weights)`."""
        if padding_mask is None:
            padding_mask = tf.not_equal(token_ids, 0)  # the implicit mask
        else:
            padding_mask = key_padding_to_attention_mask(padding_mask)[:, 0, :]
        hidden, weights = self.encoder(
            token_ids,
            padding_mask=padding_mask,
            training=training,
            return_attention_scores=True,
        )
        return hidden, padding_mask, weights if return_attention_scores else None

    def get_config(self):
        config = super().get_config()
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
