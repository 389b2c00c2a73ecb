"""Adapting a trained CausalLM to a new task: full fine-tuning vs LoRA vs a new head.

Lesson 15's comparison with more steps and several seeds. A lesson-11-size
`CausalLM` (2 layers, d_model 64, dff 224) is trained on English → French
numbers (the old task), then taught French → English numbers (the new task:
a language it has read in every prompt but never written) in four ways, each
from the same trained weights and with the same steps and learning-rate
schedule:

- full fine-tuning: every weight trains;
- LoRA at two ranks on every attention and feed-forward projection
  (`tt.add_lora(..., targets=ATTENTION_AND_FEED_FORWARD)`), all else frozen;
- a new head: the body frozen, a freshly initialised output layer trained;
- with `--methods lora+head`, LoRA at the largest rank with the model's own
  output layer trainable as well (what PEFT calls `modules_to_save`).

Measured: trainable parameters, bytes of the Adam optimizer's variables,
held-out sentence accuracy on the new task (every token of the reference is
the model's first choice given the reference's earlier tokens: what greedy
decoding needs to write the reference exactly), token accuracy (the share
of such tokens, lesson 15's measure), and both on the old task after
the fine-tuning (what the model forgot; the adapters and the new head can
be taken off again, which restores the old model exactly), and training
seconds. The base model is trained once (seed 0); each method runs with
every seed in `--seeds` (data order and new weights), reported as mean ± std.

    python bench/lora_fine_tuning.py [--base-steps 600] [--steps 300]
        [--ranks 2 8] [--seeds 0 1 2] [--peak-rate 5e-3] [--adapter-rate 1.5e-2]
        [--test-pairs 1000] [--methods full lora lora+head "new head"]
        [--base-weights PATH]

Adapters usually want a larger learning rate than full fine-tuning (Hu et
al. use several times larger): each method gets its own peak rate.
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
    train_tokenizer,
)
from tf_transformer.models.lora import ATTENTION_AND_FEED_FORWARD  # noqa: E402
from tf_transformer.training import (  # noqa: E402
    new_head,
    optimizer_bytes,
    trainable_parameters,
)

OLD, NEW = ("en", "fr"), ("fr", "en")


def compiled(model, steps, peak_rate, warmup):
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=peak_rate, warmup_steps=warmup
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9
        ),
        loss=tt.masked_loss,
        steps_per_execution=50,  # fewer Python round trips per step
    )
    return model


def batches(pairs, tokenizer, languages, seed, batch_size=64):
    source_lang, target_lang = languages
    return make_language_model_batches(
        pairs,
        tokenizer,
        batch_size,
        max_length=44,
        source_lang=source_lang,
        target_lang=target_lang,
        seed=seed,
        pad_to_max_length=True,
    ).repeat()


def accuracies(model, test_batches):
    """(sentence accuracy, token accuracy) on held-out batches."""
    sentences, right, total = [], 0.0, 0.0
    for ids, labels in test_batches:
        logits = model(ids, training=False)
        sentences.append(tt.masked_sentence_accuracy(labels, logits))
        graded = labels != 0
        correct = tf.argmax(logits, axis=-1, output_type=tf.int32) == labels
        right += float(tf.reduce_sum(tf.cast(correct & graded, tf.float32)))
        total += float(tf.reduce_sum(tf.cast(graded, tf.float32)))
    return float(tf.reduce_mean(tf.concat(sentences, axis=0))), right / total


def adapt(model, method):
    """Prepare a copy of the trained model for one way of fine-tuning."""
    if method == "full":
        return
    if method == "new head":
        new_head(model)
        return
    rank = int(method.split()[2])
    tt.add_lora(model, rank, alpha=2 * rank, targets=ATTENTION_AND_FEED_FORWARD)
    if method.endswith("+ head"):  # the output layer trains too, as PEFT's
        for weight in model.output_projection.weights:  # `modules_to_save`
            weight.trainable = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-steps", type=int, default=600)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--peak-rate", type=float, default=5e-3, help="full")
    parser.add_argument(
        "--adapter-rate", type=float, default=1.5e-2, help="LoRA and new head"
    )
    parser.add_argument("--test-pairs", type=int, default=1000)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["full", "lora", "new head"],
        choices=("full", "lora", "lora+head", "new head"),
    )
    parser.add_argument(
        "--base-weights",
        help="a .weights.h5 file: loaded if it exists, else written after training "
        "the base model (to rerun the comparison without retraining it)",
    )
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    languages = {"old": OLD, "new": NEW}
    train = {k: load_translation("numbers", "train", *v) for k, v in languages.items()}
    test = {}
    tokenizer = train_tokenizer(language_model_texts(train["old"].take(2_000)), 400)
    for key, (source_lang, target_lang) in languages.items():
        test[key] = make_language_model_batches(
            load_translation("numbers", "test", source_lang, target_lang).take(
                args.test_pairs
            ),
            tokenizer,
            250,
            max_length=80,
            source_lang=source_lang,
            target_lang=target_lang,
            shuffle=False,
        )
    print(f"{machine.header()}; TensorFlow {tf.__version__}")
    print(
        f"base: {args.base_steps} steps on en→fr; each method: {args.steps} steps "
        f"on fr→en, peak rate {args.peak_rate:g} (full) or {args.adapter_rate:g} "
        f"(LoRA, new head), cosine, seeds {args.seeds}; "
        f"{args.test_pairs} held-out pairs per task",
        flush=True,
    )

    base = tt.CausalLM(2, 64, 4, 224, tokenizer.vocabulary_size, max_length=80)
    base = compiled(base, args.base_steps, 5e-3, min(100, args.base_steps // 6))
    base.build((None, None))
    start = time.perf_counter()
    if args.base_weights and os.path.exists(args.base_weights):
        base.load_weights(args.base_weights)
    else:
        base.fit(
            batches(train["old"], tokenizer, OLD, 0),
            steps_per_epoch=args.base_steps,
            verbose=0,
        )
        if args.base_weights:
            base.save_weights(args.base_weights)
    weights = base.get_weights()
    base_old, base_new = accuracies(base, test["old"]), accuracies(base, test["new"])
    print(
        f"base: {time.perf_counter() - start:.0f} s; sentence / token accuracy: "
        f"old task {base_old[0]:.1%} / {base_old[1]:.1%}, "
        f"new task {base_new[0]:.1%} / {base_new[1]:.1%}",
        flush=True,
    )

    methods = ["full"] * ("full" in args.methods)
    methods += [f"LoRA rank {r}" for r in args.ranks] * ("lora" in args.methods)
    methods += [f"LoRA rank {max(args.ranks)} + head"] * ("lora+head" in args.methods)
    methods += ["new head"] * ("new head" in args.methods)
    results = {method: [] for method in methods}
    for method in methods:
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            model = tt.CausalLM.from_config(base.get_config())
            model.build((None, None))
            model.set_weights(weights)
            adapt(model, method)
            rate = args.peak_rate if method == "full" else args.adapter_rate
            compiled(model, args.steps, rate, max(1, args.steps // 10))
            memory = optimizer_bytes(model.optimizer, model)
            start = time.perf_counter()
            model.fit(
                batches(train["new"], tokenizer, NEW, seed),
                steps_per_epoch=args.steps,
                verbose=0,
            )
            seconds = time.perf_counter() - start
            (new, new_tokens), (old, old_tokens) = (
                accuracies(model, test["new"]),
                accuracies(model, test["old"]),
            )
            run = {
                "parameters": trainable_parameters(model),
                "optimizer bytes": memory,
                "new": new,
                "new tokens": new_tokens,
                "old": old,
                "old tokens": old_tokens,
                "seconds": seconds,
            }
            results[method].append(run)
            print(f"  {method}, seed {seed}: {run}", flush=True)

    print()
    print(
        "| method | trainable parameters | optimizer memory | new task (fr→en): "
        "sentences / tokens | old task (en→fr) after: sentences / tokens "
        "| training seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for method, runs in results.items():

        def spread(key, runs=runs):
            values = np.array([run[key] for run in runs])
            return f"{values.mean():.1%} ± {values.std():.1%}"

        seconds = np.mean([run["seconds"] for run in runs])
        print(
            f"| {method} | {runs[0]['parameters']:,} | "
            f"{runs[0]['optimizer bytes'] / 1024:.0f} KiB | {spread('new')} / "
            f"{spread('new tokens')} | {spread('old')} / {spread('old tokens')} | "
            f"{seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
