"""A decoder-only language model built like Llama: the lesson-11 GPT modernised."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.modern_decoder import ModernDecoder
from tf_transformer.models.causal_lm import CausalLMBase


@keras.saving.register_keras_serializable(package="tf_transformer")
class ModernCausalLM(CausalLMBase):
    """A decoder-only language model in the style of Llama, Mistral and Qwen.

    token ids -> token embedding (no position table, no √d_model scaling)
    -> `num_layers` `ModernDecoderLayer`s (pre-RMSNorm, rotary grouped-query
    attention, SwiGLU, no biases) -> final RMSNorm -> a dense layer without
    bias giving one float32 logit per vocabulary token. Positions enter only
    as rotations of queries and keys, so the model accepts sequences longer
    than any it was trained on (how well it does there is lesson 14's
    measurement). With weights copied, it equals
    `keras_hub.models.LlamaBackbone` followed by its untied output matrix.

    Padding (id 0) is read from the ids or given as `padding_mask`; prompts
    for `generate` are padded on the right.

    Args:
        num_layers: number of blocks.
        d_model: model width; divisible by `num_heads`.
        num_heads: query heads.
        num_key_value_heads: key/value heads; a divisor of `num_heads`.
        dff: SwiGLU hidden width (`swiglu_width(d_model)` = ⅔ · 4 · d_model
            keeps the paper's feed-forward parameter count).
        vocabulary_size: number of token ids.
        max_length: longest sequence `generate` may produce (prompt + new
            tokens); the model itself has no length limit. Defaults to 2048.
        dropout: residual dropout. Defaults to 0.
        layer_norm_epsilon: RMSNorm's epsilon. Defaults to 1e-6.
        max_wavelength: the rotary base. Defaults to 10000.
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        token_ids: int (batch, seq_len).
        padding_mask: optional boolean (batch, seq_len), True at real tokens.
            Defaults to `token_ids != 0`.
        training: whether dropout is active.
        return_attention_scores: if True, return `(logits, weights)` with one
            (batch, num_heads, seq_len, seq_len) tensor per block.

    Returns:
        float32 logits (batch, seq_len, vocabulary_size).

    Example:

    >>> model = ModernCausalLM(num_layers=2, d_model=32, num_heads=4,
    ...                        num_key_value_heads=2, dff=88, vocabulary_size=100)
    >>> model(tf.constant([[5, 6, 7]])).shape
    TensorShape([1, 3, 100])
    >>> model.generate(tf.constant([[5, 6, 7]]), max_new_tokens=8).shape
    TensorShape([1, 8])

    References:
        Touvron et al., "LLaMA: Open and Efficient Foundation Language
        Models", arXiv:2302.13971.
    """

    def __init__(
        self,
        num_layers,
        d_model,
        num_heads,
        num_key_value_heads,
        dff,
        vocabulary_size,
        max_length=2048,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        max_wavelength=10000,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)  # token ids stay integers
        super().__init__(**kwargs)
        self.vocabulary_size = validation.check_int("vocabulary_size", vocabulary_size)
        self.max_length = validation.check_int("max_length", max_length)
        self.d_model = validation.check_int("d_model", d_model)
        self.embedding = keras.layers.Embedding(
            vocabulary_size, d_model, dtype=self.dtype_policy, name="embedding"
        )
        self.decoder = ModernDecoder(
            num_layers,
            d_model=d_model,
            num_heads=num_heads,
            num_key_value_heads=num_key_value_heads,
            dff=dff,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            max_wavelength=max_wavelength,
            dtype=self.dtype_policy,
            name="decoder",
        )
        # float32 logits under mixed precision: the softmax needs the range.
        self.output_projection = keras.layers.Dense(
            vocabulary_size, use_bias=False, dtype="float32", name="output_projection"
        )

    def build(self, input_shape):
        shape = validation.check_rank("token_ids", input_shape, {2})
        self.embedding.build(shape)
        self.decoder.build(tuple(shape) + (self.d_model,))
        self.output_projection.build(tuple(shape) + (self.d_model,))
        self.built = True

    def call(
        self,
        token_ids,
        padding_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        validation.check_integer_ids("token_ids", token_ids)
        validation.check_rank("token_ids", token_ids, {2})
        if padding_mask is None:
            padding_mask = tf.not_equal(token_ids, 0)  # (batch, seq_len)
        x = self.embedding(token_ids)  # (batch, seq_len, d_model)
        x = self.decoder(
            x,
            padding_mask=padding_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        if return_attention_scores:
            x, weights = x
        logits = self.output_projection(x)  # (batch, seq_len, vocabulary_size)
        return (logits, weights) if return_attention_scores else logits

    def get_config(self):
        config = super().get_config()
        decoder_config = self.decoder.get_config()
        config.update(
            {
                key: decoder_config[key]
                for key in (
                    "num_layers",
                    "d_model",
                    "num_heads",
                    "num_key_value_heads",
                    "dff",
                    "dropout",
                    "layer_norm_epsilon",
                    "max_wavelength",
                )
            }
        )
        config.update(
            {"vocabulary_size": self.vocabulary_size, "max_length": self.max_length}
        )
        return config
