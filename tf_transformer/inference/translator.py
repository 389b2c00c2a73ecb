"""`Translator`: text in, text out, exportable as one SavedModel."""

import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.data.pipeline import truncate_ids
from tf_transformer.inference.decoding import beam_search, greedy_decode

DEFAULT_MARGIN = 16


class Translator(tf.Module):
    """A trained `Transformer` with its two tokenizers, as one `tf.Module`.

    `translator(["four hundred and twenty-one"])` tokenizes, decodes (greedy,
    or beam search when `beam_width > 1`) and detokenizes. `export(path)`
    writes a SavedModel that carries the model weights and both vocabularies;
    `tf.saved_model.load(path)` gives an object whose `translate(strings)`
    works with only `tensorflow` and `tensorflow_text` imported.

    Args:
        model: a trained `tf_transformer.Transformer`.
        source_tokenizer, target_tokenizer: `tf_transformer.data`
            `SubwordTokenizer`s (any `tf.Module` with `tokenize` giving ragged
            ids framed by `[START]`/`[END]`, and `detokenize`).
        max_source_length: longer inputs are truncated to this many tokens,
            keeping `[END]` last. Defaults to the model's `max_length` minus
            `margin`, the longest that leaves room for the translation.
        margin: a translation has at most source length + margin tokens.
            Defaults to 16.
        beam_width: 1 for greedy decoding; more for beam search.
            Defaults to 1.
        alpha: beam-search length penalty. Defaults to 0.6.

    A translation depends only on its own sentence, not on the batch it is in
    (for beam search: as long as the model ends it with `[END]` within the
    margin).

    Example:

    >>> translator = Translator(model, source_tokenizer, target_tokenizer)
    >>> translator(["twenty-one"]).numpy()
    array([b'vingt et un'], dtype=object)
    >>> translator.export("exported/translator")
    >>> reloaded = tf.saved_model.load("exported/translator")
    >>> reloaded.translate(tf.constant(["twenty-one"]))
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        max_source_length=None,
        margin=DEFAULT_MARGIN,
        beam_width=1,
        alpha=0.6,
        name=None,
    ):
        super().__init__(name=name)
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        limit = model.max_length
        self.margin = validation.check_int("margin", margin, minimum=0)
        self.max_source_length = validation.check_int(
            "max_source_length", max_source_length or limit - self.margin
        )
        self.beam_width = validation.check_int("beam_width", beam_width)
        self.alpha = float(alpha)
        if self.max_source_length + self.margin > limit:
            raise ValueError(
                "`max_source_length` + `margin` must fit the model's max_length="
                f"{limit}. Received: max_source_length={self.max_source_length}, "
                f"margin={self.margin}"
            )

    def _source_ids(self, strings):
        ids = self.source_tokenizer.tokenize(strings)  # ragged (batch, None)
        return truncate_ids(ids, self.max_source_length).to_tensor(0)

    def _decode(self, source_ids, max_length):
        """Greedy, or beam search when `beam_width > 1`: (batch, max_length) ids."""
        if self.beam_width == 1:
            return greedy_decode(self.model, source_ids, max_length=max_length)
        output_ids, _ = beam_search(
            self.model,
            source_ids,
            beam_width=self.beam_width,
            alpha=self.alpha,
            max_length=max_length,
        )
        return output_ids

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="strings")],
        autograph=False,  # explicit tf.while_loop: nothing to convert
    )
    def translate(self, strings):
        """1-D `tf.string` sentences -> 1-D `tf.string` translations."""
        source_ids = self._source_ids(strings)
        output_ids = self._decode(source_ids, tf.shape(source_ids)[1] + self.margin)
        # The batch decodes up to its longest source + margin; cut each row at
        # its own source length + margin, so that a sentence translates the
        # same alone or in any batch.
        source_lengths = tf.reduce_sum(tf.cast(source_ids != 0, tf.int32), axis=1)
        positions = tf.range(tf.shape(output_ids)[1])[tf.newaxis, :]
        beyond = positions >= (source_lengths + self.margin)[:, tf.newaxis]
        output_ids = tf.where(beyond, 0, output_ids)
        return self.target_tokenizer.detokenize(output_ids)

    def __call__(self, strings):
        """Translate a `str`, a list of `str` or a 1-D `tf.string` tensor."""
        single = isinstance(strings, str)
        strings = tf.constant([strings] if single else list(strings), tf.string)
        translations = self.translate(strings)
        return translations[0] if single else translations

    def translate_with_attention(self, sentence):
        """Translate one sentence and return what is needed to plot attention.

        Returns:
            A dict with `translation` (str), `source_tokens` and
            `target_tokens` (lists of str: the source with `[START]`/`[END]`,
            the generated tokens up to `[END]`) and `cross_attention`: a
            float32 NumPy array (layers, heads, target_len, source_len), the
            decoder's cross-attention while it re-reads its own translation;
            row t belongs to the step that generated target token t.
        """
        source, output = self.decode_one(sentence)
        # Row t of the weights is the step that predicted output[t].
        target_in = tf.constant([[2] + output[:-1]])
        _, weights = self.model(
            (tf.constant([source]), target_in), return_attention_scores=True
        )
        cross = np.stack([w[0].numpy() for w in weights["decoder_cross_attention"]])
        return {
            "translation": self.detokenize_one(output),
            "source_tokens": [self.source_tokenizer.id_to_token(i) for i in source],
            "target_tokens": [self.target_tokenizer.id_to_token(i) for i in output],
            "cross_attention": cross.astype("float32"),
        }

    def decode_one(self, sentence):
        """The source ids of one sentence and its translation's ids up to
        `[END]`, as lists of int (greedy, or beam search when `beam_width >
        1`)."""
        if not isinstance(sentence, str):
            raise TypeError(
                "`sentence` must be a str. "
                f"Received: sentence of type {type(sentence).__name__}"
            )
        source_ids = self._source_ids(tf.constant([sentence]))
        output_ids = self._decode(source_ids, int(source_ids.shape[1]) + self.margin)
        source = [int(i) for i in source_ids[0].numpy()]
        return source, [int(i) for i in output_ids[0].numpy() if i != 0]

    def detokenize_one(self, output_ids):
        """The text of one translation's ids (a list of int)."""
        ids = tf.constant([output_ids], tf.int32, shape=(1, len(output_ids)))
        return self.target_tokenizer.detokenize(ids).numpy()[0].decode()

    def export(self, path):
        """Write a SavedModel with a `serving_default` signature and `translate`."""
        tf.saved_model.save(
            self, str(path), signatures={"serving_default": self.translate}
        )
