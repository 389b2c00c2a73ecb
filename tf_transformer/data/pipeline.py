"""tf.data pipelines: string pairs → padded batches of token ids for training.

`make_batches` turns the `(source, target)` strings of `load_translation` into
the inputs and labels of `Transformer.fit`:

    ((source_ids, target_in_ids), target_out_ids)

- `source_ids`: `(batch, S)` int32, `[START] … [END]` then `[PAD]`s.
- `target_in_ids`: `(batch, T)` int32, the target without its last token (it
  starts with `[START]`): what the decoder reads (teacher forcing).
- `target_out_ids`: `(batch, T)` int32, the target shifted by one (it ends
  with `[END]`): what the decoder must predict at each position.

Lengths: `S <= max_length` and `T <= max_length`. A longer sentence is
truncated: its first tokens are kept and its last one is replaced by `[END]`,
so every sequence still ends with `[END]` (see `truncate_ids`).
"""

from __future__ import annotations

import tensorflow as tf

from tf_transformer.data.tokenizers import END_ID, PAD_ID, _check_pairs
from tf_transformer.validation import check_int

_TOKENIZE_BATCH = 1024  # sentences tokenized per call (cheaper than one by one)


def truncate_ids(token_ids: tf.RaggedTensor, max_length: int) -> tf.RaggedTensor:
    """Cuts rows of `[START] … [END]` ids to at most `max_length`, keeping `[END]`.

    Args:
        token_ids: `(batch, None)` ragged ids as `SubwordTokenizer.tokenize`
            returns them (every row ends with `[END]`).
        max_length: int >= 2.

    Returns:
        The same rows; those longer than `max_length` keep their first
        `max_length - 1` tokens followed by `[END]`.
    """
    max_length = check_int("max_length", max_length, minimum=2)
    if not isinstance(token_ids, tf.RaggedTensor):
        raise TypeError(
            "`token_ids` must be a tf.RaggedTensor of shape (batch, None). "
            f"Received: token_ids={token_ids!r}"
        )
    body = token_ids[:, :-1][:, : max_length - 1]
    end = tf.fill([body.nrows(), 1], tf.constant(END_ID, token_ids.dtype))
    return tf.concat([body, tf.RaggedTensor.from_tensor(end)], axis=1)


def _check_tokenizer(argument: str, tokenizer) -> None:
    if not callable(getattr(tokenizer, "tokenize", None)):
        raise TypeError(
            f"`{argument}` must be a tokenizer with a `tokenize(strings)` method "
            f"(e.g. a SubwordTokenizer). Received: {argument}={tokenizer!r}"
        )


def _default_boundaries(max_length: int) -> list[int]:
    # 16 buckets of equal width: each batch pads at most `width - 1` tokens.
    width = max(1, max_length // 16)
    return list(range(width, max_length + 1, width))


def make_batches(
    dataset: tf.data.Dataset,
    source_tokenizer,
    target_tokenizer,
    batch_size: int = 64,
    max_length: int = 64,
    *,
    shuffle: bool = True,
    shuffle_buffer: int = 20_000,
    seed: int | None = None,
    pad_to_max_length: bool = False,
    bucket_by_length: bool = False,
    bucket_boundaries: list[int] | None = None,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Tokenized, truncated, shuffled, padded and prefetched training batches.

    Sentences are tokenized once (1024 at a time) and, with `cache=True`, kept
    in memory; shuffling and batching then happen on ids each epoch.

    Args:
        dataset: `(source, target)` scalar string pairs, e.g. from
            `load_translation`.
        source_tokenizer: tokenizer of the source side (`SubwordTokenizer`).
        target_tokenizer: tokenizer of the target side.
        batch_size: sentences per batch. Defaults to 64.
        max_length: longest `source_ids`, `target_in_ids` and `target_out_ids`
            (in tokens, `[START]`/`[END]` included); longer sentences are
            truncated, keeping `[END]` last. Defaults to 64.
        shuffle: whether to shuffle (turn off for evaluation). Defaults to
            `True`.
        shuffle_buffer: size of the shuffle buffer. Defaults to 20 000.
        seed: shuffle seed; the same seed gives the same batches. Defaults to
            `None` (TensorFlow's global seed, if set).
        pad_to_max_length: pad every batch to exactly `max_length` tokens, so
            shapes are static (what XLA wants; add `drop_remainder=True` for
            a static batch size too). Defaults to `False`: pad to the longest
            sentence of each batch.
        bucket_by_length: group sentences of similar length into the same
            batch (less padding, faster epochs). Defaults to `False`.
        bucket_boundaries: length boundaries of the buckets. Defaults to
            16 buckets of equal width up to `max_length` (every 2 tokens for
            `max_length=32`).
        cache: keep the tokenized corpus in memory after the first epoch.
            Defaults to `True`.
        drop_remainder: drop the last, smaller batch. Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of `((source_ids, target_in_ids), target_out_ids)`,
        int32 tensors of shapes `(batch, S)`, `(batch, T)`, `(batch, T)`.

    Raises:
        TypeError: `dataset` is not a dataset of string pairs, or a tokenizer
            has no `tokenize` method.
        ValueError: a size is not a positive int, or both
            `pad_to_max_length` and `bucket_by_length` are set.

    Example:

    >>> pairs = load_translation("mixed", split="train")
    >>> source_tokenizer, target_tokenizer = train_tokenizers(pairs)
    >>> batches = make_batches(pairs, source_tokenizer, target_tokenizer, 64)
    >>> (source_ids, target_in_ids), target_out_ids = next(iter(batches))
    """
    _check_pairs("dataset", dataset)
    _check_tokenizer("source_tokenizer", source_tokenizer)
    _check_tokenizer("target_tokenizer", target_tokenizer)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    max_length = check_int("max_length", max_length, minimum=2)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, minimum=1)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if pad_to_max_length and bucket_by_length:
        raise ValueError(
            "Choose one of `pad_to_max_length` and `bucket_by_length`. Received: "
            f"pad_to_max_length={pad_to_max_length}, "
            f"bucket_by_length={bucket_by_length}"
        )
    if bucket_boundaries is None:
        bucket_boundaries = _default_boundaries(max_length)
    elif (
        not bucket_boundaries
        or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1
            for b in bucket_boundaries
        )
        or list(bucket_boundaries) != sorted(set(bucket_boundaries))
    ):
        raise ValueError(
            "`bucket_boundaries` must be a non-empty increasing list of positive "
            f"ints. Received: bucket_boundaries={bucket_boundaries!r}"
        )

    def tokenize(source, target):
        source_ids = truncate_ids(source_tokenizer.tokenize(source), max_length)
        # The target is read shifted by one: T = its length - 1 <= max_length.
        target_ids = truncate_ids(target_tokenizer.tokenize(target), max_length + 1)
        return source_ids, target_ids

    ids = (
        dataset.batch(_TOKENIZE_BATCH)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .unbatch()
        # Unbatched ragged rows come out as ragged-rank-0 "ragged" tensors; an
        # identity map turns them into the plain 1-D tensors padded_batch needs.
        .map(lambda source_ids, target_ids: (source_ids, target_ids))
    )
    if cache:
        ids = ids.cache()
    if shuffle:
        ids = ids.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    padding_values = (
        tf.constant(PAD_ID, tf.int32),
        tf.constant(PAD_ID, tf.int32),
    )
    if bucket_by_length:
        batches = ids.bucket_by_sequence_length(
            element_length_func=lambda source, target: tf.maximum(
                tf.shape(source)[0], tf.shape(target)[0] - 1
            ),
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    else:
        shapes = ([max_length], [max_length + 1]) if pad_to_max_length else None
        batches = ids.padded_batch(
            batch_size,
            padded_shapes=shapes,
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )

    def split_target(source_ids, target_ids):
        # (batch, S), (batch, T + 1) → ((batch, S), (batch, T)), (batch, T)
        return (source_ids, target_ids[:, :-1]), target_ids[:, 1:]

    return batches.map(split_target, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )
