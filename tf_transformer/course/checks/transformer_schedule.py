"""Check of `TransformerSchedule` (lesson 8)."""

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    bug,
    close,
    exercise,
    library_object,
    to_numpy,
)

STEPS = [0, 1, 9, 99, 399, 400, 401, 1599, 99999]


def _paper(step, d_model, warmup, plus_one=True, use_min=True, warm=True, scale=True):
    s = step + 1.0 if plus_one else float(step)
    with np.errstate(divide="ignore"):
        decay = s**-0.5 if s > 0 else np.inf
    rate = decay
    if warm:
        grow = s * warmup**-1.5
        rate = min(grow, decay) if use_min else max(grow, decay)
    return (d_model**-0.5 if scale else 1.0) * rate


def _schedule_hint(values, d_model, warmup):
    if not np.all(np.isfinite(values)):
        return (
            "lr(0) is not finite — the optimizer counts steps from 0; use step + 1 "
            "(the paper counts from 1)"
        )
    steps = np.array(STEPS, dtype="float64")
    variants = [
        (
            dict(plus_one=False),
            "use step + 1: the optimizer counts from 0, the paper from 1",
        ),
        (
            dict(warm=False),
            "no warm-up: the rate should grow linearly for warmup_steps steps",
        ),
        (dict(use_min=False), "take the minimum of the two terms, not the maximum"),
        (dict(scale=False), "the whole rate is multiplied by d_model^-0.5"),
    ]
    for flags, hint in variants:
        expected = [_paper(s, d_model, warmup, **flags) for s in steps]
        if close(values, np.array(expected), rtol=1e-3, atol=0):
            return hint
    return "lr(step) = d_model^-0.5 · min((step+1)^-0.5, (step+1) · warmup_steps^-1.5)"


@exercise(
    "transformer_schedule",
    lesson=8,
    points=1,
    kind="class",
    reference="TransformerSchedule",
    methods=("__call__",),
)
def check_transformer_schedule(ctx, student, reference):
    for d_model, warmup in [(128, 400), (512, 4000), (8, 10)]:
        what = f"TransformerSchedule({d_model}, warmup_steps={warmup})"
        schedule = ctx.call(student, d_model, warmup_steps=warmup, what=what)
        expected_schedule = reference(d_model, warmup_steps=warmup)
        values = []
        for step in STEPS:
            call = f"{what}({step})"
            value = to_numpy(
                ctx.call(schedule, tf.constant(step, tf.float32), what=call), call
            )
            if value.shape != ():
                raise Failure(f"{call} returned shape {value.shape}; expected a scalar")
            values.append(float(value))
        expected = np.array(
            [float(expected_schedule(tf.constant(float(s)))) for s in STEPS]
        )
        values = np.array(values)
        if not close(values, expected, rtol=1e-4, atol=0):
            worst = int(np.argmax(np.abs(values - expected) / expected))
            hint = _schedule_hint(values, d_model, warmup)
            raise Failure(
                f"{what}: lr({STEPS[worst]}) = {values[worst]:.4g}, "
                f"expected {expected[worst]:.4g} — {hint}"
            )
    ctx.ok("matches the paper's warm-up then 1/√step decay for 3 settings")

    what = "TransformerSchedule(128, warmup_steps=400, scale=2.0)"
    schedule = ctx.call(student, 128, warmup_steps=400, scale=2.0, what=what)
    expected_schedule = reference(128, warmup_steps=400, scale=2.0)
    for step in (0, 399, 1599):
        call = f"{what}({step})"
        value = float(
            to_numpy(ctx.call(schedule, tf.constant(step, tf.float32), what=call), call)
        )
        expected = float(expected_schedule(tf.constant(float(step))))
        if not close(value, expected, rtol=1e-4, atol=0):
            hint = "compare with scale · d_model^-0.5 · min(…)"
            if close(value, expected / 2.0, rtol=1e-4, atol=0):
                hint = "multiply the whole rate by `scale` (scale=2.0 doubles it)"
            raise Failure(f"{call} = {value:.4g}, expected {expected:.4g} — {hint}")
    ctx.ok("`scale` multiplies the whole rate")

    schedule = ctx.call(
        student, 64, warmup_steps=100, what="TransformerSchedule(64, 100)"
    )
    expected = float(reference(64, warmup_steps=100)(tf.constant(10.0)))
    what = "calling the schedule with an int64 step (what optimizers pass)"
    value = to_numpy(ctx.call(schedule, tf.constant(10, tf.int64), what=what), what)
    if not close(value, expected, rtol=1e-4, atol=0):
        raise Failure(f"{what}: got {float(value):.4g}, expected {expected:.4g}")
    graph = tf.function(schedule, input_signature=[tf.TensorSpec((), tf.int64)])
    what = "the schedule inside tf.function (a symbolic step)"
    value = to_numpy(ctx.call(graph, tf.constant(10, tf.int64), what=what), what)
    if not close(value, expected, rtol=1e-4, atol=0):
        raise Failure(f"{what}: got {float(value):.4g}, expected {expected:.4g}")
    what = "keras.optimizers.Adam(learning_rate=schedule)"
    optimizer = ctx.call(keras.optimizers.Adam, learning_rate=schedule, what=what)
    value = to_numpy(ctx.call(lambda: optimizer.learning_rate, what=what), what)
    if not close(
        value, float(reference(64, warmup_steps=100)(tf.constant(0.0))), rtol=1e-4
    ):
        raise Failure(f"{what}: the learning rate at step 0 is {float(value):.4g}")
    ctx.ok("takes int64 and symbolic steps and drives a Keras optimizer")

    what = "TransformerSchedule.from_config(schedule.get_config())"
    schedule = ctx.call(
        student, 64, warmup_steps=100, scale=2.0, what="TransformerSchedule(64, 100, 2)"
    )
    expected = float(reference(64, warmup_steps=100, scale=2.0)(tf.constant(10.0)))
    config = ctx.call(schedule.get_config, what="schedule.get_config()")
    clone = ctx.call(student.from_config, config, what=what)
    if not close(ctx.call(clone, tf.constant(10.0), what=what), expected, rtol=1e-4):
        raise Failure(
            f"{what} gives a different schedule — return every constructor argument"
        )
    ctx.ok("get_config / from_config round trip")


# ------------------------------------------------- catalogue of typical bugs


def _schedule(rate):
    base = library_object("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            return rate(step, float(self.d_model), float(self.warmup_steps))

    return Schedule


@bug("transformer_schedule", "step + 1")
def schedule_no_plus_one():
    """counts from 0: lr(0) = 0 · ∞"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.minimum(tf.math.rsqrt(s), s * w**-1.5)
    )


@bug("transformer_schedule", "no warm-up")
def schedule_no_warmup():
    """no warm-up"""
    return _schedule(lambda s, d, w: d**-0.5 * tf.math.rsqrt(s + 1))


@bug("transformer_schedule", "not the maximum")
def schedule_max():
    """max instead of min"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.maximum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "d_model^-0.5")
def schedule_no_scale():
    """forgets d_model^-0.5"""
    return _schedule(
        lambda s, d, w: tf.minimum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "int64 step")
def schedule_no_cast():
    """no cast: fails on the optimizer's int64 step"""
    base = library_object("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            s = step + 1
            return (
                self.scale
                * self.d_model**-0.5
                * tf.minimum(tf.math.rsqrt(s), s * self.warmup_steps**-1.5)
            )

    return Schedule


@bug("transformer_schedule", "symbolic step")
def schedule_python_math():
    """Python math: fails on a symbolic step"""
    base = library_object("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            s = float(step) + 1
            rate = min(s**-0.5, s * self.warmup_steps**-1.5)
            return self.scale * self.d_model**-0.5 * rate

    return Schedule


@bug("transformer_schedule", "by `scale`")
def schedule_ignores_scale():
    """the `scale` argument is stored but never used"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.minimum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "return every constructor argument")
def schedule_config_without_scale():
    """get_config leaves out `scale`"""
    base = library_object("TransformerSchedule")

    class Schedule(base):
        def get_config(self):
            return {"d_model": self.d_model, "warmup_steps": self.warmup_steps}

    return Schedule
