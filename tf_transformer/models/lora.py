"""Put LoRA adapters on a trained model's Dense layers, and fold them back."""

from collections.abc import Sequence

import keras

from tf_transformer.layers.lora import LoRADense

DEFAULT_TARGETS = ("query_dense", "value_dense")
"""The LoRA paper's choice: adapt the query and value projections only."""

ATTENTION_AND_FEED_FORWARD = (
    "query_dense",
    "key_dense",
    "value_dense",
    "output_dense",
    "intermediate_dense",
)
"""Every Dense of the library's attention and feed-forward layers."""


def add_lora(
    model,
    rank: int,
    alpha: float | None = None,
    targets: Sequence[str] = DEFAULT_TARGETS,
    freeze: bool = True,
    layer_class=LoRADense,
) -> list:
    """Wrap a built model's Dense sublayers in `LoRADense`, in place.

    Every layer of `model` (at any depth) that holds a `keras.layers.Dense`
    under one of the attribute names in `targets` gets it replaced by
    `layer_class(dense, rank, alpha)`. The library's attention layers name
    their projections `query_dense`, `key_dense`, `value_dense`,
    `output_dense`, the feed-forward layer `intermediate_dense` and
    `output_dense` (so `"output_dense"` names both). With `freeze`, every
    weight that was trainable before is frozen first, so that only the
    adapters learn. Compile the model after this call.

    Args:
        model: a built Keras model or layer (e.g. a trained `CausalLM`).
        rank: rank of every adapter.
        alpha: scale numerator (scale = alpha / rank). Defaults to `rank`.
        targets: attribute names of the Dense layers to adapt. Defaults to
            `("query_dense", "value_dense")`, as in the LoRA paper;
            `ATTENTION_AND_FEED_FORWARD` adapts every projection.
        freeze: freeze the rest of the model. Defaults to True.
        layer_class: the adapter class, e.g. your own `LoRADense`.
            Defaults to the library's.

    Returns:
        The adapters added, in the order of the model's layers.

    Example:

    >>> model = CausalLM(2, 32, 4, 64, vocabulary_size=100)
    >>> model.build((None, None))
    >>> adapters = add_lora(model, rank=4)
    >>> len(adapters), sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    (4, 1024)
    """
    targets = _check_targets(targets)
    if not model.built:
        raise ValueError(
            "`model` must be built (LoRA adapts trained weights). "
            f"Received: model={model.name!r}, not built"
        )
    if freeze:
        for weight in model.trainable_weights:
            weight.trainable = False
    adapters = []
    for layer in _layers_of(model):
        for attribute in targets:
            dense = getattr(layer, attribute, None)
            if isinstance(dense, keras.layers.Dense):
                adapter = layer_class(dense, rank, alpha)
                adapter.build((None, adapter.input_dim))
                replace_sublayer(layer, attribute, dense, adapter)
                adapters.append(adapter)
    if not adapters:
        raise ValueError(
            f"No Dense layer of `model` is held under any of `targets`. "
            f"Received: targets={targets!r}"
        )
    return adapters


def merge_lora(model) -> int:
    """Replace every `LoRADense` in `model` by its `merge()`: plain Dense layers
    computing the same, ready for saving or fast inference. Returns how many."""
    merged = 0
    for layer in _layers_of(model):
        for attribute, value in list(vars(layer).items()):
            if _is_adapter(value):
                replace_sublayer(layer, attribute, value, value.merge())
                merged += 1
    return merged


def _is_adapter(value) -> bool:
    return isinstance(value, keras.layers.Layer) and all(
        hasattr(value, name) for name in ("dense", "lora_a", "lora_b", "merge")
    )


def _check_targets(targets) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    try:
        targets = tuple(targets)
    except TypeError:
        targets = None
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(
            "`targets` must be a non-empty sequence of attribute names such as "
            f"'query_dense'. Received: targets={targets!r}"
        )
    return targets


def _layers_of(model) -> list:
    # The layer tree, flattened once before any replacement changes it.
    return list(model._flatten_layers(include_self=True, recursive=True))


def replace_sublayer(parent, attribute, old, new) -> None:
    """`parent.attribute = new`, also on a built (state-locked) layer.

    The new layer takes the old one's place among the parent's sublayers, so
    the weights keep their order and a later `parent.trainable = True` does
    not reach the frozen Dense past its adapter.
    """
    tracker = parent._tracker
    locked = tracker.locked
    tracker.unlock()
    try:
        if tracker.is_in_store("layers", old) and not tracker.is_in_store(
            "layers", new
        ):
            tracker.replace_tracked_value("layers", old, new)
        setattr(parent, attribute, new)
    finally:
        if locked:
            tracker.lock()
