"""The gated feed-forward network of Llama-style models (SwiGLU)."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.initializers import clone_initializer


def swiglu_width(d_model, multiple_of=1):
    """The hidden width ⅔ · 4 · d_model, rounded up to `multiple_of`.

    SwiGLU has three weight matrices where the paper's FFN has two; a hidden
    width of ⅔ of the paper's 4 · d_model keeps the parameter count equal
    (3 · d_model · ⅔ · 4 · d_model = 2 · d_model · 4 · d_model).
    """
    d_model = validation.check_int("d_model", d_model)
    multiple_of = validation.check_int("multiple_of", multiple_of)
    width = (2 * 4 * d_model + 2) // 3  # round(8 d_model / 3)
    return -(-width // multiple_of) * multiple_of


@keras.saving.register_keras_serializable(package="tf_transformer")
class SwiGLUFeedForward(keras.layers.Layer):
    """FFN(x) = (SiLU(x W_gate) ⊙ x W_up) W_down, no biases.

    The hidden vector of the paper's FFN, max(0, x W1), becomes a product of
    two projections: one passed through SiLU(z) = z · sigmoid(z) acts as a
    gate on the other. Each position is transformed alone, as in the paper.

    Args:
        d_model: size of the input and output vectors.
        dff: hidden width; `swiglu_width(d_model)` (⅔ · 4 · d_model) keeps the
            paper's parameter count.
        dropout: dropout rate on the output. Defaults to 0.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, seq_len, d_model).
        training: whether dropout is active.

    Example:

    >>> ffn = SwiGLUFeedForward(d_model=48, dff=swiglu_width(48))
    >>> ffn(tf.zeros((2, 5, 48))).shape
    TensorShape([2, 5, 48])

    References:
        Shazeer, "GLU Variants Improve Transformer", arXiv:2002.05202.
    """

    def __init__(
        self, d_model, dff, dropout=0.0, kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        self.d_model = validation.check_int("d_model", d_model)
        self.dff = validation.check_int("dff", dff)
        self.dropout = validation.check_rate("dropout", dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        validation.check_last_dim("inputs", input_shape, self.d_model, "d_model")
        hidden_shape = tuple(input_shape[:-1]) + (self.dff,)
        for name, units, shape in (
            ("gate_dense", self.dff, input_shape),
            ("up_dense", self.dff, input_shape),
            ("down_dense", self.d_model, hidden_shape),
        ):
            dense = keras.layers.Dense(
                units,
                use_bias=False,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=name,
            )
            dense.build(shape)
            setattr(self, name, dense)
        self.dropout_layer = Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.built = True

    def call(self, inputs, training=None):
        validation.check_last_dim("inputs", inputs, self.d_model, "d_model")
        gate = self.gate_dense(inputs)  # (batch, seq_len, dff)
        # SiLU in float32, as the softmax: its sigmoid saturates in float16.
        gate = tf.cast(tf.nn.silu(tf.cast(gate, tf.float32)), self.compute_dtype)
        hidden = gate * self.up_dense(inputs)  # (batch, seq_len, dff)
        outputs = self.down_dense(hidden)  # (batch, seq_len, d_model)
        return self.dropout_layer(outputs, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "dff": self.dff,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
