"""What dropout's random numbers cost a training step, and what a cheaper
generator would save.

`bench/train_step.py` shows dropout costing both models a large part of a
step under XLA on the CPU. This script isolates that part: it applies
dropout to the 18 tensors that the training-step benchmark's model drops
(embeddings, attention weights, residual branches; same shapes), forward and
backward, inside one `tf.function`, with and without `jit_compile`:

- `keras`: `keras.layers.Dropout`, as both models use it (TensorFlow's
  stateless Philox generator);
- `hash`: the same Bernoulli keep-mask drawn from a counter-based integer
  hash of each element's index and the seed (one multiply-xorshift mix,
  plain element-wise integer ops that XLA fuses into one loop);
- `none`: no dropout, the floor (the rest of the function is a sum of
  squares and its gradient).

The library uses `keras.layers.Dropout`; `hash` is an experiment, here to
measure the headroom. Medians of `--repeats` calls, in alternating rounds.

    python bench/dropout_rng.py [--repeats 30] [--rate 0.1]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from train_step import BATCH, CONFIG, SOURCE_LEN, TARGET_LEN  # noqa: E402


def dropped_shapes():
    """The shapes of the 18 tensors the training-step model drops."""
    d, h = CONFIG["d_model"], CONFIG["num_heads"]
    source, target = (BATCH, SOURCE_LEN, d), (BATCH, TARGET_LEN, d)
    encoder_layer = [(BATCH, h, SOURCE_LEN, SOURCE_LEN), source, source]
    decoder_layer = [
        (BATCH, h, TARGET_LEN, TARGET_LEN),
        (BATCH, h, TARGET_LEN, SOURCE_LEN),
        target,
        target,
        target,
    ]
    layers = CONFIG["num_layers"]
    return [source, target] + encoder_layer * layers + decoder_layer * layers


def _mix(h):
    """A 32-bit integer finalizer (xorshift-multiply, good avalanche)."""
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, np.uint32(16)))
    h = h * np.uint32(0x7FEB352D)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, np.uint32(15)))
    h = h * np.uint32(0x846CA68B)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, np.uint32(16)))


def hash_dropout(x, rate, seed):
    """Drop each element with probability `rate` (to 2**-32), scale the rest."""
    seed = tf.cast(seed, tf.uint32)
    key = _mix(tf.bitwise.bitwise_xor(seed[0], _mix(seed[1])))
    index = tf.reshape(tf.cast(tf.range(tf.size(x)), tf.uint32), tf.shape(x))
    bits = _mix(index * np.uint32(0x9E3779B9) + key)
    keep = bits >= np.uint32(min(round(rate * 2**32), 2**32 - 1))
    return tf.where(keep, x * (1.0 / (1.0 - rate)), tf.zeros_like(x))


def step_function(kind, rate, jit_compile):
    keras.utils.set_random_seed(0)
    inputs = [tf.Variable(tf.random.normal(shape)) for shape in dropped_shapes()]
    layers = [keras.layers.Dropout(rate) for _ in inputs]
    # Each hash mask draws its seed as Keras's Dropout does: from a seed
    # generator whose state variable advances at every call.
    seeds = [keras.random.SeedGenerator(index) for index in range(len(inputs))]

    def drop(index, x):
        if kind == "keras":
            return layers[index](x, training=True)
        if kind == "hash":
            return hash_dropout(x, rate, seeds[index].next())
        return x

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            total = tf.add_n(
                [tf.reduce_sum(tf.square(drop(i, x))) for i, x in enumerate(inputs)]
            )
        return tape.gradient(total, inputs)

    return step


def mask_statistics(rate, size=1_000_000):
    """Dropped fraction of one hash mask, and the fraction dropped by both of
    two masks drawn with consecutive seeds (independent masks: rate**2)."""
    ones = tf.ones((size,))
    first = hash_dropout(ones, rate, tf.constant([7, 11])) == 0
    second = hash_dropout(ones, rate, tf.constant([7, 12])) == 0
    dropped = float(tf.reduce_mean(tf.cast(first, tf.float32)))
    both = float(tf.reduce_mean(tf.cast(first & second, tf.float32)))
    return dropped, both


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rate", type=float, default=CONFIG["dropout"])
    args = parser.parse_args()
    print(machine.header())
    shapes = dropped_shapes()
    elements = sum(int(np.prod(shape)) for shape in shapes)
    print(
        f"{len(shapes)} dropped tensors, {elements:,} elements, rate {args.rate}; "
        f"ms per call (forward and backward), medians of {args.repeats}"
    )
    dropped, both = mask_statistics(args.rate)
    print(
        f"hash masks of 1,000,000 elements: dropped {dropped:.4f} (rate "
        f"{args.rate}); dropped by two consecutive seeds' masks {both:.4f} "
        f"(independent: {args.rate**2:.4f})"
    )
    print("| jit_compile | keras (Philox) | hash | none |")
    print("|---|---|---|---|")
    kinds = ("keras", "hash", "none")
    for jit_compile in (False, True):
        steps = {kind: step_function(kind, args.rate, jit_compile) for kind in kinds}
        for step in steps.values():  # trace and compile outside the timing
            [g.numpy() for g in step()]
        times = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            for kind, step in steps.items():
                start = time.perf_counter()
                [g.numpy() for g in step()]
                times[kind].append(time.perf_counter() - start)
        row = " | ".join(f"{statistics.median(times[k]) * 1e3:.1f}" for k in kinds)
        print(f"| {jit_compile} | {row} |", flush=True)


if __name__ == "__main__":
    main()
