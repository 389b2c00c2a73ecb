"""The Vision Transformer: an image classified as a sequence of patches."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.class_token import ClassToken
from tf_transformer.layers.encoder import Encoder
from tf_transformer.layers.learned_position import LearnedPositionEmbedding
from tf_transformer.layers.patches import PatchEmbedding, num_patches

POOLINGS = ("class_token", "mean")


@keras.saving.register_keras_serializable(package="tf_transformer")
class VisionTransformer(keras.Model):
    """ViT: patch embedding, learned positions, a pre-LN encoder, a linear head.

    The image is cut into `patch_size` × `patch_size` patches, each patch is
    projected to a d_model vector (`PatchEmbedding`), a learned class token is
    prepended (`ClassToken`, with `pooling="class_token"`), a learned position
    vector is added to every token (`LearnedPositionEmbedding`), and the
    sequence runs through the library's `Encoder` with pre-LayerNorm layers
    and a final LayerNorm. The classifier reads the encoder's output at the
    class token, or the mean over the patches with `pooling="mean"`.

    Args:
        image_shape: (height, width, channels) of the input images; height and
            width divisible by `patch_size`.
        patch_size: side of a square patch in pixels.
        num_layers: number of encoder layers.
        d_model: size of the token vectors; divisible by `num_heads`.
        num_heads: attention heads per layer.
        dff: hidden size of the feed-forward networks.
        num_classes: number of classes of the linear head, or None for no
            head: the model then returns the encoder's output sequence (the
            memory an image captioner's decoder attends to). Defaults to None.
        pooling: `"class_token"` or `"mean"`. Defaults to `"class_token"`.
        dropout: dropout after the position embedding and on every residual
            branch. Defaults to 0.
        attention_dropout: dropout on attention weights. Defaults to 0.
        activation: feed-forward activation. Defaults to `"gelu"` (the ViT's).
        layer_norm_epsilon: Defaults to 1e-6 (the ViT's).
        **kwargs: base model arguments such as `name` and `dtype`.

    Call arguments:
        images: (batch, height, width, channels) matching `image_shape`.
        training: whether dropout is active.
        return_attention_scores: if True, return `(outputs, weights)`, weights
            a list with one (batch, num_heads, tokens, tokens) tensor per
            layer; token 0 is the class token when there is one.

    Returns:
        float32 logits (batch, num_classes), also under mixed precision; with
        `num_classes=None` the encoded sequence (batch, tokens, d_model),
        tokens = 1 + num_patches with a class token, else num_patches.

    Example:

    >>> model = VisionTransformer((8, 8, 1), patch_size=2, num_layers=1,
    ...                           d_model=16, num_heads=2, dff=32, num_classes=10)
    >>> model(tf.zeros((3, 8, 8, 1))).shape
    TensorShape([3, 10])

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
        Image Recognition at Scale", arXiv:2010.11929.
    """

    def __init__(
        self,
        image_shape,
        patch_size,
        num_layers,
        d_model,
        num_heads,
        dff,
        num_classes=None,
        pooling="class_token",
        dropout=0.0,
        attention_dropout=0.0,
        activation="gelu",
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = _check_image_shape(image_shape)
        self.patch_size = validation.check_int("patch_size", patch_size)
        if self.image_shape[0] % patch_size or self.image_shape[1] % patch_size:
            raise ValueError(
                "`patch_size` must divide the image height and width. Received: "
                f"patch_size={patch_size}, image_shape={self.image_shape}"
            )
        self.num_classes = validation.check_optional_int("num_classes", num_classes)
        self.pooling = validation.check_choice("pooling", pooling, POOLINGS)
        self.num_patches = num_patches(self.image_shape, patch_size)
        self.num_tokens = self.num_patches + (pooling == "class_token")
        self.patch_embedding = PatchEmbedding(
            patch_size, d_model, dtype=self.dtype_policy, name="patch_embedding"
        )
        self.class_token = (
            ClassToken(dtype=self.dtype_policy, name="class_token")
            if pooling == "class_token"
            else None
        )
        self.position_embedding = LearnedPositionEmbedding(
            self.num_tokens, dtype=self.dtype_policy, name="position_embedding"
        )
        self.encoder = Encoder(
            num_layers,
            d_model,
            num_heads,
            dff,
            max_length=self.num_tokens,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation=activation,
            norm_first=True,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="encoder",
        )
        # Logits in float32 even under mixed precision, for the softmax.
        self.head = (
            keras.layers.Dense(num_classes, dtype="float32", name="head")
            if num_classes is not None
            else None
        )
        # Every shape is known now: build at once, so that no variable is
        # created inside a traced training step (which would trace it twice).
        self.build()

    @property
    def d_model(self):
        return self.encoder.d_model

    def build(self, input_shape=None):
        if self.built:  # built by the constructor: the shapes are fixed
            return
        input_shape = (None,) + self.image_shape
        d_model = self.d_model
        self.patch_embedding.build(input_shape)
        sequence_shape = (None, self.num_tokens, d_model)
        if self.class_token is not None:
            self.class_token.build((None, self.num_patches, d_model))
        self.position_embedding.build(sequence_shape)
        self.encoder.build(sequence_shape)
        if self.head is not None:
            self.head.build((None, d_model))
        self.built = True

    def encode(self, images, training=None, return_attention_scores=False):
        """The encoder's output sequence (batch, tokens, d_model), no head.

        Token 0 is the class token when `pooling="class_token"`; the others
        are the patches in reading order. With `return_attention_scores`,
        also the per-layer attention weights.
        """
        self._check_images(images)
        x = self.patch_embedding(images)  # (batch, num_patches, d_model)
        if self.class_token is not None:
            x = self.class_token(x)  # (batch, 1 + num_patches, d_model)
        x = self.position_embedding(x)
        return self.encoder(
            x, training=training, return_attention_scores=return_attention_scores
        )

    def call(self, images, training=None, return_attention_scores=False):
        encoded, weights = self.encode(
            images, training=training, return_attention_scores=True
        )
        outputs = encoded
        if self.head is not None:
            if self.pooling == "class_token":
                pooled = encoded[:, 0]  # (batch, d_model): the class token
            else:
                pooled = tf.reduce_mean(encoded, axis=1)
            outputs = self.head(pooled)  # (batch, num_classes)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def _check_images(self, images):
        shape = validation.check_rank("images", images, {4})
        if shape is not None and shape[1:] != self.image_shape:
            raise ValueError(
                f"`images` must have shape (batch,) + image_shape={self.image_shape}. "
                f"Received: images with shape {shape}"
            )

    def compute_output_shape(self, input_shape):
        if self.head is not None:
            return (input_shape[0], self.num_classes)
        return (input_shape[0], self.num_tokens, self.d_model)

    def get_config(self):
        config = super().get_config()
        encoder = self.encoder.get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "num_layers": encoder["num_layers"],
                "d_model": encoder["d_model"],
                "num_heads": encoder["num_heads"],
                "dff": encoder["dff"],
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "dropout": encoder["dropout"],
                "attention_dropout": encoder["attention_dropout"],
                "activation": encoder["activation"],
                "layer_norm_epsilon": encoder["layer_norm_epsilon"],
            }
        )
        return config


def _check_image_shape(image_shape):
    """(height, width, channels) of positive ints, as a tuple."""
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
        raise ValueError(
            "`image_shape` must be (height, width, channels). "
            f"Received: image_shape={image_shape!r}"
        )
    for size in image_shape:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                "`image_shape` must hold three positive ints. "
                f"Received: image_shape={image_shape!r}"
            )
    return tuple(image_shape)
