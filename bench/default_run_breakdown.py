"""Where the default training run's seconds go, epoch by epoch.

Runs `tf_transformer.training.train.train` with the default `TrainConfig`
(what `tf-transformer train` runs) and times, for every epoch, the first
training step (which includes tracing the train step), the remaining steps,
Keras's validation pass, and each built-in callback's end-of-epoch work
(exact match, checkpoint, backup, TensorBoard). The breakdown of
the main job in docs/benchmarks.md comes from this script.

    python bench/default_run_breakdown.py ['{"seed": 1}']
"""

import collections
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402

from tf_transformer.training import train as training  # noqa: E402

# Seconds spent in each callback method, summed over the run so far.
SPENT = collections.defaultdict(float)
TIMED = {
    "exact match": (training.ExactMatchCallback, "on_epoch_end"),
    "checkpoint": (keras.callbacks.ModelCheckpoint, "on_epoch_end"),
    "backup": (keras.callbacks.BackupAndRestore, "on_epoch_end"),
    "TensorBoard": (keras.callbacks.TensorBoard, "on_train_batch_end"),
}


def timed(label, method):
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - start

    return wrapper


class Phases(keras.callbacks.Callback):
    """Prints each epoch's phases (runs after the built-in callbacks)."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.spent_before = dict(SPENT)

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.first_step = time.perf_counter() - self.epoch_start

    def on_test_begin(self, logs=None):
        self.test_start = time.perf_counter()
        self.steps = self.test_start - self.epoch_start - self.first_step

    def on_test_end(self, logs=None):
        self.validation = time.perf_counter() - self.test_start

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        spent = {
            label: SPENT[label] - self.spent_before.get(label, 0.0) for label in TIMED
        }
        parts = ", ".join(f"{label} {seconds:.1f}" for label, seconds in spent.items())
        print(
            f"epoch {epoch + 1}: {now - self.epoch_start:.1f} s (ends at "
            f"{now - self.start:.1f} s): first step {self.first_step:.1f}, other "
            f"steps {self.steps:.1f}, validation {self.validation:.1f}, {parts}",
            flush=True,
        )


def main():
    fields = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    for label, (cls, name) in TIMED.items():
        setattr(cls, name, timed(label, getattr(cls, name)))
    print(machine.header())
    with tempfile.TemporaryDirectory() as out:
        run = training.train(training.TrainConfig(out=out, **fields), [Phases()])
    print(f"train_seconds {run.train_seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
