"""Translation as language modelling: one token stream per sentence pair.

A decoder-only model has no separate source: the source becomes the start
of the text it continues. A pair ("seventy-one", "soixante et onze") is
written as the prompt `en: seventy-one => fr:` followed by the continuation
`soixante et onze`, and tokenized as

    [START] en : seventy - one = > fr : | soixante et onze [END]
    `------------- prompt ------------'  `-- continuation --'

The model reads the stream without its last token and predicts it shifted by
one (the next-token objective). Only the continuation is graded: the labels
at prompt positions are `[PAD]` (0), which `masked_loss` and
`masked_accuracy` skip. At inference the prompt alone is given to
`generate`, and what it writes up to `[END]` is the translation.
"""

from __future__ import annotations

import tensorflow as tf

from tf_transformer import validation
from tf_transformer.data.pipeline import _check_tokenizer
from tf_transformer.data.tokenizers import (
    PAD_ID,
    _as_string_tensor,
    _check_pairs,
)
from tf_transformer.validation import check_int


def translation_prompt(source, source_lang: str = "en", target_lang: str = "fr"):
    """The prompt of a pair: `"{source_lang}: {source} => {target_lang}:"`.

    Args:
        source: a `str`, or a `tf.string` tensor of any shape.
        source_lang, target_lang: language codes written into the prompt.

    Returns:
        A `str` for a `str`, else a `tf.string` tensor of the same shape.

    Example:

    >>> translation_prompt("seventy-one")
    'en: seventy-one => fr:'
    """
    for name, value in (("source_lang", source_lang), ("target_lang", target_lang)):
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"`{name}` must be a non-empty str. Received: {name}={value!r}"
            )
    if isinstance(source, str):
        return f"{source_lang}: {source} => {target_lang}:"
    return tf.strings.join([f"{source_lang}: ", source, f" => {target_lang}:"])


def language_model_texts(
    pairs: tf.data.Dataset, source_lang: str = "en", target_lang: str = "fr"
) -> tf.data.Dataset:
    """Whole texts `prompt + " " + target`, e.g. to train a tokenizer on.

    Example:

    >>> texts = language_model_texts(load_translation("numbers"))
    >>> tokenizer = train_tokenizer(texts.take(2000), 400)
    """
    _check_pairs("pairs", pairs)
    return pairs.map(
        lambda source, target: tf.strings.join(
            [translation_prompt(source, source_lang, target_lang), target], " "
        )
    )


def tokenize_prompts(
    tokenizer, sources, source_lang: str = "en", target_lang: str = "fr"
) -> tf.Tensor:
    """Prompt ids for `generate`: `[START]` + prompt tokens, right-padded.

    Args:
        tokenizer: a `SubwordTokenizer` (anything with `tokenize`).
        sources: source sentences, a list of `str` or a 1-D `tf.string`.

    Returns:
        int32 (batch, longest prompt), 0 after each prompt.
    """
    _check_tokenizer("tokenizer", tokenizer)
    sources = _as_string_tensor("sources", sources)
    ids = tokenizer.tokenize(translation_prompt(sources, source_lang, target_lang))
    return tf.cast(ids[:, :-1].to_tensor(PAD_ID), tf.int32)  # no [END]


def _join_and_label(prompt_ids, target_ids):
    """(batch, None) ragged ids -> the stream and its continuation-only labels."""
    prompt = prompt_ids[:, :-1]  # [START] en : … fr :   (no [END])
    continuation = target_ids[:, 1:]  # … [END]          (no [START])
    stream = tf.concat([prompt, continuation], axis=1)
    # Labels are the stream shifted by one; the first len(prompt) - 1 of
    # them are prompt tokens and become [PAD] so the loss skips them.
    hidden = tf.zeros_like(prompt[:, 1:])
    labels = tf.concat([hidden, continuation], axis=1)
    return stream[:, :-1], labels


def make_language_model_batches(
    pairs: tf.data.Dataset,
    tokenizer,
    batch_size: int = 64,
    max_length: int = 48,
    *,
    source_lang: str = "en",
    target_lang: str = "fr",
    shuffle: bool = True,
    shuffle_buffer: int = 20_000,
    seed: int | None = None,
    cache: bool = True,
    pad_to_max_length: bool = False,
) -> tf.data.Dataset:
    """Batches `(input_ids, labels)` for training a `CausalLM` to translate.

    Each pair becomes the stream `[START] prompt continuation [END]`;
    `input_ids` is the stream without its last token and `labels` the
    stream without its first, with the labels of prompt positions set to
    `[PAD]` (0): the loss counts only the continuation. Streams longer than
    `max_length` are left out (a cut stream would teach a wrong length).

    Args:
        pairs: `(source, target)` scalar string pairs (`load_translation`).
        tokenizer: one `SubwordTokenizer` for both languages and the prompt
            words (train it on `language_model_texts(pairs)`).
        batch_size: sequences per batch. Defaults to 64.
        max_length: longest `input_ids`; longer streams are left out.
            Defaults to 48.
        source_lang, target_lang: written into the prompt.
            Defaults to `"en"`, `"fr"`.
        shuffle: shuffle every epoch. Defaults to True.
        shuffle_buffer: Defaults to 20 000.
        seed: shuffle seed. Defaults to None.
        cache: keep the tokenized corpus in memory. Defaults to True.
        pad_to_max_length: pad every batch to `max_length` tokens and drop
            the last, smaller batch, so every batch has one static shape
            (what `jit_compile=True` wants: one compilation). Defaults to
            False: pad to the longest stream of each batch.

    Returns:
        A `tf.data.Dataset` of int32 `(input_ids, labels)`, both
        (batch, length), padded with 0.

    Example:

    >>> pairs = load_translation("numbers")
    >>> tokenizer = train_tokenizer(language_model_texts(pairs.take(2000)), 400)
    >>> batches = make_language_model_batches(pairs, tokenizer, 64)
    >>> model.fit(batches, ...)  # a CausalLM compiled with masked_loss
    """
    _check_pairs("pairs", pairs)
    _check_tokenizer("tokenizer", tokenizer)
    batch_size = check_int("batch_size", batch_size)
    max_length = check_int("max_length", max_length, minimum=4)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer)
    validation.check_bool("pad_to_max_length", pad_to_max_length)

    def tokenize(sources, targets):
        prompt_ids = tokenizer.tokenize(
            translation_prompt(sources, source_lang, target_lang)
        )
        return _join_and_label(prompt_ids, tokenizer.tokenize(targets))

    examples = (
        pairs.batch(1024)
        .map(tokenize)
        .unbatch()
        .map(lambda ids, labels: (tf.reshape(ids, [-1]), tf.reshape(labels, [-1])))
    )  # rows of the ragged batch as plain 1-D tensors
    # A stream cut short would teach the model to stop early or never:
    # longer ones are left out instead.
    examples = examples.filter(lambda ids, labels: tf.size(ids) <= max_length)
    if cache:
        examples = examples.cache()
    if shuffle:
        examples = examples.shuffle(shuffle_buffer, seed=seed)
    if pad_to_max_length:
        shapes = ([max_length], [max_length])
        batches = examples.padded_batch(batch_size, shapes, drop_remainder=True)
    else:
        batches = examples.padded_batch(batch_size)
    return batches.prefetch(tf.data.AUTOTUNE)


__all__ = [
    "language_model_texts",
    "make_language_model_batches",
    "tokenize_prompts",
    "translation_prompt",
]
