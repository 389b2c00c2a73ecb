"""`Captioner`: image in, caption out, exportable as one SavedModel; and
`image_for_captioner`, a picture file or array made into the captioner's
input."""

import os

import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.data.captions import LANGUAGE_TOKENS, NUMBER_IMAGE_SHAPE
from tf_transformer.data.corpora import LANGUAGES
from tf_transformer.data.tokenizers import UNK_ID
from tf_transformer.inference.decoding import beam_search, greedy_decode


class Captioner(tf.Module):
    """A trained `ImageCaptioner` with its tokenizer, as one `tf.Module`.

    `captioner(images, "fr")` picks the language's token
    (`tf_transformer.data.LANGUAGE_TOKENS`) as the decoder's first input,
    decodes (greedy, or beam search when `beam_width > 1`) and detokenizes.
    `export(path)` writes a SavedModel that carries the model weights and the
    vocabulary; `tf.saved_model.load(path)` gives an object whose
    `caption(images, languages)` works with only `tensorflow` and
    `tensorflow_text` imported, and whose
    `beam_caption(images, languages, beam_width)` decodes by beam search
    with a width given at run time (a scalar int32; 1 is greedy).

    Args:
        model: a trained `tf_transformer.ImageCaptioner`.
        tokenizer: the `SubwordTokenizer` of its captions; its vocabulary
            holds every language token as one token.
        max_length: most tokens of a caption, `[END]` included. Defaults to
            the model's `max_length` - 1.
        beam_width: 1 for greedy decoding; more for beam search.
            Defaults to 1.
        alpha: beam-search length penalty. Defaults to 0.6.

    Example:

    >>> captioner = Captioner(model, tokenizer)
    >>> captioner(images, "de").numpy()  # one caption per image
    array([b'vierhundertdreiundzwanzig', ...], dtype=object)
    >>> captioner.export("exported/captioner")
    >>> reloaded = tf.saved_model.load("exported/captioner")
    >>> reloaded.caption(images, tf.constant(["de"] * len(images)))
    """

    def __init__(
        self, model, tokenizer, max_length=None, beam_width=1, alpha=0.6, name=None
    ):
        super().__init__(name=name)
        if not hasattr(model, "image_shape") or not hasattr(model, "decoder"):
            raise TypeError(
                "`model` must be a tf_transformer.ImageCaptioner. "
                f"Received: model of type {type(model).__name__}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = validation.check_int(
            "max_length", max_length or model.max_length - 1
        )
        if self.max_length >= model.max_length:
            raise ValueError(
                "`max_length` must be below the model's max_length="
                f"{model.max_length}. Received: max_length={max_length}"
            )
        self.beam_width = validation.check_int("beam_width", beam_width)
        self.alpha = float(alpha)
        start_ids = []
        for lang in LANGUAGES:
            token = LANGUAGE_TOKENS[lang]
            ids = tokenizer.tokenize(token).numpy().tolist()
            if len(ids) != 3 or ids[1] == UNK_ID:  # [START] token [END]
                raise ValueError(
                    f"`tokenizer` must hold the language token {token!r} as one "
                    f"token. Received: a tokenizer that splits it into {ids[1:-1]}"
                )
            start_ids.append(ids[1])
        self.language_codes = tf.constant(LANGUAGES)
        self.language_start_ids = tf.constant(start_ids, tf.int32)
        image_shape = tuple(model.image_shape)
        inputs = [
            tf.TensorSpec((None,) + image_shape, tf.float32, name="images"),
            tf.TensorSpec([None], tf.string, name="languages"),
        ]
        # autograph=False: explicit tf.while_loop, nothing to convert.
        self.caption = tf.function(
            self._caption, input_signature=inputs, autograph=False
        )
        self.beam_caption = tf.function(
            self._beam_caption,
            input_signature=inputs + [tf.TensorSpec([], tf.int32, name="beam_width")],
            autograph=False,
        )
        # The attention view of an exported captioner (`tf-transformer caption
        # --attention-html`): the vocabulary travels as a constant of the graph.
        self.vocabulary = tf.constant(tokenizer.get_vocabulary())
        self.attention = tf.function(
            self._attention, input_signature=inputs, autograph=False
        )

    def _caption(self, images, languages):
        """float32 images (batch, h, w, c), `tf.string` codes (batch,) ->
        `tf.string` captions (batch,)."""
        return self._decode(images, languages, self.beam_width)

    def _beam_caption(self, images, languages, beam_width):
        """`_caption` with the beam width a scalar int32 input."""
        return self._decode(images, languages, beam_width)

    def _attention(self, images, languages):
        """Greedy captions and every attention weight of the decoder re-reading
        them: `output_ids` (batch, T) and their `output_tokens`; `tokens`,
        the decoder's input tokens (the language token, then the caption so
        far; the query at row t reads tokens[t] and predicts output token
        t); and `encoder`, `decoder_self_attention`,
        `decoder_cross_attention`, each (layers, batch, heads, queries,
        keys)."""
        start_ids = self._start_ids(languages)
        output_ids = greedy_decode(
            self.model, images, max_length=self.max_length, start_ids=start_ids
        )
        target_in = tf.concat([start_ids[:, tf.newaxis], output_ids[:, :-1]], axis=1)
        _, weights = self.model((images, target_in), return_attention_scores=True)
        result = {key: tf.stack(layers) for key, layers in weights.items()}
        result["output_ids"] = output_ids
        result["output_tokens"] = tf.gather(self.vocabulary, output_ids)
        result["tokens"] = tf.gather(self.vocabulary, target_in)
        return result

    def _start_ids(self, languages):
        matches = tf.equal(languages[:, tf.newaxis], self.language_codes)
        tf.debugging.assert_equal(
            tf.reduce_any(matches, axis=-1),
            True,
            message=f"`languages` must be codes of {list(LANGUAGES)}",
        )
        return tf.gather(
            self.language_start_ids, tf.argmax(tf.cast(matches, tf.int32), axis=-1)
        )

    def _decode(self, images, languages, beam_width):
        start_ids = self._start_ids(languages)
        if isinstance(beam_width, int) and beam_width == 1:
            output_ids = greedy_decode(
                self.model, images, max_length=self.max_length, start_ids=start_ids
            )
        else:
            output_ids, _ = beam_search(
                self.model,
                images,
                beam_width=beam_width,
                alpha=self.alpha,
                max_length=self.max_length,
                start_ids=start_ids,
            )
        return self.tokenizer.detokenize(output_ids)

    def __call__(self, images, languages="en"):
        """Caption a batch of images (or one image) in one or more languages.

        Args:
            images: float (batch, height, width, channels) or one image
                (height, width, channels), pixels in [0, 1].
            languages: a code of `LANGUAGES` for all images, or one per image.
                Defaults to `"en"`.

        Returns:
            1-D `tf.string` captions, or a scalar for one image.
        """
        images = np.asarray(images, dtype="float32")
        single = images.ndim == 3
        if single:
            images = images[np.newaxis]
        image_shape = tuple(self.model.image_shape)
        if images.ndim != 4 or images.shape[1:] != image_shape:
            raise ValueError(
                f"`images` must have shape (batch,) + {image_shape} or {image_shape}. "
                f"Received: images with shape {images.shape}"
            )
        if isinstance(languages, str):
            languages = [languages] * len(images)
        languages = list(languages)
        for lang in languages:
            if lang not in LANGUAGES:
                raise ValueError(
                    f"`languages` must be codes of {list(LANGUAGES)}. "
                    f"Received: languages={languages!r}"
                )
        if len(languages) != len(images):
            raise ValueError(
                "`languages` must give one code per image. Received: "
                f"{len(languages)} languages for {len(images)} images"
            )
        captions = self.caption(tf.constant(images), tf.constant(languages))
        return captions[0] if single else captions

    def export(self, path):
        """Write a SavedModel with a `serving_default` signature, `caption`,
        `beam_caption` and `attention` (the weights `tf-transformer caption
        --attention-html` shows)."""
        tf.saved_model.save(
            self, str(path), signatures={"serving_default": self.caption}
        )


IMAGE_FILE_TYPES = ("PNG", "JPEG", "BMP", "GIF")
"""The picture formats `image_for_captioner` reads (with `.npy` arrays)."""


def image_for_captioner(image, image_shape=NUMBER_IMAGE_SHAPE):
    """A picture made into a captioner's input: the right size, ink bright.

    The captioner was trained on pictures whose pixels are in [0, 1], ink
    near 1 on a background of 0. A picture from elsewhere (a scan, a drawing
    saved by a paint program, dark ink on white paper) is turned into that:

    1. read: a PNG, JPEG, BMP or GIF file (the first frame), a `.npy` file,
       or an array (height, width) or (height, width, channels); uint8 and
       uint16 pixels are scaled by 255 and 65535, any other pixels must
       already be in [0, 1];
    2. made grayscale: a transparent pixel shows white paper beneath it, and
       colours are mixed by their luminance (`tf.image.rgb_to_grayscale`);
    3. inverted when it is mostly bright (mean above 0.5): dark ink on white
       paper becomes bright ink on a dark background;
    4. resized to `image_shape`'s height and width when its size differs:
       shrinking averages the pixels each new pixel covers (area
       interpolation, which antialiases; a picture drawn 4 times larger
       comes back exactly), otherwise bilinear interpolation with
       antialiasing.

    Args:
        image: a path (`str` or `os.PathLike`) or an array.
        image_shape: the captioner's `(height, width, channels)`. Defaults
            to `NUMBER_IMAGE_SHAPE`, (8, 24, 1).

    Returns:
        A float32 NumPy array of shape `image_shape`, values in [0, 1].

    Raises:
        FileNotFoundError: `image` names no file.
        ValueError: the file cannot be read as a picture or an array, or the
            array has an unusable shape or range; the message names `image`.

    Example:

    >>> captioner(image_for_captioner("scan_of_427.png"), "fr").numpy()
    b'quatre cent vingt-sept'
    """
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(
            "`image_shape` must be (height, width, channels). "
            f"Received: image_shape={image_shape}"
        )
    for size in image_shape:
        validation.check_int("image_shape", size)
    if isinstance(image, (str, os.PathLike)):
        name = f"image={os.fspath(image)!r}"
        pixels = _read_picture(os.fspath(image))
    else:
        name = "image=<array>"
        pixels = _pixels_in_unit_range(np.asarray(image), name)
    if pixels.ndim == 4 and pixels.shape[0] == 1:  # a batch of one
        pixels = pixels[0]
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise ValueError(
            "`image` must be a picture of shape (height, width) or (height, "
            f"width, channels) with 1 to 4 channels. Received: {name} with shape "
            f"{pixels.shape}"
        )
    gray = _grayscale(pixels)
    if gray.mean() > 0.5:  # dark ink on bright paper
        gray = 1.0 - gray
    height, width, channels = image_shape
    if gray.shape[:2] != (height, width):
        shrinking = gray.shape[0] >= height and gray.shape[1] >= width
        method = "area" if shrinking else "bilinear"
        gray = tf.image.resize(
            gray, (height, width), method=method, antialias=True
        ).numpy()
    gray = np.clip(gray, 0.0, 1.0)
    return np.repeat(gray, channels, axis=-1).astype("float32")


def _read_picture(path):
    """Pixels in [0, 1] of a picture or `.npy` file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file. Received: image={path!r}")
    if path.lower().endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot read a NumPy array from the file ({error}). "
                f"Received: image={path!r}"
            ) from None
        return _pixels_in_unit_range(array, f"image={path!r}")
    with open(path, "rb") as file:
        contents = file.read()
    try:
        # float32 scales 8- and 16-bit pixels to [0, 1].
        pixels = tf.io.decode_image(contents, dtype=tf.float32, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise ValueError(
            f"cannot decode the file as a picture ({', '.join(IMAGE_FILE_TYPES)}) "
            f"or a .npy array. Received: image={path!r}"
        ) from None
    return pixels.numpy()


def _pixels_in_unit_range(array, name):
    """float32 pixels in [0, 1]: uint8 and uint16 scaled as picture files
    are, any other numbers taken as they are (they must be in [0, 1])."""
    if array.dtype in (np.uint8, np.uint16):
        return array.astype("float32") / np.iinfo(array.dtype).max
    kinds = (np.bool_, np.integer, np.floating)
    if not any(np.issubdtype(array.dtype, kind) for kind in kinds):
        raise ValueError(
            f"`image` must hold numbers. Received: {name} with dtype {array.dtype}"
        )
    array = array.astype("float32")
    if array.size and not (
        np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0
    ):
        raise ValueError(
            "`image` pixels must be in [0, 1] (or uint8/uint16). "
            f"Received: {name} with values in [{array.min()}, {array.max()}]"
        )
    return array


def _grayscale(pixels):
    """(height, width, 1) gray levels of 1 to 4 channels (alpha last)."""
    channels = pixels.shape[-1]
    if channels in (2, 4):  # transparency shows white paper beneath
        alpha = pixels[:, :, -1:]
        pixels = pixels[:, :, :-1] * alpha + (1.0 - alpha)
    if pixels.shape[-1] == 3:
        pixels = tf.image.rgb_to_grayscale(pixels).numpy()
    return pixels
