"""The learning-rate schedule of the paper (section 5.3)."""

import keras
import tensorflow as tf

from tf_transformer import validation


@keras.saving.register_keras_serializable(package="tf_transformer")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lrate = d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5).

    The rate grows linearly for the first `warmup_steps` steps, then decays
    with the inverse square root of the step. The optimizer counts steps from
    0 and the paper from 1, so step 0 of the optimizer is the paper's step 1
    (the first update is not wasted on a zero rate).

    Args:
        d_model: model width; larger models take smaller steps.
        warmup_steps: length of the linear warm-up. Defaults to 4000.
        scale: factor on the whole schedule. Defaults to 1.

    Example:

    >>> schedule = TransformerSchedule(d_model=128, warmup_steps=4000)
    >>> optimizer = keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98,
    ...                                   epsilon=1e-9)
    """

    def __init__(self, d_model, warmup_steps=4000, scale=1.0):
        self.d_model = validation.check_int("d_model", d_model)
        self.warmup_steps = validation.check_int("warmup_steps", warmup_steps)
        self.scale = validation.check_positive_float("scale", scale)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0  # the paper counts from 1
        warmup = step * self.warmup_steps**-1.5
        decay = tf.math.rsqrt(step)
        return self.scale * self.d_model**-0.5 * tf.minimum(warmup, decay)

    def get_config(self):
        return {
            "d_model": self.d_model,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }
