"""Train a Transformer translator end to end: data, tokenizers, fit, artefacts.

`train(TrainConfig(...))` is what `tf-transformer train` runs. It loads an
offline corpus, trains (or, on `--resume`, reloads) the two WordPiece
tokenizers, builds a `Transformer` inside a `tf.distribute` strategy, and
trains it with Keras `fit`: the paper's Adam + warm-up schedule, masked loss
with label smoothing, masked accuracy, validation every epoch, TensorBoard
logs, the best model kept by validation exact match, a backup that an
interrupted run resumes from, and an early stop once the validation exact
match reaches the target. It returns a `Run` holding the kept model.

A run directory holds:

    config.json        the TrainConfig
    tokenizers/        source/ and target/ vocabularies
    model.keras        the trained model (best validation exact match)
    history.json       per-epoch metrics
    logs/              TensorBoard
    backup/            state for --resume (removed when a run completes)

The pieces live by role — `run_config` (TrainConfig, model sizes,
strategies), `callbacks`, `evaluation` and `run` (the `Run`, `load_run`) —
and this module's `__all__` names them all, so that
`tf_transformer.training.train.<name>` reaches each.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_transformer.data import load_translation, make_batches, train_tokenizers
from tf_transformer.inference.translator import Translator
from tf_transformer.models.transformer import Transformer
from tf_transformer.progress import step
from tf_transformer.training.callbacks import (
    AveragedWeights,
    ExactMatchCallback,
    TimeBudgetCallback,
    best_checkpoint,
)
from tf_transformer.training.evaluation import (
    evaluate,
    exact_match,
    read_pairs,
    translate_all,
)
from tf_transformer.training.losses import (
    MaskedLoss,
    masked_accuracy,
    masked_sentence_accuracy,
)
from tf_transformer.training.run import Run, load_run, load_tokenizers
from tf_transformer.training.run_config import (
    MODEL_CONFIGS,
    SCHEDULES,
    STRATEGIES,
    TrainConfig,
    make_strategy,
    set_logical_cpus,
)
from tf_transformer.training.schedule import TransformerSchedule

# Public names: what a user of `tf-transformer train`'s machinery imports.
__all__ = [
    # the run's configuration
    "MODEL_CONFIGS",
    "SCHEDULES",
    "STRATEGIES",
    "TrainConfig",
    "make_strategy",
    "set_logical_cpus",
    # training
    "build_model",
    "dtype_policy",
    "train",
    # callbacks
    "AveragedWeights",
    "ExactMatchCallback",
    "TimeBudgetCallback",
    "best_checkpoint",
    # the result, and scoring it
    "Run",
    "evaluate",
    "exact_match",
    "load_run",
    "load_tokenizers",
    "translate_all",
]


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


@contextlib.contextmanager
def dtype_policy(name):
    """The global Keras dtype policy `name` inside the block (None: unchanged).

    The policy in force before the block comes back when it ends, also when
    it raises.
    """
    previous = keras.config.dtype_policy()
    try:
        if name is not None:
            keras.config.set_dtype_policy(name)
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _mixed_policy_name():
    """mixed_float16 where a GPU is visible, mixed_bfloat16 (CPU, TPU) elsewhere."""
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


def train(config: TrainConfig, callbacks=()) -> Run:
    """Run a training job; returns its `Run` (the kept model and tokenizers,
    the history, the seconds `fit` took).

    With `config.mixed_precision` the global dtype policy is mixed while the
    model is built and trained; the policy in force before comes back when
    `train` returns or raises.

    Args:
        config: the `TrainConfig`.
        callbacks: extra Keras callbacks, run after the built-in ones.
    """
    out = _prepare_directory(config)
    keras.utils.set_random_seed(config.seed)
    with dtype_policy(_mixed_policy_name() if config.mixed_precision else None):
        history, train_seconds, steps = _fit(config, out, callbacks)
    # NaN (an exact match not measured) is written as JSON null.
    history = {
        k: [None if np.isnan(v) else float(v) for v in values]
        for k, values in history.items()
    }
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    # The model kept is the best checkpoint, not the last epoch's weights.
    return load_run(out, train_seconds=train_seconds, steps_per_epoch=steps)


def _prepare_directory(config):
    """The run directory, made; a stale backup removed unless resuming."""
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
    return out


def _fit(config, out, callbacks):
    """Tokenizers, batches, model and `fit`: (history, seconds, steps)."""
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

    def make_translator(m):
        return Translator(m, source_tokenizer, target_tokenizer)

    sources, references = read_pairs(validation_pairs, config.validation_size)
    validation = ExactMatchCallback(
        make_translator, sources, references, config.target_exact_match
    )
    start = time.perf_counter()
    history = model.fit(
        train_batches,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=validation_batches,
        validation_steps=validation_steps,
        callbacks=_callbacks(config, out, validation, callbacks),
        shuffle=False,  # make_batches already shuffles
        verbose=2,
    )
    train_seconds = time.perf_counter() - start
    if (out / "backup").exists():  # a finished run leaves nothing to resume
        shutil.rmtree(out / "backup")
    return history.history, train_seconds, steps


def _callbacks(config, out, validation, extra):
    """The run's callbacks in the order they must run (see `callbacks`)."""
    # The backup comes first: it saves the trained weights, not the averaged.
    callbacks = [keras.callbacks.BackupAndRestore(str(out / "backup"))]
    if config.ema_momentum is not None:
        averaged = AveragedWeights()
        callbacks.append(averaged)
    callbacks += [
        validation,
        best_checkpoint(out / "model.keras"),
        # No graph: writing it traces the train step once more (seconds of
        # a one-minute run).
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
    ]
    if config.time_budget is not None:
        callbacks.append(TimeBudgetCallback(config.time_budget))
    callbacks.extend(extra)
    if config.ema_momentum is not None:
        callbacks.append(averaged.keep_on_early_stop())
    return callbacks


def _count(dataset):
    return int(dataset.reduce(0, lambda count, _: count + 1))


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
