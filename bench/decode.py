"""Greedy decoding with the key/value cache vs re-running the full model per step.

The same model (2 + 2 layers, d_model 128, 4 heads, dff 512), the same batch of
16 sources of 16 tokens, both paths compiled with `tf.function`. The model is
untrained, with the `[END]` logit pushed down so that every run generates
exactly the requested number of tokens. Reports the median of several runs and
the speed-up (uncached time / cached time).

    python bench/decode.py [--lengths 8 32 64] [--repeats 7] [--jit-compile]
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

import tf_transformer as tt  # noqa: E402
from tf_transformer.inference import greedy_decode  # noqa: E402

BATCH, SOURCE_LEN, VOCAB = 16, 16, 1000


def median_seconds(decode, inputs, repeats):
    """Median wall time of `decode(inputs)` after a first (tracing) call that
    must generate every requested token (no 0 = stopped early)."""
    ids = decode(inputs)  # trace and compile
    assert int(tf.reduce_sum(tf.cast(ids == 0, tf.int32))) == 0, "stopped early"
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode(inputs).numpy()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def never_end(model):
    """Push the `[END]` logit down so that every run has the requested length."""
    bias = model.output_projection.bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[3]], [-1e4]))


def cache_speed_table(decode, inputs, lengths, repeats, jit_compile, column):
    """Print a markdown table: cached vs uncached `decode(inputs, length,
    use_cache)` for each length, compiled with `tf.function`."""
    print(f"| {column} | cached (ms) | uncached (ms) | speed-up |")
    print("|---|---|---|---|")
    for length in lengths:
        timings = {}
        for use_cache in (True, False):

            def run(x, use_cache=use_cache, length=length):
                return decode(x, length, use_cache)

            compiled = tf.function(run, jit_compile=jit_compile)
            timings[use_cache] = median_seconds(compiled, inputs, repeats)
        print(
            f"| {length} | {timings[True] * 1e3:.1f} | {timings[False] * 1e3:.1f} | "
            f"{timings[False] / timings[True]:.1f}x |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = tt.Transformer(2, 128, 4, 512, VOCAB, VOCAB, max_length=128)
    model.build(((None, None), (None, None)))
    never_end(model)
    source = np.random.default_rng(0).integers(4, VOCAB, (BATCH, SOURCE_LEN))
    source = tf.constant(source, tf.int32)

    print(
        f"{machine.header()}; TensorFlow {tf.__version__}; "
        f"jit_compile={args.jit_compile}; batch {BATCH}, source length {SOURCE_LEN}"
    )
    cache_speed_table(
        lambda s, length, use_cache: greedy_decode(
            model, s, max_length=length, use_cache=use_cache
        ),
        source,
        args.lengths,
        args.repeats,
        args.jit_compile,
        "output tokens",
    )


if __name__ == "__main__":
    main()
