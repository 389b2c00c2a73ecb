"""The decoder: masked self-attention, cross-attention and feed-forward layers."""

import keras

from tf_transformer import validation
from tf_transformer.layers.encoder import TransformerBlock, _Stack, self_attention_mask
from tf_transformer.layers.masks import (
    combine_masks,
    implicit_mask,
    key_padding_to_attention_mask,
)


class DecoderLayerBase(TransformerBlock):
    """The Keras plumbing of `DecoderLayer`: arguments, sublayers, config.

    `DecoderLayer` subclasses it and adds `call`. `build` creates the
    sublayers `call` connects: `self_attention`, `cross_attention`,
    `feed_forward`, each with its `..._layer_norm`, and the dropouts
    `self_attention_dropout` and `cross_attention_dropout`.

    One decoder layer: masked self-attention, cross-attention, feed-forward.

    1. Masked (causal) self-attention over the target prefix: position t
       sees positions 0..t only, so training on whole sentences never shows
       the model the word it must predict.
    2. Encoder-decoder (cross) attention: queries from the decoder, keys and
       values from the encoder output.
    3. The position-wise feed-forward network.

    Each sublayer has a residual connection and a LayerNorm, placed after the
    sum (post-LN, the paper) or before the sublayer (`norm_first=True`).

    Args:
        d_model, num_heads, dff, dropout, attention_dropout, activation,
        norm_first, layer_norm_epsilon, kernel_initializer, bias_initializer:
            as in `EncoderLayer`.

    Call arguments:
        inputs: decoder vectors (batch, target_len, d_model).
        encoder_outputs: encoder vectors (batch, source_len, d_model).
        padding_mask: optional boolean (batch, target_len), True at real
            target tokens; defaults to the Keras mask of `inputs`.
        encoder_padding_mask: optional boolean (batch, source_len), True at
            real source tokens; defaults to the Keras mask of
            `encoder_outputs`.
        attention_mask: optional extra self-attention mask broadcastable to
            (batch, target_len, target_len).
        encoder_attention_mask: optional extra cross-attention mask
            broadcastable to (batch, target_len, source_len).
        use_causal_mask: apply the causal mask in self-attention.
            Defaults to True.
        training: whether dropout is active.
        return_attention_scores: if True, return
            `(outputs, self_attention_weights, cross_attention_weights)` with
            shapes (batch, num_heads, target_len, target_len) and
            (batch, num_heads, target_len, source_len).

    Example:

    >>> layer = DecoderLayer(d_model=16, num_heads=2, dff=32)
    >>> target, source = tf.random.normal((2, 4, 16)), tf.random.normal((2, 6, 16))
    >>> layer(target, source).shape
    TensorShape([2, 4, 16])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def build(self, inputs_shape, encoder_outputs_shape):
        validation.check_last_dim("inputs", inputs_shape, self.d_model, "d_model")
        validation.check_last_dim(
            "encoder_outputs", encoder_outputs_shape, self.d_model, "d_model"
        )
        self.self_attention = self._attention(
            "self_attention", inputs_shape, inputs_shape
        )
        self.self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", inputs_shape
        )
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.cross_attention = self._attention(
            "cross_attention", inputs_shape, encoder_outputs_shape
        )
        self.cross_attention_layer_norm = self._layer_norm(
            "cross_attention_layer_norm", inputs_shape
        )
        self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self.feed_forward = self._feed_forward(inputs_shape)
        self.feed_forward_layer_norm = self._layer_norm(
            "feed_forward_layer_norm", inputs_shape
        )
        self.built = True

    def compute_output_spec(
        self, inputs, encoder_outputs, return_attention_scores=False, **kwargs
    ):
        outputs = keras.KerasTensor(inputs.shape, self.compute_dtype)
        if not return_attention_scores:
            return outputs
        batch, target_len, source_len = (
            inputs.shape[0],
            inputs.shape[1],
            encoder_outputs.shape[1],
        )
        return (
            outputs,
            keras.KerasTensor(
                (batch, self.num_heads, target_len, target_len), self.compute_dtype
            ),
            keras.KerasTensor(
                (batch, self.num_heads, target_len, source_len), self.compute_dtype
            ),
        )


@keras.saving.register_keras_serializable(package="tf_transformer")
class DecoderLayer(DecoderLayerBase):
    """One decoder layer: masked self-attention, cross-attention, feed-forward.

    1. Masked (causal) self-attention over the target prefix.
    2. Cross-attention: queries from the decoder, keys and values from the
       encoder output.
    3. The position-wise feed-forward network.

    Each sublayer has a residual connection and a LayerNorm (post-LN, or
    pre-LN with `norm_first=True`). Arguments, call arguments and config:
    see `DecoderLayerBase`.

    Example:

    >>> layer = DecoderLayer(d_model=16, num_heads=2, dff=32)
    >>> target, source = tf.random.normal((2, 4, 16)), tf.random.normal((2, 6, 16))
    >>> layer(target, source).shape
    TensorShape([2, 4, 16])
    """

    def call(
        self,
        inputs,
        encoder_outputs,
        padding_mask=None,
        encoder_padding_mask=None,
        attention_mask=None,
        encoder_attention_mask=None,
        use_causal_mask=True,
        training=None,
        return_attention_scores=False,
    ):
        validation.check_rank("inputs", inputs, {3})
        validation.check_rank("encoder_outputs", encoder_outputs, {3})
        validation.check_last_dim("inputs", inputs, self.d_model, "d_model")
        validation.check_last_dim(
            "encoder_outputs", encoder_outputs, self.d_model, "d_model"
        )
        self_mask = self_attention_mask(inputs, padding_mask, attention_mask)
        cross_mask = cross_attention_mask(
            encoder_outputs, encoder_padding_mask, encoder_attention_mask
        )
        x = inputs

        # Sublayer 1: masked self-attention over the target prefix.
        y = self.self_attention_layer_norm(x) if self.norm_first else x
        y, self_weights = self.self_attention(
            y,
            y,
            attention_mask=self_mask,
            use_causal_mask=use_causal_mask,
            return_attention_scores=True,
            training=training,
        )
        x = x + self.self_attention_dropout(y, training=training)
        if not self.norm_first:
            x = self.self_attention_layer_norm(x)

        # Sublayer 2: cross-attention, queries from the decoder, keys and
        # values from the encoder.
        y = self.cross_attention_layer_norm(x) if self.norm_first else x
        y, cross_weights = self.cross_attention(
            y,
            encoder_outputs,
            attention_mask=cross_mask,
            return_attention_scores=True,
            training=training,
        )
        x = x + self.cross_attention_dropout(y, training=training)
        if not self.norm_first:
            x = self.cross_attention_layer_norm(x)

        # Sublayer 3: position-wise feed-forward.
        y = self.feed_forward_layer_norm(x) if self.norm_first else x
        x = x + self.feed_forward(y, training=training)
        if not self.norm_first:
            x = self.feed_forward_layer_norm(x)

        if return_attention_scores:
            return x, self_weights, cross_weights
        return x


def cross_attention_mask(
    encoder_outputs, encoder_padding_mask=None, attention_mask=None
):
    """Mask for cross-attention: hide padded source positions from every query."""
    if encoder_padding_mask is None:
        encoder_padding_mask = implicit_mask(encoder_outputs)
    return combine_masks(
        key_padding_to_attention_mask(encoder_padding_mask, "encoder_padding_mask"),
        attention_mask,
    )


@keras.saving.register_keras_serializable(package="tf_transformer")
class Decoder(_Stack):
    """The decoder stack: embedding, dropout and `num_layers` `DecoderLayer`s.

    Returns vectors of size `d_model`; the output projection to the
    vocabulary belongs to the model (`Transformer`).

    Args:
        num_layers: number of decoder layers N (6 in the paper).
        d_model, num_heads, dff, dropout, attention_dropout, activation,
        norm_first, layer_norm_epsilon, kernel_initializer, bias_initializer,
        vocab_size, max_length, position: as in `Encoder`.
        layer_class: the class of the stacked layers, as in `Encoder`.
            Defaults to `DecoderLayer`.

    Call arguments:
        inputs: target ids (batch, target_len), or vectors
            (batch, target_len, d_model) when `vocab_size` is None.
        encoder_outputs: (batch, source_len, d_model).
        padding_mask: optional boolean (batch, target_len); defaults to
            `ids != 0` or to the Keras mask of vector inputs.
        encoder_padding_mask: optional boolean (batch, source_len); defaults
            to the Keras mask of `encoder_outputs`.
        training: whether dropout is active.
        return_attention_scores: if True, return `(outputs, weights)` where
            weights is `{"self_attention": [...], "cross_attention": [...]}`,
            one tensor per layer.

    Example:

    >>> decoder = Decoder(num_layers=2, d_model=16, num_heads=2, dff=32,
    ...                   vocab_size=100)
    >>> decoder(tf.constant([[2, 8, 9]]), tf.random.normal((1, 5, 16))).shape
    TensorShape([1, 3, 16])
    """

    layer_class = DecoderLayer

    def build(self, inputs_shape, encoder_outputs_shape):
        self._build_stack(inputs_shape, "decoder_layer", encoder_outputs_shape)
        self.built = True

    def call(
        self,
        inputs,
        encoder_outputs,
        padding_mask=None,
        encoder_padding_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        x, padding_mask = self._embed(inputs, padding_mask, training)
        weights = {"self_attention": [], "cross_attention": []}
        for layer in self.stack:
            x, self_weights, cross_weights = layer(
                x,
                encoder_outputs,
                padding_mask=padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                training=training,
                return_attention_scores=True,
            )
            weights["self_attention"].append(self_weights)
            weights["cross_attention"].append(cross_weights)
        x = self._finish(x)
        if return_attention_scores:
            return x, weights
        return x

    def compute_output_spec(
        self, inputs, encoder_outputs, return_attention_scores=False, **kwargs
    ):
        shape = self.compute_output_shape(inputs.shape)
        outputs = keras.KerasTensor(shape, self.compute_dtype)
        if not return_attention_scores:
            return outputs
        heads = self.layer_kwargs["num_heads"]
        batch, target_len, source_len = shape[0], shape[1], encoder_outputs.shape[1]

        def spec(length):
            return keras.KerasTensor(
                (batch, heads, target_len, length), self.compute_dtype
            )

        return outputs, {
            "self_attention": [spec(target_len) for _ in range(self.num_layers)],
            "cross_attention": [spec(source_len) for _ in range(self.num_layers)],
        }
