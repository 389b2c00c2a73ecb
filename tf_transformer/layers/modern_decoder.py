"""The decoder block of today's language models (Llama style) and its stack."""

import keras

from tf_transformer import validation
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.encoder import self_attention_mask
from tf_transformer.layers.grouped_query_attention import GroupedQueryAttention
from tf_transformer.layers.initializers import clone_initializer
from tf_transformer.layers.rms_norm import RMSNorm
from tf_transformer.layers.swiglu_feed_forward import SwiGLUFeedForward


@keras.saving.register_keras_serializable(package="tf_transformer")
class ModernDecoderLayer(keras.layers.Layer):
    """A pre-norm decoder block without biases, as in Llama:

        x = x + GroupedQueryAttention(RMSNorm(x))   (causal, rotary positions)
        x = x + SwiGLUFeedForward(RMSNorm(x))

    Lesson 11's block with four changes: RMSNorm for LayerNorm, rotary
    positions inside the attention instead of a position table added to the
    embeddings, grouped-query attention, and the gated SwiGLU feed-forward.
    Self-attention is always causal.

    Args:
        d_model: model width; divisible by `num_heads`.
        num_heads: query heads.
        num_key_value_heads: key/value heads (`num_heads` = multi-head,
            1 = multi-query attention).
        dff: feed-forward hidden width (`swiglu_width(d_model)` keeps the
            paper's parameter count).
        dropout: residual dropout. Defaults to 0.
        layer_norm_epsilon: RMSNorm's epsilon. Defaults to 1e-6.
        max_wavelength: the rotary base. Defaults to 10000.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model).
        padding_mask: optional boolean (batch, seq_len), True at real tokens;
            defaults to the Keras mask of `inputs`.
        attention_mask: optional boolean (batch, seq_len, seq_len), joined
            with the causal mask.
        cache, cache_index: a key/value cache, see `GroupedQueryAttention`;
            the call then returns `(outputs, new_cache)`.
        training: whether dropout is active.

    References:
        Touvron et al., "LLaMA: Open and Efficient Foundation Language
        Models", arXiv:2302.13971.
    """

    def __init__(
        self,
        d_model,
        num_heads,
        num_key_value_heads,
        dff,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        max_wavelength=10000,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = validation.check_int("d_model", d_model)
        self.num_heads = validation.check_int("num_heads", num_heads)
        validation.check_divisible("d_model", d_model, "num_heads", num_heads)
        self.num_key_value_heads = validation.check_int(
            "num_key_value_heads", num_key_value_heads
        )
        validation.check_divisible(
            "num_heads", num_heads, "num_key_value_heads", num_key_value_heads
        )
        self.dff = validation.check_int("dff", dff)
        self.dropout = validation.check_rate("dropout", dropout)
        self.layer_norm_epsilon = validation.check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.max_wavelength = validation.check_positive_float(
            "max_wavelength", max_wavelength
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

        # The sublayers exist before `build`, so the cache layout of an
        # unbuilt model can be read (lesson 14 sizes a 70-billion-parameter
        # model's cache without allocating its weights).
        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention = GroupedQueryAttention(
            self.num_heads,
            self.num_key_value_heads,
            head_dim=self.d_model // self.num_heads,
            max_wavelength=self.max_wavelength,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention_dropout = Dropout(
            self.dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
        self.feed_forward_norm = self._norm("feed_forward_norm")
        self.feed_forward = SwiGLUFeedForward(
            self.d_model,
            self.dff,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="feed_forward",
        )

    def build(self, input_shape):
        validation.check_last_dim("inputs", input_shape, self.d_model, "d_model")
        for sublayer in (
            self.self_attention_norm,
            self.self_attention,
            self.feed_forward_norm,
            self.feed_forward,
        ):
            sublayer.build(input_shape)
        self.built = True

    def _norm(self, name):
        return RMSNorm(self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        cache=None,
        cache_index=None,
        return_attention_scores=False,
        training=None,
    ):
        mask = self_attention_mask(inputs, padding_mask, attention_mask)
        attended = self.self_attention(
            self.self_attention_norm(inputs),
            attention_mask=mask,
            use_causal_mask=True,
            return_attention_scores=return_attention_scores,
            cache=cache,
            cache_index=cache_index,
            training=training,
        )
        extra = None
        if cache is not None or return_attention_scores:
            attended, extra = attended  # the new cache or the weights
        x = inputs + self.self_attention_dropout(attended, training=training)
        x = x + self.feed_forward(self.feed_forward_norm(x), training=training)
        return x if extra is None else (x, extra)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "dff": self.dff,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "max_wavelength": self.max_wavelength,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_transformer")
class ModernDecoder(keras.layers.Layer):
    """`num_layers` `ModernDecoderLayer`s and a final RMSNorm.

    Args:
        num_layers: number of blocks.
        **layer_kwargs: the arguments of `ModernDecoderLayer` (`d_model`,
            `num_heads`, `num_key_value_heads`, `dff`, …) and base layer
            arguments such as `name` and `dtype`.

    Call arguments: those of `ModernDecoderLayer` without the cache; with
    `return_attention_scores=True` the call returns `(outputs, weights)`,
    one weights tensor per block. `call_with_cache` is the one-step path
    of cached decoding.
    """

    layer_arguments = (
        "d_model",
        "num_heads",
        "num_key_value_heads",
        "dff",
        "dropout",
        "layer_norm_epsilon",
        "max_wavelength",
        "kernel_initializer",
    )

    def __init__(self, num_layers, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in self.layer_arguments if k in kwargs}
        super().__init__(**kwargs)
        self.num_layers = validation.check_int("num_layers", num_layers)
        self.stack = [
            ModernDecoderLayer(
                **layer_kwargs, dtype=self.dtype_policy, name=f"layer_{i}"
            )
            for i in range(num_layers)
        ]
        self.final_norm = RMSNorm(
            self.stack[0].layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
        )
        self.supports_masking = True

    def build(self, input_shape):
        for layer in self.stack:
            layer.build(input_shape)
        self.final_norm.build(input_shape)
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        x, all_weights = inputs, []
        for layer in self.stack:
            x = layer(
                x,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            if return_attention_scores:
                x, weights = x
                all_weights.append(weights)
        x = self.final_norm(x)
        return (x, all_weights) if return_attention_scores else x

    def call_with_cache(self, inputs, index, cache):
        """One decoding step: `inputs` (batch, steps, d_model) at positions
        `index`, `index + 1`, …; `cache` holds `self_key_i`/`self_value_i`
        of every block (see `DecoderCache`). Returns `(outputs, new_cache)`."""
        cache, x = dict(cache), inputs
        for i, layer in enumerate(self.stack):
            x, (cache[f"self_key_{i}"], cache[f"self_value_{i}"]) = layer(
                x,
                cache=(cache[f"self_key_{i}"], cache[f"self_value_{i}"]),
                cache_index=index,
                training=False,
            )
        return self.final_norm(x), cache

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        layer_config = self.stack[0].get_config()
        config.update({key: layer_config[key] for key in self.layer_arguments})
        config["num_layers"] = self.num_layers
        return config
