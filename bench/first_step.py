"""The first training step of a compiled Transformer: traces and seconds.

Keras (TensorFlow backend, no distribution strategy) creates a model's,
its optimizer's and its metrics' variables inside the first traced training
step, which makes TensorFlow trace that step twice. `Transformer` creates
them eagerly before the first trace (`Transformer._build_training_state`).
This script compiles the model of `bench/train_step.py` as lesson 08
compiles its model (Adam with the paper's schedule, `masked_loss`,
`masked_accuracy`) and times its first and second `train_on_batch`, with
the eager build ("eager") and with it turned off ("keras", Keras's own lazy
build), each in a fresh Python process, in alternating rounds. It also
counts how often the train step was traced.

    python bench/first_step.py [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LABELS = {"eager": "eagerly (ours)", "keras": "by Keras in the trace"}
VARIANTS = tuple(LABELS)


def one_run(variant):
    """Time the first two steps in this process; print them as JSON."""
    import keras
    from train_step import CONFIG, TARGET_LEN, VOCAB, batches, compiled

    import tf_transformer as tt

    class Measured(tt.Transformer):
        traces = 0

        def train_step(self, data):
            Measured.traces += 1  # runs once per trace, not per step
            return super().train_step(data)

        if variant == "keras":

            def _build_training_state(self):
                pass

    keras.utils.set_random_seed(0)
    model = Measured(
        **CONFIG, input_vocab_size=VOCAB, target_vocab_size=VOCAB, max_length=TARGET_LEN
    )
    compiled(model, jit_compile=False, metrics=[tt.masked_accuracy])
    times = []
    for x, y in batches(2):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    result = {"first": times[0], "second": times[1], "traces": Measured.traces}
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        one_run(args.variant)
        return
    import machine
    from train_step import CONFIG

    print(machine.header())
    print(
        f"config: {CONFIG}, compiled as in lesson 08, {args.rounds} alternating "
        "rounds, a fresh process per run"
    )
    results = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            done = subprocess.run(
                [sys.executable, __file__, "--variant", variant],
                capture_output=True,
                text=True,
                check=True,
            )
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("| variables built | traces | first step (s) | second step (s) |")
    print("|---|---|---|---|")
    for variant, label in LABELS.items():
        runs = results[variant]
        traces = sorted({run["traces"] for run in runs})
        first = statistics.median(run["first"] for run in runs)
        second = statistics.median(run["second"] for run in runs)
        print(f"| {label} | {traces} | {first:.1f} | {second:.2f} |")


if __name__ == "__main__":
    main()
