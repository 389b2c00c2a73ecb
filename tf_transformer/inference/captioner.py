"""`Captioner`: image in, caption out, exportable as one SavedModel."""

import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.data.captions import LANGUAGE_TOKENS
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
    `tensorflow_text` imported.

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
        self.caption = tf.function(
            self._caption,
            input_signature=[
                tf.TensorSpec((None,) + image_shape, tf.float32, name="images"),
                tf.TensorSpec([None], tf.string, name="languages"),
            ],
            autograph=False,  # explicit tf.while_loop: nothing to convert
        )

    def _caption(self, images, languages):
        """float32 images (batch, h, w, c), `tf.string` codes (batch,) ->
        `tf.string` captions (batch,)."""
        matches = tf.equal(languages[:, tf.newaxis], self.language_codes)
        tf.debugging.assert_equal(
            tf.reduce_any(matches, axis=-1),
            True,
            message=f"`languages` must be codes of {list(LANGUAGES)}",
        )
        start_ids = tf.gather(
            self.language_start_ids, tf.argmax(tf.cast(matches, tf.int32), axis=-1)
        )
        if self.beam_width == 1:
            output_ids = greedy_decode(
                self.model, images, max_length=self.max_length, start_ids=start_ids
            )
        else:
            output_ids, _ = beam_search(
                self.model,
                images,
                beam_width=self.beam_width,
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
        """Write a SavedModel with a `serving_default` signature and `caption`."""
        tf.saved_model.save(
            self, str(path), signatures={"serving_default": self.caption}
        )
