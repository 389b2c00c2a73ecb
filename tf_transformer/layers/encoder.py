"""The encoder: a stack of self-attention + feed-forward layers."""

import keras

from tf_transformer import validation
from tf_transformer.layers.attention import MultiHeadAttention
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.feed_forward import FeedForward
from tf_transformer.layers.initializers import clone_initializer
from tf_transformer.layers.masks import (
    combine_masks,
    implicit_mask,
    key_padding_to_attention_mask,
)
from tf_transformer.layers.positional import PositionalEmbedding


class TransformerBlock(keras.layers.Layer):
    """Base class of `EncoderLayer` and `DecoderLayer`: the Keras plumbing.

    Holds what both layers share, so that each of them only says how its
    sublayers are connected: the constructor arguments (checked, one
    attribute each), factories for the sublayers built with this layer's
    dtype policy and fresh initializers (`_attention`, `_layer_norm`,
    `_dropout`, `_feed_forward`), `compute_output_shape` and `get_config`.

    `attention_class` and `feed_forward_class` name the sublayer classes that
    the factories create; a subclass may replace them (the course builds a
    layer from a learner's own `MultiHeadAttention` and `FeedForward` this way).

    Args: see `EncoderLayer`.
    """

    attention_class = MultiHeadAttention
    feed_forward_class = FeedForward

    def __init__(
        self,
        d_model,
        num_heads,
        dff,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = validation.check_int("d_model", d_model)
        self.num_heads = validation.check_int("num_heads", num_heads)
        validation.check_divisible("d_model", d_model, "num_heads", num_heads)
        self.dff = validation.check_int("dff", dff)
        self.dropout = validation.check_rate("dropout", dropout)
        self.attention_dropout = validation.check_rate(
            "attention_dropout", attention_dropout
        )
        validation.check_activation("activation", activation)
        self.activation = activation
        self.norm_first = validation.check_bool("norm_first", norm_first)
        self.layer_norm_epsilon = validation.check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _attention(self, name, query_shape, value_shape):
        layer = self.attention_class(
            self.num_heads,
            key_dim=self.d_model // self.num_heads,
            dropout=self.attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build(query_shape, value_shape)
        return layer

    def _layer_norm(self, name, input_shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(input_shape)
        return layer

    def _dropout(self, name):
        return Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _feed_forward(self, input_shape):
        layer = self.feed_forward_class(
            self.d_model,
            self.dff,
            dropout=self.dropout,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feed_forward",
        )
        layer.build(input_shape)
        return layer

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "dff": self.dff,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.activations.serialize(
                    keras.activations.get(self.activation)
                ),
                "norm_first": self.norm_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def self_attention_mask(inputs, padding_mask=None, attention_mask=None):
    """Mask for self-attention over `inputs`: explicit or implicit padding, AND
    `attention_mask`. An explicit `padding_mask` takes precedence over the
    Keras mask that `inputs` may carry."""
    if padding_mask is None:
        padding_mask = implicit_mask(inputs)
    return combine_masks(key_padding_to_attention_mask(padding_mask), attention_mask)


class EncoderLayerBase(TransformerBlock):
    """The Keras plumbing of `EncoderLayer`: arguments, sublayers, config.

    `EncoderLayer` subclasses it and adds `call`. `build` creates the
    sublayers `call` connects: `self_attention`, `self_attention_dropout`,
    `self_attention_layer_norm`, `feed_forward` (with its own dropout) and
    `feed_forward_layer_norm`.

    One encoder layer: self-attention, then a feed-forward network.

    Each of the two sublayers is wrapped in a residual connection and a
    LayerNorm: `LayerNorm(x + Dropout(Sublayer(x)))` as in the paper
    (post-LN, section 3.1), or `x + Dropout(Sublayer(LayerNorm(x)))` with
    `norm_first=True` (pre-LN, which trains deep stacks without warmup).

    Args:
        d_model: size of the vectors; must be divisible by `num_heads`.
        num_heads: number of attention heads; each has d_model / num_heads
            dimensions.
        dff: hidden size of the feed-forward network.
        dropout: residual dropout rate. Defaults to 0.1.
        attention_dropout: dropout on attention weights. Defaults to 0.
        activation: feed-forward activation. Defaults to `"relu"`.
        norm_first: pre-LN if True, post-LN (the paper) if False.
            Defaults to False.
        layer_norm_epsilon: Defaults to 1e-5.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model).
        padding_mask: optional boolean (batch, seq_len) or (batch, 1, seq_len),
            True at real tokens. Defaults to the Keras mask of `inputs`.
        attention_mask: optional boolean mask broadcastable to
            (batch, seq_len, seq_len), combined with the padding mask by AND.
        training: whether dropout is active.
        return_attention_scores: if True, return `(outputs, weights)` with
            weights of shape (batch, num_heads, seq_len, seq_len).

    Example:

    >>> layer = EncoderLayer(d_model=16, num_heads=2, dff=32)
    >>> layer(tf.random.normal((2, 5, 16))).shape
    TensorShape([2, 5, 16])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def build(self, input_shape):
        validation.check_last_dim("inputs", input_shape, self.d_model, "d_model")
        self.self_attention = self._attention(
            "self_attention", input_shape, input_shape
        )
        self.self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", input_shape
        )
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.feed_forward = self._feed_forward(input_shape)
        self.feed_forward_layer_norm = self._layer_norm(
            "feed_forward_layer_norm", input_shape
        )
        self.built = True

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        outputs = keras.KerasTensor(inputs.shape, self.compute_dtype)
        if not return_attention_scores:
            return outputs
        length = inputs.shape[1]
        weights_shape = (inputs.shape[0], self.num_heads, length, length)
        return outputs, keras.KerasTensor(weights_shape, self.compute_dtype)


@keras.saving.register_keras_serializable(package="tf_transformer")
class EncoderLayer(EncoderLayerBase):
    """One encoder layer: self-attention, then a feed-forward network.

    Each sublayer is wrapped in a residual connection and a LayerNorm:
    `LayerNorm(x + Dropout(Sublayer(x)))` (post-LN, the paper, section 3.1),
    or `x + Dropout(Sublayer(LayerNorm(x)))` with `norm_first=True` (pre-LN).
    Arguments, call arguments and config: see `EncoderLayerBase`.

    Example:

    >>> layer = EncoderLayer(d_model=16, num_heads=2, dff=32)
    >>> layer(tf.random.normal((2, 5, 16))).shape
    TensorShape([2, 5, 16])
    """

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        validation.check_rank("inputs", inputs, {3})
        validation.check_last_dim("inputs", inputs, self.d_model, "d_model")
        mask = self_attention_mask(inputs, padding_mask, attention_mask)
        x = inputs

        # Sublayer 1: multi-head self-attention, residual, LayerNorm.
        y = self.self_attention_layer_norm(x) if self.norm_first else x
        y, weights = self.self_attention(
            y, y, attention_mask=mask, return_attention_scores=True, training=training
        )
        x = x + self.self_attention_dropout(y, training=training)
        if not self.norm_first:
            x = self.self_attention_layer_norm(x)

        # Sublayer 2: position-wise feed-forward (with its dropout), residual, norm.
        y = self.feed_forward_layer_norm(x) if self.norm_first else x
        x = x + self.feed_forward(y, training=training)
        if not self.norm_first:
            x = self.feed_forward_layer_norm(x)

        if return_attention_scores:
            return x, weights
        return x


def layer_class_name(layer_class):
    """The registered name that stands for `layer_class` in a config."""
    return keras.saving.get_registered_name(layer_class)


def resolve_layer_class(argument, value, default):
    """`value` as a layer class: None gives `default`, a registered name its
    class; a `keras.layers.Layer` subclass is returned as it is."""
    if value is None:
        return default
    if isinstance(value, str):
        found = keras.saving.get_registered_object(value)
        if found is None:
            raise ValueError(
                f"`{argument}` names no registered layer class. "
                f"Received: {argument}={value!r}"
            )
        value = found
    if not (isinstance(value, type) and issubclass(value, keras.layers.Layer)):
        raise TypeError(
            f"`{argument}` must be a keras.layers.Layer subclass, its registered "
            f"name or None. Received: {argument}={value!r}"
        )
    return value


class _Stack(keras.layers.Layer):
    """Embedding (optional), dropout and N identical layers: shared plumbing.

    `layer_class` (a constructor argument) replaces the class-level default
    of the stacked layers, e.g. by a subclass of `EncoderLayer`; it takes the
    same constructor arguments.
    """

    layer_class = None

    def __init__(
        self,
        num_layers,
        d_model,
        num_heads,
        dff,
        vocab_size=None,
        max_length=2048,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        position="sinusoidal",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        layer_class=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.layer_class = resolve_layer_class(
            "layer_class", layer_class, type(self).layer_class
        )
        self.num_layers = validation.check_int("num_layers", num_layers)
        self.vocab_size = validation.check_optional_int("vocab_size", vocab_size)
        self.max_length = validation.check_int("max_length", max_length)
        self.position = validation.check_choice(
            "position", position, ("sinusoidal", "learned")
        )
        layer_kwargs = dict(
            d_model=d_model,
            num_heads=num_heads,
            dff=dff,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
        )
        # Building one layer validates every per-layer argument now, and its
        # config gives them in serializable form (initializers, activation).
        layer_config = self.layer_class(**layer_kwargs).get_config()
        self.layer_kwargs = {key: layer_config[key] for key in layer_kwargs}
        self.d_model = d_model
        self.dropout = dropout
        self.norm_first = norm_first
        self.supports_masking = True

    def _build_stack(self, input_shape, prefix, *other_shapes):
        if self.vocab_size is not None:
            self.embedding = PositionalEmbedding(
                self.vocab_size,
                self.d_model,
                max_length=self.max_length,
                position=self.position,
                dtype=self.dtype_policy,
                name="embedding",
            )
            self.embedding.build(input_shape)
            hidden_shape = tuple(input_shape) + (self.d_model,)
        else:
            validation.check_last_dim("inputs", input_shape, self.d_model, "d_model")
            hidden_shape = tuple(input_shape)
        self.dropout_layer = Dropout(
            self.dropout, dtype=self.dtype_policy, name="embedding_dropout"
        )
        self.stack = [
            self.layer_class(
                **self.layer_kwargs, dtype=self.dtype_policy, name=f"{prefix}_{i}"
            )
            for i in range(self.num_layers)
        ]
        for layer in self.stack:
            layer.build(hidden_shape, *other_shapes)
        if self.norm_first:
            # Pre-LN leaves the last residual sum unnormalized.
            self.final_layer_norm = keras.layers.LayerNormalization(
                epsilon=self.layer_kwargs["layer_norm_epsilon"],
                dtype=self.dtype_policy,
                name="final_layer_norm",
            )
            self.final_layer_norm.build(hidden_shape)
        return hidden_shape

    def _embed(self, inputs, padding_mask, training):
        """Ids -> vectors (when the stack owns an embedding), then dropout."""
        if self.vocab_size is not None:
            x = self.embedding(inputs)
            if padding_mask is None:
                padding_mask = self.embedding.compute_mask(inputs)
        else:
            validation.check_rank("inputs", inputs, {3})
            x = inputs
            if padding_mask is None:
                padding_mask = implicit_mask(inputs)
        return self.dropout_layer(x, training=training), padding_mask

    def _finish(self, x):
        return self.final_layer_norm(x) if self.norm_first else x

    def compute_mask(self, inputs, mask=None, *args, **kwargs):
        if self.vocab_size is not None:
            return keras.ops.not_equal(inputs, 0)
        return mask

    def compute_output_shape(self, input_shape, *args, **kwargs):
        if self.vocab_size is not None:
            return tuple(input_shape) + (self.d_model,)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(self.layer_kwargs)
        config.update(
            {
                "num_layers": self.num_layers,
                "vocab_size": self.vocab_size,
                "max_length": self.max_length,
                "position": self.position,
            }
        )
        if self.layer_class is not type(self).layer_class:
            config["layer_class"] = layer_class_name(self.layer_class)
        return config


@keras.saving.register_keras_serializable(package="tf_transformer")
class Encoder(_Stack):
    """The encoder stack: embedding, dropout and `num_layers` `EncoderLayer`s.

    With `vocab_size` set, the encoder reads token ids and embeds them with a
    `PositionalEmbedding` (id 0 is padding). With `vocab_size=None` it reads
    vectors of size `d_model` that are already embedded.

    Args:
        num_layers: number of encoder layers N (6 in the paper).
        d_model, num_heads, dff, dropout, attention_dropout, activation,
        norm_first, layer_norm_epsilon, kernel_initializer, bias_initializer:
            as in `EncoderLayer`. With `norm_first=True` a final LayerNorm
            follows the stack.
        vocab_size: size of the source vocabulary, or None for vector inputs.
            Defaults to None.
        max_length: longest accepted sequence. Defaults to 2048.
        position: `"sinusoidal"` or `"learned"`. Defaults to `"sinusoidal"`.
        layer_class: the class of the stacked layers, a subclass of
            `EncoderLayer` or a class with the same constructor and call
            arguments (or its registered name). Defaults to `EncoderLayer`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: ids (batch, seq_len) or vectors (batch, seq_len, d_model).
        padding_mask: optional boolean (batch, seq_len), True at real tokens;
            defaults to `ids != 0`, or to the Keras mask of vector inputs.
        training: whether dropout is active.
        return_attention_scores: if True, return `(outputs, weights)` where
            weights is a list with one (batch, num_heads, seq_len, seq_len)
            tensor per layer.
        attention_mask: optional boolean mask broadcastable to
            (batch, seq_len, seq_len) given to every layer, combined with the
            padding mask by AND; `causal_mask(seq_len)` makes the stack a
            decoder-only (GPT) stack.

    Example:

    >>> encoder = Encoder(num_layers=2, d_model=16, num_heads=2, dff=32,
    ...                   vocab_size=100)
    >>> encoder(tf.constant([[5, 6, 7, 0]])).shape
    TensorShape([1, 4, 16])
    """

    layer_class = EncoderLayer

    def build(self, input_shape):
        self._build_stack(input_shape, "encoder_layer")
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        training=None,
        return_attention_scores=False,
        attention_mask=None,
    ):
        x, padding_mask = self._embed(inputs, padding_mask, training)
        weights = []
        for layer in self.stack:
            x, layer_weights = layer(
                x,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=True,
            )
            weights.append(layer_weights)
        x = self._finish(x)
        if return_attention_scores:
            return x, weights
        return x

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        shape = self.compute_output_shape(inputs.shape)
        outputs = keras.KerasTensor(shape, self.compute_dtype)
        if not return_attention_scores:
            return outputs
        heads = self.layer_kwargs["num_heads"]
        weights_shape = (shape[0], heads, shape[1], shape[1])
        return outputs, [
            keras.KerasTensor(weights_shape, self.compute_dtype)
            for _ in range(self.num_layers)
        ]
