"""Variants of the default training run, each under the same time budget.

Runs `tf_transformer.training.train.train` once per variant (a JSON object of
`TrainConfig` fields, plus an optional "model" object that changes the
`tiny` model's sizes) and prints, for every epoch, the seconds since training
began and the validation exact match. This is how the default run's
settings were chosen (docs/benchmarks.md, "The main job").

    python bench/default_run_variants.py --time-budget 75 \\
        '{}' '{"dropout": 0.0}' '{"model": {"num_heads": 8}}'
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402

from tf_transformer.training import train as training  # noqa: E402


class EpochClock(keras.callbacks.Callback):
    """Records each epoch's seconds since training began and its score.

    The score is the validation exact match, or, in an epoch where training
    did not decode (see `ExactMatchCallback`), "<= " and the teacher-forced
    sentence accuracy that bounds it.
    """

    def on_train_begin(self, logs=None):
        self.start, self.epochs = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        logs = logs or {}
        score = logs.get("val_exact_match", float("nan"))
        if math.isnan(score):
            bound = logs.get(training.ExactMatchCallback.BOUND, float("nan"))
            shown = f"<= {bound:.4f}"
        else:
            shown = f"{score:.4f}"
        self.epochs.append((seconds, shown))


def run_variant(variant, time_budget, out):
    fields = dict(variant)
    model = fields.pop("model", None)
    if model:  # a model size of its own, scheduled like `tiny`
        training.MODEL_CONFIGS["variant"] = {**training.MODEL_CONFIGS["tiny"], **model}
        training.SCHEDULES["variant"] = training.SCHEDULES["tiny"]
        fields["config"] = "variant"
    fields.setdefault("time_budget", time_budget)
    clock = EpochClock()
    run = training.train(training.TrainConfig(out=out, **fields), [clock])
    return run.train_seconds, clock.epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="JSON objects of TrainConfig")
    parser.add_argument("--time-budget", type=float, default=75.0)
    args = parser.parse_args()
    variants = [json.loads(text) for text in args.variants]
    print(machine.header())
    rows = []
    for variant in variants:
        with tempfile.TemporaryDirectory() as out:
            seconds, epochs = run_variant(variant, args.time_budget, out)
        shown = " / ".join(f"{score} @ {s:.0f} s" for s, score in epochs)
        rows.append(f"| `{json.dumps(variant)}` | {seconds:.1f} | {shown} |")
    print("| variant | train seconds | validation exact match after each epoch |")
    print("|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
