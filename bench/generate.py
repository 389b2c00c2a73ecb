"""CausalLM generation with the key/value cache vs re-running the model per step.

A decoder-only model (4 layers, d_model 128, 4 heads, dff 512, vocabulary
1000), a batch of 16 prompts of 16 tokens, greedy generation of 8, 32 and 64
new tokens, both paths compiled with `tf.function`. The model is untrained,
with the `[END]` logit pushed down so that every run generates exactly the
requested number of tokens. Reports the median of several runs and the
speed-up (uncached time / cached time).

    python bench/generate.py [--lengths 8 32 64] [--repeats 5] [--jit-compile]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from decode import cache_speed_table, never_end  # noqa: E402

import tf_transformer as tt  # noqa: E402

BATCH, PROMPT_LEN, VOCAB = 16, 16, 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = tt.CausalLM(4, 128, 4, 512, VOCAB, max_length=256)
    model.build((None, None))
    never_end(model)
    prompts = np.random.default_rng(0).integers(4, VOCAB, (BATCH, PROMPT_LEN))
    prompts = tf.constant(prompts, tf.int32)

    print(
        f"{machine.header()}; TensorFlow {tf.__version__}; "
        f"jit_compile={args.jit_compile}; batch {BATCH}, prompt length {PROMPT_LEN}"
    )
    cache_speed_table(
        lambda p, length, use_cache: tt.generate(
            model, p, length, temperature=0, use_cache=use_cache
        ),
        prompts,
        args.lengths,
        args.repeats,
        args.jit_compile,
        "new tokens",
    )


if __name__ == "__main__":
    main()
