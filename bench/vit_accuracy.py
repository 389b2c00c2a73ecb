"""Test accuracy of lesson 12's Vision Transformer on the handwritten digits,
and the seconds of training it took.

Trains `tt.VisionTransformer` with the lesson's configuration (LESSON below)
on `load_digits("train")` with the lesson's augmentation (random shifts of
one pixel), stops after `--epochs` epochs or `--max-seconds` of training,
whichever comes first, and reports the test accuracy and the training
seconds (the first epoch's tracing included).

2026-12-05, Intel Xeon (AVX512F), 2 CPU cores shared with other jobs (load
average 4-5), oneDNN on: test accuracy 0.9740 after 60 epochs, 46.3 s of
training.

    python bench/vit_accuracy.py [--epochs N] [--max-seconds S] [--seed K]
                                 [--patch-size P] [--d-model D] [--layers L]
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

import tf_transformer as tt  # noqa: E402
from tf_transformer.data import load_digits  # noqa: E402

# The configuration of solutions/12_vision_transformer.ipynb.
LESSON = dict(
    patch_size=4,
    num_layers=2,
    d_model=64,
    num_heads=4,
    dff=128,
    epochs=60,
    batch_size=64,
    learning_rate=2e-3,
)


def shift_by_one_pixel(images, seed):
    """Random shifts of at most one pixel each way (zero border), per image."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    batch = tf.shape(images)[0]
    offsets = tf.random.stateless_uniform((batch, 2), seed, 0, 3, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(8)[tf.newaxis]  # (batch, 8)
    columns = offsets[:, 1:] + tf.range(8)[tf.newaxis]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, columns, axis=2, batch_dims=1)


class StopAfterSeconds(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed = time.perf_counter() - self.start
        self.epochs = epoch + 1
        if self.elapsed > self.seconds:
            self.model.stop_training = True


def train(config, max_seconds, seed):
    keras.utils.set_random_seed(seed)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    model = tt.VisionTransformer(
        (8, 8, 1),
        config["patch_size"],
        config["num_layers"],
        config["d_model"],
        config["num_heads"],
        config["dff"],
        num_classes=10,
    )
    steps = config["epochs"] * int(np.ceil(len(x_train) / config["batch_size"]))
    model.compile(
        optimizer=keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(
                0.0,
                steps,
                warmup_target=config["learning_rate"],
                warmup_steps=steps // 10,
            ),
            weight_decay=0.05,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        # XLA compiles this small model for longer than it trains (measured:
        # 30-100 s to compile, against 1-3 s per epoch in graph mode).
        jit_compile=False,
    )
    data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed)
        .batch(config["batch_size"])
        .enumerate()
        .map(lambda i, b: (shift_by_one_pixel(b[0], (seed, i)), b[1]))
        .prefetch(2)
    )
    clock = StopAfterSeconds(max_seconds)
    model.fit(
        data, epochs=config["epochs"], callbacks=[clock], shuffle=False, verbose=0
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return accuracy, clock.elapsed, clock.epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=LESSON["epochs"])
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch-size", type=int, default=LESSON["patch_size"])
    parser.add_argument("--d-model", type=int, default=LESSON["d_model"])
    parser.add_argument("--layers", type=int, default=LESSON["num_layers"])
    parser.add_argument("--batch-size", type=int, default=LESSON["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=LESSON["learning_rate"])
    args = parser.parse_args(argv)
    config = dict(
        LESSON,
        epochs=args.epochs,
        patch_size=args.patch_size,
        d_model=args.d_model,
        num_layers=args.layers,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dff=2 * args.d_model,
    )
    print(machine.header())
    print("config:", config)
    accuracy, seconds, epochs = train(config, args.max_seconds, args.seed)
    print(
        f"test accuracy {accuracy:.4f} after {epochs} epochs, "
        f"{seconds:.1f} s of training"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
