"""Helpers for class exercises: build twins, copy weights, compare, round trip."""

import numpy as np

from tf_transformer.course.checks._core import Failure, close, difference, to_numpy


def twins(ctx, student_cls, reference_cls, build, *args, **kwargs):
    """A reference layer and a student layer with the same weights.

    `build(layer)` calls the layer once so that it creates its weights. The
    student's class is constructed with the same arguments as the reference,
    then receives the reference's weights.
    """
    arguments = ", ".join(
        [repr(a) for a in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    )
    what = f"{student_cls.__name__}({arguments})"
    reference = reference_cls(*args, **kwargs)
    build(reference)
    student = ctx.call(student_cls, *args, what=what, **kwargs)
    ctx.call(build, student, what=f"calling {what} for the first time")
    copy_weights(ctx, student, reference)
    return student, reference, what


def copy_weights(ctx, student, reference):
    ours = [tuple(w.shape) for w in reference.weights]
    theirs = [tuple(w.shape) for w in student.weights]
    if ours != theirs:
        raise Failure(
            f"the layer's weights have shapes {theirs}, the reference's {ours} — keep "
            "the given __init__/build (the sublayers and their order)"
        )
    student.set_weights(reference.get_weights())


def compare(actual, expected, what, hint):
    actual_array = to_numpy(actual, what)
    expected = np.asarray(expected)
    if actual_array.shape != expected.shape:
        raise Failure(
            f"{what} has shape {actual_array.shape}, expected {expected.shape}"
        )
    if not close(actual_array, expected, atol=1e-4, rtol=1e-3):
        raise Failure(f"{what}: {difference(actual_array, expected)} — {hint}")


def is_normalized(x):
    """True if every vector is LayerNorm-like: mean 0, variance 1."""
    x = np.asarray(x, dtype="float64")
    return np.abs(x.mean(-1)).max() < 1e-3 and np.abs(x.var(-1) - 1).max() < 1e-2


def round_trip(ctx, student_cls, layer, call):
    """`from_config(get_config())` gives a layer that computes the same."""
    config = ctx.call(layer.get_config, what=f"{student_cls.__name__}.get_config()")
    what = f"{student_cls.__name__}.from_config(layer.get_config())"
    clone = ctx.call(student_cls.from_config, config, what=what)
    ctx.call(call, clone, what=f"calling the layer made by {what}")
    copy_weights(ctx, clone, layer)
    if not close(to_numpy(call(clone), what), to_numpy(call(layer), what), atol=1e-5):
        raise Failure(
            f"{what} computes something else — get_config must return every argument"
        )
    ctx.ok("get_config / from_config round trip")


def dropout_behaviour(ctx, outputs_inference, outputs_training, what):
    """Inference is deterministic; training with dropout changes the output."""
    first, second = outputs_inference
    if not close(first, second, atol=1e-6):
        raise Failure(f"{what}: {DROPOUT_AT_INFERENCE}")
    one, two = outputs_training
    if close(one, two, atol=1e-6):
        raise Failure(
            f"{what}: two calls with training=True and dropout=0.5 are identical — "
            "is dropout applied (and `training` passed on)?"
        )
    ctx.ok("dropout only when training=True")


def safe_hint(
    diagnose, default="compare your call step by step with the lesson's formula"
):
    """Run a diagnosis that may call student code; a crash there gives `default`."""
    try:
        return diagnose() or default
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the mismatch
        return default


def inference_is_random(call):
    """Two calls with training=False differ: dropout active at inference."""
    return not close(np.asarray(call()), np.asarray(call()), atol=1e-6)


DROPOUT_AT_INFERENCE = (
    "two calls with training=False differ — dropout is active at inference; "
    "pass `training` on to the dropout layers"
)
