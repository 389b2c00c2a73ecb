"""Checks of `mask_tokens` and `masked_mean` (lesson 10).

`mask_tokens` is random, so its check is statistical: on about 100,000
tokens each measured share must fall inside a binomial interval of
`_Z` standard errors around the expected value (a correct answer fails by
chance about once in a million runs). Every hint names the share that is off.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)

_Z = 5.0
_VOCABULARY = 200
_MASK_ID = 6
_SPECIAL = (0, 1, 2, 3, 4, 5)


def _corpus(rows, length, seed, dtype="int32"):
    """Ids 7.. with [CLS] first, some [END]/[SEP] inside, and padding at the end."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(7, _VOCABULARY, size=(rows, length))
    ids[:, 0] = 4
    ids[rng.random(ids.shape) < 0.05] = 5
    lengths = rng.integers(length // 2, length + 1, size=rows)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids.astype(dtype)


def _call(ctx, student, ids, what, **kwargs):
    arguments = dict(
        vocabulary_size=_VOCABULARY,
        mask_token_id=_MASK_ID,
        unselectable_ids=_SPECIAL,
    )
    arguments.update(kwargs)
    result = ctx.call(student, tf.constant(ids), what=what, **arguments)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Failure(
            f"{what} returned {type(result).__name__}; return the pair "
            "(masked_ids, selected)"
        )
    masked, selected = result
    expect_dtype(
        masked,
        tf.as_dtype(ids.dtype).name,
        f"masked_ids of {what}",
        "keep the dtype of token_ids",
    )
    expect_dtype(
        selected, "bool", f"selected of {what}", "return booleans, True = selected"
    )
    masked, selected = to_numpy(masked, what), to_numpy(selected, what)
    expect_shape(masked, ids.shape, f"masked_ids of {what}", "same shape as token_ids")
    expect_shape(selected, ids.shape, f"selected of {what}", "same shape as token_ids")
    return masked, selected


def _share(count, total, expected, name, hint):
    share = count / max(total, 1)
    spread = _Z * np.sqrt(expected * (1 - expected) / max(total, 1))
    if abs(share - expected) > spread + 1e-12:
        raise Failure(
            f"{name} is {share:.1%}, expected {expected:.1%} ± {spread:.1%} "
            f"(over {total:,} tokens) — {hint}"
        )


def _check_structure(ctx, student):
    ids = _corpus(4, 30, seed=1)
    masked, selected = _call(ctx, student, ids, "mask_tokens(ids, …, seed=1)", seed=1)
    special = np.isin(ids, _SPECIAL)
    if selected[special].any():
        kinds = sorted({int(i) for i in ids[special & selected]})
        raise Failure(
            f"selected positions hold the unselectable ids {kinds} (padding or "
            "special tokens) — select only tokens not in `unselectable_ids`"
        )
    if not np.array_equal(masked[~selected], ids[~selected]):
        raise Failure(
            "masked_ids differs from token_ids at positions that are not selected "
            "— only selected positions may change"
        )
    ids64 = _corpus(2, 10, seed=2, dtype="int64")
    _call(ctx, student, ids64, "mask_tokens(int64 ids, …)", seed=1)
    everything = _corpus(3, 20, seed=3)
    masked, selected = _call(
        ctx,
        student,
        everything,
        "mask_tokens(ids, …, rate=1.0, mask_token_rate=1.0, random_token_rate=0.0)",
        rate=1.0,
        mask_token_rate=1.0,
        random_token_rate=0.0,
        seed=2,
    )
    selectable = ~np.isin(everything, _SPECIAL)
    if not np.array_equal(selected, selectable):
        raise Failure(
            "with rate=1.0 every selectable token must be selected, and no "
            "unselectable one — is `rate` used?"
        )
    became_mask = masked[selected] == _MASK_ID
    if not became_mask.all():
        used = (
            "is `mask_token_rate` used?"
            if became_mask.any()
            else "is `mask_token_id` used?"
        )
        raise Failure(
            "with mask_token_rate=1.0 every selected token must become "
            f"mask_token_id — {used}"
        )
    ctx.ok(
        "(masked_ids, selected) with the right shapes and dtypes; unselectable ids "
        "never selected; unselected tokens unchanged"
    )


def _check_shares(ctx, student, rate, mask_rate, random_rate, seed):
    ids = _corpus(200, 500, seed=seed)
    what = (
        f"mask_tokens(ids, …, rate={rate}, mask_token_rate={mask_rate}, "
        f"random_token_rate={random_rate})"
    )
    masked, selected = _call(
        ctx,
        student,
        ids,
        what,
        rate=rate,
        mask_token_rate=mask_rate,
        random_token_rate=random_rate,
        seed=seed,
    )
    selectable = ~np.isin(ids, _SPECIAL)
    n_selectable, n_selected = int(selectable.sum()), int(selected.sum())
    if n_selected == n_selectable:
        raise Failure(
            f"{what} selected 100% of the selectable tokens — each one is selected "
            "with probability `rate`"
        )
    _share(
        n_selected,
        n_selectable,
        rate,
        "the share of selectable tokens selected",
        "each selectable token is selected independently with probability `rate` "
        "(is `rate` used, and are padding/special ids left out of the count?)",
    )
    changed = masked != ids
    to_mask = selected & (masked == _MASK_ID)
    to_random = selected & changed & (masked != _MASK_ID)
    replacements = masked[to_random]
    bad = sorted({int(i) for i in replacements if i in _SPECIAL or i == _MASK_ID})
    if bad:
        raise Failure(
            f"random replacements include the ids {bad} — draw from the vocabulary "
            "without `unselectable_ids` and `mask_token_id`"
        )
    if ((replacements < 0) | (replacements >= _VOCABULARY)).any():
        raise Failure(
            "random replacements fall outside [0, vocabulary_size) — draw ids "
            "below `vocabulary_size`"
        )
    if mask_rate < 1 and to_mask.sum() == n_selected:
        raise Failure(
            "every selected token became [MASK] — only `mask_token_rate` of them "
            "(80 %); `random_token_rate` get a random id and the rest stay "
            "unchanged (80/10/10)"
        )
    allowed = _VOCABULARY - len(_SPECIAL) - 1
    same = random_rate / allowed  # a random id equal to the original one
    _share(
        int(to_mask.sum()),
        n_selected,
        mask_rate,
        "the share of selected tokens replaced by [MASK]",
        "a selected token becomes mask_token_id with probability `mask_token_rate`",
    )
    _share(
        int(to_random.sum()),
        n_selected,
        random_rate - same,
        "the share of selected tokens replaced by a random id",
        "decide mask / random / keep with ONE draw per token: [MASK] below "
        "mask_token_rate, random below mask_token_rate + random_token_rate",
    )
    return ids, masked, selected, to_random


def _check_independence(ctx, student, rate=0.15):
    """Selection must depend neither on the row nor on the position."""
    ids = _corpus(200, 500, seed=4)
    _, selected = _call(ctx, student, ids, f"mask_tokens(ids, …, rate={rate})", seed=4)
    selectable = ~np.isin(ids, _SPECIAL)
    per_row = selected.sum(1)
    all_or_nothing = (per_row == 0) | (per_row == selectable.sum(1))
    if len(set(per_row.tolist())) == 1 or all_or_nothing.mean() > 0.5:
        raise Failure(
            "rows are selected all at once or in equal numbers — each token is "
            "selected independently (draw with the shape of token_ids)"
        )
    identical = np.tile(ids[:1], (8, 1))
    _, chosen = _call(ctx, student, identical, "mask_tokens(8 equal rows)", seed=8)
    if all(np.array_equal(chosen[0], row) for row in chosen[1:]):
        raise Failure(
            "8 identical rows got the same selection — draw the random numbers "
            "with the shape (batch, length), not (length,)"
        )
    length = ids.shape[1]
    for part, columns in enumerate(np.array_split(np.arange(1, length), 4)):
        _share(
            int(selected[:, columns].sum()),
            int(selectable[:, columns].sum()),
            rate,
            f"the share selected in part {part + 1} of 4 of the positions",
            "draw one random number per token, not by position",
        )
    ctx.ok("each token is selected independently (positions, rows)")


@exercise("mask_tokens", lesson=10, points=2, kind="function")
def check_mask_tokens(ctx, student, reference):
    _check_structure(ctx, student)

    _check_independence(ctx, student)
    _check_shares(ctx, student, 0.15, 0.8, 0.1, seed=5)
    _check_shares(ctx, student, 0.4, 0.5, 0.3, seed=6)
    ctx.ok(
        "on 100,000 tokens: 15 % selected, 80 % [MASK] / 10 % random / 10 % kept, "
        "and other rates honoured (binomial intervals)"
    )
    _uniform_case(ctx, student)
    ctx.ok("random replacements are uniform over the ids that are not special")

    _check_seeds(ctx, student)
    _check_graph(ctx, student)


def _uniform_case(ctx, student):
    vocabulary = 20
    ids = np.full((400, 50), 10, "int32")
    what = "mask_tokens(ids, vocabulary_size=20, …, random_token_rate=1.0)"
    masked, selected = _call(
        ctx,
        student,
        ids,
        what,
        vocabulary_size=vocabulary,
        rate=0.5,
        mask_token_rate=0.0,
        random_token_rate=1.0,
        seed=7,
    )
    drawn = masked[selected]
    allowed = [i for i in range(vocabulary) if i not in _SPECIAL and i != _MASK_ID]
    counts = np.array([(drawn == i).sum() for i in allowed])
    bad = sorted({int(i) for i in drawn.tolist()} - set(allowed))
    if bad:
        raise Failure(
            f"{what}: random replacements include {bad} — draw only ids that are "
            "neither in `unselectable_ids` nor `mask_token_id`, below vocabulary_size"
        )
    expected = len(drawn) / len(allowed)
    spread = _Z * np.sqrt(expected)
    if (np.abs(counts - expected) > spread).any():
        raise Failure(
            f"{what}: the random ids are not uniform (counts per id from "
            f"{counts.min()} to {counts.max()}, expected about {expected:.0f}) — "
            "draw each allowed id with the same probability"
        )


def _check_seeds(ctx, student):
    ids = _corpus(16, 64, seed=9)
    first = _call(ctx, student, ids, "mask_tokens(ids, …, seed=3)", seed=3)
    again = _call(ctx, student, ids, "mask_tokens(ids, …, seed=3) again", seed=3)
    if not all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)):
        raise Failure(
            "two calls with seed=3 gave different results — the same seed must "
            "give the same output (stateless random ops such as "
            "tf.random.stateless_uniform take the seed)"
        )
    other = _call(ctx, student, ids, "mask_tokens(ids, …, seed=4)", seed=4)
    if np.array_equal(first[1], other[1]):
        raise Failure("seed=3 and seed=4 gave the same selection — is `seed` used?")
    pair = _call(
        ctx,
        student,
        ids,
        "mask_tokens(ids, …, seed=tf.constant([3, 5]))",
        seed=tf.constant([3, 5], tf.int64),
    )
    pair_again = _call(
        ctx,
        student,
        ids,
        "mask_tokens(…, seed=tf.constant([3, 5])) again",
        seed=tf.constant([3, 5], tf.int64),
    )
    if not np.array_equal(pair[1], pair_again[1]):
        raise Failure(
            "a shape-(2,) seed tensor gave different results twice — use it as "
            "the seed of stateless random ops"
        )
    fresh = [
        _call(ctx, student, ids, "mask_tokens(ids, …, seed=None)", seed=None)[1]
        for _ in range(2)
    ]
    if np.array_equal(*fresh):
        raise Failure(
            "two calls with seed=None gave the same selection — seed=None means "
            "fresh randomness at every call (no fixed default seed)"
        )
    ctx.ok("same seed → same output; seed=None → fresh randomness")


def _check_graph(ctx, student):
    ids = _corpus(6, 40, seed=10)
    what = "mask_tokens inside tf.function with unknown batch and length"
    graph = tf.function(
        lambda x: student(
            x,
            vocabulary_size=_VOCABULARY,
            mask_token_id=_MASK_ID,
            unselectable_ids=_SPECIAL,
            seed=11,
        ),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    masked, selected = (
        to_numpy(t, what) for t in ctx.call(graph, tf.constant(ids), what=what)
    )
    eager = _call(ctx, student, ids, "mask_tokens(ids, …, seed=11)", seed=11)
    if not (np.array_equal(masked, eager[0]) and np.array_equal(selected, eager[1])):
        raise Failure(
            f"{what}: differs from eager mode with the same seed — use tf.shape "
            "for sizes that are unknown when the function is traced"
        )
    dataset = tf.data.Dataset.from_tensor_slices(ids).batch(3)
    what = "mask_tokens in tf.data.Dataset.map (seed=None)"
    mapped = ctx.call(
        lambda: [
            b[1].numpy()
            for b in dataset.map(
                lambda x: student(
                    x,
                    vocabulary_size=_VOCABULARY,
                    mask_token_id=_MASK_ID,
                    unselectable_ids=_SPECIAL,
                )
            )
        ],
        what=what,
    )
    if len(mapped) != 2 or np.isin(ids, _SPECIAL)[:3][mapped[0]].any():
        raise Failure(f"{what}: wrong result — it must work on symbolic tensors")
    ctx.ok("works in tf.function and tf.data.Dataset.map with unknown shapes")


# ----------------------------------------------------------------- masked_mean


def _masked_mean_hint(actual, x, mask):
    weights = mask[..., None].astype("float64")
    total = (x * weights).sum(1)
    if np.allclose(actual, x.mean(1), atol=1e-5):
        return (
            "this is the mean over every position: the mean counts padding — "
            "average over the real positions only"
        )
    if np.allclose(actual, total / x.shape[1], atol=1e-5):
        return (
            "the masked sum is divided by the full length — divide by the number "
            "of real positions"
        )
    if np.allclose(actual, total, atol=1e-5):
        return "this is the masked sum — divide it by the number of real positions"
    inverted = (x * (1 - weights)).sum(1) / np.maximum((1 - weights).sum(1), 1)
    if np.allclose(actual, inverted, atol=1e-5):
        return "it averages the padding positions: True/1 in `mask` is a real token"
    return "the mean over the positions where mask is True"


@exercise("masked_mean", lesson=10, points=1, kind="function")
def check_masked_mean(ctx, student, reference):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 7, 5)).astype("float32")
    mask = np.arange(7)[None, :] < np.array([7, 3, 5, 1])[:, None]
    what = "masked_mean(sequence (4, 7, 5), mask with lengths 7, 3, 5, 1)"
    result = ctx.call(student, tf.constant(x), tf.constant(mask), what=what)
    actual = to_numpy(result, what)
    expected = np.asarray(reference(tf.constant(x), tf.constant(mask)))
    hint = ""
    if actual.shape == (4, 1, 5):
        hint = "drop the length axis (no keepdims)"
    elif actual.shape == (4, 7):
        hint = "average over the length axis (axis 1), not over depth"
    expect_shape(actual, expected.shape, what, hint or "expected (batch, depth)")
    if not np.allclose(actual, expected, atol=1e-5):
        raise Failure(f"{what}: wrong values — {_masked_mean_hint(actual, x, mask)}")
    as_int = to_numpy(
        ctx.call(
            student,
            tf.constant(x),
            tf.constant(mask.astype("int32")),
            what="masked_mean with an int mask",
        ),
        "masked_mean with an int mask",
    )
    if not np.allclose(as_int, expected, atol=1e-5):
        raise Failure("an int mask (1 = real) must give the same result as a bool one")
    ctx.ok("mean over the real positions, (batch, depth); bool or int mask")

    empty = mask.copy()
    empty[2] = False
    what = "masked_mean with a row without real positions"
    actual = to_numpy(
        ctx.call(student, tf.constant(x), tf.constant(empty), what=what), what
    )
    if np.isnan(actual[2]).any():
        raise Failure(
            f"{what} gives NaN (0 / 0) — return zeros for it, e.g. with "
            "tf.math.divide_no_nan"
        )
    if not np.allclose(actual[2], 0.0):
        raise Failure(f"{what} gives {actual[2].round(3).tolist()}, expected zeros")
    ctx.ok("a row without real positions gives zeros, not NaN")

    what = "masked_mean(float16 sequence, …)"
    half = ctx.call(student, tf.constant(x, tf.float16), tf.constant(mask), what=what)
    expect_dtype(half, "float16", what, "the output dtype must equal sequence.dtype")
    what = "masked_mean inside tf.function with unknown shapes"
    graph = tf.function(
        student,
        input_signature=[
            tf.TensorSpec((None, None, None), tf.float32),
            tf.TensorSpec((None, None), tf.bool),
        ],
    )
    actual = to_numpy(
        ctx.call(graph, tf.constant(x), tf.constant(mask), what=what), what
    )
    if not np.allclose(actual, expected, atol=1e-5):
        raise Failure(f"{what}: differs from eager mode — use tensor ops only")
    ctx.ok("keeps the dtype; works in tf.function with unknown shapes")
