"""Lesson 14's measurement: the Llama-style `ModernCausalLM` vs lesson 11's GPT.

Both models learn lesson 11's task (English → French numbers written as one
text, `en: … => fr: …`) from the same batches, with the same tokenizer,
optimizer, schedule and number of steps, and about the same number of
parameters (the modern model's SwiGLU width is chosen to match). Training
sees only streams of at most `--train-length` tokens; the held-out test
sentences are split into those of the lengths seen in training and those
that are longer, so the second group measures what positions do past the
training length: GPT's learned position table has never trained its rows
beyond it, rotary positions only ever encode offsets.

    python bench/modern_vs_gpt.py [--seeds 0 1 2] [--steps 600]
        [--train-length 28] [--models gpt-learned gpt-sinusoidal modern]
    python bench/modern_vs_gpt.py --time-steps [--rounds 15]

Per model and seed it prints parameters, training seconds (tracing
included; they depend on the machine and its load), the held-out loss and
greedy exact match on both groups, and the key/value cache's bytes per
generated token (`DecoderCache.bytes_per_token`), then the mean over seeds
and the modern/GPT ratio of seconds per step.

Training seconds of whole runs measured one after the other are at the
mercy of whatever else the machine does. `--time-steps` measures the step
time instead as `bench/train_step.py` does: the models take turns, 10
compiled training steps each on the same fixed batch, for `--rounds`
rounds, and the medians are compared, so a busy spell slows both alike.
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
    make_language_model_batches,
    normalize,
    tokenize_prompts,
    train_tokenizer,
)
from tf_transformer.inference.decoding import DecoderCache  # noqa: E402

D_MODEL, NUM_LAYERS, NUM_HEADS, KV_HEADS = 64, 2, 4, 2
GPT_DFF, MODERN_DFF = 224, 188  # 112,570 vs 112,704 parameters (122 tokens)
MAX_LENGTH = 80


def build(name, vocabulary_size):
    if name == "modern":
        model = tt.ModernCausalLM(
            NUM_LAYERS,
            D_MODEL,
            NUM_HEADS,
            KV_HEADS,
            MODERN_DFF,
            vocabulary_size,
            max_length=MAX_LENGTH,
        )
    else:
        model = tt.CausalLM(
            NUM_LAYERS,
            D_MODEL,
            NUM_HEADS,
            GPT_DFF,
            vocabulary_size,
            max_length=MAX_LENGTH,
            dropout=0.0,
            position=name.split("-")[1],
        )
    model.build((None, None))
    return model


def compile_for_training(model, steps, warmup=100, peak_rate=5e-3):
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=peak_rate, warmup_steps=warmup
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9
        ),
        loss=tt.masked_loss,
        metrics=[tt.masked_accuracy],
    )
    return model


def held_out(pairs, tokenizer, train_length):
    """Test pairs split by stream length: (seen lengths, longer)."""
    groups = {"seen": [], "longer": []}
    batches = make_language_model_batches(
        pairs, tokenizer, 1, max_length=MAX_LENGTH - 30, shuffle=False
    )
    for (ids, labels), (source, target) in zip(
        batches.as_numpy_iterator(), pairs.as_numpy_iterator(), strict=False
    ):
        length = int((ids != 0).sum())
        key = "seen" if length <= train_length else "longer"
        groups[key].append((ids[0], labels[0], source.decode(), target.decode()))
    return groups


def evaluate(model, tokenizer, group):
    ids = tf.ragged.constant([g[0] for g in group]).to_tensor()
    labels = tf.ragged.constant([g[1] for g in group]).to_tensor()
    logits = model.predict(ids, batch_size=128, verbose=0)
    loss = float(tt.masked_loss(labels, logits))
    prompts = tokenize_prompts(tokenizer, [g[2] for g in group])
    outputs = tf.function(lambda p: tt.generate(model, p, 30, temperature=0))(prompts)
    texts = [t.decode() for t in tokenizer.detokenize(outputs).numpy()]
    match = np.mean([a == normalize(g[3]) for a, g in zip(texts, group, strict=True)])
    return loss, match


def time_steps(args, tokenizer, train_pairs):
    """Median seconds per training step of each model, taking turns."""
    batch = next(
        iter(
            make_language_model_batches(
                train_pairs,
                tokenizer,
                args.batch_size,
                max_length=args.train_length,
                seed=0,
                pad_to_max_length=True,
            )
        )
    )
    models = {}
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = compile_for_training(build(name, tokenizer.vocabulary_size), 1000)
        model.train_on_batch(*batch)  # trace and build once
        models[name] = model
    seconds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(10):
                model.train_on_batch(*batch)
            seconds[name].append((time.perf_counter() - start) / 10)
    medians = {name: float(np.median(values)) for name, values in seconds.items()}
    for name, median in medians.items():
        print(f"  {name:>14}: median {median * 1000:.1f} ms per step", flush=True)
    if "modern" in medians:
        for name in medians:
            if name != "modern":
                ratio = medians["modern"] / medians[name]
                print(f"  seconds per step, modern / {name}: {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-length", type=int, default=28)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["gpt-learned", "gpt-sinusoidal", "modern"],
        choices=("gpt-learned", "gpt-sinusoidal", "modern"),
    )
    parser.add_argument("--time-steps", action="store_true")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.steps % 100:
        parser.error(f"--steps must be a multiple of 100. Received: {args.steps}")

    train_pairs = load_translation("numbers", split="train")
    test_pairs = load_translation("numbers", split="test")
    tokenizer = train_tokenizer(language_model_texts(train_pairs.take(2_000)), 400)
    print(f"{machine.header()}; TensorFlow {tf.__version__}")
    if args.time_steps:
        print(
            f"training step time, batch {args.batch_size} of length "
            f"{args.train_length}, {args.rounds} rounds of 10 steps each in turn:"
        )
        time_steps(args, tokenizer, train_pairs)
        return
    groups = held_out(test_pairs, tokenizer, args.train_length)
    print(
        f"{args.steps} steps of {args.batch_size}, training streams <= "
        f"{args.train_length} tokens; held out: {len(groups['seen'])} of the seen "
        f"lengths, {len(groups['longer'])} longer; seeds {args.seeds}"
    )
    results = {name: [] for name in args.models}
    for seed in args.seeds:
        for name in args.models:
            keras.utils.set_random_seed(seed)
            model = compile_for_training(
                build(name, tokenizer.vocabulary_size), args.steps
            )
            batches = make_language_model_batches(
                train_pairs,
                tokenizer,
                args.batch_size,
                max_length=args.train_length,
                seed=seed,
                pad_to_max_length=True,
            )
            start = time.perf_counter()
            model.fit(
                batches.repeat(),
                epochs=args.steps // 100,
                steps_per_epoch=100,
                verbose=0,
            )
            seconds = time.perf_counter() - start
            seen_loss, seen_match = evaluate(model, tokenizer, groups["seen"])
            long_loss, long_match = evaluate(model, tokenizer, groups["longer"])
            row = dict(
                parameters=model.count_params(),
                seconds=seconds,
                seen_loss=seen_loss,
                seen_match=seen_match,
                long_loss=long_loss,
                long_match=long_match,
                cache_bytes=DecoderCache.bytes_per_token(model),
            )
            results[name].append(row)
            print(
                f"seed {seed} {name:>14}: {row['parameters']:,} parameters, "
                f"{seconds:.0f} s; held-out loss {seen_loss:.4f} / longer "
                f"{long_loss:.3f}; exact match {seen_match:.1%} / longer "
                f"{long_match:.1%}; cache {row['cache_bytes']} B/token",
                flush=True,
            )
    print("mean over seeds (min–max):")
    for name, rows in results.items():
        summary = []
        for key in ("seconds", "seen_loss", "seen_match", "long_loss", "long_match"):
            values = np.array([r[key] for r in rows])
            summary.append(
                f"{key} {values.mean():.4g} ({values.min():.4g}–{values.max():.4g})"
            )
        print(f"  {name:>14}: " + "; ".join(summary))
    if "modern" in results:
        for name in results:
            if name != "modern":
                ratio = np.mean(
                    [
                        m["seconds"] / g["seconds"]
                        for m, g in zip(results["modern"], results[name], strict=True)
                    ]
                )
                print(f"  seconds per step, modern / {name}: {ratio:.2f}")


if __name__ == "__main__":
    main()
