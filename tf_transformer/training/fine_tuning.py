"""What fine-tuning costs: trainable parameters, optimizer memory, a new head."""

import keras
import numpy as np

from tf_transformer.models.lora import replace_sublayer


def trainable_parameters(model) -> int:
    """How many numbers the optimizer updates: the size of every trainable weight."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def optimizer_bytes(optimizer, model=None) -> int:
    """Bytes of the optimizer's own variables (Adam: two moments per trainable
    number, plus its step counter).

    With `model`, an optimizer that has not seen a step yet is first built for
    the model's trainable weights, as its first step would.
    """
    if model is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    return int(
        sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in optimizer.variables)
    )


def new_head(model, attribute: str = "output_projection"):
    """Freeze a built model and give it a fresh, trainable output layer.

    The layer held under `attribute` (a Dense, e.g. `CausalLM`'s
    `output_projection`) is replaced by a new Dense of the same size, dtype
    and activation, newly initialised; every other weight is frozen. The
    cheapest way to reuse a trained model: only the head learns.

    Returns:
        The new head.
    """
    old = getattr(model, attribute, None)
    if not isinstance(old, keras.layers.Dense) or not old.built:
        raise ValueError(
            f"`model.{attribute}` must be a built keras.layers.Dense. "
            f"Received: attribute={attribute!r} holding {type(old).__name__}"
        )
    for weight in model.trainable_weights:
        weight.trainable = False
    config = {**old.get_config(), "trainable": True}
    config["name"] = f"new_{old.name}"
    head = keras.layers.Dense.from_config(config)
    head.build((None, old.kernel.shape[0]))
    replace_sublayer(model, attribute, old, head)
    return head
