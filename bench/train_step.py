"""Training-step time of tf_transformer's Transformer vs the KerasNLP equivalent.

Both models have the same configuration (d_model 128, 2 encoder + 2 decoder
layers, 4 heads, dff 512, post-LN, dropout 0.1 on the residual branches, the
embeddings and the attention weights), the same optimizer, loss and batches.
The peer is assembled from KerasNLP's `TokenAndPositionEmbedding`,
`TransformerEncoder` and `TransformerDecoder` plus a dense output layer.
Steps alternate between the two models in rounds, and the report gives the
median per-step time of each and the ratio ours / peer (lower is better).

    python bench/train_step.py [--rounds 15] [--steps 10] [--jit-compile both]
                               [--dropout 0.1]

`--dropout 0` times both models without any dropout: the difference to the
default run is what dropout costs each of them.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from peers import keras_nlp_transformer  # noqa: E402

import tf_transformer as tt  # noqa: E402

CONFIG = dict(num_layers=2, d_model=128, num_heads=4, dff=512, dropout=0.1)
VOCAB = 1000
BATCH, SOURCE_LEN, TARGET_LEN = 64, 16, 24


def our_model(config):
    return tt.Transformer(
        **config,
        # KerasNLP's layers drop attention weights at their one dropout rate;
        # ours does so only when asked. Same rate here: same computation.
        attention_dropout=config["dropout"],
        input_vocab_size=VOCAB,
        target_vocab_size=VOCAB,
        max_length=max(SOURCE_LEN, TARGET_LEN),
        position="learned",  # as KerasNLP's TokenAndPositionEmbedding
    )


def peer_model(config):
    """The same architecture from KerasNLP layers (see bench/peers.py)."""
    return keras_nlp_transformer(
        **config,
        source_vocab=VOCAB,
        target_vocab=VOCAB,
        source_length=SOURCE_LEN,
        target_length=TARGET_LEN,
    )


def batches(count, seed=0):
    """Random token batches with realistic padding (lengths vary per row)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        source = rng.integers(4, VOCAB, (BATCH, SOURCE_LEN)).astype("int32")
        target = rng.integers(4, VOCAB, (BATCH, TARGET_LEN + 1)).astype("int32")
        for row in range(BATCH):
            source[row, rng.integers(SOURCE_LEN // 2, SOURCE_LEN + 1) :] = 0
            target[row, rng.integers(TARGET_LEN // 2, TARGET_LEN + 2) :] = 0
        out.append(((source, target[:, :-1]), target[:, 1:]))
    return out


def compiled(model, jit_compile, metrics=()):
    model.compile(
        optimizer=keras.optimizers.Adam(
            tt.TransformerSchedule(CONFIG["d_model"]),
            beta_1=0.9,
            beta_2=0.98,
            epsilon=1e-9,
        ),
        loss=tt.masked_loss,
        metrics=list(metrics) or None,
        jit_compile=jit_compile,
    )
    return model


def time_steps(model, data):
    start = time.perf_counter()
    for x, y in data:
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # wait for the last step
    return (time.perf_counter() - start) / len(data)


def measure(config, jit_compile, rounds, steps):
    keras.utils.set_random_seed(0)
    models = {
        "ours": compiled(our_model(config), jit_compile),
        "peer": compiled(peer_model(config), jit_compile),
    }
    data = batches(steps)
    for model in models.values():  # trace and compile outside the timing
        time_steps(model, data[:2])
    counts = {name: m.count_params() for name, m in models.items()}
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(time_steps(model, data))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return medians, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--jit-compile", choices=["off", "on", "both"], default="both")
    parser.add_argument(
        "--dropout", type=float, default=CONFIG["dropout"], help="both models' rate"
    )
    args = parser.parse_args()
    config = {**CONFIG, "dropout": args.dropout}
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.jit_compile]
    print(
        f"{machine.header()}, devices: "
        f"{[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"keras-hub {keras_hub.__version__}"
    )
    print(
        f"config: {config}, vocab {VOCAB}, batch {BATCH}, "
        f"source/target length {SOURCE_LEN}/{TARGET_LEN}"
    )
    print("| jit_compile | ours (ms/step) | KerasNLP (ms/step) | ratio ours/peer |")
    print("|---|---|---|---|")
    for jit in modes:
        medians, counts = measure(config, jit, args.rounds, args.steps)
        print(
            f"| {jit} | {medians['ours'] * 1e3:.1f} | {medians['peer'] * 1e3:.1f} | "
            f"{medians['ours'] / medians['peer']:.2f} |",
            flush=True,
        )
    print(
        f"parameters: ours {counts['ours']:,}, peer {counts['peer']:,} "
        "(they differ only in the position tables' lengths)"
    )


if __name__ == "__main__":
    main()
