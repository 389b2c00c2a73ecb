"""A decoder-only (GPT-style) language model: predict the next token."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.encoder import Encoder
from tf_transformer.layers.masks import causal_mask
from tf_transformer.layers.positional import PositionalEmbedding
from tf_transformer.models._eager_build import BuiltBeforeTracing


class CausalLMBase(BuiltBeforeTracing):
    """What the decoder-only models share: token-id inputs, the eager build,
    `generate` and the output shape. A subclass has `vocabulary_size` and
    the three parts the cached decoding step reads: `embedding`, `decoder`
    (its stack of blocks) and `output_projection`."""

    @property
    def input_dtype(self):
        return "int32"

    def _any_length_shape(self):
        return (None, None)

    def _one_token_inputs(self, ids):
        return ids

    def generate(self, prompt_ids, max_new_tokens, **kwargs):
        """Continue right-padded prompts; see `tf_transformer.generate`."""
        from tf_transformer.inference.generation import generate

        return generate(self, prompt_ids, max_new_tokens, **kwargs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.vocabulary_size,)

    def build(self, input_shape):
        shape = validation.check_rank("token_ids", input_shape, {2})
        self.embedding.build(shape)
        self.decoder.build(tuple(shape) + (self.d_model,))
        self.output_projection.build(tuple(shape) + (self.d_model,))
        self.built = True

    def embed(self, token_ids, padding_mask=None):
        """Checked ids -> `(embedded (batch, seq_len, d_model), padding_mask)`;
        the padding mask defaults to `token_ids != 0`."""
        validation.check_integer_ids("token_ids", token_ids)
        validation.check_rank("token_ids", token_ids, {2})
        if padding_mask is None:
            padding_mask = tf.not_equal(token_ids, 0)  # (batch, seq_len)
        return self.embedding(token_ids), padding_mask


@keras.saving.register_keras_serializable(package="tf_transformer")
class CausalLM(CausalLMBase):
    """A decoder-only Transformer language model, as in GPT.

    token ids -> `PositionalEmbedding` -> `num_layers` blocks of masked
    self-attention + feed-forward -> a dense layer giving one logit per
    vocabulary token. Position t sees positions 0..t only, so the logits at
    t predict token t + 1 and a whole sequence trains in one pass.

    A block is the encoder layer under a causal mask: without an encoder to
    attend to, the decoder layer loses its cross-attention and becomes
    exactly `EncoderLayer` with `causal_mask(seq_len)`. So the stack is an
    `Encoder` (vector inputs) called with that mask.

    Padding (id 0) is read from the ids, or given as `padding_mask`. Prompts
    of different lengths may be padded on the right (a real position never
    sees the padding after it) or on the left (padded keys are masked; the
    positions of a left-padded row start later, which `generate` avoids by
    asking for right padding). The logits carry no Keras mask: the loss
    decides which positions count (see `masked_loss`).

    Args:
        num_layers: number of blocks.
        d_model: model width; divisible by `num_heads`.
        num_heads: attention heads.
        dff: feed-forward hidden size.
        vocabulary_size: number of token ids.
        max_length: longest sequence (prompt + generated tokens).
            Defaults to 2048.
        dropout: residual and embedding dropout. Defaults to 0.1.
        attention_dropout: dropout on attention weights. Defaults to 0.
        activation: feed-forward activation. Defaults to `"relu"`.
        norm_first: pre-LN (GPT-2) if True, post-LN (the paper) if False.
            Defaults to False.
        layer_norm_epsilon: Defaults to 1e-5.
        position: `"sinusoidal"` or `"learned"` (GPT). Defaults to
            `"sinusoidal"`.
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        token_ids: int (batch, seq_len).
        padding_mask: optional boolean (batch, seq_len), True at real tokens.
            Defaults to `token_ids != 0`.
        training: whether dropout is active.
        return_attention_scores: if True, return `(logits, weights)` with one
            (batch, num_heads, seq_len, seq_len) tensor per block.

    Returns:
        float32 logits (batch, seq_len, vocabulary_size), also under a
        mixed-precision dtype policy.

    Example:

    >>> model = CausalLM(num_layers=2, d_model=32, num_heads=4, dff=64,
    ...                  vocabulary_size=100, max_length=64)
    >>> model(tf.constant([[5, 6, 7]])).shape
    TensorShape([1, 3, 100])
    >>> model.generate(tf.constant([[5, 6, 7]]), max_new_tokens=8).shape
    TensorShape([1, 8])

    References:
        Radford et al., "Improving Language Understanding by Generative
        Pre-Training" (2018); Vaswani et al., arXiv:1706.03762.
    """

    def __init__(
        self,
        num_layers,
        d_model,
        num_heads,
        dff,
        vocabulary_size,
        max_length=2048,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        position="sinusoidal",
        **kwargs,
    ):
        # Inputs are token ids: never cast them to the float compute dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.vocabulary_size = validation.check_int("vocabulary_size", vocabulary_size)
        self.max_length = validation.check_int("max_length", max_length)
        self.position = validation.check_choice(
            "position", position, ("sinusoidal", "learned")
        )
        self.d_model = validation.check_int("d_model", d_model)
        self.stack_kwargs = dict(
            num_layers=num_layers,
            d_model=d_model,
            num_heads=num_heads,
            dff=dff,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        self.embedding = PositionalEmbedding(
            vocabulary_size,
            d_model,
            max_length=max_length,
            position=position,
            mask_zero=False,
            dtype=self.dtype_policy,
            name="embedding",
        )
        # GPT calls this stack the decoder; see the class docstring for why
        # it is an Encoder.
        self.decoder = Encoder(
            **self.stack_kwargs, dtype=self.dtype_policy, name="decoder"
        )
        # float32 logits under mixed precision: the softmax needs the range.
        self.output_projection = keras.layers.Dense(
            vocabulary_size, dtype="float32", name="output_projection"
        )

    def call(
        self,
        token_ids,
        padding_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        x, padding_mask = self.embed(token_ids, padding_mask)  # (batch, seq_len, d)
        x, weights = self.decoder(
            x,
            padding_mask=padding_mask,
            attention_mask=causal_mask(tf.shape(token_ids)[1]),  # (seq_len, seq_len)
            training=training,
            return_attention_scores=True,
        )
        logits = self.output_projection(x)  # (batch, seq_len, vocabulary_size)
        if return_attention_scores:
            return logits, weights
        return logits

    def get_config(self):
        config = super().get_config()
        stack_config = self.decoder.get_config()
        config.update({key: stack_config[key] for key in self.stack_kwargs})
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "max_length": self.max_length,
                "position": self.position,
            }
        )
        return config
