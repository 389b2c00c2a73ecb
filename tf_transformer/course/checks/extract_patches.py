"""Check of `extract_patches` (lesson 12)."""

import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    alternative,
    bug,
    close,
    exercise,
    expect_dtype,
    to_numpy,
)
from tf_transformer.course.checks._images import (
    PATCH_CASES,
    compare_cases,
    distinct_pixels,
)


def _grid(images, patch_size):
    """(batch, rows, columns, p, p, channels): the patches, not yet flattened."""
    batch, height, width, channels = images.shape
    rows, columns = height // patch_size, width // patch_size
    split = images.reshape(batch, rows, patch_size, columns, patch_size, channels)
    return split.transpose(0, 1, 3, 2, 4, 5)


def _flat(grid, order=(0, 1, 2, 3, 4, 5)):
    """Flatten a (possibly permuted) patch grid to (batch, patches, values)."""
    grid = grid.transpose(order)
    batch = grid.shape[0]
    count = grid.shape[1] * grid.shape[2]
    return grid.reshape(batch, count, -1)


def _likely_mistake(actual, images, patch_size):
    grid = _grid(images, patch_size)
    batch = images.shape[0]
    candidates = [
        (
            _flat(grid, (0, 2, 1, 3, 4, 5)),
            "the patches are in column order (top to bottom first); read them "
            "row by row: left to right, then top to bottom",
        ),
        (
            _flat(grid, (0, 1, 2, 5, 3, 4)),
            "each patch is flattened channel by channel (channels first); keep the "
            "channels of a pixel side by side: flatten (p, p, channels)",
        ),
        (
            _flat(grid, (0, 1, 2, 4, 3, 5)),
            "each patch is flattened column by column; flatten it row by row",
        ),
        (
            images.reshape(batch, grid.shape[1] * grid.shape[2], -1),
            "a plain reshape of the image mixes pixels of neighbouring patches: "
            "reshape to (batch, rows, p, columns, p, channels), transpose to "
            "(batch, rows, columns, p, p, channels), then reshape",
        ),
    ]
    for candidate, hint in candidates:
        if close(actual, candidate, atol=1e-6):
            return hint
    return None


def _shape_hint(actual_shape, images, patch_size):
    batch, height, width, channels = images.shape
    rows, columns = height // patch_size, width // patch_size
    values = patch_size * patch_size * channels
    overlapping = (height - patch_size + 1) * (width - patch_size + 1)
    if actual_shape == (batch, rows, columns, values):
        return (
            "the patch grid is not flattened: return (batch, rows * columns, "
            "patch_size * patch_size * channels)"
        )
    if len(actual_shape) == 3 and actual_shape[0] == batch:
        if actual_shape[1] == overlapping and overlapping != rows * columns:
            return (
                f"{overlapping} patches: the windows overlap — step by patch_size "
                "(strides = patch_size), so that each pixel is in one patch"
            )
        if actual_shape[1] != rows * columns:
            return (
                f"wrong patch count: {height}/{patch_size} rows × {width}/"
                f"{patch_size} columns = {rows * columns} patches"
            )
        return f"each patch holds patch_size · patch_size · channels = {values} values"
    if actual_shape == (rows * columns, values):
        return "the batch axis is missing"
    return "expected (batch, num_patches, patch_size * patch_size * channels)"


@exercise(
    "extract_patches",
    lesson=12,
    points=1,
    kind="function",
    reference="extract_patches",
)
def check_extract_patches(ctx, student, reference):
    def run(images, patch_size):
        what = f"extract_patches(images of shape {images.shape}, {patch_size})"
        result = ctx.call(student, tf.constant(images), patch_size, what=what)
        return what, result, reference(tf.constant(images), patch_size)

    compare_cases(
        ctx,
        PATCH_CASES,
        run,
        _shape_hint,
        _likely_mistake,
        "patch k should be the k-th window in reading order, flattened row by row "
        "with the channels last (compare with keras.ops.image.extract_patches)",
    )
    ctx.ok(
        f"{len(PATCH_CASES)} image sizes: patches in reading order, flattened "
        "row by row with channels last"
    )

    for dtype in ("float16", "int32"):
        images = tf.cast(distinct_pixels((1, 4, 4, 2)) * 100, dtype)
        what = f"extract_patches({dtype} images, 2)"
        result = ctx.call(student, images, 2, what=what)
        expect_dtype(
            result, dtype, what, "keep the dtype of `images` (reshape, do not cast)"
        )
        if not close(to_numpy(result, what), reference(images, 2)):
            raise Failure(f"{what}: wrong values — the dtype changes the patches")
    ctx.ok("keeps the dtype of the images (float16, int32)")

    spec = tf.TensorSpec((None, 8, 8, 1), tf.float32)
    images = distinct_pixels((3, 8, 8, 1))
    what = "extract_patches inside tf.function with an unknown batch size"
    try:
        graph = tf.function(lambda x: student(x, 4), input_signature=[spec])
        actual = to_numpy(ctx.call(graph, tf.constant(images), what=what), what)
    except StudentError as error:
        raised = str(error).split(":", 1)[0]  # "... raised TypeError"
        raise Failure(
            f"{raised} — while tracing, images.shape[0] is None: take the batch size "
            "from tf.shape(images)[0] (or reshape with -1), and use TensorFlow ops"
        ) from None
    if not close(actual, reference(tf.constant(images), 4)):
        raise Failure(f"{what}: differs from eager mode")
    ctx.ok("works inside tf.function with an unknown batch size")


# ------------------------------------------------- catalogue of typical bugs


def _patches(order=(0, 1, 3, 2, 4, 5), batch_from_shape=False, dtype=None):
    """Split into (batch, rows, p, columns, p, channels), permute, flatten."""

    def extract_patches(images, patch_size):
        images = tf.convert_to_tensor(images)
        _, height, width, channels = images.shape
        rows, columns = height // patch_size, width // patch_size
        batch = images.shape[0] if batch_from_shape else tf.shape(images)[0]
        split = tf.reshape(
            images, (batch, rows, patch_size, columns, patch_size, channels)
        )
        patches = tf.reshape(tf.transpose(split, order), (batch, rows * columns, -1))
        return patches if dtype is None else tf.cast(patches, dtype)

    return extract_patches


@bug("extract_patches", "column order")
def patches_column_order():
    """patches read top to bottom first (columns of the grid before rows)"""
    return _patches(order=(0, 3, 1, 2, 4, 5))


@bug("extract_patches", "channels first")
def patches_channels_first():
    """each patch flattened channel by channel, (channels, p, p)"""
    return _patches(order=(0, 1, 3, 5, 2, 4))


@bug("extract_patches", "column by column")
def patches_pixel_columns():
    """the pixels of a patch flattened column by column"""
    return _patches(order=(0, 1, 3, 4, 2, 5))


@bug("extract_patches", "plain reshape")
def patches_plain_reshape():
    """the classic: one reshape of the image, without the transpose"""

    def extract_patches(images, patch_size):
        _, height, width, channels = images.shape
        count = (height // patch_size) * (width // patch_size)
        return tf.reshape(images, (-1, count, patch_size * patch_size * channels))

    return extract_patches


@bug("extract_patches", "overlap")
def patches_overlapping():
    """sliding windows with stride 1 instead of patch_size"""

    def extract_patches(images, patch_size):
        windows = tf.image.extract_patches(
            images,
            sizes=[1, patch_size, patch_size, 1],
            strides=[1, 1, 1, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )
        return tf.reshape(windows, (tf.shape(images)[0], -1, windows.shape[-1]))

    return extract_patches


@bug("extract_patches", "not flattened")
def patches_grid():
    """returns the (batch, rows, columns, p·p·channels) grid"""

    def extract_patches(images, patch_size):
        return tf.nn.space_to_depth(images, patch_size)

    return extract_patches


@bug("extract_patches", "wrong patch count")
def patches_count_not_squared():
    """counts height · width / patch_size patches (forgets patch_size²)"""

    def extract_patches(images, patch_size):
        _, height, width, _ = images.shape
        patches = _patches()(images, patch_size)
        return tf.reshape(
            patches, (tf.shape(images)[0], height * width // patch_size, -1)
        )

    return extract_patches


@bug("extract_patches", "keep the dtype")
def patches_cast_to_float32():
    """casts the patches to float32"""
    return _patches(dtype=tf.float32)


@bug("extract_patches", "tf.shape(images)[0]")
def patches_static_batch():
    """takes the batch size from images.shape[0] (None while tracing)"""
    return _patches(batch_from_shape=True)


@bug("extract_patches", "batch axis is missing")
def patches_first_image_only():
    """drops the batch axis (patches of all images in one list)"""

    def extract_patches(images, patch_size):
        patches = _patches()(images, patch_size)
        return tf.reshape(patches, (-1, patches.shape[-1]))[: patches.shape[1]]

    return extract_patches


@alternative("extract_patches")
def patches_tf_image():
    """tf.image.extract_patches with strides = sizes = patch_size"""

    def extract_patches(images, patch_size):
        windows = tf.image.extract_patches(
            images,
            sizes=[1, patch_size, patch_size, 1],
            strides=[1, patch_size, patch_size, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )  # (batch, rows, columns, p·p·channels)
        count = windows.shape[1] * windows.shape[2]
        return tf.reshape(windows, (-1, count, windows.shape[3]))

    return extract_patches


@alternative("extract_patches")
def patches_space_to_depth():
    """tf.nn.space_to_depth, whose depth is ordered (row, column, channel)"""

    def extract_patches(images, patch_size):
        if patch_size > 1:  # space_to_depth needs blocks of 2 pixels or more
            blocks = tf.nn.space_to_depth(images, patch_size)
        else:
            blocks = images
        _, rows, columns, values = blocks.shape
        return tf.reshape(blocks, (tf.shape(blocks)[0], rows * columns, values))

    return extract_patches


@alternative("extract_patches")
def patches_python_loops():
    """Python loops over the patch grid, slicing and stacking"""

    def extract_patches(images, patch_size):
        _, height, width, channels = images.shape
        batch = tf.shape(images)[0]
        patches = []
        for top in range(0, height, patch_size):
            for left in range(0, width, patch_size):
                window = images[:, top : top + patch_size, left : left + patch_size]
                patches.append(tf.reshape(window, (batch, -1)))
        return tf.stack(patches, axis=1)

    return extract_patches
