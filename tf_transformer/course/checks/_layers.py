"""Helpers for class exercises: build twins, copy weights, compare, round trip."""

import functools

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    bug,
    close,
    difference,
    library_object,
    to_numpy,
)
from tf_transformer.course.grading.wire import Slot


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


STOP_GRADIENT = (
    "training would never change it: is a tf.stop_gradient (or a NumPy round "
    "trip) cutting the gradient off?"
)
NOT_TRAINABLE = (
    "training would never change it — leave the layer's weights trainable "
    "(no `trainable=False`)"
)


def gradients_of(layer, call, inputs):
    """Gradients of a fixed random projection of the layer's output, as plain
    data: `(input_gradients, weights)`, a list with an array (or None) per
    input, and `[path, trainable, gradient]` per weight of `layer`, in the
    order of `layer.weights` (None for a weight that is not trainable or
    that no gradient reaches).

    `call` is `(args, kwargs)` describing the call, where `wire.Slot(i)`
    stands for `inputs[i]` (the float tensors the gradient is taken for).
    The grader's answers' process runs this on the student's layer (the
    judge's ``gradient`` request), so the call is data, not a closure.
    """
    args, kwargs = call
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        filled = tf.nest.map_structure(
            lambda x: inputs[x.index] if isinstance(x, Slot) else x, (args, kwargs)
        )
        output = layer(*filled[0], **filled[1])
        output = output[0] if isinstance(output, tuple | list) else output
        output = tf.cast(output, tf.float32)
        # A sum alone would hide a LayerNorm's input gradient (always 0).
        probe = tf.random.stateless_normal(tf.shape(output), seed=(7, 11))
        loss = tf.reduce_sum(output * probe)
    weights = list(layer.weights)
    trainable = [w for w in weights if w.trainable]
    found = tape.gradient(loss, [*inputs, *trainable])
    as_array = [
        None if g is None else np.asarray(tf.convert_to_tensor(g)) for g in found
    ]
    by_weight = dict(zip(map(id, trainable), as_array[len(inputs) :], strict=True))
    described = [
        [str(w.path), bool(w.trainable), by_weight.get(id(w))] for w in weights
    ]
    return as_array[: len(inputs)], described


def is_local(layer) -> bool:
    """False in the grader, where the layer is a handle on the answers'
    process: a gradient tape cannot reach into it, so its gradients are
    computed there (`student_gradients`)."""
    return isinstance(layer, keras.layers.Layer)


def student_gradients(ctx, layer, call, inputs, what):
    """`gradients_of` the student's layer: here in the self-check, in the
    answers' process in the grader (its ``gradient`` request)."""
    what = f"the gradient of {what}"
    if is_local(layer):
        return ctx.call(gradients_of, layer, call, inputs, what=what)
    return ctx.call(layer._remote_gradients, call, inputs, what=what)


def _read_gradients(found, inputs, weights, what):
    """The student's `gradients_of` result, checked for its shape as data
    (in the grader it comes from the answers' process)."""
    ok = (
        isinstance(found, tuple | list)
        and len(found) == 2
        and isinstance(found[0], list)
        and len(found[0]) == inputs
        and isinstance(found[1], list)
        and len(found[1]) == weights
        and all(
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], bool)
            for item in found[1]
        )
    )
    if not ok:
        raise Failure(f"{what}: its gradients could not be read")
    return found


def compare_gradients(found, expected, what):
    """The one comparison of a student's gradients (`gradients_of`, here or
    from the answers' process) with the reference's: the self-check and the
    grader give the same verdict and the same message."""
    expected_inputs, expected_weights = expected
    input_gradients, weight_gradients = _read_gradients(
        found, len(expected_inputs), len(expected_weights), what
    )
    for ours, theirs in zip(weight_gradients, expected_weights, strict=True):
        if theirs[1] and not ours[1]:
            raise Failure(
                f"{what}: the weight {ours[0]} is not trainable — {NOT_TRAINABLE}"
            )
    for index, (got, want) in enumerate(
        zip(input_gradients, expected_inputs, strict=True)
    ):
        name = f"input {index + 1}" if len(expected_inputs) > 1 else "the input"
        if got is None or (not np.any(got) and np.any(want)):
            raise Failure(f"{what}: no gradient reaches {name}, so {STOP_GRADIENT}")
        compare(got, want, f"{what}: the gradient of {name}", GRADIENT_MISMATCH)
    for (path, _, got), (_, _, want) in zip(
        weight_gradients, expected_weights, strict=True
    ):
        if want is None:
            continue
        if got is None or (not np.any(got) and np.any(want)):
            weight = f"the weight {path}"
            raise Failure(f"{what}: no gradient reaches {weight}, so {STOP_GRADIENT}")
        compare(got, want, f"{what}: the gradient of {path}", GRADIENT_MISMATCH)


def gradients_match(ctx, student, reference, call, inputs, what):
    """Training changes the student's layer as it changes the reference: the
    gradients with respect to the inputs and to each weight are equal (the
    two layers hold the same weights, see `twins`).

    `call` is `(args, kwargs)` for calling a layer (in inference mode), with
    `wire.Slot(i)` standing for `inputs[i]`, its float tensors (none for
    token ids). It is data, not a closure, so the grader can send it to the
    answers' process: there too the gradients are checked.
    """
    expected = gradients_of(reference, call, inputs)
    found = student_gradients(ctx, student, call, inputs, what)
    compare_gradients(found, expected, what)
    ctx.ok("input and weight gradients equal the reference's (it trains the same)")


GRADIENT_MISMATCH = (
    "the outputs match but training would not — are gradients cut or scaled "
    "somewhere (tf.stop_gradient, a constant made from a tensor)?"
)


# ------------------------------------ typical gradient bugs of a class exercise


def stop_gradient_variant(name):
    """The library's class `name` whose outputs carry no gradient."""
    base = library_object(name)

    @functools.wraps(base.call)
    def call(self, *args, **kwargs):
        return tf.nest.map_structure(tf.stop_gradient, base.call(self, *args, **kwargs))

    return type(f"StopGradient{name}", (base,), {"call": call})


def frozen_variant(name, sublayer):
    """The library's class `name` whose `sublayer` is made non-trainable."""
    base = library_object(name)

    @functools.wraps(base.build)
    def build(self, *args, **kwargs):
        base.build(self, *args, **kwargs)
        getattr(self, sublayer).trainable = False

    return type(f"Frozen{name}", (base,), {"build": build})


def gradient_bugs(exercise, name, sublayer):
    """Register in `exercise`'s catalogue its two gradient mistakes: the
    library's class `name` with its output's gradient cut off, and with its
    `sublayer` made non-trainable."""

    def cut():
        return stop_gradient_variant(name)

    def frozen():
        return frozen_variant(name, sublayer)

    cut.__name__ = f"{exercise}_stop_gradient"
    frozen.__name__ = f"{exercise}_frozen_weight"
    # They belong to the exercise's catalogue, in the module named after it.
    cut.__module__ = frozen.__module__ = f"tf_transformer.course.checks.{exercise}"
    bug(exercise, "tf.stop_gradient", "the output's gradient cut off")(cut)
    bug(exercise, "not trainable", f"{sublayer} made non-trainable")(frozen)
