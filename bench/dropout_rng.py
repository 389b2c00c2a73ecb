"""What dropout's random numbers cost: Keras's generator against the
library's hashed mask.

`bench/train_step.py` shows dropout costing a large part of a training step
under XLA on the CPU. This script isolates that part: it applies dropout to
the 18 tensors that the training-step benchmark's model drops (embeddings,
attention weights, residual branches; same shapes), forward and backward,
inside one `tf.function`, with and without `jit_compile`:

- `keras`: `keras.layers.Dropout`, as KerasNLP's layers use it (TensorFlow's
  stateless Philox generator);
- `hash`: `tf_transformer.Dropout`, as the library's layers use it: the same
  Bernoulli keep-mask, drawn from a counter-based integer hash of each
  element's index and the seed (plain element-wise integer ops that XLA
  fuses into one loop);
- `none`: no dropout, the floor (the rest of the function is a sum of
  squares and its gradient).

Medians of `--repeats` calls, in alternating rounds.

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

import tf_transformer as tt  # noqa: E402
from tf_transformer.layers import hash_dropout  # noqa: E402


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


def step_function(kind, rate, jit_compile):
    keras.utils.set_random_seed(0)
    inputs = [tf.Variable(tf.random.normal(shape)) for shape in dropped_shapes()]
    layer_class = {"keras": keras.layers.Dropout, "hash": tt.Dropout}.get(kind)
    layers = [layer_class(rate) for _ in inputs] if layer_class else None

    def drop(index, x):
        return layers[index](x, training=True) if layers else x

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
    print("| jit_compile | keras.layers.Dropout | tf_transformer.Dropout | none |")
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
