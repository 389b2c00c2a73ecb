"""Check of `greedy_decode` (lesson 9).

The student's `greedy_decode(model, source_ids, max_length=None,
use_cache=True)` decodes with a tiny `tf_transformer.Transformer` whose
weights are drawn from a fixed seed, and must give the reference's ids. The
output projection's bias is raised for [PAD], [START] and [END] so that the
decisions test something: unmasked [PAD]/[START] would win some steps, and
[END] comes at different steps in different rows (row 0 of `BATCH` after 2
tokens, row 1 after 5, row 2 never within `MAX_LENGTH`). Cases: `BATCH` with
max_length=6, its row 1 alone (`SINGLE`) with max_length=None and
use_cache=False, and `BATCH` inside `tf.function` with an unknown batch
size. Every greedy choice of the reference wins by a margin of at least 0.1,
far above the rounding differences between a cached and a full-model
implementation.

A student may ignore `use_cache`: re-running the whole model on the prefix
at every step is a correct answer.
"""

import re

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks import _core
from tf_transformer.course.checks._core import (
    Failure,
    StudentError,
    alternative,
    bug,
    describe_exception,
    exercise,
    expect_dtype,
    to_numpy,
)

PAD, START, END = 0, 2, 3
VOCAB = 12
MAX_LENGTH = 6
GRAPH_LENGTH = 2
BATCH = np.array(
    [[7, 10, 8, 0, 0, 0], [10, 9, 8, 0, 0, 0], [8, 11, 6, 10, 9, 4]], dtype="int32"
)
# Row 1 of BATCH alone, without its padding, decoded with max_length=None
# (3 + 10 steps) and use_cache=False.
SINGLE = np.array([[10, 9, 8]], dtype="int32")

_MODEL = {}  # the model, its weights and the reference's ids (see tiny_model)


def tiny_model():
    """A 1-layer Transformer with seeded weights (built once, reset each call)."""
    if "model" not in _MODEL:
        from tf_transformer.models import Transformer

        model = Transformer(
            num_layers=1,
            d_model=16,
            num_heads=2,
            dff=32,
            input_vocab_size=VOCAB,
            target_vocab_size=VOCAB,
            max_length=32,
            dropout=0.5,  # only matters if a decoder calls it with training=True
        )
        model.build(((None, None), (None, None)))
        weights = seeded_weights(model, special_bias=(2.0, 2.0, 1.5))
        _MODEL["model"], _MODEL["weights"] = model, weights
    model = _MODEL["model"]
    model.set_weights(_MODEL["weights"])  # undo anything a previous answer did
    return model


def seeded_weights(model, seed=0, special_bias=None):
    """Weights for `model` drawn from `seed` (LayerNorm scales 1): large
    enough logits that every greedy choice is clear. `special_bias`, if
    given, is the output bias of [PAD], [START] and [END], and the output
    kernel is tripled."""
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.weights:
        path, shape = weight.path, tuple(weight.shape)
        if path.endswith("gamma"):
            value = np.ones(shape)
        elif path.endswith(("beta", "bias")):
            value = 0.1 * rng.normal(size=shape)
        elif "embeddings" in path:
            value = rng.normal(size=shape) / 4
        else:
            value = rng.normal(size=shape) / np.sqrt(shape[0])
        if special_bias is not None and "output_projection" in path:
            if path.endswith("bias"):
                value[[PAD, START, END]] = special_bias
            else:
                value = 3 * value
        weights.append(value.astype("float32"))
    return weights


def _expected(reference, model, name, source, **kwargs):
    """The reference's ids for one case (cached per reference)."""
    key = (id(reference), name)
    if key not in _MODEL:
        _MODEL[key] = np.asarray(reference(model, tf.constant(source), **kwargs))
    return _MODEL[key]


# ------------------------------------------------------------ diagnosis


def decode_variant(
    model,
    source,
    max_length,
    *,
    first=START,
    feed="prefix",
    read="last",
    forbid=True,
    axis=-1,
    target=None,
):
    """Greedy decoding with one typical mistake (defaults: the correct one).

    Args:
        first: the first decoder input.
        feed: `"prefix"` (the tokens so far), `"last"` (only the newest
            token) or `"buffer"` (the tokens in a 0-padded max_length + 1
            buffer).
        read: the position whose logits give the next token: `"last"` (-1),
            `"first"` (0) or `"next"` (i + 1, one past the newest token).
        forbid: keep [PAD] and [START] from being chosen.
        axis: -1, or 1 for an argmax over the time axis.
        target: if given, stop and return None as soon as a step differs
            from it (most variants differ at once: this keeps a diagnosis
            cheap).
    """
    source = tf.constant(source)
    batch = int(source.shape[0])
    tokens = np.full((batch, 1), first, dtype="int32")
    done = np.zeros(batch, dtype=bool)
    output = np.zeros((batch, max_length), dtype="int32")
    for i in range(max_length):
        if feed == "last":
            inputs = tokens[:, -1:]
        elif feed == "buffer":
            inputs = np.zeros((batch, max_length + 1), dtype="int32")
            inputs[:, : i + 1] = tokens
        else:
            inputs = tokens
        logits = np.array(model((source, tf.constant(inputs)), training=False))
        if forbid:
            logits[..., [PAD, START]] = -1e9
        if axis == 1:
            next_ids = logits.argmax(1)[:, -1]
        else:
            position = {"last": -1, "first": 0, "next": i + 1}[read]
            next_ids = logits[:, position].argmax(-1)
        next_ids = np.where(done, PAD, next_ids).astype("int32")
        if target is not None and np.any(next_ids != target[:, i]):
            return None
        done = done | (next_ids == END)
        output[:, i] = next_ids
        tokens = np.concatenate([tokens, next_ids[:, None]], 1)
        if done.all():
            break
    if target is not None and not np.array_equal(output, target):
        return None
    return output


START_IN_OUTPUT = (
    "the output starts with [START] — return only the generated ids (drop the "
    "first column of your tokens)"
)
NOT_STOPPED = (
    "a row goes on after its [END] — once a row has produced [END], it emits 0 "
    "(padding) for the remaining steps"
)
END_DROPPED = "keep the [END] token (id 3) in the output; only the steps after it are 0"
STOPS_ALL = (
    "every row stops when the first row produces [END] — each row stops at its own "
    "[END]: stop the loop only when all rows are done"
)
SPECIAL_TOKENS = (
    "[PAD] (0) and [START] (2) must never be generated: set their logits to a "
    "large negative number (e.g. -1e9) before the argmax"
)
RANDOM = (
    "two calls with the same input give different ids — call the model with "
    "training=False (dropout is active otherwise)"
)
VARIANTS = [
    (
        dict(first=PAD),
        "the first decoder input must be [START] (id 2), not 0: start the target "
        "with [START]",
    ),
    (
        dict(feed="last"),
        "the model only sees the newest token: without a cache, feed the whole "
        "prefix [START], y1, …, yi at every step",
    ),
    (
        dict(read="first"),
        "every step reads the logits of position 0 — the next token comes from the "
        "last position of the prefix (logits[:, -1, :])",
    ),
    (
        dict(feed="buffer", read="next"),
        "off by one: the logits at position i + 1 are read; the next token is "
        "predicted at the position of the newest token (i)",
    ),
    (
        dict(feed="buffer", read="last"),
        "the logits at the end of the 0-padded buffer are read; read position i, "
        "the newest real token",
    ),
    (
        dict(axis=1),
        "the ids are positions, not tokens — take the argmax over the vocabulary "
        "(last) axis",
    ),
    (dict(forbid=False), SPECIAL_TOKENS),
]


def _first_difference(actual, expected):
    rows, steps = np.nonzero(actual != expected)
    return int(rows[0]), int(steps[0])


def _structure_hint(actual, expected):
    """A hint read off the ids and the expected ids alone, or None."""
    if np.all(actual[:, 0] == START):
        return START_IN_OUTPUT
    for row in actual:
        ends = np.flatnonzero(row == END)
        if ends.size and np.any(row[ends[0] + 1 :] != PAD):
            return NOT_STOPPED
    if np.array_equal(actual, np.where(expected == END, PAD, expected)):
        return END_DROPPED
    ends = np.argwhere(expected == END)
    if ends.size:
        first_end = ends[:, 1].min()
        truncated = expected.copy()
        truncated[:, first_end + 1 :] = PAD
        if np.array_equal(actual, truncated):
            return STOPS_ALL
    if np.any(actual == START):
        return SPECIAL_TOKENS
    return None


def diagnose(student, model, source, kwargs, actual, expected):
    """The most likely mistake behind `actual` != `expected` (same shape)."""
    hint = _structure_hint(actual, expected)
    if hint:
        return hint
    again = np.asarray(student(model, tf.constant(source), **kwargs))
    if again.shape != actual.shape or np.any(again != actual):
        return RANDOM
    for flags, hint in VARIANTS:
        if (
            decode_variant(model, source, actual.shape[1], target=actual, **flags)
            is not None
        ):
            return hint
    for row in range(len(source) if len(source) > 1 else 0):
        alone = np.asarray(student(model, tf.constant(source[row : row + 1]), **kwargs))
        if alone.shape[1:] == actual.shape[1:] and np.any(alone[0] != actual[row]):
            return (
                f"row {row} decoded alone gives {alone[0].tolist()}, in the batch "
                f"{actual[row].tolist()} — rows must not influence each other"
            )
    return (
        "at step i feed [START] and the i tokens generated so far, take the argmax "
        "over the vocabulary of the logits at the last position (never [PAD] or "
        "[START]), and emit 0 once a row has produced [END]"
    )


def _shape_hint(actual, expected_shape, default_length=False):
    batch, length = expected_shape
    if actual.ndim == 2 and actual.shape == (batch, length + 1):
        if np.all(actual[:, 0] == START):
            return START_IN_OUTPUT
        return f"one column too many: the output has max_length={length} columns"
    if actual.ndim == 2 and actual.shape == (length, batch):
        return "transposed: the output is (batch, max_length)"
    shorter = actual.ndim == 2 and actual.shape[0] == batch and actual.shape[1] < length
    if shorter and actual.shape[1] and np.any(actual[:, -1] == END):
        return (
            f"always return max_length={length} columns: pad with 0 when every row "
            "finished early"
        )
    if default_length:
        return f"with max_length=None, decode the source length + 10 = {length} steps"
    return "expected (batch, max_length)"


def _compare(ctx, student, model, what, source, kwargs, expected, default=False):
    result = ctx.call(student, model, tf.constant(source), what=what, **kwargs)
    actual = to_numpy(result, what)
    if actual.shape != expected.shape:
        hint = _shape_hint(actual, expected.shape, default)
        raise Failure(
            f"{what} has shape {actual.shape}, expected {expected.shape} — {hint}"
        )
    if not np.array_equal(actual, expected):
        row, step = _first_difference(actual, expected)
        hint = _safe(lambda: diagnose(student, model, source, kwargs, actual, expected))
        raise Failure(
            f"{what}: row {row} is {actual[row].tolist()}, expected "
            f"{expected[row].tolist()} (first difference at step {step}) — {hint}"
        )
    expect_dtype(
        result,
        "int32",
        what,
        "return int32 ids: tf.argmax(..., output_type=tf.int32) or tf.cast",
    )


def _safe(diagnose_now):
    try:
        return diagnose_now()
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the mismatch
        return "compare your loop step by step with the lesson's description"


GRAPH_HINT = (
    "inside tf.function the batch size is unknown (None): take it from "
    "tf.shape(source_ids)[0], use TensorFlow ops (no NumPy, no .numpy())"
)
BREAK_HINT = (
    "inside tf.function a Python `for` loop cannot `break` on a tensor: run all "
    "max_length steps (finished rows emit 0), or loop with `for i in "
    "tf.range(max_length)`"
)


def _graph_failure(error, what):
    """One line for an exception raised while tracing or running in a graph."""
    text = str(error)
    message = describe_exception(error, what)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^\w+(Error|Exception): ", line)]
    if causes:
        message = f"{what} raised {causes[-1][:300]}"
    hint = BREAK_HINT if "break and return statements" in text else GRAPH_HINT
    return f"{message} — {hint}"


@exercise(
    "greedy_decode",
    lesson=9,
    points=2,
    kind="function",
    reference="greedy_decode",
)
def check_greedy_decode(ctx, student, reference):
    if not _core.REUSE_BETWEEN_CHECKS:
        _MODEL.clear()  # grading: build afresh, before any student code runs
    model = tiny_model()
    batch = _expected(reference, model, "batch", BATCH, max_length=MAX_LENGTH)
    single = _expected(reference, model, "single", SINGLE)

    what = f"greedy_decode(model, {BATCH.tolist()}, max_length={MAX_LENGTH})"
    _compare(ctx, student, model, what, BATCH, {"max_length": MAX_LENGTH}, batch)
    what = f"greedy_decode(model, {SINGLE.tolist()}, use_cache=False)"
    try:
        _compare(ctx, student, model, what, SINGLE, {"use_cache": False}, single, True)
    except StudentError as error:
        raise StudentError(
            f"{error} — max_length=None means the source length + 10 steps, and "
            "use_cache=False must work too"
        ) from None
    ctx.ok(
        "same ids as the reference for a batch of 3 and for one of its sentences "
        "alone: each row stops at its own [END], 0 after it, never [PAD] or "
        "[START]; int32 (batch, max_length); max_length=None decodes source length "
        "+ 10 steps; use_cache=False works"
    )

    graph = tf.function(
        lambda source_ids: student(model, source_ids, max_length=GRAPH_LENGTH),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    what = f"greedy_decode(model, source_ids, max_length={GRAPH_LENGTH}) in tf.function"
    try:
        result = graph(tf.constant(BATCH))
    except Exception as error:  # noqa: BLE001 - student code may raise anything
        raise StudentError(_graph_failure(error, what)) from None
    actual = to_numpy(result, what)
    if not np.array_equal(actual, batch[:, :GRAPH_LENGTH]):
        raise Failure(
            f"{what} with an unknown batch size gives {actual.tolist()}, in eager "
            f"mode {batch[:, :GRAPH_LENGTH].tolist()} — {GRAPH_HINT}"
        )
    ctx.ok("works inside tf.function with an unknown batch size")


# ------------------------------------------------- catalogue of typical bugs


def _greedy(
    first=2,
    feed="prefix",
    position=-1,
    forbid=True,
    stop="row",
    keep_end=True,
    axis=-1,
    training=False,
    output="generated",
    pad=True,
    dtype=tf.int32,
    batch="dynamic",
    default_length=True,
    early_break=False,
):
    """A Python-loop greedy decoder that re-runs the model, with one mistake."""
    pad_id, end_id = 0, 3

    def greedy_decode(model, source_ids, max_length=None, use_cache=True):
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)
        if max_length is None and default_length:
            max_length = source_ids.shape[1] + 10
        size = source_ids.shape[0] if batch == "static" else tf.shape(source_ids)[0]
        tokens = tf.fill((size, 1), first)
        done = tf.zeros((size,), tf.bool)
        for i in range(max_length):
            if feed == "last":
                inputs = tokens[:, -1:]
            elif feed == "buffer":
                inputs = tf.pad(tokens, [[0, 0], [0, max_length - i]])
            else:
                inputs = tokens
            logits = model((source_ids, inputs), training=training)
            if forbid:
                vocab = tf.range(tf.shape(logits)[-1])
                special = (vocab == pad_id) | (vocab == 2)
                logits = tf.where(special, -1e9, logits)
            if axis == 1:
                next_ids = tf.argmax(logits, axis=1, output_type=tf.int32)[:, -1]
            else:
                step = i + 1 if position == "next" else position
                next_ids = tf.argmax(logits[:, step], axis=-1, output_type=tf.int32)
            if stop != "never":
                next_ids = tf.where(done, pad_id, next_ids)
            done = done | (next_ids == end_id)
            if not keep_end:
                next_ids = tf.where(next_ids == end_id, pad_id, next_ids)
            tokens = tf.concat([tokens, next_ids[:, tf.newaxis]], axis=1)
            if stop == "any" and bool(tf.reduce_any(done)):
                break
            if not pad and bool(tf.reduce_all(done)):
                break
            if early_break and tf.reduce_all(done):  # a tensor condition
                break
        ids = tokens[:, :-1] if output == "with_start" else tokens[:, 1:]
        if pad:
            ids = tf.pad(ids, [[0, 0], [0, max_length - tf.shape(ids)[1]]])
        return tf.cast(ids, dtype)

    return greedy_decode


@bug("greedy_decode", "must be [START]")
def decode_no_start():
    """the decoder input starts with [PAD] instead of [START]"""
    return _greedy(first=0)


@bug("greedy_decode", "feed the whole prefix")
def decode_last_token_only():
    """feeds only the newest token (no cache) instead of the prefix"""
    return _greedy(feed="last")


@bug("greedy_decode", "off by one")
def decode_reads_next_position():
    """0-padded buffer, reads the logits one position too far"""
    return _greedy(feed="buffer", position="next")


@bug("greedy_decode", "end of the 0-padded buffer")
def decode_reads_buffer_end():
    """0-padded buffer, reads the logits of its last position"""
    return _greedy(feed="buffer", position=-1)


@bug("greedy_decode", "logits of position 0")
def decode_reads_first_position():
    """reads the logits of the first position at every step"""
    return _greedy(position=0)


@bug("greedy_decode", "argmax over the vocabulary")
def decode_argmax_time_axis():
    """argmax over the time axis"""
    return _greedy(axis=1)


@bug("greedy_decode", "must never be generated")
def decode_special_tokens():
    """[PAD] and [START] not masked before the argmax"""
    return _greedy(forbid=False)


@bug("greedy_decode", "goes on after its [END]")
def decode_no_stop():
    """rows keep generating after [END]"""
    return _greedy(stop="never")


@bug("greedy_decode", "each row stops at its own")
def decode_stops_all_rows():
    """the whole batch stops at the first [END]"""
    return _greedy(stop="any")


@bug("greedy_decode", "keep the [END] token")
def decode_drops_end():
    """writes 0 instead of [END]"""
    return _greedy(keep_end=False)


@bug("greedy_decode", "drop the first column")
def decode_returns_start():
    """returns [START] as the first output token"""
    return _greedy(output="with_start")


@bug("greedy_decode", "pad with 0 when every row finished early")
def decode_unpadded():
    """returns fewer than max_length columns when every row finished"""
    return _greedy(pad=False)


@bug("greedy_decode", "training=False")
def decode_with_dropout():
    """calls the model with training=True"""
    return _greedy(training=True)


@bug("greedy_decode", "int32")
def decode_int64():
    """returns int64 ids"""
    return _greedy(dtype=tf.int64)


@bug("greedy_decode", "source length + 10")
def decode_no_default_length():
    """max_length=None not handled"""
    return _greedy(default_length=False)


@bug("greedy_decode", "tf.shape(source_ids)[0]")
def decode_static_batch():
    """reads the static batch size (None inside tf.function)"""
    return _greedy(batch="static")


@bug("greedy_decode", "cannot `break` on a tensor")
def decode_python_break():
    """Python loop left with `break` on a tensor (fails in tf.function)"""
    return _greedy(early_break=True)


@alternative("greedy_decode")
def decode_python_loop():
    """re-runs the whole model on the prefix for all max_length steps"""
    return _greedy()


@alternative("greedy_decode")
def decode_buffer_tf_range():
    """fixed-size token buffer, `for i in tf.range`, early stop, model re-run"""

    def greedy_decode(model, source_ids, max_length=None, use_cache=True):
        source_ids = tf.cast(source_ids, tf.int32)
        if max_length is None:
            max_length = tf.shape(source_ids)[1] + 10
        batch = tf.shape(source_ids)[0]
        tokens = tf.concat(
            [tf.fill((batch, 1), 2), tf.zeros((batch, max_length), tf.int32)], 1
        )
        done = tf.zeros((batch,), tf.bool)
        special = tf.one_hot(0, model.target_vocab_size) + tf.one_hot(
            2, model.target_vocab_size
        )
        for i in tf.range(max_length):
            if tf.reduce_all(done):
                break
            logits = model((source_ids, tokens[:, :-1]), training=False)[:, i]
            next_ids = tf.argmax(logits - 1e9 * special, -1, output_type=tf.int32)
            next_ids = tf.where(done, 0, next_ids)
            column = tf.range(max_length + 1) == i + 1
            tokens = tf.where(column, next_ids[:, tf.newaxis], tokens)
            done = done | (next_ids == 3)
        return tokens[:, 1:]

    return greedy_decode
