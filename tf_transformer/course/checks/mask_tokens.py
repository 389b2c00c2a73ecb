"""Check of `mask_tokens` (lesson 10).

`mask_tokens` is random, so its check is statistical: on about 100,000
tokens each measured share must fall inside a binomial interval of
`_Z` standard errors around the expected value (a correct answer fails by
chance about once in a million runs). Every hint names the share that is off.
"""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bugs_of,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)
from tf_transformer.course.checks._seeds import check_seeds

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


def _check_kept(ctx, student):
    """`selected` marks every selected token, the ones kept unchanged too."""
    ids = _corpus(100, 200, seed=12)
    masked, selected = _call(ctx, student, ids, "mask_tokens(ids, …)", seed=12)
    n_selected = max(int(selected.sum()), 1)
    if (selected & (masked == _MASK_ID)).sum() == n_selected:
        raise Failure(
            "every selected token became [MASK] — only `mask_token_rate` of them "
            "(80 %); `random_token_rate` get a random id and the rest stay "
            "unchanged (80/10/10)"
        )
    kept = (selected & (masked == ids)).sum() / n_selected
    if kept < 0.05:  # 10 % expected; a random id equals the original rarely
        raise Failure(
            f"only {kept:.1%} of the selected tokens kept their id, expected about "
            "10 % — `selected` must also mark the selected tokens left unchanged "
            "(the model is asked to predict them too): the kept tokens are left "
            "out of `selected`"
        )


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


@exercise(
    "mask_tokens",
    lesson=10,
    points=2,
    kind="function",
    reference="mask_tokens",
)
def check_mask_tokens(ctx, student, reference):
    # Each check comes before the ones its mistake would also fail, so each
    # mistake gets its own hint (the catalogue below proves it).
    _check_structure(ctx, student)
    _check_kept(ctx, student)
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

    def run(seed, what):
        return np.concatenate(_call(ctx, student, ids, what, seed=seed))

    check_seeds(ctx, run, "mask_tokens")


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


# ------------------------------------------------- catalogue of typical bugs


def _masking(
    select_special=False,
    pool="allowed",
    decide="one_draw",
    fixed_rate=None,
    fixed_split=None,
    selection_shape="full",
    none_seed=None,
    use_seed=True,
    output_dtype=None,
    static_shape=False,
    selected_output="selected",
):
    """`mask_tokens` with one mistake switched on by each argument."""

    def mask_tokens(
        token_ids,
        vocabulary_size,
        mask_token_id,
        rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        unselectable_ids=(0, 1, 2, 3),
        seed=None,
    ):
        ids = tf.convert_to_tensor(token_ids)
        rate = fixed_rate if fixed_rate is not None else rate
        if fixed_split is not None:
            mask_token_rate, random_token_rate = fixed_split
        shape = ids.shape if static_shape else tf.shape(ids)
        if seed is None:
            seed = none_seed
        if seed is None or not use_seed:
            draw = lambda s, **kw: tf.random.uniform(s, **kw)  # noqa: E731
        else:
            if isinstance(seed, int):
                pair = tf.constant([seed, 0], tf.int64)
            else:
                pair = tf.cast(seed, tf.int64)
            streams = iter(tf.unstack(tf.random.experimental.stateless_split(pair, 4)))
            draw = lambda s, **kw: tf.random.stateless_uniform(  # noqa: E731
                s, seed=next(streams), **kw
            )
        if selection_shape == "row":
            select = draw(tf.stack([tf.shape(ids)[0], 1])) < rate
        elif selection_shape == "column":
            select = draw(tf.stack([1, tf.shape(ids)[1]])) < rate
        else:
            select = draw(shape) < rate
        selectable = tf.ones_like(ids, tf.bool)
        if not select_special:
            for special in unselectable_ids:
                selectable &= ids != special
        selected = select & selectable
        kind = draw(shape)
        to_mask = selected & (kind < mask_token_rate)
        if decide == "all_mask":
            to_mask = selected
        if decide == "two_draws":
            to_random = selected & ~to_mask & (draw(shape) < random_token_rate)
        else:
            to_random = (
                selected & ~to_mask & (kind < mask_token_rate + random_token_rate)
            )
        if pool == "allowed":
            excluded = set(unselectable_ids) | {mask_token_id}
            allowed = [i for i in range(vocabulary_size) if i not in excluded]
        else:
            allowed = list(range(vocabulary_size))
        index = draw(shape, maxval=len(allowed), dtype=tf.int32)
        random_ids = tf.gather(tf.constant(allowed, ids.dtype), index)
        masked = tf.where(to_random, random_ids, ids)
        masked = tf.where(to_mask, tf.cast(mask_token_id, ids.dtype), masked)
        if output_dtype is not None:
            masked = tf.cast(masked, output_dtype)
        if selected_output == "changed":
            selected = masked != ids
        return masked, selected

    return mask_tokens


bugs_of(
    "mask_tokens",
    _masking,
    [
        (
            "mask_selects_padding",
            "select only tokens not in `unselectable_ids`",
            "padding and special tokens can be selected",
            dict(select_special=True),
        ),
        (
            "mask_every_selected_token",
            "only `mask_token_rate` of them",
            "every selected token becomes [MASK] (no 80/10/10)",
            dict(decide="all_mask"),
        ),
        (
            "mask_random_from_whole_vocabulary",
            "without `unselectable_ids` and `mask_token_id`",
            "random replacements drawn from the whole vocabulary, specials included",
            dict(pool="vocabulary"),
        ),
        (
            "mask_fixed_rate",
            "is `rate` used",
            "15 % hard-coded instead of `rate`",
            dict(fixed_rate=0.15),
        ),
        (
            "mask_fixed_split",
            "is `mask_token_rate` used",
            "80/10/10 hard-coded instead of the rate arguments",
            dict(fixed_split=(0.8, 0.1)),
        ),
        (
            "mask_two_draws",
            "ONE draw per token",
            "random replacement decided by a second, independent draw",
            dict(decide="two_draws"),
        ),
        (
            "mask_whole_rows",
            "selected all at once",
            "one selection draw per row: whole sequences selected or not",
            dict(selection_shape="row"),
        ),
        (
            "mask_same_for_every_row",
            "not (length,)",
            "one selection draw per position, shared by every row",
            dict(selection_shape="column"),
        ),
        (
            "mask_fixed_seed_when_none",
            "fresh randomness at every call",
            "seed=None replaced by a fixed seed 0",
            dict(none_seed=0),
        ),
        (
            "mask_ignores_seed",
            "the same seed must give the same output",
            "stateful random ops: the seed is ignored",
            dict(use_seed=False),
        ),
        (
            "mask_casts_to_int32",
            "keep the dtype of token_ids",
            "masked_ids always int32",
            dict(output_dtype=tf.int32),
        ),
        (
            "mask_static_shape",
            "💥",
            "draws with the static shape (None inside tf.function)",
            dict(static_shape=True),
        ),
        (
            "mask_selected_means_changed",
            "the kept tokens are left out of `selected`",
            "`selected` marks only the tokens that changed ([MASK] or random)",
            dict(selected_output="changed"),
        ),
    ],
)


@alternative("mask_tokens")
def mask_with_categorical_kind():
    """the kind of replacement from one categorical draw; seeds offset by hand"""

    def mask_tokens(
        token_ids,
        vocabulary_size,
        mask_token_id,
        rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        unselectable_ids=(0, 1, 2, 3),
        seed=None,
    ):
        token_ids = tf.convert_to_tensor(token_ids)
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        elif isinstance(seed, int):
            seed = tf.constant([seed, 1])
        seed = tf.cast(seed, tf.int32)
        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        special = tf.constant(list(unselectable_ids) or [-1], token_ids.dtype)
        is_special = tf.reduce_any(token_ids[..., None] == special, axis=-1)
        coin = tf.random.stateless_uniform([batch, length], seed=seed)
        selected = (coin < rate) & ~is_special
        keep_rate = max(0.0, 1.0 - mask_token_rate - random_token_rate)
        probabilities = [mask_token_rate, random_token_rate, keep_rate]
        logits = tf.math.log([[max(p, 1e-30) for p in probabilities]])
        kind = tf.random.stateless_categorical(logits, batch * length, seed + 1)
        kind = tf.reshape(kind, [batch, length])
        allowed = np.setdiff1d(
            np.arange(vocabulary_size), [*unselectable_ids, mask_token_id]
        )
        pick = tf.random.stateless_uniform(
            [batch, length], seed=seed + 2, maxval=len(allowed), dtype=tf.int32
        )
        random_ids = tf.gather(tf.constant(allowed, token_ids.dtype), pick)
        replaced = tf.where(
            kind == 0, tf.cast(mask_token_id, token_ids.dtype), random_ids
        )
        replaced = tf.where(kind == 2, token_ids, replaced)
        return tf.where(selected, replaced, token_ids), selected

    return mask_tokens


@alternative("mask_tokens")
def mask_with_float_ids():
    """random ids from a scaled float draw; one uniform table per purpose"""

    def mask_tokens(
        token_ids,
        vocabulary_size,
        mask_token_id,
        rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        unselectable_ids=(0, 1, 2, 3),
        seed=None,
    ):
        ids = tf.convert_to_tensor(token_ids)
        if seed is None:
            seed = tf.random.uniform([2], 0, 2**30, dtype=tf.int64)
        elif not tf.is_tensor(seed) and np.ndim(seed) == 0:
            seed = [seed, 7]
        uniforms = tf.random.stateless_uniform(
            tf.concat([[3], tf.shape(ids)], 0), seed=tf.cast(seed, tf.int64)
        )  # (3, batch, length)
        selectable = tf.logical_not(
            tf.reduce_any(
                tf.equal(
                    ids[..., None], tf.cast(list(unselectable_ids) + [-1], ids.dtype)
                ),
                -1,
            )
        )
        selected = tf.logical_and(uniforms[0] < rate, selectable)
        allowed = sorted(
            set(range(vocabulary_size)) - set(unselectable_ids) - {mask_token_id}
        )
        index = tf.minimum(
            tf.cast(uniforms[2] * len(allowed), tf.int32), len(allowed) - 1
        )
        random_ids = tf.gather(tf.constant(allowed, ids.dtype), index)
        masked = ids
        masked = tf.where(
            selected
            & (uniforms[1] >= mask_token_rate)
            & (uniforms[1] < mask_token_rate + random_token_rate),
            random_ids,
            masked,
        )
        masked = tf.where(
            selected & (uniforms[1] < mask_token_rate),
            tf.fill(tf.shape(ids), tf.cast(mask_token_id, ids.dtype)),
            masked,
        )
        return masked, selected

    return mask_tokens
