"""The seed contract shared by the random exercises (`mask_tokens`,
`sample_next_token`): an int or a shape-(2,) tensor seed reproduces the
output, another seed changes it, and `seed=None` gives fresh randomness."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import Failure


def check_seeds(ctx, run, name):
    """`run(seed, what)` calls the student's `name` and returns an array."""
    first = run(3, f"{name}(…, seed=3)")
    if not np.array_equal(first, run(3, f"{name}(…, seed=3) again")):
        raise Failure(
            "two calls with seed=3 gave different results — the same seed must "
            "give the same output (stateless random ops such as "
            "tf.random.stateless_uniform or tf.random.stateless_categorical take "
            "the seed)"
        )
    if np.array_equal(first, run(4, f"{name}(…, seed=4)")):
        raise Failure("seed=3 and seed=4 gave the same output — is `seed` used?")
    pair = tf.constant([3, 5], tf.int64)
    what = f"{name}(…, seed=tf.constant([3, 5]))"
    if not np.array_equal(run(pair, what), run(pair, what + " again")):
        raise Failure(
            "a shape-(2,) seed tensor gave different results twice — use it as "
            "the seed of stateless random ops"
        )
    if np.array_equal(*(run(None, f"{name}(…, seed=None)") for _ in range(2))):
        raise Failure(
            "two calls with seed=None gave the same output — seed=None means "
            "fresh randomness at every call (draw a new seed, e.g. with "
            "tf.random.uniform; no fixed default seed)"
        )
    ctx.ok("same seed → same output; seed=None → fresh randomness")
