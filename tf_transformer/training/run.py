"""A training run in memory: its directory, configuration, model and tokenizers.

`train` returns a `Run` holding the model it kept (loaded once, from the best
checkpoint); `load_run` makes the same object from a run directory. The steps
after training (evaluation, export, sample translations) take the `Run`, so
nothing is read from disk twice.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import keras

from tf_transformer.data import load_tokenizer
from tf_transformer.inference.translator import Translator
from tf_transformer.training.run_config import TrainConfig


@dataclasses.dataclass
class Run:
    """A trained translator and what it was trained with.

    Attributes:
        out: the run directory.
        config: the run's `TrainConfig`.
        model: the trained `Transformer` (model.keras: the weights with the
            best validation exact match).
        source_tokenizer, target_tokenizer: the run's tokenizers.
        history: per-epoch metrics (history.json; {} when there is none).
        train_seconds: seconds `fit` took; None for a run read from disk.
        steps_per_epoch: training steps per epoch; None for a run read from
            disk.
    """

    out: Path
    config: TrainConfig
    model: keras.Model
    source_tokenizer: object
    target_tokenizer: object
    history: dict = dataclasses.field(default_factory=dict)
    train_seconds: float | None = None
    steps_per_epoch: int | None = None

    @property
    def epochs_run(self) -> int:
        """Epochs trained (by the last invocation, when it was resumed)."""
        return len(self.history.get("loss", []))

    def translator(self, beam_width=1):
        """A `Translator` of the run's model and tokenizers."""
        return Translator(
            self.model,
            self.source_tokenizer,
            self.target_tokenizer,
            beam_width=beam_width,
        )

    def metrics(self, evaluation: dict) -> dict:
        """What metrics.json holds: `evaluation` (what `evaluate` returns)
        with the run's `train_seconds`, `epochs_run`, `config` (the model
        size), `corpus` and the `date`."""
        seconds = self.train_seconds
        return {
            **evaluation,
            "train_seconds": None if seconds is None else round(seconds, 2),
            "epochs_run": self.epochs_run,
            "config": self.config.config,
            "corpus": self.config.corpus,
            "date": datetime.date.today().isoformat(),
        }


def load_tokenizers(directory):
    """The (source, target) tokenizers saved in a run directory."""
    directory = Path(directory) / "tokenizers"
    return load_tokenizer(directory / "source"), load_tokenizer(directory / "target")


def load_run(directory, **trained) -> Run:
    """The `Run` saved in a run directory (what `train` wrote).

    `trained` sets the fields only the training process knows
    (`train_seconds`, `steps_per_epoch`).
    """
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
    history_path = directory / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else {}
    return Run(
        directory,
        TrainConfig.load(directory / "config.json"),
        model,
        *load_tokenizers(directory),
        history=history,
        **trained,
    )
