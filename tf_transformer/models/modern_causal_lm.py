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

    def call(
        self,
        token_ids,
        padding_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        x, padding_mask = self.embed(token_ids, padding_mask)  # (batch, seq_len, d)
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


def load_llama_weights(model, backbone):
    """Copy the weights of a `keras_hub.models.LlamaBackbone` into `model`.

    `model` is a `ModernCausalLM` of the same size (layers, width, heads,
    key/value heads, feed-forward width, vocabulary); the backbone's output
    matrix becomes `output_projection` (its transposed token embedding when
    the backbone ties them). KerasHub keeps each projection as a 3-D einsum
    kernel, (d_model, heads, head_dim); ours is the same numbers as a
    (d_model, heads · head_dim) matrix.

    Example:

    >>> backbone = keras_hub.models.LlamaBackbone(
    ...     vocabulary_size=50, num_layers=2, num_query_heads=4, hidden_dim=32,
    ...     intermediate_dim=64, num_key_value_heads=2)
    >>> model = ModernCausalLM(2, 32, 4, 2, 64, 50)
    >>> load_llama_weights(model, backbone)
    """
    if len(model.decoder.stack) != len(backbone.transformer_layers):
        raise ValueError(
            "`model` and `backbone` must have as many layers. Received: "
            f"{len(model.decoder.stack)} and {len(backbone.transformer_layers)}"
        )
    model._build_for_any_length()

    def copy(ours, theirs):
        if ours.shape.num_elements() != theirs.shape.num_elements():
            raise ValueError(
                f"Sizes differ: {ours.path} {tuple(ours.shape)} vs {theirs.path} "
                f"{tuple(theirs.shape)}; build `model` with the backbone's sizes"
            )
        ours.assign(tf.reshape(theirs, ours.shape))

    copy(model.embedding.embeddings, backbone.token_embedding.embeddings)
    for layer, block in zip(
        model.decoder.stack, backbone.transformer_layers, strict=True
    ):
        attention, theirs = layer.self_attention, block._self_attention_layer
        copy(attention.query_dense.kernel, theirs._query_dense.kernel)
        copy(attention.key_dense.kernel, theirs._key_dense.kernel)
        copy(attention.value_dense.kernel, theirs._value_dense.kernel)
        copy(attention.output_dense.kernel, theirs._output_dense.kernel)
        copy(layer.self_attention_norm.scale, block._self_attention_layernorm.scale)
        copy(layer.feed_forward_norm.scale, block._feedforward_layernorm.scale)
        feed_forward = layer.feed_forward
        copy(feed_forward.gate_dense.kernel, block._feedforward_gate_dense.kernel)
        copy(feed_forward.up_dense.kernel, block._feedforward_intermediate_dense.kernel)
        copy(feed_forward.down_dense.kernel, block._feedforward_output_dense.kernel)
    copy(model.decoder.final_norm.scale, backbone.layer_norm.scale)
    embedding = backbone.token_embedding
    output = (
        tf.transpose(embedding.embeddings)
        if embedding.tie_weights
        else embedding.reverse_embeddings
    )
    copy(model.output_projection.kernel, output)
