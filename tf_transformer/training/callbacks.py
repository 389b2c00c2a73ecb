"""The callbacks of a training run: exact match, checkpoint, averaging, time.

`train` runs them in this order: the backup (Keras's `BackupAndRestore`),
`AveragedWeights`, `ExactMatchCallback`, `best_checkpoint`, TensorBoard, the
optional `TimeBudgetCallback`, the caller's callbacks, and last the callback
that keeps the averaged weights when training stops early.
"""

from __future__ import annotations

import time

import keras

from tf_transformer.training.evaluation import exact_match, translate_all


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
