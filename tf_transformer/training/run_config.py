"""The configuration of a training run: model sizes, schedules, strategy.

`TrainConfig` holds everything a run depends on and is saved beside the
model as config.json; `MODEL_CONFIGS` and `SCHEDULES` are the model sizes it
names; `make_strategy` turns its `strategy` into a `tf.distribute` strategy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tensorflow as tf

from tf_transformer import validation

# Model sizes. `tiny` is sized for 2 CPU cores; `base` is the paper's base
# model and `big` its big variant (section 6.1, Table 3). `tiny` is pre-LN
# (norm_first): on the default corpus it passed 99.5 % validation exact
# match after 80,000 training sentences, where post-LN needed 176,000
# (docs/benchmarks.md, "The main job"). Its dff is 2 * d_model, not the
# paper's 4 *: the feed-forward layers are most of a step's arithmetic, and
# with dff 128 the run passed 99.5 % after as many steps as with 256.
MODEL_CONFIGS = {
    "tiny": dict(
        num_layers=2, d_model=64, num_heads=4, dff=128, dropout=0.1, norm_first=True
    ),
    "small": dict(num_layers=3, d_model=128, num_heads=4, dff=512, dropout=0.1),
    "base": dict(num_layers=6, d_model=512, num_heads=8, dff=2048, dropout=0.1),
    "big": dict(num_layers=6, d_model=1024, num_heads=16, dff=4096, dropout=0.3),
}
MODEL_CONFIGS["paper"] = MODEL_CONFIGS["base"]
# Learning-rate schedule of each size, (warmup_steps, scale) of
# TransformerSchedule: pre-LN `tiny` needs only a short warm-up; the post-LN
# `base` and `big` keep the paper's 4000 steps.
SCHEDULES = {
    "tiny": (100, 1.0),
    "small": (400, 2.0),
    "base": (4000, 1.0),
    "big": (4000, 1.0),
    "paper": (4000, 1.0),
}
STRATEGIES = ("default", "mirrored", "tpu")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (saved as config.json).

    Attributes:
        config: model size, one of `MODEL_CONFIGS`. Defaults to "tiny".
        corpus: corpus name for `tf_transformer.data.load_translation`.
        source_lang, target_lang: the language pair. Default en -> fr.
        epochs: most epochs. `steps`: steps per epoch (None = the whole
            corpus); short epochs check validation exact match often, so the
            run stops soon after reaching the target.
        batch_size: sentences per batch (global, across replicas).
        bucket_by_length: batch sentences of similar length together (less
            padding; ignored with `jit_compile`, which pads to `max_length`).
        max_length: longest sequence in tokens; longer ones are truncated.
        vocabulary_size: WordPiece vocabulary size per side (upper bound).
        warmup_steps: schedule warm-up; `learning_rate_scale`: its factor.
            None (the default) takes the model size's values from
            `SCHEDULES`.
        label_smoothing: epsilon of the loss (0.1 in the paper).
        ema_momentum: keep an exponential moving average of the weights
            with this momentum and validate, checkpoint and export the
            averaged weights (the paper averages its last checkpoints
            instead). Defaults to 0.98, about the last 50 steps. None: no
            averaging.
        out: run directory.
        strategy: "default", "mirrored" (all local GPUs, or CPUs set up as
            logical devices) or "tpu".
        mixed_precision: use the mixed_float16 (GPU) or mixed_bfloat16
            (CPU/TPU) dtype policy.
        jit_compile: compile the train step with XLA (needs static shapes:
            batches are padded to `max_length`). Off by default: on 2 CPU
            cores the tiny model's XLA step measured slower than the graph
            step (bench/train_step.py compares both).
        resume: continue an interrupted run from `out/backup`.
        target_exact_match: stop once validation exact match reaches it.
        validation_size: validation pairs decoded for exact match each epoch.
        time_budget: stop training after this many seconds (None: no limit).
        train_size: use only the first N training pairs (None: all).
        seed: seed of weights, shuffling and dropout.
        data_dir: TFDS data directory of the corpora.
        dropout: override the model size's dropout rate (None: keep it).
    """

    config: str = "tiny"
    corpus: str = "mixed"
    source_lang: str = "en"
    target_lang: str = "fr"
    epochs: int = 40
    steps: int | None = 125
    batch_size: int = 128
    bucket_by_length: bool = True
    max_length: int = 32
    vocabulary_size: int = 1000
    warmup_steps: int | None = None
    learning_rate_scale: float | None = None
    label_smoothing: float = 0.1
    ema_momentum: float | None = 0.98
    out: str = "runs/latest"
    strategy: str = "default"
    mixed_precision: bool = False
    jit_compile: bool = False
    resume: bool = False
    target_exact_match: float = 0.995
    validation_size: int = 2000
    time_budget: float | None = None
    train_size: int | None = None
    seed: int = 0
    data_dir: str | None = None
    dropout: float | None = None

    def __post_init__(self):
        validation.check_choice("config", self.config, MODEL_CONFIGS)
        validation.check_choice("strategy", self.strategy, STRATEGIES)
        validation.check_bool("bucket_by_length", self.bucket_by_length)
        warmup_steps, scale = SCHEDULES[self.config]
        if self.warmup_steps is None:
            self.warmup_steps = warmup_steps
        if self.learning_rate_scale is None:
            self.learning_rate_scale = scale
        for name in ("epochs", "batch_size", "vocabulary_size", "warmup_steps"):
            validation.check_int(name, getattr(self, name))
        validation.check_int("max_length", self.max_length, minimum=4)
        validation.check_int("validation_size", self.validation_size)
        for name in ("steps", "train_size"):
            validation.check_optional_int(name, getattr(self, name))
        validation.check_int("seed", self.seed, minimum=0)
        validation.check_rate("label_smoothing", self.label_smoothing)
        if self.ema_momentum is not None:
            validation.check_rate("ema_momentum", self.ema_momentum)
        validation.check_positive_float("learning_rate_scale", self.learning_rate_scale)
        if self.dropout is not None:
            validation.check_rate("dropout", self.dropout)
        if self.time_budget is not None:
            validation.check_positive_float("time_budget", self.time_budget)
        if not 0 < self.target_exact_match <= 1:
            raise ValueError(
                "`target_exact_match` must be in (0, 1]. "
                f"Received: target_exact_match={self.target_exact_match!r}"
            )

    @property
    def model_kwargs(self):
        kwargs = dict(MODEL_CONFIGS[self.config])
        if self.dropout is not None:
            kwargs["dropout"] = self.dropout
        return kwargs

    def save(self, path):
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path):
        return cls(**json.loads(Path(path).read_text()))


def make_strategy(name):
    """The `tf.distribute` strategy for `--strategy`."""
    validation.check_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    try:  # TPU: Colab and Cloud TPU VMs find theirs without arguments.
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as error:
        raise RuntimeError(
            "--strategy tpu needs a TPU (for example a Colab TPU runtime); none was "
            f"found: {error}"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def set_logical_cpus(count):
    """Split the CPU into `count` logical devices (call before TF runs ops).

    Lets `--strategy mirrored` run data-parallel training on one CPU, as the
    tests do.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * count
    )
