"""Images as sequences: cutting patches and embedding them (the Vision Transformer)."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.initializers import clone_initializer


def extract_patches(images, patch_size):
    """Cut images into non-overlapping square patches, one flat vector each.

    A patch is a `patch_size` × `patch_size` window; the windows tile the
    image without overlap. Patches come in reading order (left to right, then
    top to bottom) and each is flattened row by row, the channels of a pixel
    side by side: the same order as `keras.ops.image.extract_patches`.

    Args:
        images: (batch, height, width, channels) with height and width known
            and divisible by `patch_size`; the batch size may be unknown.
        patch_size: side of a patch in pixels, a positive int.

    Returns:
        (batch, num_patches, patch_size * patch_size * channels) with
        num_patches = (height / patch_size) * (width / patch_size), in the
        dtype of `images`.

    Example:

    >>> extract_patches(tf.zeros((2, 8, 8, 1)), 4).shape
    TensorShape([2, 4, 16])
    """
    images = tf.convert_to_tensor(images)
    check_image_shape(images.shape, patch_size, name="images")
    _, height, width, channels = images.shape
    rows, columns = height // patch_size, width // patch_size
    batch = tf.shape(images)[0]  # unknown until the graph runs
    # Split each image axis into (patch index, pixel inside the patch) ...
    patches = tf.reshape(
        images, (batch, rows, patch_size, columns, patch_size, channels)
    )
    # ... then bring the two patch indices together: (batch, rows, columns,
    # patch_size, patch_size, channels). Without this transpose the flat
    # vectors would mix pixels of neighbouring patches.
    patches = tf.transpose(patches, (0, 1, 3, 2, 4, 5))
    return tf.reshape(
        patches, (batch, rows * columns, patch_size * patch_size * channels)
    )


@keras.saving.register_keras_serializable(package="tf_transformer")
class PatchEmbedding(keras.layers.Layer):
    """Image patches → d_model vectors: `extract_patches` then one linear map.

    Every patch, flattened to patch_size² · channels numbers, is multiplied by
    the same (patch_size² · channels, d_model) matrix and shifted by a bias:
    the "linear projection of flattened patches" of the Vision Transformer.
    The same map is a `keras.layers.Conv2D(d_model, patch_size,
    strides=patch_size)` whose kernel, reshaped, is this layer's kernel.

    Args:
        patch_size: side of a square patch in pixels.
        d_model: size of each patch vector.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: images (batch, height, width, channels), height and width
            divisible by `patch_size`.

    Returns:
        (batch, num_patches, d_model), patches in reading order.

    Example:

    >>> embed = PatchEmbedding(patch_size=4, d_model=16)
    >>> embed(tf.zeros((2, 8, 8, 1))).shape
    TensorShape([2, 4, 16])

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
        Image Recognition at Scale", arXiv:2010.11929.
    """

    def __init__(
        self,
        patch_size,
        d_model,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = validation.check_int("patch_size", patch_size)
        self.d_model = validation.check_int("d_model", d_model)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        check_image_shape(input_shape, self.patch_size)
        channels = input_shape[-1]
        self.projection = keras.layers.Dense(
            self.d_model,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build((None, None, self.patch_size**2 * channels))
        self.built = True

    def call(self, inputs):
        patches = extract_patches(inputs, self.patch_size)  # (batch, patches, p²c)
        return self.projection(patches)  # (batch, patches, d_model)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], num_patches(input_shape, self.patch_size), self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "d_model": self.d_model,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def check_image_shape(shape, patch_size, name="inputs"):
    """Raise unless `shape` is (batch, height, width, channels) cut by patch_size."""
    validation.check_int("patch_size", patch_size)
    shape = tuple(shape)
    if len(shape) != 4 or None in shape[1:]:
        raise ValueError(
            f"`{name}` must be images (batch, height, width, channels) with known "
            f"height, width and channels. Received: {name} with shape {shape}"
        )
    if shape[1] % patch_size or shape[2] % patch_size:
        raise ValueError(
            f"`patch_size` must divide the image height and width. Received: "
            f"patch_size={patch_size}, {name} with shape {shape}"
        )


def num_patches(image_shape, patch_size):
    """How many patches `extract_patches` cuts from images of `image_shape`."""
    height, width = tuple(image_shape)[-3:-1]
    return (height // patch_size) * (width // patch_size)
