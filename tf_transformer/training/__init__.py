"""Training utilities: the paper's schedule, masked loss and accuracy."""

from tf_transformer.training.losses import (
    MaskedLoss,
    masked_accuracy,
    masked_loss,
    masked_sentence_accuracy,
)
from tf_transformer.training.schedule import TransformerSchedule

__all__ = [
    "MaskedLoss",
    "TransformerSchedule",
    "masked_accuracy",
    "masked_loss",
    "masked_sentence_accuracy",
]

from tf_transformer.training.fine_tuning import (  # noqa: E402
    new_head,
    optimizer_bytes,
    trainable_parameters,
)

__all__ += ["new_head", "optimizer_bytes", "trainable_parameters"]
