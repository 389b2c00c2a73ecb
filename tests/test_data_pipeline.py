"""make_batches: structure, shapes, dtypes, truncation, determinism, bad input."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_transformer.data import corpora
from tf_transformer.data.pipeline import make_batches, truncate_ids
from tf_transformer.data.tokenizers import (
    END_ID,
    PAD_ID,
    START_ID,
    normalize,
    train_tokenizers,
)

tfds.disable_progress_bar()


@pytest.fixture(scope="session")
def pairs(data_dir):
    """1000 training pairs of the default corpus (numbers and dates, en → fr)."""
    return corpora.load_translation("mixed", "train[:1000]", data_dir=data_dir)


@pytest.fixture(scope="session")
def tokenizers(pairs):
    return train_tokenizers(pairs, 400, 400)


def batches_of(pairs, tokenizers, **kwargs):
    return make_batches(pairs, *tokenizers, **{"batch_size": 32, **kwargs})


def as_lists(dataset):
    return [
        (
            source.numpy().tolist(),
            target_in.numpy().tolist(),
            target_out.numpy().tolist(),
        )
        for (source, target_in), target_out in dataset
    ]


def test_batches_are_inputs_and_labels_of_int32_ids(pairs, tokenizers):
    batches = batches_of(pairs, tokenizers, max_length=48)
    (source_spec, target_in_spec), target_out_spec = batches.element_spec
    for spec in (source_spec, target_in_spec, target_out_spec):
        assert spec.dtype == tf.int32 and spec.shape.rank == 2
    count = 0
    for (source, target_in), target_out in batches:
        assert source.shape[0] == target_in.shape[0] == target_out.shape[0] <= 32
        assert target_in.shape == target_out.shape
        count += source.shape[0]
    assert count == 1000


def test_target_out_is_target_in_shifted_by_one(pairs, tokenizers):
    for (source, target_in), target_out in batches_of(pairs, tokenizers).take(5):
        assert tf.reduce_all(source[:, 0] == START_ID)
        assert tf.reduce_all(target_in[:, 0] == START_ID)
        assert tf.reduce_all(target_in[:, 1:] == target_out[:, :-1])
        # Each label row holds exactly one [END]; after it, only [PAD].
        ends = tf.reduce_sum(tf.cast(target_out == END_ID, tf.int32), axis=1)
        assert tf.reduce_all(ends == 1)
        after_end = tf.cumsum(
            tf.cast(target_out == END_ID, tf.int32), axis=1, exclusive=True
        )
        assert tf.reduce_all(tf.where(after_end > 0, target_out, PAD_ID) == PAD_ID)


def test_unshuffled_batches_detokenize_to_the_corpus(pairs, tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    batches = batches_of(pairs, tokenizers, shuffle=False, max_length=64)
    sources, targets = [], []
    for (source, _), target_out in batches:
        sources += source_tokenizer.detokenize(source).numpy().tolist()
        targets += target_tokenizer.detokenize(target_out).numpy().tolist()
    expected = list(pairs.batch(1000).as_numpy_iterator())[0]
    assert [s.decode() for s in sources] == normalize(expected[0].tolist())
    assert [t.decode() for t in targets] == normalize(expected[1].tolist())


def test_padding_to_max_length_gives_static_shapes(pairs, tokenizers):
    batches = batches_of(
        pairs, tokenizers, max_length=40, pad_to_max_length=True, drop_remainder=True
    )
    (source_spec, target_in_spec), target_out_spec = batches.element_spec
    assert source_spec.shape == (32, 40)
    assert target_in_spec.shape == target_out_spec.shape == (32, 40)
    (source, target_in), target_out = next(iter(batches))
    assert source.shape == target_in.shape == target_out.shape == (32, 40)
    assert sum(1 for _ in batches) == 1000 // 32


def test_overlong_sentences_are_truncated_keeping_end(pairs, tokenizers):
    max_length = 6
    for (source, _), target_out in batches_of(pairs, tokenizers, max_length=max_length):
        assert source.shape[1] <= max_length and target_out.shape[1] <= max_length
        for row in source.numpy().tolist():
            real = [token for token in row if token != PAD_ID]
            assert len(real) <= max_length and real[-1] == END_ID
        for row in target_out.numpy().tolist():
            assert [token for token in row if token != PAD_ID][-1] == END_ID


def test_truncate_ids_keeps_start_and_end():
    ids = tf.ragged.constant([[2, 7, 8, 9, 10, 3], [2, 7, 3], [2, 3]], dtype=tf.int32)
    assert truncate_ids(ids, 4).to_list() == [[2, 7, 8, 3], [2, 7, 3], [2, 3]]
    assert truncate_ids(ids, 2).to_list() == [[2, 3], [2, 3], [2, 3]]
    assert truncate_ids(ids, 10).to_list() == ids.to_list()


@pytest.mark.parametrize("bad, error", [(1, ValueError), (2.5, TypeError)])
def test_truncate_ids_rejects_bad_max_length(bad, error):
    with pytest.raises(error, match="`max_length`"):
        truncate_ids(tf.ragged.constant([[2, 3]]), bad)


def bucketed_lengths(source, target_in):
    """The length each sentence was bucketed by: max of source and target."""
    return tf.maximum(
        tf.reduce_sum(tf.cast(source != PAD_ID, tf.int32), axis=1),
        tf.reduce_sum(tf.cast(target_in != PAD_ID, tf.int32), axis=1),
    ).numpy()


def test_bucketing_groups_similar_lengths(pairs, tokenizers):
    boundaries = [10, 20]
    batches = batches_of(
        pairs, tokenizers, bucket_by_length=True, bucket_boundaries=boundaries
    )
    padded, total = 0, 0
    count = 0
    for (source, target_in), _ in batches:
        lengths = bucketed_lengths(source, target_in)
        buckets = {sum(length >= b for b in boundaries) for length in lengths}
        assert len(buckets) == 1, lengths
        count += len(lengths)
        padded += int(tf.size(source))
        total += int(tf.reduce_sum(tf.cast(source != PAD_ID, tf.int32)))
    assert count == 1000
    assert total / padded > 0.6  # little padding


def test_same_seed_gives_same_batches(pairs, tokenizers):
    first = as_lists(batches_of(pairs, tokenizers, seed=7).take(3))
    second = as_lists(batches_of(pairs, tokenizers, seed=7).take(3))
    other = as_lists(batches_of(pairs, tokenizers, seed=8).take(3))
    assert first == second
    assert first != other


def test_epochs_are_reshuffled_from_the_cache(pairs, tokenizers):
    batches = batches_of(pairs, tokenizers, seed=3)
    first_epoch = as_lists(batches)
    second_epoch = as_lists(batches)
    assert first_epoch != second_epoch
    assert sum(len(b[0]) for b in first_epoch) == 1000
    assert sum(len(b[0]) for b in second_epoch) == 1000


def test_shuffle_off_keeps_corpus_order(pairs, tokenizers):
    first = as_lists(batches_of(pairs, tokenizers, shuffle=False, cache=False))
    second = as_lists(batches_of(pairs, tokenizers, shuffle=False))
    assert first == second


def test_empty_and_blank_sentences_are_batched(tokenizers):
    odd = tf.data.Dataset.from_tensor_slices((["", "  ", "vingt"], ["", "\t", "x"]))
    (source, target_in), target_out = next(
        iter(make_batches(odd, *tokenizers, batch_size=3, shuffle=False))
    )
    assert source.numpy().tolist()[0][:2] == [START_ID, END_ID]
    assert target_in.numpy().tolist()[0][:1] == [START_ID]
    assert target_out.numpy().tolist()[0][:1] == [END_ID]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "dataset",
    [
        ["a", "b"],
        tf.data.Dataset.from_tensor_slices(["a", "b"]),
        tf.data.Dataset.from_tensor_slices(([1], [2])),
        tf.data.Dataset.from_tensor_slices({"en": ["a"], "fr": ["b"]}),
        tf.data.Dataset.from_tensor_slices((["a"], ["b"])).batch(1),
    ],
)
def test_dataset_that_is_not_string_pairs_is_rejected(dataset, tokenizers):
    with pytest.raises(TypeError, match="`dataset` must be a tf.data.Dataset of"):
        make_batches(dataset, *tokenizers)


def test_object_without_tokenize_is_rejected(pairs, tokenizers):
    with pytest.raises(TypeError, match="`target_tokenizer` must be a tokenizer"):
        make_batches(pairs, tokenizers[0], "not a tokenizer")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"batch_size": 2.0}, TypeError, "`batch_size`"),
        ({"max_length": 1}, ValueError, "`max_length`"),
        ({"shuffle_buffer": 0}, ValueError, "`shuffle_buffer`"),
        ({"seed": -1}, ValueError, "`seed`"),
        (
            {"pad_to_max_length": True, "bucket_by_length": True},
            ValueError,
            "Choose one of",
        ),
        ({"bucket_boundaries": [20, 10]}, ValueError, "`bucket_boundaries`"),
        ({"bucket_boundaries": []}, ValueError, "`bucket_boundaries`"),
    ],
)
def test_bad_sizes_are_rejected_naming_the_argument(
    pairs, tokenizers, kwargs, error, match
):
    with pytest.raises(error, match=match):
        make_batches(pairs, *tokenizers, **kwargs)


def test_default_buckets_are_two_tokens_wide_for_32(pairs, tokenizers):
    # 16 buckets of equal width up to max_length: with max_length=32 every
    # sentence of a batch is within one token of the batch's longest.
    batches = make_batches(
        pairs, *tokenizers, batch_size=32, max_length=32, seed=0, bucket_by_length=True
    )
    count = 0
    for (source, target_in), _ in batches:
        lengths = bucketed_lengths(source, target_in)
        assert lengths.max() // 2 == lengths.min() // 2, lengths
        count += len(lengths)
    assert count == 1000
