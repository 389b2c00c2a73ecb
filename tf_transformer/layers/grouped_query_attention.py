"""Grouped-query attention: several query heads share one key/value head."""

import keras
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.layers.attention import (
    causal_mask_for,
    scaled_dot_product_attention,
)
from tf_transformer.layers.initializers import clone_initializer
from tf_transformer.layers.masks import combine_masks
from tf_transformer.layers.rotary import RotaryEmbedding


def grouped_query_attention(query, key, value, mask=None):
    """Scaled dot-product attention where query heads share key/value heads.

    With h query heads and g key/value heads (h a multiple of g), query head
    j reads key/value head j // (h / g): heads are grouped consecutively, as
    `keras.layers.GroupQueryAttention` repeats them. g = h is multi-head
    attention, g = 1 multi-query attention. Only the g key/value heads are
    stored in a decoding cache, so the cache shrinks by h / g.

    Args:
        query: (batch, q_len, num_heads, head_dim).
        key: (batch, kv_len, num_kv_heads, head_dim).
        value: (batch, kv_len, num_kv_heads, head_dim).
        mask: optional boolean, broadcastable to (batch, q_len, kv_len) or
            (batch, num_heads, q_len, kv_len); True = may attend. Masked
            weights are exactly 0, a fully masked row is all zeros.

    Returns:
        `(output, weights)`: output (batch, q_len, num_heads, head_dim) and
        weights (batch, num_heads, q_len, kv_len), in `value`'s dtype; the
        scores are scaled by 1/√head_dim and the softmax runs in float32.

    Example:

    >>> q = tf.random.normal((2, 5, 8, 16))  # 8 query heads
    >>> k = v = tf.random.normal((2, 5, 2, 16))  # 2 key/value heads
    >>> output, weights = grouped_query_attention(q, k, v)
    >>> output.shape, weights.shape
    (TensorShape([2, 5, 8, 16]), TensorShape([2, 8, 5, 5]))
    """
    query, key, value = (tf.convert_to_tensor(t) for t in (query, key, value))
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if tensor.shape.rank != 4:
            raise ValueError(
                f"`{name}` must be (batch, length, heads, head_dim). "
                f"Received: {name} with shape {tensor.shape}"
            )
    heads, kv_heads = query.shape[2], key.shape[2]
    if heads is None or kv_heads is None or heads % kv_heads:
        raise ValueError(
            "The heads of `query` (axis 2) must be a known multiple of the heads of "
            f"`key`. Received: query with shape {query.shape}, key with shape "
            f"{key.shape}"
        )
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
        if mask.shape.rank < 4:
            mask = mask[..., tf.newaxis, :, :]  # broadcast over the heads
    # Head j reads key/value head j // group: repeat each one `group` times.
    group = heads // kv_heads
    key = tf.repeat(key, group, axis=2)  # (batch, kv_len, num_heads, head_dim)
    value = tf.repeat(value, group, axis=2)
    # (batch, num_heads, length, head_dim): heads before positions.
    query, key, value = (tf.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
    output, weights = scaled_dot_product_attention(query, key, value, mask)
    return tf.transpose(output, (0, 2, 1, 3)), weights


@keras.saving.register_keras_serializable(package="tf_transformer")
class GroupedQueryAttention(keras.layers.Layer):
    """Attention with `num_heads` query heads and `num_key_value_heads`
    key/value heads, rotary positions, and a key/value cache for decoding.

    The projections W_Q (d_model → num_heads · head_dim), W_K and W_V
    (d_model → num_key_value_heads · head_dim) and W_O have no biases, as in
    Llama. Queries and keys are rotated by `apply_rotary_embedding` (unless
    `use_rotary=False`); the heads are combined by `grouped_query_attention`.

    Args:
        num_heads: query heads h.
        num_key_value_heads: key/value heads g; h must be a multiple of g.
        head_dim: size of each head. Defaults to d_model // num_heads.
        use_rotary: rotate queries and keys by their positions. Defaults to True.
        max_wavelength: the rotary base. Defaults to 10000.
        use_bias: whether the projections have biases. Defaults to False.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        query: (batch, q_len, d_model).
        value: (batch, kv_len, d_model); defaults to `query` (self-attention).
        attention_mask: optional boolean (batch, q_len, kv_len), True = may attend.
        use_causal_mask: if True, query t only attends to keys 0..t.
        return_attention_scores: also return the weights
            (batch, num_heads, q_len, kv_len).
        cache: optional `(key_cache, value_cache)`, each
            (batch, max_length, num_key_value_heads, head_dim): the rotated
            keys and values of earlier positions. `query` then holds the
            positions `cache_index`, `cache_index + 1`, …; their keys and
            values are written into the cache, they attend causally to the
            cache, and the call returns `(output, new_cache)`.
        cache_index: position of the first row of `query` (int or scalar
            tensor), required with `cache`.

    Example:

    >>> attention = GroupedQueryAttention(num_heads=8, num_key_value_heads=2)
    >>> attention(tf.random.normal((2, 5, 64)), use_causal_mask=True).shape
    TensorShape([2, 5, 64])

    References:
        Ainslie et al., "GQA: Training Generalized Multi-Query Transformer
        Models from Multi-Head Checkpoints", arXiv:2305.13245; Shazeer,
        "Fast Transformer Decoding: One Write-Head is All You Need",
        arXiv:1911.02150.
    """

    def __init__(
        self,
        num_heads,
        num_key_value_heads,
        head_dim=None,
        use_rotary=True,
        max_wavelength=10000,
        use_bias=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = validation.check_int("num_heads", num_heads)
        self.num_key_value_heads = validation.check_int(
            "num_key_value_heads", num_key_value_heads
        )
        validation.check_divisible(
            "num_heads", num_heads, "num_key_value_heads", num_key_value_heads
        )
        self.head_dim = validation.check_optional_int("head_dim", head_dim)
        self.use_rotary = validation.check_bool("use_rotary", use_rotary)
        self.max_wavelength = validation.check_positive_float(
            "max_wavelength", max_wavelength
        )
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, query_shape, value_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        d_model = query_shape[-1]
        if self.head_dim is None:
            validation.check_divisible("d_model", d_model, "num_heads", self.num_heads)
        self._head_dim = self.head_dim or d_model // self.num_heads
        for name, units, shape in (
            ("query_dense", self.num_heads * self._head_dim, query_shape),
            ("key_dense", self.num_key_value_heads * self._head_dim, value_shape),
            ("value_dense", self.num_key_value_heads * self._head_dim, value_shape),
            ("output_dense", d_model, (None, None, self.num_heads * self._head_dim)),
        ):
            dense = keras.layers.Dense(
                units,
                use_bias=self.use_bias,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=name,
            )
            dense.build(shape)
            setattr(self, name, dense)
        self.rotary = RotaryEmbedding(
            self.max_wavelength, dtype=self.dtype_policy, name="rotary"
        )
        self.built = True

    def cache_shape(self, batch, length):
        """Shape of each of the key and value buffers of a decoding cache."""
        head_dim = self.head_dim or self._head_dim  # known before build if given
        return (batch, length, self.num_key_value_heads, head_dim)

    def split_heads(self, x, heads):
        """(batch, length, heads * head_dim) -> (batch, length, heads, head_dim)."""
        return tf.reshape(x, (tf.shape(x)[0], tf.shape(x)[1], heads, self._head_dim))

    def call(
        self,
        query,
        value=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_index=None,
        training=None,
    ):
        value = query if value is None else value
        validation.check_rank("query", query, {3})
        validation.check_rank("value", value, {3})
        if (cache is None) != (cache_index is None):
            raise ValueError(
                "`cache` and `cache_index` go together. Received: cache="
                f"{'(...)' if cache is not None else None}, cache_index={cache_index!r}"
            )
        start = 0 if cache_index is None else cache_index
        query_heads = self.split_heads(self.query_dense(query), self.num_heads)
        key = self.split_heads(self.key_dense(value), self.num_key_value_heads)
        value = self.split_heads(self.value_dense(value), self.num_key_value_heads)
        if self.use_rotary:  # values are not rotated: positions only steer scores
            query_heads = self.rotary(query_heads, start_index=start)
            key = self.rotary(key, start_index=start)
        if cache is not None:
            key, value, cached_mask = self._update_cache(cache, key, value, start)
            attention_mask = combine_masks(attention_mask, cached_mask)
        elif use_causal_mask:
            attention_mask = combine_masks(
                attention_mask, causal_mask_for(query, value)
            )
        attended, weights = grouped_query_attention(
            query_heads, key, value, attention_mask
        )  # (batch, q_len, num_heads, head_dim)
        batch, length = tf.shape(attended)[0], tf.shape(attended)[1]
        output = self.output_dense(
            tf.reshape(attended, (batch, length, self.num_heads * self._head_dim))
        )  # (batch, q_len, d_model)
        if cache is not None:
            return output, (key, value)
        if return_attention_scores:
            return output, weights
        return output

    def _update_cache(self, cache, key, value, start):
        """Write the new keys/values at `start`; the causal mask over the cache."""
        key_cache, value_cache = cache
        offset = [0, start, 0, 0]
        key_cache = keras.ops.slice_update(key_cache, offset, key)
        value_cache = keras.ops.slice_update(value_cache, offset, value)
        # Query t sits at position start + t and sees cached positions <= it.
        rows = start + tf.range(tf.shape(key)[1])[:, tf.newaxis]
        seen = tf.range(tf.shape(key_cache)[1])[tf.newaxis, :] <= rows  # (q, L)
        return key_cache, value_cache, seen

    def compute_output_shape(self, query_shape, value_shape=None):
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "head_dim": self.head_dim,
                "use_rotary": self.use_rotary,
                "max_wavelength": self.max_wavelength,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
