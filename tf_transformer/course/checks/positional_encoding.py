"""Check of `positional_encoding` (lesson 2)."""

import math

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    difference,
    exercise,
    expect_dtype,
    expect_shape,
    library_object,
    to_numpy,
)


def _table(length, depth, pair_exponent=True, start=0, base=10000.0):
    positions = np.arange(start, start + length)[:, None]
    channels = np.arange(depth)[None, :]
    exponent = 2 * (channels // 2) if pair_exponent else channels
    return positions / np.power(base, exponent / depth)


def _interleave(sines, cosines):
    table = np.empty_like(sines)
    table[:, 0::2] = sines[:, 0::2]
    table[:, 1::2] = cosines[:, 1::2]
    return table


def _likely_mistake(actual, length, depth):
    angles = _table(length, depth)
    half = depth // 2
    pair_angles = angles[:, 0::2]
    candidates = [
        (
            _interleave(np.cos(angles), np.sin(angles)),
            "even channels should hold sin and odd channels cos — are sin and cos "
            "swapped?",
        ),
        (
            np.concatenate([np.sin(pair_angles), np.cos(pair_angles)], axis=1),
            "the first half holds all the sines and the second half all the cosines; "
            "the paper interleaves them: PE[:, 0::2] = sin, PE[:, 1::2] = cos",
        ),
        (
            np.concatenate([np.cos(pair_angles), np.sin(pair_angles)], axis=1),
            "cosines then sines, concatenated; the paper interleaves them with sin on "
            "even channels: PE[:, 0::2] = sin, PE[:, 1::2] = cos",
        ),
        (
            _interleave(
                *(
                    f(_table(length, depth, pair_exponent=False))
                    for f in (np.sin, np.cos)
                )
            ),
            "the frequency of channel j should be 1/10000^(2i/depth) with i = j // 2 "
            "(the pair index): channels 2i and 2i+1 share one frequency",
        ),
        (
            _interleave(*(f(_table(length, depth, start=1)) for f in (np.sin, np.cos))),
            "row 0 should be position 0 (sin 0 = 0, cos 0 = 1) — do the positions "
            "start at 0?",
        ),
    ]
    if half:
        pair_only = _half_exponent_table(length, depth)
        candidates.append(
            (
                pair_only,
                "the exponent should be 2i/depth, not i/depth (i is the pair index)",
            )
        )
    for candidate, hint in candidates:
        if close(actual, candidate, atol=1e-4):
            return hint
    return None


def _half_exponent_table(length, depth):
    positions = np.arange(length)[:, None]
    channels = np.arange(depth)[None, :]
    angles = positions / np.power(10000.0, (channels // 2) / depth)
    return _interleave(np.sin(angles), np.cos(angles))


@exercise(
    "positional_encoding",
    lesson=2,
    points=1,
    kind="function",
    reference="positional_encoding",
)
def check_positional_encoding(ctx, student, reference):
    sizes = [(7, 16), (50, 128), (1, 4), (9, 6), (3, 2)]
    for length, depth in sizes:
        what = f"positional_encoding({length}, {depth})"
        result = ctx.call(student, length, depth, what=what)
        actual = to_numpy(result, what)
        expected = np.asarray(reference(length, depth))
        hint = ""
        if actual.shape == (depth, length) and length != depth:
            hint = "transposed? rows are positions, columns are channels"
        expect_shape(actual, expected.shape, what, hint)
        if not close(actual, expected, atol=1e-4):
            mistake = _likely_mistake(actual, length, depth)
            if mistake is None:
                mistake = (
                    "check PE[pos, 2i] = sin(pos / 10000^(2i/depth)) and "
                    "PE[pos, 2i+1] = cos(pos / 10000^(2i/depth))"
                )
            raise Failure(f"{what}: {difference(actual, expected)} — {mistake}")
        expect_dtype(
            result,
            "float32",
            what,
            "return float32 (e.g. tf.constant(table, tf.float32))",
        )
    ctx.ok(f"equals the paper's sin/cos table for {len(sizes)} sizes, as float32")


# ------------------------------------------------- catalogue of typical bugs


def _angles(length, depth, exponent=lambda j: 2 * (j // 2), start=0, base=10000.0):
    pos = np.arange(start, start + length)[:, None]
    j = np.arange(depth)[None, :]
    return pos / np.power(base, exponent(j) / depth)


def _interleave(even, odd):
    table = np.array(even)
    table[:, 1::2] = odd[:, 1::2]
    return tf.constant(table, tf.float32)


@bug("positional_encoding", "swapped")
def pe_swapped():
    """cos on even channels, sin on odd ones"""
    return lambda n, d: _interleave(np.cos(_angles(n, d)), np.sin(_angles(n, d)))


@bug("positional_encoding", "interleaves them")
def pe_concatenated():
    """sines then cosines, concatenated instead of interleaved"""

    def f(n, d):
        a = _angles(n, d)[:, 0::2]
        return tf.constant(np.concatenate([np.sin(a), np.cos(a)], 1), tf.float32)

    return f


@bug("positional_encoding", "pair index")
def pe_channel_exponent():
    """exponent uses the channel index j instead of 2i"""

    def f(n, d):
        a = _angles(n, d, exponent=lambda j: j)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "2i/depth")
def pe_half_exponent():
    """exponent i/depth instead of 2i/depth"""

    def f(n, d):
        a = _angles(n, d, exponent=lambda j: j // 2)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "start at 0")
def pe_from_one():
    """positions counted from 1"""

    def f(n, d):
        a = _angles(n, d, start=1)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "float32")
def pe_float64():
    """returns float64"""
    return lambda n, d: tf.cast(library_object("positional_encoding")(n, d), tf.float64)


@bug("positional_encoding", "transposed")
def pe_transposed():
    """returns (depth, length)"""
    return lambda n, d: tf.transpose(library_object("positional_encoding")(n, d))


@alternative("positional_encoding")
def pe_loops():
    """Python loops over positions and pairs"""

    def f(length, depth):
        table = np.zeros((length, depth), np.float32)
        for pos in range(length):
            for i in range(depth // 2):
                angle = pos / 10000 ** (2 * i / depth)
                table[pos, 2 * i], table[pos, 2 * i + 1] = (
                    math.sin(angle),
                    math.cos(angle),
                )
        return table

    return f
