"""Low-rank adaptation (LoRA): a frozen Dense plus a trainable low-rank update."""

import keras
from keras import ops

from tf_transformer import validation


class LoRADenseBase(keras.layers.Layer):
    """The Keras plumbing of `LoRADense`: arguments, freezing, shapes, config.

    `LoRADense` subclasses it and adds `build` (freeze the Dense, create
    `lora_a` and `lora_b`), `call` and `merge`.

    y = activation(x W + b + (x A B) · alpha / rank)

    The wrapped Dense keeps its kernel W (input_dim, units) and bias b,
    frozen. Only A (input_dim, rank) and B (rank, units) learn: rank ·
    (input_dim + units) numbers instead of input_dim · units. B starts at
    zero, so before the first step the layer computes exactly what the
    Dense computed.

    Args:
        dense: a built `keras.layers.Dense` (its weights are the pretrained
            ones; they stay frozen).
        rank: the rank r of the update A B, an int >= 1.
        alpha: the update is scaled by `alpha / rank`, so that changing the
            rank does not change how far one step moves the output.
            Defaults to `rank` (scale 1), as `Dense.enable_lora`.
        a_initializer: initializer of A. Defaults to `"he_uniform"`, as
            `Dense.enable_lora`.
        **kwargs: base layer arguments; `name` defaults to the Dense's name
            + `"_lora"`, `dtype` to the Dense's dtype policy.

    Call arguments:
        inputs: (..., input_dim).

    Returns:
        (..., units), like the Dense.

    Example:

    >>> dense = keras.layers.Dense(16)
    >>> dense.build((None, 8))
    >>> lora = LoRADense(dense, rank=2, alpha=4)
    >>> lora(tf.ones((3, 8))).shape
    TensorShape([3, 16])
    >>> [tuple(w.shape) for w in lora.trainable_weights]  # A and B only
    [(8, 2), (2, 16)]

    References:
        Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
        arXiv:2106.09685.
    """

    def __init__(self, dense, rank, alpha=None, a_initializer="he_uniform", **kwargs):
        if not isinstance(dense, keras.layers.Dense):
            raise TypeError(
                "`dense` must be a keras.layers.Dense. "
                f"Received: dense={dense!r} (type {type(dense).__name__})"
            )
        if not dense.built:
            raise ValueError(
                "`dense` must be built (its pretrained weights are what LoRA "
                "adapts); call it once or call `dense.build(input_shape)`. "
                f"Received: dense={dense.name!r}, not built"
            )
        if getattr(dense, "lora_enabled", False):
            raise ValueError(
                "`dense` already has Keras's own LoRA (`enable_lora`); wrap a "
                f"plain Dense. Received: dense={dense.name!r} with lora_enabled=True"
            )
        kwargs.setdefault("name", f"{dense.name}_lora")
        kwargs.setdefault("dtype", dense.dtype_policy)
        super().__init__(**kwargs)
        self.dense = dense
        self.rank = validation.check_int("rank", rank)
        self.alpha = float(self.rank) if alpha is None else alpha
        self.alpha = validation.check_positive_float("alpha", self.alpha)
        self.a_initializer = keras.initializers.get(a_initializer)
        self.input_dim = int(dense.kernel.shape[0])
        self.units = int(dense.units)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.input_dim})

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # Keras passes the flag on to sublayers; the wrapped Dense holds the
        # pretrained weights and stays frozen whatever the wrapper's flag.
        keras.layers.Layer.trainable.fset(self, value)
        if "dense" in self.__dict__:
            self.dense.trainable = False

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        dense = keras.saving.serialize_keras_object(self.dense)
        # A list, as JSON gives it back: the config survives a JSON round trip.
        dense["build_config"] = {"input_shape": [None, self.input_dim]}
        config.update(
            {
                "dense": dense,
                "rank": self.rank,
                "alpha": self.alpha,
                "a_initializer": keras.initializers.serialize(self.a_initializer),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # The serialized Dense carries its build config: it comes back built.
        config["dense"] = keras.saving.deserialize_keras_object(config["dense"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tf_transformer")
class LoRADense(LoRADenseBase):
    """A frozen Dense plus a trainable low-rank update: LoRA.

    y = activation(x W + b + (x A B) · alpha / rank), with W and b the
    Dense's frozen weights, A (input_dim, rank) and B (rank, units) the
    only trainable weights, B initialised to zeros. `merge()` folds the
    update into one plain Dense for inference. Equal to
    `Dense.enable_lora(rank, lora_alpha=alpha)` with the same weights.
    Arguments and config: see `LoRADenseBase`.

    Example:

    >>> dense = keras.layers.Dense(16)
    >>> dense.build((None, 8))
    >>> lora = LoRADense(dense, rank=2, alpha=4)
    >>> lora(tf.ones((3, 8))).shape
    TensorShape([3, 16])
    >>> lora.merge()(tf.ones((3, 8))).shape
    TensorShape([3, 16])
    """

    def build(self, input_shape):
        self.dense.trainable = False  # the pretrained weights do not move
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=(self.input_dim, self.rank),
            initializer=self.a_initializer,
        )
        # B = 0: the update A B is zero, so training starts from the
        # pretrained layer itself.
        self.lora_b = self.add_weight(
            name="lora_b", shape=(self.rank, self.units), initializer="zeros"
        )
        self.built = True

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.dense.kernel)  # (..., units)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        # Through the rank-r bottleneck: (..., input_dim) -> (..., rank) -> (..., units)
        update = ops.matmul(ops.matmul(inputs, self.lora_a), self.lora_b)
        outputs = outputs + update * (self.alpha / self.rank)
        return self.dense.activation(outputs)

    def merge(self):
        """One plain Dense with kernel W + A B · alpha / rank: the same outputs,
        at the cost of the original layer."""
        merged = keras.layers.Dense.from_config(
            {**self.dense.get_config(), "trainable": True}
        )
        merged.build((None, self.input_dim))
        update = ops.matmul(self.lora_a, self.lora_b) * (self.alpha / self.rank)
        merged.kernel.assign(self.dense.kernel + update)  # (input_dim, units)
        if self.dense.use_bias:
            merged.bias.assign(self.dense.bias)
        return merged
