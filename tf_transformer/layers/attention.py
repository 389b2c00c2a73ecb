"""Scaled dot-product attention and multi-head attention, written out in full."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.dropout import Dropout
from tf_transformer.layers.initializers import clone_initializer
from tf_transformer.layers.masks import causal_mask, combine_masks


def scaled_dot_product_attention(query, key, value, mask=None, dropout=None):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V  (section 3.2.1).

    Every query is compared with every key; the scores, divided by √d_k so
    that their spread does not grow with the depth, go through a softmax over
    the keys, and the resulting weights average the values.

    Args:
        query: (..., target_len, depth) tensor.
        key: (..., source_len, depth) tensor.
        value: (..., source_len, value_depth) tensor.
        mask: optional boolean tensor broadcastable to
            (..., target_len, source_len); True = may attend. Masked keys get
            a weight of exactly 0, and a query whose keys are all masked gets
            all-zero weights (never NaN).
        dropout: optional callable applied to the weights before they average
            the values (`MultiHeadAttention` passes its attention dropout).

    Returns:
        `(output, attention_weights)`: output (..., target_len, value_depth)
        and weights (..., target_len, source_len), both in the dtype of
        `value`. The softmax itself runs in float32.

    Example:

    >>> q = tf.random.normal((2, 5, 8))
    >>> k = v = tf.random.normal((2, 7, 8))
    >>> output, weights = scaled_dot_product_attention(q, k, v)
    >>> output.shape, weights.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 5, 7]))
    """
    check_attention_inputs(query, key, value, mask)
    depth = tf.cast(tf.shape(key)[-1], query.dtype)
    # Dividing the query rather than the scores keeps float16 scores small.
    query = query / tf.sqrt(depth)
    scores = tf.matmul(query, key, transpose_b=True)  # (..., target_len, source_len)
    scores = tf.cast(scores, tf.float32)
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
        # The lowest finite float32 vanishes in the softmax without overflow.
        scores = tf.where(mask, scores, tf.float32.min)
    weights = tf.nn.softmax(scores, axis=-1)
    if mask is not None:
        # A fully masked row is uniform after the softmax; make it all zeros.
        weights = tf.where(mask, weights, 0.0)
    weights = tf.cast(weights, value.dtype)
    attended = weights if dropout is None else dropout(weights)
    output = tf.matmul(attended, value)  # (..., target_len, value_depth)
    return output, weights


def check_attention_inputs(query, key, value, mask):
    """Static checks so shape mistakes fail here, not inside a matmul.

    Raises a `ValueError` naming the argument when ranks differ, `query` and
    `key` differ in depth, `key` and `value` differ in length, or `mask` does
    not broadcast to the scores (..., target_len, source_len); a `TypeError`
    when `mask` is neither boolean nor integer.
    """
    q_shape = validation.check_rank("query", query, range(2, 9))
    k_shape = validation.check_rank("key", key, {len(q_shape)})
    v_shape = validation.check_rank("value", value, {len(q_shape)})
    if None not in (q_shape[-1], k_shape[-1]) and q_shape[-1] != k_shape[-1]:
        raise ValueError(
            "`query` and `key` must have the same depth (last axis). "
            f"Received: query with shape {q_shape}, key with shape {k_shape}"
        )
    if None not in (k_shape[-2], v_shape[-2]) and k_shape[-2] != v_shape[-2]:
        raise ValueError(
            "`key` and `value` must have the same length (second to last axis). "
            f"Received: key with shape {k_shape}, value with shape {v_shape}"
        )
    if mask is None:
        return
    validation.check_mask_dtype("mask", mask)
    scores_shape = q_shape[:-1] + (k_shape[-2],)
    mask_shape = validation.static_shape(mask)
    if len(mask_shape) > len(scores_shape) or not all(
        m in (1, None) or s in (None, m)
        for m, s in zip(reversed(mask_shape), reversed(scores_shape), strict=False)
    ):
        raise ValueError(
            "`mask` must broadcast to the attention scores' shape "
            f"(..., target_len, source_len) = {scores_shape}. "
            f"Received: mask with shape {mask_shape}"
        )


class MultiHeadAttentionBase(keras.layers.Layer):
    """The Keras plumbing of `MultiHeadAttention`: arguments, weights, masks.

    `MultiHeadAttention` subclasses it and adds the three methods that are
    the idea (`split_heads`, `merge_heads`, `call`); everything a Keras
    layer needs besides lives here: the checked constructor arguments, the
    projections W_Q, W_K, W_V, W_O built in `build`, the join of every mask
    that applies (`compute_attention_mask`), input checks, output shapes
    and `get_config`.

    Args:
        num_heads: number of attention heads h.
        key_dim: size of each head's queries and keys, d_k. Defaults to the
            query's last dimension divided by `num_heads` (the paper's
            d_model / h).
        value_dim: size of each head's values, d_v. Defaults to `key_dim`.
        dropout: dropout rate on the attention weights. Defaults to 0.
        use_bias: whether the projections have biases. Defaults to True.
        output_dim: size of the output vectors. Defaults to the query's last
            dimension.
        kernel_initializer: initializer of the projection kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of the biases. Defaults to `"zeros"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Attributes: `key_dim`, `value_dim` and `output_dim` are the sizes in use:
    the constructor's values, with those left to None resolved from the
    inputs' sizes when the layer is built (`get_config` returns the
    constructor's values). `_key_dim`, `_value_dim` and `_output_dim` remain
    as aliases for answers written before they were public.

    Call arguments:
        query: (batch, target_len, query_dim).
        value: (batch, source_len, value_dim_in).
        key: optional (batch, source_len, key_dim_in); defaults to `value`.
        attention_mask: optional boolean mask broadcastable to
            (batch, target_len, source_len), True = may attend. Integer masks
            are read as 1 = may attend.
        use_causal_mask: if True, query t only attends to keys 0..t.
        return_attention_scores: if True, also return the attention weights
            (batch, num_heads, target_len, source_len).
        training: whether attention dropout is active.

    Masking: Keras masks carried by `query`, `value` and `key` (for example
    from `PositionalEmbedding(mask_zero=True)`) are honoured and combined with
    `attention_mask` and the causal mask by logical AND. The query's mask is
    carried by the output.

    References:
        Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.
    """

    def __init__(
        self,
        num_heads,
        key_dim=None,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = validation.check_int("num_heads", num_heads)
        # The constructor's sizes, as get_config returns them (None: resolved
        # from the inputs in `build`), and the sizes in use (`key_dim`, …).
        self._key_dim_argument = validation.check_optional_int("key_dim", key_dim)
        self._value_dim_argument = validation.check_optional_int("value_dim", value_dim)
        self._output_dim_argument = validation.check_optional_int(
            "output_dim", output_dim
        )
        self._key_dim = self._key_dim_argument
        self._value_dim = self._value_dim_argument
        self._output_dim = self._output_dim_argument
        self.dropout = validation.check_rate("dropout", dropout)
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    @property
    def key_dim(self):
        """d_k, the size of each head's queries and keys (None until built
        when the constructor left it to the query's size)."""
        return self._key_dim

    @property
    def value_dim(self):
        """d_v, the size of each head's values (None until built when the
        constructor left it to `key_dim`)."""
        return self._value_dim

    @property
    def output_dim(self):
        """The size of the output vectors (None until built when the
        constructor left it to the query's size)."""
        return self._output_dim

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        query_dim = query_shape[-1]
        if self._key_dim_argument is None:
            validation.check_divisible(
                "query_dim", query_dim, "num_heads", self.num_heads
            )
        # The sizes in use; get_config keeps returning the constructor's.
        self._key_dim = self._key_dim_argument or query_dim // self.num_heads
        self._value_dim = self._value_dim_argument or self._key_dim
        self._output_dim = self._output_dim_argument or query_dim
        self.query_dense = self._dense(self.num_heads * self.key_dim, "query_dense")
        self.query_dense.build(query_shape)
        self.key_dense = self._dense(self.num_heads * self.key_dim, "key_dense")
        self.key_dense.build(key_shape)
        self.value_dense = self._dense(self.num_heads * self.value_dim, "value_dense")
        self.value_dense.build(value_shape)
        self.output_dense = self._dense(self.output_dim, "output_dense")
        self.output_dense.build((None, None, self.num_heads * self.value_dim))
        self.dropout_layer = Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.built = True

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def compute_attention_mask(
        self,
        query,
        value,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
    ):
        """Join every mask that applies into one (batch, 1, target_len, source_len).

        The extra axis broadcasts over the heads. Returns None when nothing
        is masked.
        """
        masks = []
        if query_mask is not None:
            masks.append(tf.cast(query_mask, tf.bool)[:, :, tf.newaxis])  # (B, T, 1)
        for name, key_side in (("value_mask", value_mask), ("key_mask", key_mask)):
            if key_side is not None:
                validation.check_mask_dtype(name, key_side)
                masks.append(tf.cast(key_side, tf.bool)[:, tf.newaxis, :])  # (B, 1, S)
        if use_causal_mask:
            masks.append(causal_mask_for(query, value))  # (T, S)
        if attention_mask is not None:
            masks.append(attention_mask)
        mask = combine_masks(*masks)
        if mask is None:
            return None
        if mask.shape.rank == 3:
            mask = mask[:, tf.newaxis]  # broadcast over the heads
        return mask

    def check_call_inputs(self, query, value, key, attention_mask):
        """Raise a clear error for inputs of the wrong rank or size."""
        for name, tensor in (("query", query), ("value", value), ("key", key)):
            validation.check_rank(name, tensor, {3})
        validation.check_last_dim(
            "query", query, _input_size(self.query_dense), "query_dim"
        )
        validation.check_last_dim(
            "value", value, _input_size(self.value_dense), "value_dim"
        )
        validation.check_last_dim("key", key, _input_size(self.key_dense), "key_dim")
        if attention_mask is not None:
            validation.check_mask_dtype("attention_mask", attention_mask)
            validation.check_rank("attention_mask", attention_mask, {2, 3, 4})

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        output_dim = self._output_dim_argument or query_shape[-1]
        return tuple(query_shape[:-1]) + (output_dim,)

    def compute_output_spec(
        self, query, value, key=None, return_attention_scores=False, **kwargs
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape), self.compute_dtype
        )
        if not return_attention_scores:
            return output
        weights_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(weights_shape, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self._key_dim_argument,
                "value_dim": self._value_dim_argument,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self._output_dim_argument,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tf_transformer")
class MultiHeadAttention(MultiHeadAttentionBase):
    """Multi-head attention built from its parts (section 3.2.2).

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O with
    head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i). The projections of all
    heads are computed by one dense layer each (`query_dense`, `key_dense`,
    `value_dense`); their outputs are split into `num_heads` slices,
    attended in parallel, merged back and projected by `output_dense` (W_O).

    Arguments, masking, weights and config: see `MultiHeadAttentionBase`.

    Example:

    >>> mha = MultiHeadAttention(num_heads=2)
    >>> x = tf.random.normal((3, 5, 16))
    >>> mha(x, x).shape
    TensorShape([3, 5, 16])
    """

    def split_heads(self, x, depth):
        """(batch, length, num_heads * depth) -> (batch, num_heads, length, depth)."""
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, (batch, length, self.num_heads, depth))
        return tf.transpose(x, (0, 2, 1, 3))

    def merge_heads(self, x):
        """(batch, num_heads, length, depth) -> (batch, length, num_heads * depth)."""
        batch, length = tf.shape(x)[0], tf.shape(x)[2]
        x = tf.transpose(x, (0, 2, 1, 3))
        return tf.reshape(x, (batch, length, self.num_heads * x.shape[-1]))

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        if key is None:
            key = value
        self.check_call_inputs(query, value, key, attention_mask)
        mask = self.compute_attention_mask(
            query,
            value,
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            use_causal_mask,
        )
        # W_Q, W_K, W_V project; the heads are slices of the projections.
        query = self.split_heads(self.query_dense(query), self.key_dim)
        key = self.split_heads(self.key_dense(key), self.key_dim)
        value = self.split_heads(self.value_dense(value), self.value_dim)
        # query: (batch, heads, target_len, key_dim); key/value: source_len
        dropout = None
        if self.dropout > 0:
            dropout = lambda weights: self.dropout_layer(weights, training=training)  # noqa: E731
        attended, weights = scaled_dot_product_attention(
            query, key, value, mask, dropout
        )
        # attended: (batch, heads, target_len, value_dim)
        output = self.output_dense(self.merge_heads(attended))
        # output: (batch, target_len, output_dim)
        if return_attention_scores:
            return output, weights
        return output


def causal_mask_for(query, value):
    """Causal mask (target_len, source_len) of `query` attending to `value`.

    Equal lengths give `causal_mask(length)`; shorter queries are taken to be
    the *last* `target_len` positions of the keys (query i sits at key
    position i + source_len - target_len), as when a prefix is cached.
    """
    target_len, source_len = tf.shape(query)[1], tf.shape(value)[1]
    if query.shape[1] is not None and query.shape[1] == value.shape[1]:
        return causal_mask(target_len)
    # Query i sits at key position i + (source_len - target_len).
    rows = tf.range(target_len)[:, tf.newaxis] + (source_len - target_len)
    return tf.range(source_len)[tf.newaxis, :] <= rows


def _input_size(dense):
    """The last input dimension a projection expects (a Dense, or an adapter
    such as `LoRADense` wrapping one)."""
    return dense.input_spec.axes[-1]
