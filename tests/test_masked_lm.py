"""BERT masking (`mask_tokens`), `masked_mean`, and the masked-LM head."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tests.layer_testing import run_layer_test

VOCABULARY = 1000
MASK_ID = 6
SPECIAL = (0, 1, 2, 3, 4, 5)  # [PAD] [UNK] [START] [END] [CLS] [SEP]
Z = 4.5  # interval half-width in standard errors: a false alarm ~1e-5


def corpus(rows=400, length=300, seed=0):
    """120,000 token positions: ids 7..999 with specials and padding mixed in."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(7, VOCABULARY, size=(rows, length)).astype("int32")
    ids[:, 0] = 4  # [CLS]
    ids[rng.random(ids.shape) < 0.05] = 3
    lengths = rng.integers(length // 2, length + 1, size=rows)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def shares(ids, masked, selected):
    """Selection share among selectable tokens, and the 80/10/10 split."""
    selectable = ~np.isin(ids, SPECIAL)
    chosen = selected & selectable
    n = chosen.sum()
    to_mask = (masked == MASK_ID) & chosen
    to_random = (masked != ids) & (masked != MASK_ID) & chosen
    kept = (masked == ids) & chosen
    return {
        "selected": (n / selectable.sum(), selectable.sum()),
        "mask": (to_mask.sum() / n, n),
        "random": (to_random.sum() / n, n),
        "kept": (kept.sum() / n, n),
    }


def inside(share, n, p):
    return abs(share - p) <= Z * np.sqrt(p * (1 - p) / n)


def keras_hub_masking(ids):
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=VOCABULARY,
        mask_selection_rate=0.15,
        mask_token_id=MASK_ID,
        unselectable_token_ids=list(SPECIAL),
    )
    tf.random.set_seed(5)
    out = generator(tf.constant(ids))
    selected = np.zeros(ids.shape, bool)
    positions = out["mask_positions"]
    if not isinstance(positions, list):
        positions = positions.to_list()
    for row, columns in enumerate(positions):
        selected[row, columns] = True
    return np.asarray(out["token_ids"]), selected


def test_mask_tokens_shares_match_keras_hub_within_binomial_intervals():
    ids = corpus()
    assert ids.size >= 100_000
    masked, selected = tt.mask_tokens(
        ids, VOCABULARY, MASK_ID, unselectable_ids=SPECIAL, seed=11
    )
    ours = shares(ids, masked.numpy(), selected.numpy())
    theirs = shares(ids, *keras_hub_masking(ids))
    # A random replacement equal to the original reads as "kept".
    chance_same = 1 / (VOCABULARY - len(SPECIAL) - 1)
    expected = {
        "selected": 0.15,
        "mask": 0.8,
        "random": 0.1 * (1 - chance_same),
        "kept": 0.1 + 0.1 * chance_same,
    }
    for key, p in expected.items():
        (our_share, n), (their_share, m) = ours[key], theirs[key]
        assert inside(our_share, n, p), (key, our_share, p)
        assert inside(their_share, m, p), (key, their_share, p)
        spread = Z * np.sqrt(p * (1 - p) * (1 / n + 1 / m))
        assert abs(our_share - their_share) <= spread, (key, our_share, their_share)


def test_unselectable_ids_are_never_selected_nor_changed():
    ids = corpus(rows=50, length=40, seed=1)
    masked, selected = tt.mask_tokens(
        ids, VOCABULARY, MASK_ID, rate=1.0, unselectable_ids=SPECIAL, seed=2
    )
    masked, selected = masked.numpy(), selected.numpy()
    special = np.isin(ids, SPECIAL)
    assert not selected[special].any()
    assert selected[~special].all()  # rate 1: every selectable token
    np.testing.assert_array_equal(masked[special], ids[special])
    np.testing.assert_array_equal(masked[~selected], ids[~selected])


def test_random_replacements_avoid_special_ids_and_mask_and_cover_the_rest():
    vocabulary = 20
    ids = np.full((200, 50), 10, "int32")
    masked, selected = tt.mask_tokens(
        ids,
        vocabulary,
        MASK_ID,
        rate=1.0,
        mask_token_rate=0.0,
        random_token_rate=1.0,
        unselectable_ids=SPECIAL,
        seed=3,
    )
    drawn = set(masked.numpy()[selected.numpy()].tolist())
    assert drawn == set(range(7, vocabulary))  # every allowed id, nothing else


def test_mask_token_rate_one_masks_every_selected_token():
    ids = corpus(rows=20, length=30, seed=4)
    masked, selected = tt.mask_tokens(
        ids,
        VOCABULARY,
        MASK_ID,
        rate=0.5,
        mask_token_rate=1.0,
        random_token_rate=0.0,
        unselectable_ids=SPECIAL,
        seed=5,
    )
    assert (masked.numpy()[selected.numpy()] == MASK_ID).all()


def test_same_seed_gives_the_same_output_and_none_gives_fresh_randomness():
    ids = corpus(rows=8, length=64, seed=6)
    first = tt.mask_tokens(ids, VOCABULARY, MASK_ID, seed=7)
    again = tt.mask_tokens(ids, VOCABULARY, MASK_ID, seed=7)
    other = tt.mask_tokens(ids, VOCABULARY, MASK_ID, seed=8)
    pair = tt.mask_tokens(ids, VOCABULARY, MASK_ID, seed=tf.constant([7, 0]))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first, pair, strict=True):  # int seed s is the pair (s, 0)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    fresh = [tt.mask_tokens(ids, VOCABULARY, MASK_ID)[1].numpy() for _ in range(2)]
    assert not np.array_equal(*fresh)


def test_mask_tokens_works_in_tf_function_with_unknown_shapes():
    ids = corpus(rows=5, length=33, seed=8)
    graph = tf.function(
        lambda x: tt.mask_tokens(x, VOCABULARY, MASK_ID, seed=9),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    eager = tt.mask_tokens(ids, VOCABULARY, MASK_ID, seed=9)
    for a, b in zip(graph(ids), eager, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mask_tokens_works_in_dataset_map_with_fresh_masks_per_batch():
    rows = [[4, 9, 10, 11, 3], [4, 12, 3], [4, 13, 14, 3]] * 40
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(rows), output_signature=tf.TensorSpec((None,), tf.int32)
    ).padded_batch(8)
    masked = dataset.map(lambda x: tt.mask_tokens(x, 30, MASK_ID, rate=0.5))
    assert masked.element_spec[0].shape.as_list() == [None, None]
    batches = [m.numpy() for m, _ in masked]
    assert len(batches) == 15
    assert len({b.tobytes() for b in batches}) > 1  # not one mask for all


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"token_ids": tf.ones((2, 3))}, TypeError, "token_ids"),
        ({"token_ids": tf.ones((6,), tf.int32)}, ValueError, "token_ids"),
        ({"vocabulary_size": 0}, ValueError, "vocabulary_size"),
        ({"mask_token_id": 50}, ValueError, "mask_token_id"),
        ({"mask_token_id": 6.0}, TypeError, "mask_token_id"),
        ({"rate": 1.5}, ValueError, "rate"),
        ({"mask_token_rate": 0.9, "random_token_rate": 0.2}, ValueError, "<= 1"),
        ({"unselectable_ids": ("a",)}, TypeError, "unselectable_ids"),
        ({"unselectable_ids": 0}, TypeError, "unselectable_ids"),
        ({"seed": "seven"}, ValueError, "seed"),
        ({"seed": tf.constant([1, 2, 3])}, ValueError, "seed"),
        ({"vocabulary_size": 7}, ValueError, "no id is left"),
    ],
)
def test_mask_tokens_rejects_bad_arguments_by_name(kwargs, error, match):
    arguments = {
        "token_ids": tf.constant([[4, 9, 3]]),
        "vocabulary_size": 30,
        "mask_token_id": MASK_ID,
        "unselectable_ids": SPECIAL,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        tt.mask_tokens(**arguments)


# ------------------------------------------------------------- masked_mean


def test_masked_mean_averages_real_positions_only():
    x = tf.random.stateless_normal((3, 6, 4), seed=(1, 2))
    lengths = [6, 2, 4]
    mask = tf.sequence_mask(lengths, 6)
    result = tt.masked_mean(x, mask).numpy()
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(result[row], x[row, :n].numpy().mean(0), atol=1e-6)
    as_int = tt.masked_mean(x, tf.cast(mask, tf.int32)).numpy()
    np.testing.assert_allclose(as_int, result, atol=1e-7)


def test_masked_mean_gives_zeros_not_nan_for_a_row_without_real_positions():
    x = tf.ones((2, 3, 4))
    result = tt.masked_mean(x, tf.constant([[True, False, False], [False] * 3]))
    np.testing.assert_array_equal(result.numpy(), [[1.0] * 4, [0.0] * 4])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tt.masked_mean(x, tf.zeros((2, 3), tf.bool)))
    assert np.isfinite(tape.gradient(y, x).numpy()).all()


def test_masked_mean_keeps_the_dtype_and_runs_with_unknown_shapes():
    x = tf.random.stateless_normal((2, 5, 3), seed=(3, 4))
    mask = tf.sequence_mask([5, 2], 5)
    half = tt.masked_mean(tf.cast(x, tf.float16), mask)
    assert half.dtype == tf.float16
    graph = tf.function(
        tt.masked_mean,
        input_signature=[
            tf.TensorSpec((None, None, None), tf.float32),
            tf.TensorSpec((None, None), tf.bool),
        ],
    )
    np.testing.assert_allclose(graph(x, mask), tt.masked_mean(x, mask), atol=1e-7)
    np.testing.assert_allclose(half.numpy(), graph(x, mask).numpy(), atol=1e-2)


@pytest.mark.parametrize(
    "sequence, mask, error, match",
    [
        (tf.ones((2, 3)), tf.ones((2, 3), tf.bool), ValueError, "`sequence`"),
        (tf.ones((2, 3, 4)), tf.ones((2, 3, 1), tf.bool), ValueError, "`mask`"),
        (tf.ones((2, 3, 4)), tf.ones((2, 3)), TypeError, "`mask`"),
        (tf.ones((2, 3, 4), tf.int32), tf.ones((2, 3), tf.bool), TypeError, "sequence"),
    ],
)
def test_masked_mean_rejects_bad_input_by_name(sequence, mask, error, match):
    with pytest.raises(error, match=match):
        tt.masked_mean(sequence, mask)


# ------------------------------------------------------------- MaskedLMHead


def test_masked_lm_head_passes_the_layer_checks():
    run_layer_test(
        tt.MaskedLMHead,
        {"vocab_size": 30, "tie_weights": False},
        [tf.random.stateless_normal((2, 5, 16), seed=(5, 6))],
        expected_output_shape=(2, 5, 30),
        output_dtype="float32",
    )


def test_tied_head_projects_with_the_embedding_matrix_and_keeps_the_mask():
    embedding = tt.PositionalEmbedding(30, 16)
    ids = tf.constant([[4, 9, 12, 0, 0]])
    x = embedding(ids)
    matrix = embedding.token_embedding.embeddings
    head = tt.MaskedLMHead(30)
    logits = head(x, token_embedding=matrix)
    hidden = head.layer_norm(head.transform(x))
    np.testing.assert_allclose(
        logits,
        tf.matmul(hidden, matrix, transpose_b=True) + head.output_bias,
        atol=1e-5,
    )
    assert not any("output_kernel" in w.path for w in head.weights)
    np.testing.assert_array_equal(logits._keras_mask, [[1, 1, 1, 0, 0]])
    mixed = tt.MaskedLMHead(30, dtype="mixed_float16")
    out = mixed(tf.cast(x, tf.float16), token_embedding=matrix)
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize(
    "kwargs, call, match",
    [
        ({"vocab_size": 0}, None, "vocab_size"),
        ({"vocab_size": 30, "tie_weights": "yes"}, None, "tie_weights"),
        ({"vocab_size": 30}, {}, "`token_embedding` is required"),
        ({"vocab_size": 30}, {"token_embedding": tf.ones((31, 16))}, "shape"),
        (
            {"vocab_size": 30, "tie_weights": False},
            {"token_embedding": tf.ones((30, 16))},
            "must be None",
        ),
    ],
)
def test_masked_lm_head_rejects_bad_arguments_by_name(kwargs, call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        head = tt.MaskedLMHead(**kwargs)
        head(tf.ones((1, 3, 16)), **call)
