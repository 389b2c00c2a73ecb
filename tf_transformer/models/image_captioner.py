"""The image captioner: a Vision Transformer encoder, a Transformer decoder."""

import keras
import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.decoder import Decoder
from tf_transformer.layers.positional import PositionalEmbedding
from tf_transformer.models._eager_build import BuiltBeforeTracing
from tf_transformer.models.transformer import (
    _split_pair,
    _split_pair_shape,
    decode_to_logits,
)
from tf_transformer.models.vision_transformer import VisionTransformer

_PARTS = ("images", "target_in_ids")


@keras.saving.register_keras_serializable(package="tf_transformer")
class ImageCaptioner(BuiltBeforeTracing):
    """Vector → sequence: an image read by a ViT, described by a decoder.

    The image is encoded by a `VisionTransformer` without head and without
    class token (`num_classes=None`, `pooling="mean"`): one d_model vector per
    patch. That sequence is the memory the `Decoder`'s cross-attention reads,
    exactly as the translator's decoder reads its encoded source sentence;
    nothing else changes, so `greedy_decode` and `beam_search` (with their
    key/value cache) decode a captioner as they decode a `Transformer`, the
    images taking the place of the source ids.

    Padding (id 0) of the decoder input is read from the ids and passed to the
    decoder as an explicit mask; every patch may be attended to.

    Args:
        image_shape: (height, width, channels) of the input images; height and
            width divisible by `patch_size`.
        patch_size: side of a square patch in pixels.
        num_layers: decoder layers.
        d_model: model width, shared by encoder and decoder.
        num_heads: attention heads of every layer.
        dff: feed-forward hidden size of every layer.
        target_vocab_size: size of the caption vocabulary.
        num_encoder_layers: ViT encoder layers. Defaults to `num_layers`.
        max_length: longest decoder input. Defaults to 64.
        dropout: residual and embedding dropout. Defaults to 0.1.
        attention_dropout: dropout on attention weights. Defaults to 0.
        activation: decoder feed-forward activation (the encoder keeps the
            ViT's GELU). Defaults to `"relu"`.
        norm_first: pre-LN decoder if True, post-LN (the paper) if False.
            Defaults to False.
        layer_norm_epsilon: of the decoder. Defaults to 1e-5.
        position: decoder positions, `"sinusoidal"` or `"learned"`.
            Defaults to `"sinusoidal"`.
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        inputs: a tuple `(images, target_in_ids)`: float images (batch,
            height, width, channels) and integer ids (batch, target_len).
        training: whether dropout is active.
        return_attention_scores: if True, return `(logits, weights)` with
            weights `{"encoder": [...], "decoder_self_attention": [...],
            "decoder_cross_attention": [...]}`, one tensor per layer; a
            cross-attention tensor is (batch, heads, target_len, patches),
            the patches in reading order.

    Returns:
        float32 logits (batch, target_len, target_vocab_size), also under a
        mixed-precision dtype policy.

    Example:

    >>> model = ImageCaptioner((8, 24, 1), patch_size=4, num_layers=1,
    ...                        d_model=32, num_heads=4, dff=64,
    ...                        target_vocab_size=100)
    >>> model((tf.zeros((2, 8, 24, 1)), tf.constant([[2, 9], [2, 0]]))).shape
    TensorShape([2, 2, 100])

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762;
        Dosovitskiy et al., "An Image is Worth 16x16 Words", arXiv:2010.11929.
    """

    def __init__(
        self,
        image_shape,
        patch_size,
        num_layers,
        d_model,
        num_heads,
        dff,
        target_vocab_size,
        num_encoder_layers=None,
        max_length=64,
        dropout=0.1,
        attention_dropout=0.0,
        activation="relu",
        norm_first=False,
        layer_norm_epsilon=1e-5,
        position="sinusoidal",
        **kwargs,
    ):
        # Token ids must never be cast to the float compute dtype; the images
        # are cast by the patch embedding itself.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.target_vocab_size = validation.check_int(
            "target_vocab_size", target_vocab_size
        )
        self.num_encoder_layers = validation.check_int(
            "num_encoder_layers",
            num_layers if num_encoder_layers is None else num_encoder_layers,
        )
        self.max_length = validation.check_int("max_length", max_length)
        self.position = validation.check_choice(
            "position", position, ("sinusoidal", "learned")
        )
        self.encoder = VisionTransformer(
            image_shape,
            patch_size,
            self.num_encoder_layers,
            d_model,
            num_heads,
            dff,
            num_classes=None,
            pooling="mean",  # no class token: the memory is the patches
            dropout=dropout,
            attention_dropout=attention_dropout,
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.image_shape = self.encoder.image_shape
        self.patch_size = self.encoder.patch_size
        self.decoder = Decoder(
            num_layers,
            d_model,
            num_heads,
            dff,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="decoder",
        )
        self.target_embedding = PositionalEmbedding(
            target_vocab_size,
            d_model,
            max_length=self.max_length,
            position=self.position,
            mask_zero=False,
            dtype=self.dtype_policy,
            name="target_embedding",
        )
        # Logits in float32 even under mixed precision, for the softmax.
        self.output_projection = keras.layers.Dense(
            target_vocab_size, dtype="float32", name="output_projection"
        )

    @property
    def d_model(self):
        return self.encoder.d_model

    def _default_save_signature(self):
        """The SavedModel signature Keras adds when a captioner is saved
        (e.g. inside a `Captioner`): Keras would give both inputs one dtype,
        the images are float32 and the ids int32."""
        signature = (
            (
                tf.TensorSpec((None,) + self.image_shape, tf.float32),
                tf.TensorSpec((None, None), tf.int32),
            ),
        )

        @tf.function(input_signature=signature)
        def serving_default(inputs):
            return self(inputs)

        return serving_default

    def build(self, input_shape=None):
        if self.built:
            return
        target_shape = (None, None)
        if input_shape is not None:
            target_shape = tuple(_split_inputs_shape(input_shape)[1])
        memory_shape = (None, self.encoder.num_tokens, self.d_model)
        self.target_embedding.build(target_shape)
        self.decoder.build(target_shape + (self.d_model,), memory_shape)
        self.output_projection.build(target_shape + (self.d_model,))
        self.built = True

    def _any_length_shape(self):
        return ((None,) + self.image_shape, (None, None))

    def _one_token_inputs(self, ids):
        return (np.zeros((len(ids),) + self.image_shape, "float32"), ids)

    def encode(self, images, training=None, return_attention_scores=False):
        """The memory: (batch, patches, d_model), one vector per patch."""
        _check_images(images)
        return self.encoder.encode(
            images, training=training, return_attention_scores=return_attention_scores
        )

    def call(self, inputs, training=None, return_attention_scores=False):
        images, target_ids = _split_inputs(inputs)
        memory, encoder_weights = self.encode(
            images, training=training, return_attention_scores=True
        )  # (batch, patches, d_model); every patch may be attended to
        return decode_to_logits(
            self,
            target_ids,
            memory,
            None,
            encoder_weights,
            training,
            return_attention_scores,
        )

    def compute_output_shape(self, input_shape):
        _, target_shape = _split_inputs_shape(input_shape)
        return tuple(target_shape) + (self.target_vocab_size,)

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        decoder = self.decoder.get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "num_layers": decoder["num_layers"],
                "d_model": decoder["d_model"],
                "num_heads": decoder["num_heads"],
                "dff": decoder["dff"],
                "target_vocab_size": self.target_vocab_size,
                "num_encoder_layers": encoder["num_layers"],
                "max_length": self.max_length,
                "dropout": decoder["dropout"],
                "attention_dropout": decoder["attention_dropout"],
                "activation": decoder["activation"],
                "norm_first": decoder["norm_first"],
                "layer_norm_epsilon": decoder["layer_norm_epsilon"],
                "position": self.position,
            }
        )
        return config


def _check_images(images):
    validation.check_rank("images", images, {4})
    dtype = getattr(images, "dtype", None)
    if dtype is not None and "float" not in keras.backend.standardize_dtype(dtype):
        raise TypeError(
            "`images` must be float pixels (0 = background, 1 = ink). "
            f"Received: images with dtype {keras.backend.standardize_dtype(dtype)}"
        )


def _split_inputs(inputs):
    images, target_ids = _split_pair("inputs", inputs, _PARTS)
    _check_images(images)
    return images, target_ids


def _split_inputs_shape(input_shape):
    return _split_pair_shape(input_shape, _PARTS)


def caption_inputs(encoded, caption_ids, language_ids):
    """The captioner's wiring for one teacher-forced batch (lesson 13).

    A Vision Transformer's encoder output becomes the decoder's memory and a
    framed caption becomes the decoder's input and labels: the patch vectors
    without the class token (cross-attention reads every patch itself, so the
    summary vector a classifier needs is not needed), and the caption with
    its language token in place of `[START]`, shifted by one for the labels
    (Xu et al., "Show, Attend and Tell", arXiv:1502.03044, read a grid of
    image features the same way).

    Args:
        encoded: float (batch, 1 + num_patches, d_model), a
            `VisionTransformer`'s `encode(images)` with its class token at
            position 0.
        caption_ids: integer (batch, length), each caption tokenized as
            `[START] w1 … wn [END]` and padded with 0 on the right.
        language_ids: integer (batch,), the language token that asks each
            row for its language.

    Returns:
        `(memory, target_in_ids, target_out_ids)`: memory (batch,
        num_patches, d_model), `encoded` without position 0; target_in_ids
        (batch, length - 1), `caption_ids` without its last column and with
        the language token in column 0; target_out_ids (batch, length - 1),
        `caption_ids` without its first column (what each position must
        predict). The ids keep the dtype of `caption_ids`. A caption shorter
        than the longest keeps its `[END]` in target_in_ids, at a position
        whose label is padding (0), which the masked loss ignores.

    Example:

    >>> memory, target_in, target_out = caption_inputs(
    ...     tf.zeros((1, 13, 64)), tf.constant([[2, 57, 88, 3]]), tf.constant([43]))
    >>> memory.shape
    TensorShape([1, 12, 64])
    >>> target_in.numpy().tolist(), target_out.numpy().tolist()
    ([[43, 57, 88]], [[57, 88, 3]])
    """
    encoded = tf.convert_to_tensor(encoded)
    caption_ids = tf.convert_to_tensor(caption_ids)
    validation.check_rank("encoded", encoded, {3})
    validation.check_integer_ids("caption_ids", caption_ids)
    validation.check_rank("caption_ids", caption_ids, {2})
    memory = encoded[:, 1:]  # (batch, num_patches, d_model): the class token dropped
    language = tf.cast(language_ids, caption_ids.dtype)[:, tf.newaxis]  # (batch, 1)
    # [START] w1 … wn [END] → language w1 … wn (input), w1 … wn [END] (labels)
    target_in_ids = tf.concat([language, caption_ids[:, 1:-1]], axis=1)
    target_out_ids = caption_ids[:, 1:]
    return memory, target_in_ids, target_out_ids
