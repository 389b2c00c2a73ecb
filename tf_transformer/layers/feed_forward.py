"""The position-wise feed-forward network."""

import keras

from tf_transformer import validation
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.initializers import clone_initializer


class FeedForwardBase(keras.layers.Layer):
    """The Keras plumbing of `FeedForward`: arguments, sublayers, config.

    `FeedForward` subclasses it and writes the idea: `build` creates the two
    dense layers with `self.dense(...)` and builds them with their input
    shapes, `call` applies them in order. The plumbing lives here: the
    checked constructor arguments, `dense` (a `Dense` with a fresh copy of
    the layer's initializers, its dtype policy and a stable name), `build`
    (checks the input size and creates `self.dropout_layer`; a subclass
    calls it first with `super().build(input_shape)`), `check_inputs`,
    `compute_output_shape` and `get_config`.

    FFN(x) = max(0, x W1 + b1) W2 + b2, applied to each position alone.

    Section 3.3 of the paper: two dense layers with a ReLU between them,
    widening each d_model vector to `dff` and projecting it back. The same
    weights serve every position, so the layer mixes channels, never
    positions. Dropout follows the second layer (the paper's residual
    dropout; the residual connection itself belongs to the encoder and
    decoder layers).

    Args:
        d_model: size of the input and output vectors.
        dff: size of the hidden layer (2048 in the paper's base model).
        dropout: dropout rate on the output. Defaults to 0.1.
        activation: activation of the hidden layer, a Keras activation name
            or callable. Defaults to `"relu"`.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model).
        training: whether dropout is active.

    Example:

    >>> ffn = FeedForward(d_model=16, dff=64)
    >>> ffn(tf.zeros((2, 5, 16))).shape
    TensorShape([2, 5, 16])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def __init__(
        self,
        d_model,
        dff,
        dropout=0.1,
        activation="relu",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = validation.check_int("d_model", d_model)
        self.dff = validation.check_int("dff", dff)
        self.dropout = validation.check_rate("dropout", dropout)
        self.activation = validation.check_activation("activation", activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def dense(self, units, name, activation=None):
        """A `Dense(units)` sublayer with the layer's initializers (fresh
        copies, so two sublayers never share a seeded initializer), dtype
        policy and the stable `name`; not built yet."""
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        """Check the input size and create `self.dropout_layer` (the paper's
        residual dropout, the library's `Dropout`)."""
        self.check_inputs(input_shape)
        self.dropout_layer = Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.built = True

    def check_inputs(self, inputs):
        """A clear ValueError when the last axis of `inputs` (a tensor or a
        shape) is not `d_model`."""
        validation.check_last_dim("inputs", inputs, self.d_model, "d_model")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "dff": self.dff,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_transformer")
class FeedForward(FeedForwardBase):
    """FFN(x) = max(0, x W1 + b1) W2 + b2, applied to each position alone.

    Section 3.3 of the paper: two dense layers with a ReLU between them,
    widening each d_model vector to `dff` and projecting it back; dropout
    follows the second. Arguments, sublayer plumbing and config: see
    `FeedForwardBase`.

    Example:

    >>> ffn = FeedForward(d_model=16, dff=64)
    >>> ffn(tf.zeros((2, 5, 16))).shape
    TensorShape([2, 5, 16])
    """

    def build(self, input_shape):
        super().build(input_shape)  # checks the input size, creates dropout_layer
        # W1, b1 and the activation: (..., d_model) -> (..., dff)
        self.intermediate_dense = self.dense(
            self.dff, "intermediate_dense", activation=self.activation
        )
        self.intermediate_dense.build(input_shape)
        # W2, b2: (..., dff) -> (..., d_model)
        self.output_dense = self.dense(self.d_model, "output_dense")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.dff,))

    def call(self, inputs, training=None):
        self.check_inputs(inputs)
        x = self.intermediate_dense(inputs)  # (batch, seq_len, dff)
        x = self.output_dense(x)  # (batch, seq_len, d_model)
        return self.dropout_layer(x, training=training)
