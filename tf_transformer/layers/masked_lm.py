"""Masked language modelling (BERT): hide some tokens, predict them back.

BERT (Devlin et al. 2018, arXiv:1810.04805, section 3.1) pretrains an encoder
on unlabelled text. `mask_tokens` picks about 15 % of the real tokens; the
model reads the sequence with those positions corrupted and must predict the
original ids there. Of the selected tokens 80 % become `[MASK]`, 10 % a random
token and 10 % stay unchanged: `[MASK]` never occurs when the model is later
fine-tuned, and a model that had only ever seen `[MASK]` at the positions it
is asked about could ignore every other token's representation.

`MaskedLMHead` turns the encoder's vectors into vocabulary logits, optionally
with the token embedding's matrix as output projection (the weight sharing of
"Attention Is All You Need", section 3.4).
"""

import numbers

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.initializers import clone_initializer


def _check_ids(name, values, vocabulary_size):
    if isinstance(values, numbers.Integral):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        values = (values,)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(
                f"`{name}` must hold integer token ids. Received: {name}={values!r}"
            )
        if not 0 <= value < vocabulary_size:
            raise ValueError(
                f"`{name}` must hold ids in [0, vocabulary_size={vocabulary_size}). "
                f"Received: {name}={values!r}"
            )
    return tuple(int(value) for value in values)


def check_masking_arguments(
    token_ids,
    vocabulary_size,
    mask_token_id,
    rate,
    mask_token_rate,
    random_token_rate,
    unselectable_ids,
    seed,
):
    """Validates the arguments of `mask_tokens`, naming any bad one.

    Returns:
        The seed as a shape-(2,) int64 tensor, or None for fresh randomness.
    """
    validation.check_integer_ids("token_ids", token_ids)
    validation.check_rank("token_ids", token_ids, {2})
    vocabulary_size = validation.check_int("vocabulary_size", vocabulary_size)
    (mask_token_id,) = _check_ids("mask_token_id", mask_token_id, vocabulary_size)
    for name, value in (
        ("rate", rate),
        ("mask_token_rate", mask_token_rate),
        ("random_token_rate", random_token_rate),
    ):
        validation.check_rate(name, value, allow_one=True)
    if mask_token_rate + random_token_rate > 1.0 + 1e-9:
        raise ValueError(
            "`mask_token_rate` + `random_token_rate` must be <= 1. Received: "
            f"mask_token_rate={mask_token_rate}, random_token_rate={random_token_rate}"
        )
    if isinstance(unselectable_ids, (numbers.Number, str, bytes)):
        raise TypeError(
            "`unselectable_ids` must be a sequence of integer ids. "
            f"Received: unselectable_ids={unselectable_ids!r}"
        )
    unselectable_ids = _check_ids("unselectable_ids", unselectable_ids, 2**62)
    excluded = set(unselectable_ids) | {mask_token_id}
    if excluded.issuperset(range(vocabulary_size)):
        raise ValueError(
            "Every id of the vocabulary is in `unselectable_ids` or is "
            "`mask_token_id`: no id is left for random replacements. Received: "
            f"vocabulary_size={vocabulary_size}, unselectable_ids={unselectable_ids}, "
            f"mask_token_id={mask_token_id}"
        )
    return validation.check_seed("seed", seed)


def mask_tokens(
    token_ids,
    vocabulary_size,
    mask_token_id,
    rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    unselectable_ids=(0, 1, 2, 3),
    seed=None,
):
    """BERT's input corruption for masked-language-model pretraining.

    Each token whose id is not in `unselectable_ids` is selected on its own
    with probability `rate`. A selected token becomes `mask_token_id` with
    probability `mask_token_rate`, a random id with probability
    `random_token_rate` (uniform over the vocabulary without
    `unselectable_ids` and `mask_token_id`), and stays as it is otherwise.
    The model is trained to predict `token_ids` at the selected positions.

    Args:
        token_ids: integer tensor (batch, length); batch and length may be
            unknown (inside `tf.function` or `tf.data.Dataset.map`).
        vocabulary_size: number of ids, `[0, vocabulary_size)`.
        mask_token_id: the id of `[MASK]`.
        rate: share of the selectable tokens to select. Defaults to 0.15.
        mask_token_rate: share of the selected tokens replaced by
            `mask_token_id`. Defaults to 0.8.
        random_token_rate: share of the selected tokens replaced by a random
            id. Defaults to 0.1.
        unselectable_ids: ids never selected (padding and framing tokens).
            Defaults to `(0, 1, 2, 3)`: `[PAD]`, `[UNK]`, `[START]`, `[END]`.
        seed: None for fresh randomness at every call; an int or a shape-(2,)
            integer tensor for a reproducible result (same seed, same input,
            same output). Defaults to None.

    Returns:
        `(masked_ids, selected)`: `masked_ids` has the shape and dtype of
        `token_ids`; `selected` is boolean, same shape, True where the model
        must predict the original id.

    Example:

    >>> ids = tf.constant([[2, 17, 25, 9, 3, 0]])
    >>> masked, selected = mask_tokens(ids, vocabulary_size=30, mask_token_id=6,
    ...                                rate=0.5, seed=1)
    """
    seed = check_masking_arguments(
        token_ids,
        vocabulary_size,
        mask_token_id,
        rate,
        mask_token_rate,
        random_token_rate,
        unselectable_ids,
        seed,
    )
    excluded = set(unselectable_ids) | {mask_token_id}
    allowed = [i for i in range(vocabulary_size) if i not in excluded]

    token_ids = tf.convert_to_tensor(token_ids)
    shape = tf.shape(token_ids)  # (batch, length), known only when it runs
    if seed is None:
        # A fresh seed per call (and per dataset element): a stateful draw.
        seed = tf.random.uniform([2], 0, 2**62, dtype=tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 3)  # (3, 2)
    select_draw = tf.random.stateless_uniform(shape, seed=seeds[0])
    kind_draw = tf.random.stateless_uniform(shape, seed=seeds[1])
    random_index = tf.random.stateless_uniform(
        shape, seed=seeds[2], maxval=len(allowed), dtype=tf.int32
    )

    ids64 = tf.cast(token_ids, tf.int64)
    selectable = tf.ones_like(ids64, tf.bool)
    for special in unselectable_ids:
        selectable &= ids64 != special
    selected = selectable & (select_draw < rate)
    to_mask = selected & (kind_draw < mask_token_rate)
    to_random = selected & ~to_mask & (kind_draw < mask_token_rate + random_token_rate)
    random_ids = tf.gather(tf.constant(allowed, token_ids.dtype), random_index)
    masked_ids = tf.where(to_random, random_ids, token_ids)
    mask_id = tf.constant(mask_token_id, token_ids.dtype)
    masked_ids = tf.where(to_mask, mask_id, masked_ids)
    return masked_ids, selected


@keras.saving.register_keras_serializable(package="tf_transformer")
class MaskedLMHead(keras.layers.Layer):
    """Encoder vectors → vocabulary logits, BERT's masked-LM output layer.

    A dense transform with `activation`, a LayerNorm, and a projection onto the
    vocabulary. With `tie_weights=True` the projection is the transposed token
    embedding matrix, passed at call time (the weight sharing of the paper's
    section 3.4, as BERT does): only a bias per token is learned for it.

    Args:
        vocab_size: number of output ids.
        tie_weights: if True, `call` needs `token_embedding`, the
            (vocab_size, d_model) embedding matrix, and projects with its
            transpose. Defaults to True.
        activation: of the dense transform. Defaults to `"gelu"` (BERT).
        layer_norm_epsilon: Defaults to 1e-5.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: (batch, length, d_model) encoder outputs.
        token_embedding: the (vocab_size, d_model) embedding matrix; required
            when `tie_weights=True`, rejected otherwise.

    Returns:
        float32 logits (batch, length, vocab_size), also under mixed precision.
        The Keras mask of `inputs`, if any, is kept.

    Example:

    >>> head = MaskedLMHead(vocab_size=30, tie_weights=False)
    >>> head(tf.random.normal((2, 5, 16))).shape
    TensorShape([2, 5, 30])

    References:
        Devlin et al., "BERT", arXiv:1810.04805; Vaswani et al., arXiv:1706.03762.
    """

    def __init__(
        self,
        vocab_size,
        tie_weights=True,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = validation.check_int("vocab_size", vocab_size)
        self.tie_weights = validation.check_bool("tie_weights", tie_weights)
        validation.check_activation("activation", activation)
        self.activation = activation
        self.layer_norm_epsilon = validation.check_positive_float(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        validation.check_rank("inputs", input_shape, {3})
        d_model = input_shape[-1]
        if d_model is None:
            raise ValueError(
                "The last dimension of `inputs` (d_model) must be known. "
                f"Received: inputs with shape {tuple(input_shape)}"
            )
        self.transform = keras.layers.Dense(
            d_model,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="transform",
        )
        self.transform.build(input_shape)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.layer_norm.build(input_shape)
        if not self.tie_weights:
            self.output_kernel = self.add_weight(
                name="output_kernel",
                shape=(d_model, self.vocab_size),
                initializer=clone_initializer(self.kernel_initializer),
            )
        self.output_bias = self.add_weight(
            name="output_bias",
            shape=(self.vocab_size,),
            initializer=clone_initializer(self.bias_initializer),
        )
        self.built = True

    def call(self, inputs, token_embedding=None):
        validation.check_rank("inputs", inputs, {3})
        if self.tie_weights:
            if token_embedding is None:
                raise ValueError(
                    "`token_embedding` is required: this MaskedLMHead has "
                    "tie_weights=True and projects with the embedding matrix "
                    "(vocab_size, d_model). Received: token_embedding=None"
                )
            expected = (self.vocab_size, inputs.shape[-1])
            shape = tuple(token_embedding.shape)
            if shape != expected:
                raise ValueError(
                    f"`token_embedding` must have shape {expected} "
                    f"(vocab_size, d_model). Received: token_embedding with shape "
                    f"{shape}"
                )
            kernel = tf.transpose(tf.cast(token_embedding, self.compute_dtype))
        else:
            if token_embedding is not None:
                raise ValueError(
                    "`token_embedding` must be None when tie_weights=False. "
                    f"Received: token_embedding with shape {token_embedding.shape}"
                )
            kernel = tf.cast(self.output_kernel, self.compute_dtype)
        x = self.layer_norm(self.transform(inputs))  # (batch, length, d_model)
        logits = tf.matmul(x, kernel) + tf.cast(self.output_bias, self.compute_dtype)
        return tf.cast(logits, "float32")  # (batch, length, vocab_size)

    def compute_mask(self, inputs, mask=None, token_embedding=None):
        return mask

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape[:-1]) + (self.vocab_size,)

    def compute_output_spec(self, inputs, *args, **kwargs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "tie_weights": self.tie_weights,
                "activation": keras.activations.serialize(
                    keras.activations.get(self.activation)
                ),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
