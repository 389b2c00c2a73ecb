"""Where a training step's time goes: TensorFlow op types, ours vs KerasNLP.

Builds the two models of `bench/train_step.py` (same configuration, same
batches), runs a few steps of each outside the measurement, then records
`--steps` training steps of each with the TensorFlow profiler and sums the
time of every executed op by op type. Times are summed over the threads
that ran the ops (2 cores run two ops at once), per step; the total is
therefore larger than the step's wall-clock time.

    python bench/train_step_ops.py [--rounds 3] [--steps 10] [--top 20]
                                   [--dropout 0.1]
"""

import argparse
import collections
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import machine  # noqa: E402
import tensorflow as tf  # noqa: E402
from train_step import (  # noqa: E402
    CONFIG,
    batches,
    compiled,
    our_model,
    peer_model,
    time_steps,
)


def _xspace_class():
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as error:  # a private module: say so instead of a traceback
        raise SystemExit(
            "bench/train_step_ops.py reads TensorFlow's profiler output with "
            f"tensorflow.tsl.profiler.protobuf.xplane_pb2, which this TensorFlow "
            f"({tf.__version__}) does not have: {error}"
        ) from None
    return xplane_pb2.XSpace


def op_times(model, data, steps):
    """Milliseconds per step by op type, summed over threads. (The wall
    clock of profiled steps is not reported: the profiler slows some
    recordings by seconds outside any op; `bench/train_step.py` times
    steps.)"""
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        time_steps(model, data[:steps])
        tf.profiler.experimental.stop()
        (path,) = Path(logdir).rglob("*.xplane.pb")
        space = _xspace_class()()
        space.ParseFromString(path.read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            for event in line.events:
                # Executed ops are named "op_name:OpType". Runtime events
                # ("ExecutorState::Process", "EagerLocalExecute: ...",
                # Eigen's "ParallelFor") contain ops and are left out.
                name = names[event.metadata_id].name
                if ":" in name and "::" not in name and ": " not in name:
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9 / steps
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--dropout", type=float, default=CONFIG["dropout"])
    args = parser.parse_args()
    config = {**CONFIG, "dropout": args.dropout}
    print(machine.header())
    print(
        f"config: {config}, graph mode, {args.rounds} alternating rounds of "
        f"{args.steps} recorded steps per model; op time summed over threads"
    )
    data = batches(args.steps)
    models = {}
    for name, make in (("ours", our_model), ("peer", peer_model)):
        keras.utils.set_random_seed(0)
        models[name] = compiled(make(config), False)
        time_steps(models[name], data[:3])  # trace and warm up outside the recording
    times = {name: collections.Counter() for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            for op, value in op_times(model, data, args.steps).items():
                times[name][op] += value / args.rounds
    ours, peer = times["ours"], times["peer"]
    print("| op type | ours (ms/step) | KerasNLP (ms/step) |")
    print("|---|---|---|")
    for op, _ in (ours + peer).most_common(args.top):
        print(f"| {op} | {ours[op]:.1f} | {peer[op]:.1f} |")
    matmuls = [op for op in ours.keys() | peer.keys() if "MatMul" in op]
    print(
        f"| all matmuls | {sum(ours[op] for op in matmuls):.1f} | "
        f"{sum(peer[op] for op in matmuls):.1f} |"
    )
    print(f"| all ops | {sum(ours.values()):.1f} | {sum(peer.values()):.1f} |")


if __name__ == "__main__":
    main()
