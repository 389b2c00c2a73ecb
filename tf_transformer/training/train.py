"""Train a Transformer translator end to end: data, tokenizers, fit, artefacts.

`train(TrainConfig(...))` is what `tf-transformer train` runs. It loads an
offline corpus, trains (or, on `--resume`, reloads) the two WordPiece
tokenizers, builds a `Transformer` inside a `tf.distribute` strategy, and
trains it with Keras `fit`: the paper's Adam + warm-up schedule, masked loss
with label smoothing, masked accuracy, validation every epoch, TensorBoard
logs, the best model kept by validation exact match, a backup that an
interrupted run resumes from, and an early stop once the validation exact
match reaches the target.

A run directory holds:

    config.json        the TrainConfig
    tokenizers/        source/ and target/ vocabularies
    model.keras        the trained model (best validation exact match)
    history.json       per-epoch metrics
    logs/              TensorBoard
    backup/            state for --resume (removed when a run completes)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.models.transformer import Transformer
from tf_transformer.training.losses import (
    MaskedLoss,
    masked_accuracy,
    masked_sentence_accuracy,
)
from tf_transformer.training.schedule import TransformerSchedule

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


def build_model(config, source_vocabulary_size, target_vocabulary_size):
    """A compiled Transformer for `config` (call inside the strategy scope)."""
    kwargs = config.model_kwargs
    model = Transformer(
        **kwargs,
        input_vocab_size=source_vocabulary_size,
        target_vocab_size=target_vocabulary_size,
        max_length=config.max_length + 16,  # room for decoding past the source
    )
    schedule = TransformerSchedule(
        kwargs["d_model"], config.warmup_steps, scale=config.learning_rate_scale
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule,
            beta_1=0.9,
            beta_2=0.98,
            epsilon=1e-9,
            use_ema=config.ema_momentum is not None,
            ema_momentum=0.99 if config.ema_momentum is None else config.ema_momentum,
        ),
        loss=MaskedLoss(label_smoothing=config.label_smoothing),
        metrics=[masked_accuracy, masked_sentence_accuracy],
        jit_compile=config.jit_compile,
    )
    # Built now, so that checkpoints and --resume find every variable. (The
    # compiled metrics build before the first traced step: see
    # Transformer._build_training_state.)
    model.build(((None, None), (None, None)))
    model.optimizer.build(model.trainable_variables)
    if tf.distribute.has_strategy():
        # Under a distribution strategy Keras builds the loss and metrics on
        # the cross-replica *mean* of the first batch, which turns token ids
        # into floats. Building them on a real int batch first avoids that.
        ids = np.ones((tf.distribute.get_strategy().num_replicas_in_sync, 2), "int32")
        model.test_on_batch((ids, ids), ids)
    return model


def exact_match(translations, references):
    """Fraction of translations equal to their reference (after normalize)."""
    from tf_transformer.data import normalize

    if len(translations) != len(references):
        raise ValueError(
            "`translations` and `references` must have the same length. "
            f"Received: {len(translations)} and {len(references)}"
        )
    if not references:
        return 0.0
    expected = normalize(list(references))
    return sum(t == e for t, e in zip(translations, expected, strict=True)) / len(
        references
    )


def translate_all(translator, sentences, batch_size=256):
    """Translate a list of str in batches; returns a list of str."""
    out = []
    for start in range(0, len(sentences), batch_size):
        batch = tf.constant(sentences[start : start + batch_size])
        out.extend(s.decode() for s in translator.translate(batch).numpy())
    return out


class ExactMatchCallback(keras.callbacks.Callback):
    """Adds `val_exact_match` to the logs each epoch; stops at the target.

    Decodes `sources` greedily with the model being trained and compares
    with `references`. Decoding is skipped (NaN is logged: not measured)
    while the validation `masked_sentence_accuracy`, an upper bound of
    exact match, is below the target, except in the last epoch or when
    training is stopping, so that the run always ends with a measured
    exact match. The bound is exact when Keras validates the sentences
    that are decoded (the default); with a smaller `validation_size`, or
    with XLA dropping the last partial batch, it is an estimate, and a
    wrong skip only delays the stop by an epoch.
    """

    BOUND = "val_masked_sentence_accuracy"

    def __init__(self, make_translator, sources, references, target):
        super().__init__()
        self.make_translator = make_translator
        self.sources, self.references, self.target = sources, references, target
        self._translator = None

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        bound = logs.get(self.BOUND)
        ending = self.model.stop_training or epoch == self.params["epochs"] - 1
        if bound is not None and bound < self.target and not ending:
            logs["val_exact_match"] = float("nan")
            print(
                f"epoch {epoch + 1}: val_exact_match not measured "
                f"({self.BOUND} {bound:.4f} < {self.target})",
                flush=True,
            )
            return
        if self._translator is None:
            self._translator = self.make_translator(self.model)
        # Large batches: fewer decoding loops (the sentences are short).
        translations = translate_all(self._translator, self.sources, batch_size=1000)
        score = exact_match(translations, self.references)
        logs["val_exact_match"] = score
        print(f"epoch {epoch + 1}: val_exact_match {score:.4f}", flush=True)
        if score >= self.target:
            self.model.stop_training = True


def best_checkpoint(path):
    """Saves the model whenever validation exact match is the best so far.

    An epoch whose exact match was not measured (NaN) saves nothing: the
    initial threshold keeps Keras from taking NaN as the first "best".
    """
    return keras.callbacks.ModelCheckpoint(
        str(path),
        monitor="val_exact_match",
        mode="max",
        save_best_only=True,
        initial_value_threshold=-1.0,
    )


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """Puts the optimizer's averaged weights in the model after each epoch.

    Validation and the callbacks after this one (exact match, checkpoint)
    see the averaged weights; training goes on from the trained ones, and
    the finished model keeps the averaged ones. Keras's
    `SwapEMAWeights(swap_on_epoch=True)` keeps them only when training runs
    to its last epoch: place `keep_on_early_stop()` after every callback
    that may stop training earlier.
    """

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    def keep_on_early_stop(self):
        return _KeepAveragedWeights(self)


class _KeepAveragedWeights(keras.callbacks.Callback):
    def __init__(self, swap):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        # `fit` ends by copying the optimizer's average slots into the model;
        # after a swap those slots hold the trained weights, so refill them
        # with the averaged weights the model holds now.
        last = epoch == self.params["epochs"] - 1
        if self.model.stop_training and not last and self.swap._ema_weights_in_model:
            self.swap._finalize_ema_values()


class TimeBudgetCallback(keras.callbacks.Callback):
    """Stops training once `seconds` have passed since training began."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def _count(dataset):
    return int(dataset.reduce(0, lambda count, _: count + 1))


def _read_pairs(dataset, limit=None):
    if limit is not None:
        dataset = dataset.take(limit)
    sources, references = [], []
    for source, target in dataset.as_numpy_iterator():
        sources.append(source.decode())
        references.append(target.decode())
    return sources, references


def load_tokenizers(directory):
    from tf_transformer.data import load_tokenizer

    directory = Path(directory) / "tokenizers"
    return load_tokenizer(directory / "source"), load_tokenizer(directory / "target")


def train(config: TrainConfig, callbacks=()) -> dict:
    """Run a training job; returns a summary dict (paths, seconds, history).

    Args:
        config: the `TrainConfig`.
        callbacks: extra Keras callbacks, run after the built-in ones.
    """
    from tf_transformer.data import load_translation, make_batches, train_tokenizers
    from tf_transformer.inference.translator import Translator
    from tf_transformer.progress import step

    out = Path(config.out)
    backup = out / "backup"
    if config.resume and not backup.exists():
        raise FileNotFoundError(
            f"--resume: no interrupted run to resume in {str(out)!r} (no backup/ "
            "folder). Start a new run without --resume."
        )
    if not config.resume and backup.exists():
        shutil.rmtree(backup)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        on_gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.config.set_dtype_policy("mixed_float16" if on_gpu else "mixed_bfloat16")

    langs = dict(source_lang=config.source_lang, target_lang=config.target_lang)
    train_pairs = load_translation(
        config.corpus, "train", data_dir=config.data_dir, **langs
    )
    if config.train_size is not None:
        train_pairs = train_pairs.take(config.train_size)
    validation_pairs = load_translation(
        config.corpus, "validation", data_dir=config.data_dir, **langs
    )

    if config.resume:
        source_tokenizer, target_tokenizer = load_tokenizers(out)
    else:
        with step("training the WordPiece tokenizers"):
            source_tokenizer, target_tokenizer = train_tokenizers(
                train_pairs, config.vocabulary_size, config.vocabulary_size
            )
        source_tokenizer.save(out / "tokenizers" / "source")
        target_tokenizer.save(out / "tokenizers" / "target")
    config.save(out / "config.json")

    batch_kwargs = dict(
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        pad_to_max_length=config.jit_compile,
        drop_remainder=config.jit_compile,
    )
    train_batches = make_batches(
        train_pairs,
        source_tokenizer,
        target_tokenizer,
        bucket_by_length=config.bucket_by_length and not config.jit_compile,
        **batch_kwargs,
    ).repeat()
    # Not bucketed: the validation set is read once per epoch in exactly
    # `validation_steps` batches, which buckets would not fill.
    validation_batches = make_batches(
        validation_pairs,
        source_tokenizer,
        target_tokenizer,
        shuffle=False,
        **batch_kwargs,
    )
    steps = config.steps
    if steps is None:
        steps = max(1, _count(train_pairs) // config.batch_size)
    validation_count = _count(validation_pairs)
    if config.jit_compile:  # static shapes: the last partial batch is dropped
        validation_steps = max(1, validation_count // config.batch_size)
    else:
        validation_steps = -(-validation_count // config.batch_size)

    strategy = make_strategy(config.strategy)
    with strategy.scope():
        model = build_model(
            config, source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size
        )

    sources, references = _read_pairs(validation_pairs, config.validation_size)

    def make_translator(m):
        return Translator(m, source_tokenizer, target_tokenizer)

    # The backup comes first: it saves the trained weights, not the averaged.
    all_callbacks = [keras.callbacks.BackupAndRestore(str(backup))]
    if config.ema_momentum is not None:
        averaged = AveragedWeights()
        all_callbacks.append(averaged)
    all_callbacks += [
        ExactMatchCallback(
            make_translator, sources, references, config.target_exact_match
        ),
        best_checkpoint(out / "model.keras"),
        # No graph: writing it traces the train step once more (seconds of
        # a one-minute run).
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
    ]
    if config.time_budget is not None:
        all_callbacks.append(TimeBudgetCallback(config.time_budget))
    all_callbacks.extend(callbacks)
    if config.ema_momentum is not None:
        all_callbacks.append(averaged.keep_on_early_stop())

    start = time.perf_counter()
    history = model.fit(
        train_batches,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=validation_batches,
        validation_steps=validation_steps,
        callbacks=all_callbacks,
        shuffle=False,  # make_batches already shuffles
        verbose=2,
    )
    train_seconds = time.perf_counter() - start
    if backup.exists():  # a finished run leaves nothing to resume
        shutil.rmtree(backup)
    # NaN (an exact match not measured) is written as JSON null.
    history = {
        k: [None if np.isnan(v) else float(v) for v in values]
        for k, values in history.history.items()
    }
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    if config.mixed_precision:
        keras.config.set_dtype_policy("float32")
    return {
        "out": str(out),
        "train_seconds": train_seconds,
        "epochs_run": len(history.get("loss", [])),
        "steps_per_epoch": steps,
        "history": history,
    }


def load_run(directory):
    """Model and tokenizers of a run directory (what `train` wrote)."""
    directory = Path(directory)
    model_path = directory / "model.keras"
    if not directory.is_dir():
        raise FileNotFoundError(f"No run directory at {str(directory)!r}.")
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{str(directory)!r} has no model.keras: it is not a finished training "
            "run (run `tf-transformer train --out DIR` first)."
        )
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # Keras raises many types for a corrupt file
        raise ValueError(f"Cannot load {str(model_path)!r}: {error}") from None
    source_tokenizer, target_tokenizer = load_tokenizers(directory)
    return model, source_tokenizer, target_tokenizer


def evaluate(directory, split="test", examples=5, data_dir=None, run=None):
    """Exact match, token accuracy and BLEU of a trained run on a split.

    Token accuracy is the masked accuracy of next-token prediction with
    teacher forcing; exact match and BLEU (sacrebleu, corpus level, 0-100)
    score greedy translations against the references. `run` is what
    `load_run(directory)` returns, when the caller has it already.
    """
    import sacrebleu

    from tf_transformer.data import load_translation, make_batches, normalize
    from tf_transformer.inference.translator import Translator

    model, source_tokenizer, target_tokenizer = (
        load_run(directory) if run is None else run
    )
    config = TrainConfig.load(Path(directory) / "config.json")
    pairs = load_translation(
        config.corpus,
        split,
        source_lang=config.source_lang,
        target_lang=config.target_lang,
        data_dir=data_dir or config.data_dir,
    )
    sources, references = _read_pairs(pairs)
    translator = Translator(model, source_tokenizer, target_tokenizer)
    start = time.perf_counter()
    translations = translate_all(translator, sources)
    decode_seconds = time.perf_counter() - start
    normalized = normalize(references)
    batches = make_batches(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=256,
        max_length=config.max_length,
        shuffle=False,
    )
    correct = total = 0.0
    for (source_ids, target_in), target_out in batches:
        logits = model((source_ids, target_in), training=False)
        real = tf.cast(target_out != 0, tf.float32)
        total += float(tf.reduce_sum(real))
        correct += float(masked_accuracy(target_out, logits)) * float(
            tf.reduce_sum(real)
        )
    return {
        "split": split,
        "pairs": len(sources),
        "exact_match": exact_match(translations, references),
        "token_accuracy": correct / total if total else 0.0,
        "bleu": sacrebleu.corpus_bleu(translations, [normalized]).score,
        "decode_seconds": decode_seconds,
        "examples": [
            {"source": s, "reference": r, "translation": t}
            for s, r, t in list(zip(sources, normalized, translations, strict=True))[
                :examples
            ]
        ],
    }


def set_logical_cpus(count):
    """Split the CPU into `count` logical devices (call before TF runs ops).

    Lets `--strategy mirrored` run data-parallel training on one CPU, as the
    tests do.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * count
    )


__all__ = [
    "AveragedWeights",
    "MODEL_CONFIGS",
    "SCHEDULES",
    "TrainConfig",
    "best_checkpoint",
    "build_model",
    "evaluate",
    "exact_match",
    "load_run",
    "make_strategy",
    "set_logical_cpus",
    "train",
]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
