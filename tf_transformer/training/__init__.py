"""Training utilities: the paper's schedule, masked loss and accuracy.

The training run itself (`train`, `TrainConfig`, `Run`, `evaluate`) is
`tf_transformer.training.train`, imported on demand: it loads the data
pipeline and the translator.
"""

# Public: the schedule, losses and metrics any model's `compile` takes, and
# the fine-tuning helpers of lesson 15.

from tf_transformer.training.fine_tuning import (
    new_head,
    optimizer_bytes,
    trainable_parameters,
)
from tf_transformer.training.losses import (
    MaskedLoss,
    masked_accuracy,
    masked_loss,
    masked_sentence_accuracy,
)
from tf_transformer.training.schedule import TransformerSchedule

__all__ = [
    # the learning rate
    "TransformerSchedule",
    # loss and metrics that ignore [PAD]
    "MaskedLoss",
    "masked_loss",
    "masked_accuracy",
    "masked_sentence_accuracy",
    # fine-tuning a trained model: a new head, what it costs (lesson 15)
    "new_head",
    "trainable_parameters",
    "optimizer_bytes",
]
