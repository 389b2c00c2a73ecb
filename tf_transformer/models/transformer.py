"""The encoder-decoder Transformer model."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.decoder import Decoder
from tf_transformer.layers.encoder import (
    Encoder,
    layer_class_name,
    resolve_layer_class,
)
from tf_transformer.layers.positional import PositionalEmbedding
from tf_transformer.models._eager_build import BuiltBeforeTracing


class TransformerBase(BuiltBeforeTracing):
    """Everything of `Transformer` but its forward pass: arguments, sublayers,
    build and config.

    Creates `source_embedding`, `target_embedding` (the same layer with
    `shared_embeddings=True`), `encoder` (an `Encoder` reading vectors),
    `decoder` (a `Decoder`) and `output_projection` (float32 logits).
    `Transformer` adds `call`; a subclass can write its own.

    Args:
        num_layers: encoder and decoder layers each (6 in the paper).
        d_model: model width (512 in the paper).
        num_heads: attention heads (8 in the paper).
        dff: feed-forward hidden size (2048 in the paper).
        input_vocab_size: size of the source vocabulary.
        target_vocab_size: size of the target vocabulary.
        max_length: longest accepted source or target sequence.
            Defaults to 2048.
        dropout: residual and embedding dropout. Defaults to 0.1.
        attention_dropout: dropout on attention weights. Defaults to 0.
        activation: feed-forward activation. Defaults to `"relu"`.
        norm_first: pre-LN if True, post-LN (the paper) if False.
            Defaults to False.
        layer_norm_epsilon: Defaults to 1e-5.
        position: `"sinusoidal"` or `"learned"`. Defaults to `"sinusoidal"`.
        shared_embeddings: one embedding table for source and target, as in
            the paper's shared source-target vocabulary; needs equal
            vocabulary sizes. Defaults to False.
        encoder_layer_class: the class of the encoder's layers (a subclass
            of `EncoderLayer`, or its registered name). Defaults to
            `EncoderLayer`.
        decoder_layer_class: the class of the decoder's layers. Defaults to
            `DecoderLayer`.
        **kwargs: base model arguments such as `name` and `dtype`.

    """

    def __init__(
        self,
        num_layers,
        d_model,
        num_heads,
        dff,
        input_vocab_size,
        target_vocab_size,
        max_length=2048,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        position="sinusoidal",
        shared_embeddings=False,
        encoder_layer_class=None,
        decoder_layer_class=None,
        **kwargs,
    ):
        # Inputs are token ids: never cast them to the float compute dtype
        # (a float id is an error, reported by call()).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.input_vocab_size = validation.check_int(
            "input_vocab_size", input_vocab_size
        )
        self.target_vocab_size = validation.check_int(
            "target_vocab_size", target_vocab_size
        )
        self.shared_embeddings = validation.check_bool(
            "shared_embeddings", shared_embeddings
        )
        if shared_embeddings and input_vocab_size != target_vocab_size:
            raise ValueError(
                "`shared_embeddings=True` needs input_vocab_size == target_vocab_size. "
                f"Received: input_vocab_size={input_vocab_size}, "
                f"target_vocab_size={target_vocab_size}"
            )
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
        self.max_length = validation.check_int("max_length", max_length)
        self.position = validation.check_choice(
            "position", position, ("sinusoidal", "learned")
        )
        # The stacks read embedded vectors; the model owns the embeddings so
        # that they can be shared and so padding masks stay explicit.
        encoder_layer_class = resolve_layer_class(
            "encoder_layer_class", encoder_layer_class, None
        )
        decoder_layer_class = resolve_layer_class(
            "decoder_layer_class", decoder_layer_class, None
        )
        self.encoder = Encoder(
            **self.stack_kwargs,
            layer_class=encoder_layer_class,
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.decoder = Decoder(
            **self.stack_kwargs,
            layer_class=decoder_layer_class,
            dtype=self.dtype_policy,
            name="decoder",
        )
        self.source_embedding = self._embedding(input_vocab_size, "source_embedding")
        self.target_embedding = (
            self.source_embedding
            if shared_embeddings
            else self._embedding(target_vocab_size, "target_embedding")
        )
        # Logits in float32 even under mixed precision: the softmax of the
        # loss needs the range.
        self.output_projection = keras.layers.Dense(
            target_vocab_size, dtype="float32", name="output_projection"
        )

    @property
    def input_dtype(self):
        """Token ids are int32 (used e.g. for the SavedModel signature)."""
        return "int32"

    def _embedding(self, vocab_size, name):
        return PositionalEmbedding(
            vocab_size,
            self.stack_kwargs["d_model"],
            max_length=self.max_length,
            position=self.position,
            mask_zero=False,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        source_shape, target_shape = _split_pair_shape(input_shape)
        d_model = self.stack_kwargs["d_model"]
        self.source_embedding.build(source_shape)
        if not self.shared_embeddings:
            self.target_embedding.build(target_shape)
        self.encoder.build(tuple(source_shape) + (d_model,))
        self.decoder.build(
            tuple(target_shape) + (d_model,), tuple(source_shape) + (d_model,)
        )
        self.output_projection.build(tuple(target_shape) + (d_model,))
        self.built = True

    def _any_length_shape(self):
        return ((None, None), (None, None))

    def _one_token_inputs(self, ids):
        return (ids, ids)

    def split_inputs(self, inputs):
        """`(source_ids, target_in_ids)` from `inputs`, checked: a pair of
        integer (batch, length) tensors."""
        return _split_pair("inputs", inputs)

    def compute_output_shape(self, input_shape):
        _, target_shape = _split_pair_shape(input_shape)
        return tuple(target_shape) + (self.target_vocab_size,)

    def get_config(self):
        config = super().get_config()
        stack_config = self.encoder.get_config()
        config.update({key: stack_config[key] for key in self.stack_kwargs})
        config.update(
            {
                "input_vocab_size": self.input_vocab_size,
                "target_vocab_size": self.target_vocab_size,
                "max_length": self.max_length,
                "position": self.position,
                "shared_embeddings": self.shared_embeddings,
            }
        )
        for key, stack in (("encoder", self.encoder), ("decoder", self.decoder)):
            if stack.layer_class is not type(stack).layer_class:
                config[f"{key}_layer_class"] = layer_class_name(stack.layer_class)
        return config


@keras.saving.register_keras_serializable(package="tf_transformer")
class Transformer(TransformerBase):
    """The Transformer of "Attention Is All You Need" for sequence to sequence.

    source ids -> embedding -> Encoder; target ids (shifted right, starting
    with `[START]`) -> embedding -> Decoder attending to the encoder output
    -> a dense layer giving one logit per target-vocabulary token.

    Padding (id 0) is read from the ids and passed to every attention layer
    as an explicit mask; the logits carry no Keras mask, so the losses decide
    how padding counts (see `masked_loss`).

    Constructor arguments: see `TransformerBase`: the sizes (`num_layers`,
    `d_model`, `num_heads`, `dff`, `input_vocab_size`, `target_vocab_size`),
    `max_length`, `dropout`, `attention_dropout`, `activation`, `norm_first`,
    `layer_norm_epsilon`, `position`, `shared_embeddings` and the layer
    classes `encoder_layer_class` / `decoder_layer_class`.

    Call arguments:
        inputs: a tuple `(source_ids, target_in_ids)` of integer tensors
            (batch, source_len) and (batch, target_len).
        training: whether dropout is active.
        return_attention_scores: if True, return `(logits, weights)` with
            weights `{"encoder": [...], "decoder_self_attention": [...],
            "decoder_cross_attention": [...]}`, one tensor per layer.

    Returns:
        float32 logits (batch, target_len, target_vocab_size), also under a
        mixed-precision dtype policy.

    Example:

    >>> model = Transformer(num_layers=2, d_model=32, num_heads=4, dff=64,
    ...                     input_vocab_size=100, target_vocab_size=120)
    >>> model((tf.constant([[5, 6, 0]]), tf.constant([[2, 9]]))).shape
    TensorShape([1, 2, 120])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def call(self, inputs, training=None, return_attention_scores=False):
        source_ids, target_ids = self.split_inputs(inputs)
        source_mask = tf.not_equal(source_ids, 0)  # (batch, source_len)
        target_mask = tf.not_equal(target_ids, 0)  # (batch, target_len)

        encoded, encoder_weights = self.encoder(
            self.source_embedding(source_ids),
            padding_mask=source_mask,
            training=training,
            return_attention_scores=True,
        )
        decoded, decoder_weights = self.decoder(
            self.target_embedding(target_ids),
            encoded,
            padding_mask=target_mask,
            encoder_padding_mask=source_mask,
            training=training,
            return_attention_scores=True,
        )
        logits = self.output_projection(decoded)  # (batch, target_len, vocab)
        if return_attention_scores:
            return logits, {
                "encoder": encoder_weights,
                "decoder_self_attention": decoder_weights["self_attention"],
                "decoder_cross_attention": decoder_weights["cross_attention"],
            }
        return logits


def decode_to_logits(
    model,
    target_ids,
    memory,
    memory_mask,
    encoder_weights,
    training,
    return_attention_scores,
):
    """The decoder side of an encoder-decoder model (`Transformer`,
    `ImageCaptioner`): target ids -> embedding -> decoder reading `memory`
    -> float32 logits, with the attention weights when asked."""
    decoded, decoder_weights = model.decoder(
        model.target_embedding(target_ids),
        memory,
        padding_mask=tf.not_equal(target_ids, 0),  # (batch, target_len)
        encoder_padding_mask=memory_mask,
        training=training,
        return_attention_scores=True,
    )
    logits = model.output_projection(decoded)  # (batch, target_len, vocab)
    if return_attention_scores:
        return logits, {
            "encoder": encoder_weights,
            "decoder_self_attention": decoder_weights["self_attention"],
            "decoder_cross_attention": decoder_weights["cross_attention"],
        }
    return logits


def _split_pair(name, inputs, parts=("source_ids", "target_in_ids")):
    """The two inputs of a pair, checked as token ids (all but the first of
    `parts` when it is not `source_ids`: the model checks that one)."""
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        raise ValueError(
            f"`{name}` must be a pair ({parts[0]}, {parts[1]}). "
            f"Received: {name} of type {type(inputs).__name__}"
            + (
                f" with {len(inputs)} items"
                if isinstance(inputs, (tuple, list))
                else ""
            )
        )
    source_ids, target_ids = inputs
    for part, ids in zip(parts, inputs, strict=True):
        if part in ("source_ids", "target_in_ids"):
            validation.check_integer_ids(part, ids)
            validation.check_rank(part, ids, {2})
    return source_ids, target_ids


def _split_pair_shape(input_shape, parts=("source_ids", "target_in_ids")):
    if (
        isinstance(input_shape, (tuple, list))
        and len(input_shape) == 2
        and all(isinstance(s, (tuple, list)) for s in input_shape)
    ):
        return tuple(input_shape[0]), tuple(input_shape[1])
    raise ValueError(
        f"`inputs` must be a pair ({parts[0]}, {parts[1]}). "
        f"Received: inputs with shape {input_shape}"
    )
