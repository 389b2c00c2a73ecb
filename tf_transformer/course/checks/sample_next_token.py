"""Check of `sample_next_token` (lesson 11).

The answer is random, so most checks are statistical: 20,000 rows of the
same logits are sampled at once and the frequency of each token must fall
within `_Z` binomial standard errors of the contract's distribution. The
logits are chosen so that each typical mistake (temperature ignored,
multiplied or applied after the filters, top-p before top-k, …) gives a
distribution or a set of drawn tokens of its own, which the hint names.
"""

import inspect

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    GRAPH_NUMPY_HINT,
    Failure,
    StudentError,
    alternative,
    bugs_of,
    exercise,
    expect_dtype,
    expect_shape,
    to_numpy,
)
from tf_transformer.course.checks._seeds import check_seeds

_Z = 5.0
_DRAWS = 20_000


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    finite = np.isfinite(logits)
    shifted = np.where(finite, logits - logits[finite].max(), -np.inf)
    weights = np.exp(shifted)
    return weights / weights.sum()


def _top_k(probabilities, k):
    kept = np.zeros(probabilities.shape, bool)
    kept[np.argsort(-probabilities)[:k]] = True
    return kept


def _top_p(probabilities, p):
    order = np.argsort(-probabilities)
    before = np.cumsum(probabilities[order]) - probabilities[order]
    kept = np.zeros(probabilities.shape, bool)
    kept[order[before < p]] = True
    return kept


def _restrict(probabilities, kept):
    restricted = np.where(kept, probabilities, 0.0)
    return restricted / restricted.sum()


def _expected(logits, temperature=1.0, top_k=None, top_p=None, order="kp"):
    """The distribution of the next token (numpy), with `order` of the
    operations as knobs for the mistakes: "t" temper, "k" top-k, "p" top-p."""
    logits = np.asarray(logits, np.float64)
    order = order if "t" in order else "t" + order
    for step in order:
        probabilities = _softmax(logits)
        if step == "t":
            logits = logits / temperature
        elif step == "k" and top_k is not None:
            logits = np.where(_top_k(probabilities, top_k), logits, -np.inf)
        elif step == "p" and top_p is not None:
            logits = np.where(_top_p(probabilities, top_p), logits, -np.inf)
    return _softmax(logits)


def _draw(ctx, student, logits, what, **kwargs):
    """The student's tokens for `_DRAWS` copies of one row of logits."""
    rows = tf.constant(np.tile(np.asarray(logits, np.float32), (_DRAWS, 1)))
    tokens = ctx.call(student, rows, what=what, **kwargs)
    expect_dtype(
        tokens,
        "int32",
        what,
        "return int32 token ids (tf.random.stateless_categorical(..., "
        "dtype=tf.int32) or tf.argmax(..., output_type=tf.int32))",
    )
    tokens = to_numpy(tokens, what)
    expect_shape(
        tokens,
        (_DRAWS,),
        what,
        "one token per row, shape (batch,): drop the samples axis with [:, 0]",
    )
    if ((tokens < 0) | (tokens >= len(logits))).any():
        raise Failure(f"{what} returned ids outside [0, {len(logits)})")
    return np.bincount(tokens, minlength=len(logits)) / _DRAWS


def _fits(frequencies, probabilities):
    spread = _Z * np.sqrt(probabilities * (1 - probabilities) / _DRAWS) + 1e-9
    return bool((np.abs(frequencies - probabilities) <= spread).all())


def _compare(frequencies, expected, what, mistakes, fallback):
    """Fail with the hint of the first mistake the frequencies fit."""
    drawn_removed = (frequencies > 0) & (expected == 0)
    if _fits(frequencies, expected) and not drawn_removed.any():
        return
    shown = ", ".join(f"{f:.3f}" for f in frequencies)
    wanted = ", ".join(f"{p:.3f}" for p in expected)
    message = f"{what}: token frequencies [{shown}], expected [{wanted}] — "
    for distribution, hint in mistakes:
        if _fits(frequencies, distribution):
            raise Failure(message + hint)
    if drawn_removed.any():
        tokens = np.flatnonzero(drawn_removed).tolist()
        raise Failure(
            message + f"token(s) {tokens} were drawn although the filters remove "
            "them — draw from the filtered logits (−inf has probability 0)"
        )
    raise Failure(message + fallback)


_PROBABILITIES = np.array([0.5, 0.3, 0.15, 0.05])
_LOGITS = np.log(_PROBABILITIES)
_CATEGORICAL_HINT = (
    "the draws do not follow softmax(logits / temperature); "
    "tf.random.stateless_categorical takes logits (log-probabilities), "
    "not probabilities"
)


def _check_greedy(ctx, student):
    logits = np.array([[0.1, 2.0, -1.0, 1.9], [3.0, -2.0, 2.5, 0.0], [0, 0, 0, 5.0]])
    what = "sample_next_token(logits, temperature=0)"
    tokens = ctx.call(student, tf.constant(logits, tf.float32), 0, what=what)
    tokens = to_numpy(tokens, what)
    expect_shape(
        tokens, (3,), what, "one token per row, shape (batch,): drop the samples axis"
    )
    again = to_numpy(
        ctx.call(student, tf.constant(logits, tf.float32), 0, what=what), what
    )
    if not (np.array_equal(tokens, [1, 0, 3]) and np.array_equal(again, [1, 0, 3])):
        raise Failure(
            f"{what} returned {tokens.tolist()} then {again.tolist()}, expected "
            "[1, 0, 3] both times — temperature 0 is greedy: return the argmax "
            "(no division by 0, no randomness)"
        )
    ctx.ok("temperature 0 returns the argmax")


def _check_temperature(ctx, student):
    for temperature in (0.5, 2.0):
        what = f"sample_next_token(logits, temperature={temperature}, seed=1)"
        frequencies = _draw(
            ctx, student, _LOGITS, what, temperature=temperature, seed=1
        )
        expected = _expected(_LOGITS, temperature)
        tempered = _softmax(_LOGITS / temperature)
        mistakes = [
            (
                _softmax(_LOGITS),
                "the temperature is not applied: divide the logits by "
                "`temperature` before drawing",
            ),
            (
                _softmax(_LOGITS * temperature),
                "the logits are multiplied by the temperature; divide them by it "
                "(τ < 1 sharpens, τ > 1 flattens)",
            ),
            (_softmax(tempered), _CATEGORICAL_HINT),
        ]
        _compare(frequencies, expected, what, mistakes, _CATEGORICAL_HINT)
    ctx.ok("draws from softmax(logits / temperature) (20,000 draws, binomial bounds)")


def _check_filters(ctx, student):
    # τ = 2 flattens [0.6, 0.25, 0.1, 0.05] so that top-p = 0.8 keeps three
    # tokens; on the untempered logits it would keep two.
    logits = np.log([0.6, 0.25, 0.1, 0.05])
    what = "sample_next_token(logits, temperature=2.0, top_p=0.8, seed=2)"
    frequencies = _draw(ctx, student, logits, what, temperature=2.0, top_p=0.8, seed=2)
    mistakes = [
        (
            _expected(logits, 2.0, top_p=0.8, order="pt"),
            "top-p ran before the temperature: divide by the temperature first, "
            "then filter, so the filter sees the distribution that is sampled",
        ),
        (
            _expected(logits, 2.0),
            "top_p is ignored: filter the tempered logits with top_p_filter",
        ),
        (
            _expected(logits, 1.0, top_p=0.8),
            "the temperature is not applied: divide the logits by `temperature` "
            "before filtering",
        ),
    ]
    _compare(
        frequencies,
        _expected(logits, 2.0, top_p=0.8),
        what,
        mistakes,
        _CATEGORICAL_HINT,
    )

    what = "sample_next_token(logits, top_k=3, seed=3)"
    frequencies = _draw(ctx, student, _LOGITS, what, top_k=3, seed=3)
    mistakes = [(_expected(_LOGITS), "top_k is ignored: filter with top_k_filter")]
    _compare(
        frequencies, _expected(_LOGITS, top_k=3), what, mistakes, _CATEGORICAL_HINT
    )

    # Top-k first renormalises [0.5, 0.2] to [0.71, 0.29]: top-p = 0.65 then
    # keeps one token; top-p first would keep two.
    logits = np.log([0.5, 0.2, 0.15, 0.15])
    what = "sample_next_token(logits, top_k=2, top_p=0.65, seed=4)"
    frequencies = _draw(ctx, student, logits, what, top_k=2, top_p=0.65, seed=4)
    mistakes = [
        (
            _expected(logits, top_k=2, top_p=0.65, order="pk"),
            "top-p ran before top-k: apply top_k_filter first, then top_p_filter "
            "on what it keeps",
        ),
        (_expected(logits, top_k=2), "top_p is ignored when top_k is given too"),
        (_expected(logits, top_p=0.65), "top_k is ignored when top_p is given too"),
    ]
    _compare(
        frequencies,
        _expected(logits, top_k=2, top_p=0.65),
        what,
        mistakes,
        "compare the order of your steps with the contract: temperature, top-k, "
        "top-p, draw",
    )
    ctx.ok("temperature, then top-k, then top-p; a filtered token is never drawn")


def _tokens(ctx, student, logits, what, **kwargs):
    return to_numpy(ctx.call(student, tf.constant(logits), what=what, **kwargs), what)


def _check_seeds(ctx, student):
    logits = np.tile(np.log([0.3, 0.3, 0.2, 0.2]).astype(np.float32), (256, 1))
    check_seeds(
        ctx,
        lambda seed, what: _tokens(ctx, student, logits, what, seed=seed),
        "sample_next_token",
    )


def _is_local(function):
    """False in the grader, where the answer is a handle on the answers'
    process, traced there by `tf.function`: XLA cannot compile a call into
    another process, so the XLA sub-check runs in the learner's self-check
    (and the tests) only."""
    return inspect.isfunction(inspect.unwrap(function)) or inspect.ismethod(function)


def _check_graph(ctx, student):
    logits = np.tile(_LOGITS.astype(np.float32), (64, 1))
    kept = _expected(_LOGITS, 1.5, top_k=3, top_p=0.9) > 0
    arguments = dict(temperature=1.5, top_k=3, top_p=0.9)
    for jit_compile in (False, True) if _is_local(student) else (False,):
        what = (
            "sample_next_token inside tf.function(jit_compile=True) (XLA)"
            if jit_compile
            else "sample_next_token inside tf.function with unknown batch and "
            "vocabulary"
        )
        graph = tf.function(
            lambda x, seed: student(x, seed=seed, **arguments),
            input_signature=[
                tf.TensorSpec((None, None), tf.float32),
                tf.TensorSpec((2,), tf.int32),
            ],
            jit_compile=jit_compile,
        )
        seed = tf.constant([5, 6], tf.int32)
        try:
            tokens = to_numpy(
                ctx.call(graph, tf.constant(logits), seed, what=what), what
            )
            again = to_numpy(
                ctx.call(graph, tf.constant(logits), seed, what=what), what
            )
        except StudentError as error:
            hint = GRAPH_NUMPY_HINT
            if jit_compile:
                hint = (
                    "XLA compiles TensorFlow ops only, with shapes that do not "
                    "depend on the data: no tf.numpy_function/py_function, no "
                    "tf.boolean_mask or tf.unique"
                )
            raise Failure(f"{error} — {hint}") from None
        if not np.array_equal(tokens, again):
            raise Failure(f"{what}: the same seed gave different tokens")
        if not kept[tokens].all():
            raise Failure(f"{what}: drew tokens the filters remove")
    ctx.ok("works inside tf.function and under XLA (jit_compile=True)")


@exercise(
    "sample_next_token",
    lesson=11,
    points=2,
    kind="function",
    reference="sample_next_token",
)
def check_sample_next_token(ctx, student, reference):
    _check_greedy(ctx, student)
    _check_temperature(ctx, student)
    _check_filters(ctx, student)
    _check_seeds(ctx, student)
    _check_graph(ctx, student)


# ------------------------------------------------- catalogue of typical bugs


def _sampler(
    temper="divide",
    order="tkp",
    greedy="argmax",
    draw="stateless",
    none_seed=None,
    dtype=tf.int32,
    keep_axis=False,
):
    """`sample_next_token` with one mistake switched on by each argument."""
    from tf_transformer import top_k_filter, top_p_filter

    def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, seed=None):
        logits = tf.cast(logits, tf.float32)
        if temperature == 0 and greedy == "argmax":
            return tf.argmax(logits, axis=-1, output_type=dtype)
        for step in order:
            if step == "t" and temper == "divide":
                logits = logits / temperature
            elif step == "t" and temper == "multiply":
                logits = logits * temperature
            elif step == "k" and top_k is not None:
                logits = top_k_filter(logits, top_k)
            elif step == "p" and top_p is not None:
                logits = top_p_filter(logits, top_p)
        if seed is None:
            seed = none_seed
        if draw == "numpy":  # inverse CDF in NumPy: fine in a graph, not in XLA
            if seed is None:
                seed = tf.random.uniform([2], maxval=2**30, dtype=tf.int32)
            seed = tf.cast([seed, 0] if isinstance(seed, int) else seed, tf.int64)
            return tf.numpy_function(_numpy_draw, [logits, seed], tf.int32)
        if draw == "probabilities":
            logits = tf.nn.softmax(logits)
        if draw == "gumbel":  # a correct variant: argmax of logits + Gumbel noise
            if seed is None:
                seed = tf.random.uniform([2], maxval=2**30, dtype=tf.int32)
            seed = [seed, 1] if isinstance(seed, int) else tf.cast(seed, tf.int32)
            uniform = tf.random.stateless_uniform(
                tf.shape(logits), seed=seed, minval=1e-12, maxval=1.0
            )
            gumbel = -tf.math.log(-tf.math.log(uniform))
            return tf.argmax(logits + gumbel, axis=-1, output_type=dtype)
        if seed is None or draw == "stateful":
            drawn = tf.random.categorical(logits, 1, dtype=dtype)
        else:
            seed = [seed, 0] if isinstance(seed, int) else tf.cast(seed, tf.int32)
            drawn = tf.random.stateless_categorical(logits, 1, seed, dtype=dtype)
        return drawn if keep_axis else drawn[:, 0]

    return sample_next_token


def _numpy_draw(logits, seed):
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    uniform = np.random.default_rng(seed.tolist()).random((len(logits), 1))
    return (np.cumsum(probabilities, -1) < uniform).sum(-1).astype(np.int32)


bugs_of(
    "sample_next_token",
    _sampler,
    [
        (
            "sample_ignores_temperature",
            "the temperature is not applied",
            "never divides by the temperature",
            dict(temper="ignore"),
        ),
        (
            "sample_multiplies_by_temperature",
            "multiplied by the temperature",
            "multiplies the logits by the temperature",
            dict(temper="multiply"),
        ),
        (
            "sample_tempers_after_filtering",
            "top-p ran before the temperature",
            "filters first, then divides by the temperature",
            dict(order="kpt"),
        ),
        (
            "sample_top_p_before_top_k",
            "top-p ran before top-k",
            "applies top_p_filter before top_k_filter",
            dict(order="tpk"),
        ),
        (
            "sample_draws_from_unfiltered_logits",
            "top_p is ignored",
            "draws from the tempered logits, the filters left out",
            dict(order="t"),
        ),
        (
            "sample_draws_from_probabilities",
            "not probabilities",
            "passes softmax probabilities to the categorical draw as logits",
            dict(draw="probabilities"),
        ),
        (
            "sample_divides_by_zero",
            "temperature 0 is greedy",
            "no special case for temperature 0 (divides by 0)",
            dict(greedy="divide"),
        ),
        (
            "sample_stateful_draw",
            "the same seed must give the same output",
            "tf.random.categorical: the seed is ignored",
            dict(draw="stateful"),
        ),
        (
            "sample_fixed_seed_when_none",
            "seed=None means fresh randomness",
            "seed=None replaced by the fixed seed 0",
            dict(none_seed=0),
        ),
        (
            "sample_returns_int64",
            "return int32 token ids",
            "the categorical draw's default dtype, int64",
            dict(dtype=tf.int64),
        ),
        (
            "sample_in_numpy",
            "XLA compiles TensorFlow ops only",
            "draws with NumPy through tf.numpy_function (no XLA)",
            dict(draw="numpy"),
        ),
        (
            "sample_keeps_samples_axis",
            "drop the samples axis",
            "returns (batch, 1) instead of (batch,)",
            dict(keep_axis=True),
        ),
    ],
)


@alternative("sample_next_token")
def sample_by_gumbel_max():
    """Gumbel-max: the argmax of the filtered logits plus Gumbel noise"""
    return _sampler(draw="gumbel")
