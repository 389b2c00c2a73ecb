"""Seconds of training to reach 99 % and 99.5 % held-out exact match.

Trains tf_transformer's `Transformer` and the same configuration built from
KerasNLP layers (bench/peers.py) on the default corpus (mixed numbers + dates,
English -> French), with the same tokenizers, batches, optimizer, schedule,
loss and dropout (KerasNLP's layers also drop attention weights, so ours do
here too), one after the other. Every `--eval-every` steps the training clock
stops, the validation sentences are translated greedily and compared with
their references; the report gives the training seconds (evaluation excluded)
at which each model first reached each target, and the ratio ours / peer.

    python bench/time_to_accuracy.py [--max-seconds 600] [--eval-every 200]
                                     [--eval-pairs 1000]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from peers import keras_nlp_transformer  # noqa: E402

import tf_transformer as tt  # noqa: E402
from tf_transformer.data import load_translation, make_batches, train_tokenizers  # noqa: E402
from tf_transformer.training.train import MODEL_CONFIGS, TrainConfig, exact_match  # noqa: E402

TARGETS = (0.99, 0.995)


def compile_model(model, config, jit_compile):
    schedule = tt.TransformerSchedule(
        config.model_kwargs["d_model"],
        config.warmup_steps,
        scale=config.learning_rate_scale,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9
        ),
        loss=tt.training.MaskedLoss(label_smoothing=config.label_smoothing),
        jit_compile=jit_compile,
    )
    return model


def decoder_for(model, length, target_tokenizer):
    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def translate(source_ids):
        ids = tt.greedy_decode(model, source_ids, max_length=length, use_cache=False)
        return target_tokenizer.detokenize(ids)

    return translate


def run(name, model, batches, source_ids, references, target_tokenizer, args, length):
    translate = decoder_for(model, length, target_tokenizer)
    iterator = iter(batches)
    trained, reached, steps = 0.0, {}, 0
    while trained < args.max_seconds and len(reached) < len(TARGETS):
        start = time.perf_counter()
        for _ in range(args.eval_every):
            x, y = next(iterator)
            loss = model.train_on_batch(x, y)
        float(np.asarray(loss))
        trained += time.perf_counter() - start
        steps += args.eval_every
        translations = []
        for i in range(0, len(source_ids), 500):
            translations += [
                s.decode() for s in translate(source_ids[i : i + 500]).numpy()
            ]
        score = exact_match(translations, references)
        print(
            f"{name}: {steps} steps, {trained:.1f} s, exact match {score:.4f}",
            flush=True,
        )
        for target in TARGETS:
            if score >= target and target not in reached:
                reached[target] = trained
    return reached


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument(
        "--eval-pairs",
        type=int,
        default=1000,
        help="validation pairs translated at each evaluation",
    )
    parser.add_argument(
        "--jit-compile", action=argparse.BooleanOptionalAction, default=True
    )
    args = parser.parse_args()
    config = TrainConfig(config=args.config)
    pairs = load_translation("mixed", "train")
    validation = load_translation("mixed", "validation")
    source_tokenizer, target_tokenizer = train_tokenizers(pairs)
    batch_kwargs = dict(
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=0,
        pad_to_max_length=True,
        drop_remainder=True,
    )
    batches = make_batches(pairs, source_tokenizer, target_tokenizer, **batch_kwargs)
    batches = batches.repeat().prefetch(4)
    for _ in batches.take(1200):  # tokenize and cache the corpus before any clock
        pass
    sources, references = [], []
    for source, target in validation.take(args.eval_pairs).as_numpy_iterator():
        sources.append(source.decode())
        references.append(target.decode())
    source_ids = source_tokenizer.tokenize(sources).to_tensor(
        0, shape=(None, config.max_length)
    )
    length = config.max_length
    vocab = (source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size)

    print(
        f"{machine.header()}; TensorFlow {tf.__version__}; config "
        f"{args.config} {config.model_kwargs}; batch {config.batch_size}; "
        f"jit_compile={args.jit_compile}; validation pairs {len(sources)}"
    )
    results = {}
    for name in ("ours", "peer"):
        keras.utils.set_random_seed(0)
        if name == "ours":
            model = tt.Transformer(
                **config.model_kwargs,
                # KerasNLP's layers drop attention weights at their one
                # dropout rate; ours only when asked. Same computation here.
                attention_dropout=config.model_kwargs["dropout"],
                input_vocab_size=vocab[0],
                target_vocab_size=vocab[1],
                max_length=length,
            )
        else:
            model = keras_nlp_transformer(
                **config.model_kwargs,
                source_vocab=vocab[0],
                target_vocab=vocab[1],
                source_length=length,
                target_length=length,
            )
        compile_model(model, config, args.jit_compile)
        results[name] = run(
            name, model, batches, source_ids, references, target_tokenizer, args, length
        )
    print("| exact match | ours (s) | KerasNLP (s) | ratio ours/peer |")
    print("|---|---|---|---|")
    for target in TARGETS:
        ours, peer = results["ours"].get(target), results["peer"].get(target)
        ratio = f"{ours / peer:.2f}" if ours and peer else "n/a"
        show = lambda v: f"{v:.1f}" if v else f"> {args.max_seconds:.0f}"  # noqa: E731
        print(f"| {target:.1%} | {show(ours)} | {show(peer)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
