"""Decoder-only vs encoder–decoder on lesson 11's task: steps, seconds, exact match.

Lesson 11 trains a `CausalLM` (prompt `en: … => fr:` and continuation as one
text) and lesson 08's `Transformer` (source and target) on English → French
numbers, with one tokenizer, similar parameter counts and the same fixed
number of steps, then scores both by greedy exact match on held-out test
sentences. This script runs the same comparison with the lesson's settings
by default, and lets every setting change, so that the lesson's figures come
from code and other settings can be tried:

    python bench/causal_lm_vs_translator.py [--steps 600] [--batch-size 64]
        [--peak-rate 5e-3] [--warmup 100] [--schedule cosine] [--test-pairs 1000]
        [--models decoder-only encoder-decoder] [--seed 0]

The decoder-only model has 2 layers and dff 224, the encoder-decoder 1 + 1
layers and dff 128 (both d_model 64, 4 heads): 107,000 parameters each with
the lesson's vocabulary of 119 tokens.

Seconds are training seconds of `fit` (tracing included), so they depend on
the machine and its load; steps and exact match do not (a fixed number of
steps, seeded).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_transformer as tt  # noqa: E402
from tf_transformer.data import (  # noqa: E402
    language_model_texts,
    load_translation,
    make_batches,
    make_language_model_batches,
    normalize,
    tokenize_prompts,
    train_tokenizer,
)


def learning_rate(args):
    if args.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            args.steps - args.warmup,
            warmup_target=args.peak_rate,
            warmup_steps=args.warmup,
        )
    return tt.TransformerSchedule(args.d_model, args.warmup, scale=args.scale)


def compiled(model, args):
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate(args), beta_1=0.9, beta_2=0.98, epsilon=1e-9
        ),
        loss=tt.masked_loss,
        metrics=[tt.masked_accuracy],
        jit_compile=args.jit_compile,
    )
    return model


def greedy(decoder, model, **kwargs):
    """`decoder(model, ids, **kwargs)` as one compiled function of the ids."""

    @tf.function
    def decode(ids):
        return decoder(model, ids, **kwargs)

    return decode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--schedule", choices=("cosine", "transformer"), default="cosine"
    )
    parser.add_argument("--peak-rate", type=float, default=5e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--scale", type=float, default=2.0, help="transformer schedule")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--dff", type=int, default=128, help="encoder-decoder")
    parser.add_argument("--lm-dff", type=int, default=224, help="decoder-only")
    parser.add_argument("--lm-layers", type=int, default=2)
    parser.add_argument("--seq2seq-layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lm-length", type=int, default=44)
    parser.add_argument("--test-pairs", type=int, default=1000)
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["decoder-only", "encoder-decoder"],
        choices=("decoder-only", "encoder-decoder"),
    )
    args = parser.parse_args()
    if args.steps % 100:
        parser.error(f"--steps must be a multiple of 100. Received: {args.steps}")

    keras.utils.set_random_seed(args.seed)
    train_pairs = load_translation("numbers", split="train")
    test_pairs = load_translation("numbers", split="test")
    tokenizer = train_tokenizer(language_model_texts(train_pairs.take(2_000)), 400)
    vocabulary_size = tokenizer.vocabulary_size
    test = list(test_pairs.take(args.test_pairs).as_numpy_iterator())
    sources = [source.decode() for source, _ in test]
    references = [normalize(target.decode()) for _, target in test]

    def exact_match(outputs):
        texts = [t.decode() for t in tokenizer.detokenize(outputs).numpy()]
        return np.mean([a == b for a, b in zip(texts, references, strict=True)])

    print(f"{machine.header()}; TensorFlow {tf.__version__}")
    rate = (
        f"peak {args.peak_rate:g}"
        if args.schedule == "cosine"
        else f"scale {args.scale:g}"
    )
    print(
        f"{args.steps} steps of {args.batch_size}; {args.schedule} schedule, "
        f"{rate}, warm-up {args.warmup}; d_model {args.d_model}, "
        f"dff {args.lm_dff} (decoder-only) / {args.dff} (encoder-decoder), "
        f"dropout {args.dropout}; jit_compile={args.jit_compile}; "
        f"{len(references)} held-out sentences"
    )
    for name in args.models:
        keras.utils.set_random_seed(args.seed)
        if name == "decoder-only":
            model = tt.CausalLM(
                args.lm_layers,
                args.d_model,
                4,
                args.lm_dff,
                vocabulary_size,
                max_length=80,
                dropout=args.dropout,
            )
            model.build((None, None))
            batches = make_language_model_batches(
                train_pairs,
                tokenizer,
                args.batch_size,
                max_length=args.lm_length,
                seed=args.seed,
                pad_to_max_length=True,
            )
            inputs = tokenize_prompts(tokenizer, sources)
            decode = greedy(tt.generate, model, max_new_tokens=30, temperature=0)
        else:
            model = tt.Transformer(
                args.seq2seq_layers,
                args.d_model,
                4,
                args.dff,
                vocabulary_size,
                vocabulary_size,
                max_length=64,
                dropout=args.dropout,
            )
            model.build(((None, None), (None, None)))
            batches = make_batches(
                train_pairs,
                tokenizer,
                tokenizer,
                args.batch_size,
                max_length=24,
                seed=args.seed,
                pad_to_max_length=True,
                drop_remainder=True,
            )
            inputs = tokenizer.tokenize(list(sources)).to_tensor()
            decode = greedy(tt.greedy_decode, model, max_length=30)
        compiled(model, args)
        start = time.perf_counter()
        history = model.fit(
            batches.repeat(), epochs=args.steps // 100, steps_per_epoch=100, verbose=0
        )
        seconds = time.perf_counter() - start
        score = exact_match(decode(inputs))
        print(
            f"{name:>15}: {model.count_params():,} parameters, {args.steps} steps "
            f"in {seconds:.0f} s, loss of the last 100 steps "
            f"{history.history['loss'][-1]:.4f}, "
            f"held-out exact match {score:.1%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
