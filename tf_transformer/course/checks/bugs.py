"""A catalogue of typical student mistakes, one small implementation each.

Every entry is `Bug(exercise, description, make, hint)`: `make()` returns a
wrong answer (a function, or a class built on the reference with one method
rewritten the wrong way) and `hint` is a phrase the check's message must
contain. The test suite asserts that each bug fails its check with that hint,
and that the correct variants in `ALTERNATIVES` pass. Instructors may read it
as a list of what the checks catch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Bug:
    exercise: str
    description: str
    make: Callable[[], object]
    hint: str


BUGS: list[Bug] = []
ALTERNATIVES: list[Bug] = []


def bug(exercise: str, hint: str, description: str | None = None):
    def register(make):
        BUGS.append(
            Bug(exercise, description or make.__doc__ or make.__name__, make, hint)
        )
        return make

    return register


def alternative(exercise: str):
    def register(make):
        ALTERNATIVES.append(Bug(exercise, make.__doc__ or make.__name__, make, ""))
        return make

    return register


def _ref(name):
    import tf_transformer

    return getattr(tf_transformer, name)


# ------------------------------------------------------- positional_encoding


def _angles(length, depth, exponent=lambda j: 2 * (j // 2), start=0, base=10000.0):
    pos = np.arange(start, start + length)[:, None]
    j = np.arange(depth)[None, :]
    return pos / np.power(base, exponent(j) / depth)


def _interleave(even, odd):
    table = np.array(even)
    table[:, 1::2] = odd[:, 1::2]
    return tf.constant(table, tf.float32)


@bug("positional_encoding", "swapped")
def pe_swapped():
    """cos on even channels, sin on odd ones"""
    return lambda n, d: _interleave(np.cos(_angles(n, d)), np.sin(_angles(n, d)))


@bug("positional_encoding", "interleaves them")
def pe_concatenated():
    """sines then cosines, concatenated instead of interleaved"""

    def f(n, d):
        a = _angles(n, d)[:, 0::2]
        return tf.constant(np.concatenate([np.sin(a), np.cos(a)], 1), tf.float32)

    return f


@bug("positional_encoding", "pair index")
def pe_channel_exponent():
    """exponent uses the channel index j instead of 2i"""

    def f(n, d):
        a = _angles(n, d, exponent=lambda j: j)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "2i/depth")
def pe_half_exponent():
    """exponent i/depth instead of 2i/depth"""

    def f(n, d):
        a = _angles(n, d, exponent=lambda j: j // 2)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "start at 0")
def pe_from_one():
    """positions counted from 1"""

    def f(n, d):
        a = _angles(n, d, start=1)
        return _interleave(np.sin(a), np.cos(a))

    return f


@bug("positional_encoding", "float32")
def pe_float64():
    """returns float64"""
    return lambda n, d: tf.cast(_ref("positional_encoding")(n, d), tf.float64)


@bug("positional_encoding", "transposed")
def pe_transposed():
    """returns (depth, length)"""
    return lambda n, d: tf.transpose(_ref("positional_encoding")(n, d))


@alternative("positional_encoding")
def pe_loops():
    """Python loops over positions and pairs"""

    def f(length, depth):
        table = np.zeros((length, depth), np.float32)
        for pos in range(length):
            for i in range(depth // 2):
                angle = pos / 10000 ** (2 * i / depth)
                table[pos, 2 * i], table[pos, 2 * i + 1] = (
                    math.sin(angle),
                    math.cos(angle),
                )
        return table

    return f


# ----------------------------------------------- scaled_dot_product_attention


def _attention(
    scale=True, axis=-1, mask_mode="before", polarity=True, fill=-1e9, zero=True
):
    def f(query, key, value, mask=None):
        scores = tf.matmul(query, key, transpose_b=True)
        depth = tf.cast(tf.shape(key)[-1], tf.float32)
        if scale == "d":
            scores /= depth
        elif scale:
            scores /= tf.sqrt(depth)
        if mask is not None and not polarity:
            mask = tf.logical_not(mask)
        if mask is not None and mask_mode == "before":
            scores = tf.where(mask, scores, fill)
        weights = tf.nn.softmax(scores, axis=axis)
        if mask is not None and mask_mode == "after":
            weights = weights * tf.cast(mask, weights.dtype)
        if mask is not None and mask_mode == "before" and zero:
            weights = tf.where(mask, weights, 0.0)
        return tf.matmul(weights, value), weights

    return f


@bug("scaled_dot_product_attention", "not divided by √d_k")
def sdpa_no_scale():
    """no division by √d_k"""
    return _attention(scale=False)


@bug("scaled_dot_product_attention", "divided by d_k")
def sdpa_scale_by_depth():
    """divides by d_k instead of √d_k"""
    return _attention(scale="d")


@bug("scaled_dot_product_attention", "softmax over the last axis")
def sdpa_wrong_axis():
    """softmax over the queries axis"""
    return _attention(axis=-2)


@bug("scaled_dot_product_attention", "True means 'may attend'")
def sdpa_inverted_mask():
    """mask polarity inverted (1 = blocked, the 2019 convention)"""
    return _attention(polarity=False)


@bug("scaled_dot_product_attention", "before the softmax")
def sdpa_mask_after_softmax():
    """mask multiplied in after the softmax"""
    return _attention(mask_mode="after")


@bug(
    "scaled_dot_product_attention",
    "is the mask applied to the scores before the softmax",
)
def sdpa_mask_ignored():
    """mask ignored"""
    return _attention(mask_mode="ignored")


@bug("scaled_dot_product_attention", "NaN")
def sdpa_minus_infinity():
    """-inf for masked scores: a fully masked row becomes NaN"""
    return _attention(fill=-math.inf, zero=False)


@bug("scaled_dot_product_attention", "all-zero weights")
def sdpa_uniform_masked_row():
    """a fully masked row keeps the softmax's uniform weights"""
    return _attention(zero=False)


@bug("scaled_dot_product_attention", "(output, attention_weights) in that order")
def sdpa_swapped_results():
    """returns (weights, output)"""
    return lambda q, k, v, mask=None: _attention()(q, k, v, mask)[::-1]


@bug("scaled_dot_product_attention", "return the pair")
def sdpa_output_only():
    """returns only the output"""
    return lambda q, k, v, mask=None: _attention()(q, k, v, mask)[0]


@alternative("scaled_dot_product_attention")
def sdpa_einsum():
    """einsum, additive mask, then zeroed masked weights"""

    def f(query, key, value, mask=None):
        scores = tf.einsum("...qd,...kd->...qk", query, key)
        scores /= tf.sqrt(tf.cast(tf.shape(query)[-1], scores.dtype))
        if mask is not None:
            scores += (1.0 - tf.cast(mask, scores.dtype)) * -1e9
        weights = tf.nn.softmax(scores)
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)
        return tf.einsum("...qk,...kv->...qv", weights, value), weights

    return f


# ---------------------------------------------------------------- masks


@bug("padding_mask", "True must mean a real token")
def pad_inverted():
    """True at padding"""
    return lambda ids, pad_id=0: tf.equal(ids, pad_id)[:, tf.newaxis, :]


@bug("padding_mask", "add the query axis")
def pad_no_axis():
    """shape (batch, seq_len)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)


@bug("padding_mask", "wrong place")
def pad_axis_last():
    """shape (batch, seq_len, 1)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)[:, :, tf.newaxis]


@bug("padding_mask", "2019 tutorial's shape")
def pad_four_d():
    """shape (batch, 1, 1, seq_len)"""
    return lambda ids, pad_id=0: tf.not_equal(ids, pad_id)[:, tf.newaxis, tf.newaxis, :]


@bug("padding_mask", "return booleans")
def pad_float():
    """float mask"""
    return lambda ids, pad_id=0: tf.cast(tf.not_equal(ids, pad_id), tf.float32)[
        :, None, :
    ]


@bug("padding_mask", "is `pad_id` used")
def pad_hard_coded_zero():
    """pad_id ignored"""
    return lambda ids, pad_id=0: tf.not_equal(ids, 0)[:, tf.newaxis, :]


@alternative("padding_mask")
def pad_expand_dims():
    """tf.expand_dims of a comparison"""
    return lambda token_ids, pad_id=0: tf.expand_dims(token_ids != pad_id, 1)


def _tri(length, k=0, upper=False):
    ones = np.ones((length, length), dtype=bool)
    return np.triu(ones, k) if upper else np.tril(ones, k)


@bug("causal_mask", "include the diagonal")
def causal_no_diagonal():
    """excludes the diagonal"""
    return lambda n: tf.constant(_tri(n, -1))


@bug("causal_mask", "upper triangular")
def causal_upper():
    """upper triangular"""
    return lambda n: tf.constant(_tri(n, upper=True))


@bug("causal_mask", "True marks the blocked")
def causal_inverted():
    """1 = blocked (2019 tutorial)"""
    return lambda n: tf.constant(~_tri(n))


@bug("causal_mask", "off by one")
def causal_off_by_one():
    """lets query i see key i + 1"""
    return lambda n: tf.constant(_tri(n, 1))


@bug("causal_mask", "return booleans")
def causal_float():
    """float 0/1 mask"""
    return lambda n: tf.linalg.band_part(tf.ones((n, n)), -1, 0)


@bug("causal_mask", "no batch axis")
def causal_batch_axis():
    """adds a batch axis"""
    return lambda n: tf.constant(_tri(n))[tf.newaxis]


@alternative("causal_mask")
def causal_loops():
    """nested Python loops"""
    return lambda n: np.array(
        [[j <= i for j in range(n)] for i in range(n)], dtype=bool
    )


@alternative("causal_mask")
def causal_band_part():
    """tf.linalg.band_part cast to bool"""
    return lambda n: tf.cast(tf.linalg.band_part(tf.ones((n, n)), -1, 0), tf.bool)


# ------------------------------------------------------ losses and accuracy


def _per_token(y_true, y_pred, smoothing=0.0, from_logits=True):
    vocab = tf.shape(y_pred)[-1]
    target = tf.one_hot(tf.cast(y_true, tf.int32), vocab)
    target = target * (1 - smoothing) + smoothing / tf.cast(vocab, tf.float32)
    return tf.keras.losses.categorical_crossentropy(
        target, y_pred, from_logits=from_logits
    )


def _masked_mean(values, mask):
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * mask) / tf.reduce_sum(mask)


@bug("masked_loss", "includes the padding")
def loss_counts_padding():
    """plain mean over every position"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: tf.reduce_mean(
        _per_token(y, p, label_smoothing)
    )


@bug("masked_loss", "divide the masked sum by the number of non-pad tokens")
def loss_divides_by_all():
    """masked sum divided by all positions"""

    def f(y, p, label_smoothing=0.0, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        return tf.reduce_sum(_per_token(y, p, label_smoothing) * mask) / tf.cast(
            tf.size(y), tf.float32
        )

    return f


@bug("masked_loss", "averages each sentence first")
def loss_per_sentence():
    """mean of per-sentence means"""

    def f(y, p, label_smoothing=0.0, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        per = tf.reduce_sum(_per_token(y, p, label_smoothing) * mask, -1)
        return tf.reduce_mean(per / tf.maximum(tf.reduce_sum(mask, -1), 1.0))

    return f


@bug("masked_loss", "is `label_smoothing` used")
def loss_ignores_smoothing():
    """label_smoothing ignored"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: _masked_mean(
        _per_token(y, p), y != pad_id
    )


@bug("masked_loss", "is `pad_id` used")
def loss_hard_coded_pad():
    """pad_id ignored"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: _masked_mean(
        _per_token(y, p, label_smoothing), y != 0
    )


@bug("masked_loss", "expected a scalar")
def loss_per_token():
    """returns the per-token losses"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: (
        _per_token(y, p, label_smoothing) * tf.cast(y != pad_id, tf.float32)
    )


@bug("masked_loss", "from_logits=True")
def loss_probabilities():
    """treats the logits as probabilities"""
    return lambda y, p, label_smoothing=0.0, pad_id=0: _masked_mean(
        tf.keras.losses.sparse_categorical_crossentropy(y, p), y != pad_id
    )


@alternative("masked_loss")
def loss_log_softmax():
    """explicit log-softmax and gather"""

    def f(y_true, y_pred, label_smoothing=0.0, pad_id=0):
        log_probs = tf.nn.log_softmax(y_pred)
        nll = -tf.gather(log_probs, tf.cast(y_true, tf.int32), batch_dims=2)
        loss = (1 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(
            log_probs, -1
        )
        return _masked_mean(loss, y_true != pad_id)

    return f


def _correct(y, p, axis=-1):
    return tf.cast(
        tf.equal(tf.argmax(p, axis=axis, output_type=tf.int32), y), tf.float32
    )


@bug("masked_accuracy", "padding positions are counted")
def acc_counts_padding():
    """mean over every position"""
    return lambda y, p, pad_id=0: tf.reduce_mean(_correct(y, p))


@bug("masked_accuracy", "argmax over the wrong axis")
def acc_wrong_axis():
    """argmax over the time axis"""
    return lambda y, p, pad_id=0: _masked_mean(_correct(y, p, axis=1), y != pad_id)


@bug("masked_accuracy", "number of correct tokens")
def acc_count():
    """returns the count of correct tokens"""
    return lambda y, p, pad_id=0: tf.reduce_sum(
        _correct(y, p) * tf.cast(y != pad_id, tf.float32)
    )


@bug("masked_accuracy", "averages each sentence first")
def acc_per_sentence():
    """mean of per-sentence accuracies"""

    def f(y, p, pad_id=0):
        mask = tf.cast(y != pad_id, tf.float32)
        per = tf.reduce_sum(_correct(y, p) * mask, -1) / tf.maximum(
            tf.reduce_sum(mask, -1), 1.0
        )
        return tf.reduce_mean(per)

    return f


@bug("masked_accuracy", "is `pad_id` used")
def acc_hard_coded_pad():
    """pad_id ignored"""
    return lambda y, p, pad_id=0: _masked_mean(_correct(y, p), y != 0)


@bug("masked_accuracy", "float32 fraction")
def acc_float64():
    """returns float64"""
    return lambda y, p, pad_id=0: tf.cast(
        _masked_mean(_correct(y, p), y != pad_id), tf.float64
    )


@alternative("masked_accuracy")
def acc_boolean_mask():
    """tf.boolean_mask of the matches"""

    def f(y_true, y_pred, pad_id=0):
        matches = tf.boolean_mask(_correct(y_true, y_pred), y_true != pad_id)
        return tf.reduce_mean(matches)

    return f


# --------------------------------------------------------- TransformerSchedule


def _schedule(rate):
    base = _ref("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            return rate(step, float(self.d_model), float(self.warmup_steps))

    return Schedule


@bug("transformer_schedule", "step + 1")
def schedule_no_plus_one():
    """counts from 0: lr(0) = 0 · ∞"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.minimum(tf.math.rsqrt(s), s * w**-1.5)
    )


@bug("transformer_schedule", "no warm-up")
def schedule_no_warmup():
    """no warm-up"""
    return _schedule(lambda s, d, w: d**-0.5 * tf.math.rsqrt(s + 1))


@bug("transformer_schedule", "not the maximum")
def schedule_max():
    """max instead of min"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.maximum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "d_model^-0.5")
def schedule_no_scale():
    """forgets d_model^-0.5"""
    return _schedule(
        lambda s, d, w: tf.minimum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "int64 step")
def schedule_no_cast():
    """no cast: fails on the optimizer's int64 step"""
    base = _ref("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            s = step + 1
            return self.d_model**-0.5 * tf.minimum(
                tf.math.rsqrt(s), s * self.warmup_steps**-1.5
            )

    return Schedule


@bug("transformer_schedule", "symbolic step")
def schedule_python_math():
    """Python math: fails on a symbolic step"""
    base = _ref("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            s = float(step) + 1
            return self.d_model**-0.5 * min(s**-0.5, s * self.warmup_steps**-1.5)

    return Schedule


# --------------------------------------------------------------- layers


def _override(name, call):
    base = _ref(name)
    return type(f"Buggy{name}", (base,), {"call": call})


@bug("feed_forward", "dropout is active at inference")
def ffn_dropout_always():
    """dropout with training=True always"""

    def call(self, inputs, training=None):
        x = self.output_dense(self.intermediate_dense(inputs))
        return self.dropout_layer(x, training=True)

    return _override("FeedForward", call)


@bug("feed_forward", "is dropout applied")
def ffn_no_dropout():
    """no dropout"""
    return _override(
        "FeedForward",
        lambda self, inputs, training=None: self.output_dense(
            self.intermediate_dense(inputs)
        ),
    )


@bug("feed_forward", "residual belongs to the encoder layer")
def ffn_residual():
    """adds the input (residual inside the FFN)"""

    def call(self, inputs, training=None):
        x = self.output_dense(self.intermediate_dense(inputs))
        return inputs + self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


@bug("feed_forward", "no activation after the second Dense")
def ffn_relu_output():
    """relu on the output too"""

    def call(self, inputs, training=None):
        x = tf.nn.relu(self.output_dense(self.intermediate_dense(inputs)))
        return self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


@bug("feed_forward", "apply the dropout to the output of the second Dense")
def ffn_dropout_inside():
    """dropout between the two Dense layers"""

    def call(self, inputs, training=None):
        x = self.dropout_layer(self.intermediate_dense(inputs), training=training)
        return self.output_dense(x)

    return _override("FeedForward", call)


@bug("feed_forward", "raised")
def ffn_static_batch():
    """reads the static batch size (fails with an unknown batch)"""

    def call(self, inputs, training=None):
        batch, length = inputs.shape[0], inputs.shape[1]
        x = tf.reshape(inputs, (batch * length, self.d_model))
        x = self.output_dense(self.intermediate_dense(x))
        x = tf.reshape(x, (batch, length, self.d_model))
        return self.dropout_layer(x, training=training)

    return _override("FeedForward", call)


def _mha(
    split="transpose", use_output=True, causal=True, mask=True, polarity=True, key="ok"
):
    attention = _ref("scaled_dot_product_attention")

    def call(
        self,
        query,
        value,
        key_tensor=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        **kwargs,
    ):
        key_input = kwargs.pop("key", key_tensor)
        if key_input is None or key == "ignored":
            key_input = value
        if key == "swapped":
            key_input, value = value, key_input

        def heads(x, depth):
            b, t = tf.shape(x)[0], tf.shape(x)[1]
            if split == "reshape":
                return tf.reshape(x, (b, self.num_heads, t, depth))
            return tf.transpose(
                tf.reshape(x, (b, t, self.num_heads, depth)), (0, 2, 1, 3)
            )

        q = heads(self.query_dense(query), self._key_dim)
        k = heads(self.key_dense(key_input), self._key_dim)
        v = heads(self.value_dense(value), self._value_dim)
        masks = []
        if attention_mask is not None and mask:
            m = tf.cast(attention_mask, tf.bool)
            masks.append(m if polarity else tf.logical_not(m))
        if use_causal_mask and causal:
            masks.append(_ref("causal_mask")(tf.shape(query)[1]))
        combined = _ref("combine_masks")(*masks)
        if combined is not None and combined.shape.rank == 3:
            combined = combined[:, tf.newaxis]
        out, weights = attention(q, k, v, combined)
        b, t = tf.shape(out)[0], tf.shape(out)[2]
        out = tf.reshape(
            tf.transpose(out, (0, 2, 1, 3)), (b, t, self.num_heads * self._value_dim)
        )
        if use_output:
            out = self.output_dense(out)
        return (out, weights) if return_attention_scores else out

    base = _ref("MultiHeadAttention")

    def wrapper(self, query, value, key=None, **kwargs):
        return call(self, query, value, key, **kwargs)

    return type("BuggyMultiHeadAttention", (base,), {"call": wrapper})


@bug("multi_head_attention", "split the heads with reshape")
def mha_no_transpose():
    """heads split by reshape without transpose"""
    return _mha(split="reshape")


@bug("multi_head_attention", "W_O")
def mha_no_output_projection():
    """W_O missing"""
    return _mha(use_output=False)


@bug("multi_head_attention", "honour use_causal_mask")
def mha_ignores_causal():
    """use_causal_mask ignored"""
    return _mha(causal=False)


@bug("multi_head_attention", "ignores attention_mask")
def mha_ignores_mask():
    """attention_mask ignored"""
    return _mha(mask=False)


@bug("multi_head_attention", "mask is inverted")
def mha_inverted_mask():
    """attention_mask inverted"""
    return _mha(polarity=False)


@bug("multi_head_attention", "`key` is ignored")
def mha_ignores_key():
    """key argument ignored"""
    return _mha(key="ignored")


@bug("multi_head_attention", "keys and values are swapped")
def mha_swaps_key_value():
    """key and value swapped"""
    return _mha(key="swapped")


def _encoder(residual=(True, True), post_norm=True, dropout="ok", padding=True):
    base = _ref("EncoderLayer")

    def call(
        self, inputs, padding_mask=None, attention_mask=None, training=None, **kwargs
    ):
        drop_training = True if dropout == "always" else training
        mask = None
        if padding_mask is not None and padding:
            mask = tf.cast(padding_mask, tf.bool)
        x = inputs
        y = self.self_attention_layer_norm(x) if self.norm_first else x
        y = self.self_attention(y, y, attention_mask=mask, training=training)
        y = self.self_attention_dropout(y, training=drop_training)
        if not self.norm_first and not post_norm:
            y = self.self_attention_layer_norm(y)
        x = x + y if residual[0] else y
        if not self.norm_first and post_norm:
            x = self.self_attention_layer_norm(x)
        y = self.feed_forward_layer_norm(x) if self.norm_first else x
        y = self.feed_forward(y, training=drop_training)
        if not self.norm_first and not post_norm:
            y = self.feed_forward_layer_norm(y)
        x = x + y if residual[1] else y
        if not self.norm_first and post_norm:
            x = self.feed_forward_layer_norm(x)
        return x

    return type("BuggyEncoderLayer", (base,), {"call": call})


@bug("encoder_layer", "residual around self-attention is missing")
def encoder_no_attention_residual():
    """no residual around self-attention"""
    return _encoder(residual=(False, True))


@bug("encoder_layer", "residual around the feed-forward network is missing")
def encoder_no_ffn_residual():
    """no residual around the FFN"""
    return _encoder(residual=(True, False))


@bug("encoder_layer", "LayerNorm")
def encoder_norm_on_sublayer():
    """LayerNorm on the sublayer output, not on the sum"""
    return _encoder(post_norm=False)


@bug("encoder_layer", "dropout is active at inference")
def encoder_dropout_always():
    """dropout always on"""
    return _encoder(dropout="always")


@bug("encoder_layer", "is `padding_mask` used")
def encoder_ignores_padding():
    """padding_mask ignored"""
    return _encoder(padding=False)


@bug("encoder_layer", "norm_first=True")
def encoder_ignores_norm_first():
    """always post-LN, even with norm_first=True"""
    base = _encoder()

    def call(self, inputs, padding_mask=None, training=None, **kwargs):
        first, self.norm_first = self.norm_first, False
        try:
            return base.call(self, inputs, padding_mask=padding_mask, training=training)
        finally:
            self.norm_first = first

    return type("BuggyEncoderLayer", (base,), {"call": call})


def _decoder(causal=True, cross="ok", residual=True, dropout="ok", memory_mask=True):
    base = _ref("DecoderLayer")

    def call(
        self,
        inputs,
        encoder_outputs,
        padding_mask=None,
        encoder_padding_mask=None,
        use_causal_mask=True,
        training=None,
        **kwargs,
    ):
        drop_training = True if dropout == "always" else training
        self_mask = None if padding_mask is None else tf.cast(padding_mask, tf.bool)
        cross_mask = None
        if encoder_padding_mask is not None and memory_mask:
            cross_mask = tf.cast(encoder_padding_mask, tf.bool)
        x = inputs
        norm = self.norm_first

        def block(x, layer_norm, sublayer, dropout_layer):
            y = layer_norm(x) if norm else x
            y = sublayer(y)
            if dropout_layer is not None:
                y = dropout_layer(y, training=drop_training)
            x = x + y if residual else y
            return x if norm else layer_norm(x)

        x = block(
            x,
            self.self_attention_layer_norm,
            lambda y: self.self_attention(
                y,
                y,
                attention_mask=self_mask,
                use_causal_mask=use_causal_mask and causal,
            ),
            self.self_attention_dropout,
        )
        if cross == "self":
            sub = lambda y: self.cross_attention(y, y)  # noqa: E731
        elif cross == "swapped":
            sub = lambda y: self.cross_attention(encoder_outputs, y)  # noqa: E731
        else:
            sub = lambda y: self.cross_attention(  # noqa: E731
                y, encoder_outputs, attention_mask=cross_mask
            )
        if cross == "swapped":
            x = sub(x)
        else:
            x = block(
                x, self.cross_attention_layer_norm, sub, self.cross_attention_dropout
            )
        return block(
            x,
            self.feed_forward_layer_norm,
            lambda y: self.feed_forward(y, training=drop_training),
            None,
        )

    return type("BuggyDecoderLayer", (base,), {"call": call})


@bug("decoder_layer", "needs the causal mask")
def decoder_no_causal():
    """no causal mask in self-attention"""
    return _decoder(causal=False)


@bug("decoder_layer", "does not depend on encoder_outputs")
def decoder_cross_is_self():
    """cross-attention attends to the decoder itself"""
    return _decoder(cross="self")


@bug("decoder_layer", "queries come from the decoder")
def decoder_cross_swapped():
    """cross-attention queries from the encoder"""
    return _decoder(cross="swapped")


@bug("decoder_layer", "residual")
def decoder_no_residual():
    """no residual connections"""
    return _decoder(residual=False)


@bug("decoder_layer", "dropout is active at inference")
def decoder_dropout_always():
    """dropout always on"""
    return _decoder(dropout="always")


@bug("decoder_layer", "use encoder_padding_mask")
def decoder_ignores_memory_mask():
    """encoder_padding_mask ignored"""
    return _decoder(memory_mask=False)


# --------------------------------------------------------------- greedy_decode


def _greedy(
    first=2,
    feed="prefix",
    position=-1,
    forbid=True,
    stop="row",
    keep_end=True,
    axis=-1,
    training=False,
    output="generated",
    pad=True,
    dtype=tf.int32,
    batch="dynamic",
    default_length=True,
    early_break=False,
):
    """A Python-loop greedy decoder that re-runs the model, with one mistake."""
    pad_id, end_id = 0, 3

    def greedy_decode(model, source_ids, max_length=None, use_cache=True):
        source_ids = tf.convert_to_tensor(source_ids, tf.int32)
        if max_length is None and default_length:
            max_length = source_ids.shape[1] + 10
        size = source_ids.shape[0] if batch == "static" else tf.shape(source_ids)[0]
        tokens = tf.fill((size, 1), first)
        done = tf.zeros((size,), tf.bool)
        for i in range(max_length):
            if feed == "last":
                inputs = tokens[:, -1:]
            elif feed == "buffer":
                inputs = tf.pad(tokens, [[0, 0], [0, max_length - i]])
            else:
                inputs = tokens
            logits = model((source_ids, inputs), training=training)
            if forbid:
                vocab = tf.range(tf.shape(logits)[-1])
                special = (vocab == pad_id) | (vocab == 2)
                logits = tf.where(special, -1e9, logits)
            if axis == 1:
                next_ids = tf.argmax(logits, axis=1, output_type=tf.int32)[:, -1]
            else:
                step = i + 1 if position == "next" else position
                next_ids = tf.argmax(logits[:, step], axis=-1, output_type=tf.int32)
            if stop != "never":
                next_ids = tf.where(done, pad_id, next_ids)
            done = done | (next_ids == end_id)
            if not keep_end:
                next_ids = tf.where(next_ids == end_id, pad_id, next_ids)
            tokens = tf.concat([tokens, next_ids[:, tf.newaxis]], axis=1)
            if stop == "any" and bool(tf.reduce_any(done)):
                break
            if not pad and bool(tf.reduce_all(done)):
                break
            if early_break and tf.reduce_all(done):  # a tensor condition
                break
        ids = tokens[:, :-1] if output == "with_start" else tokens[:, 1:]
        if pad:
            ids = tf.pad(ids, [[0, 0], [0, max_length - tf.shape(ids)[1]]])
        return tf.cast(ids, dtype)

    return greedy_decode


@bug("greedy_decode", "must be [START]")
def decode_no_start():
    """the decoder input starts with [PAD] instead of [START]"""
    return _greedy(first=0)


@bug("greedy_decode", "feed the whole prefix")
def decode_last_token_only():
    """feeds only the newest token (no cache) instead of the prefix"""
    return _greedy(feed="last")


@bug("greedy_decode", "off by one")
def decode_reads_next_position():
    """0-padded buffer, reads the logits one position too far"""
    return _greedy(feed="buffer", position="next")


@bug("greedy_decode", "end of the 0-padded buffer")
def decode_reads_buffer_end():
    """0-padded buffer, reads the logits of its last position"""
    return _greedy(feed="buffer", position=-1)


@bug("greedy_decode", "logits of position 0")
def decode_reads_first_position():
    """reads the logits of the first position at every step"""
    return _greedy(position=0)


@bug("greedy_decode", "argmax over the vocabulary")
def decode_argmax_time_axis():
    """argmax over the time axis"""
    return _greedy(axis=1)


@bug("greedy_decode", "must never be generated")
def decode_special_tokens():
    """[PAD] and [START] not masked before the argmax"""
    return _greedy(forbid=False)


@bug("greedy_decode", "goes on after its [END]")
def decode_no_stop():
    """rows keep generating after [END]"""
    return _greedy(stop="never")


@bug("greedy_decode", "each row stops at its own")
def decode_stops_all_rows():
    """the whole batch stops at the first [END]"""
    return _greedy(stop="any")


@bug("greedy_decode", "keep the [END] token")
def decode_drops_end():
    """writes 0 instead of [END]"""
    return _greedy(keep_end=False)


@bug("greedy_decode", "drop the first column")
def decode_returns_start():
    """returns [START] as the first output token"""
    return _greedy(output="with_start")


@bug("greedy_decode", "pad with 0 when every row finished early")
def decode_unpadded():
    """returns fewer than max_length columns when every row finished"""
    return _greedy(pad=False)


@bug("greedy_decode", "training=False")
def decode_with_dropout():
    """calls the model with training=True"""
    return _greedy(training=True)


@bug("greedy_decode", "int32")
def decode_int64():
    """returns int64 ids"""
    return _greedy(dtype=tf.int64)


@bug("greedy_decode", "source length + 10")
def decode_no_default_length():
    """max_length=None not handled"""
    return _greedy(default_length=False)


@bug("greedy_decode", "tf.shape(source_ids)[0]")
def decode_static_batch():
    """reads the static batch size (None inside tf.function)"""
    return _greedy(batch="static")


@bug("greedy_decode", "cannot `break` on a tensor")
def decode_python_break():
    """Python loop left with `break` on a tensor (fails in tf.function)"""
    return _greedy(early_break=True)


@alternative("greedy_decode")
def decode_python_loop():
    """re-runs the whole model on the prefix for all max_length steps"""
    return _greedy()


@alternative("greedy_decode")
def decode_buffer_tf_range():
    """fixed-size token buffer, `for i in tf.range`, early stop, model re-run"""

    def greedy_decode(model, source_ids, max_length=None, use_cache=True):
        source_ids = tf.cast(source_ids, tf.int32)
        if max_length is None:
            max_length = tf.shape(source_ids)[1] + 10
        batch = tf.shape(source_ids)[0]
        tokens = tf.concat(
            [tf.fill((batch, 1), 2), tf.zeros((batch, max_length), tf.int32)], 1
        )
        done = tf.zeros((batch,), tf.bool)
        special = tf.one_hot(0, model.target_vocab_size) + tf.one_hot(
            2, model.target_vocab_size
        )
        for i in tf.range(max_length):
            if tf.reduce_all(done):
                break
            logits = model((source_ids, tokens[:, :-1]), training=False)[:, i]
            next_ids = tf.argmax(logits - 1e9 * special, -1, output_type=tf.int32)
            next_ids = tf.where(done, 0, next_ids)
            column = tf.range(max_length + 1) == i + 1
            tokens = tf.where(column, next_ids[:, tf.newaxis], tokens)
            done = done | (next_ids == 3)
        return tokens[:, 1:]

    return greedy_decode


# ------------------------------------------------------ top_k_filter (lesson 11)

_NEG_INF = float("-inf")


def _below(logits, threshold, fill=_NEG_INF):
    """Entries below `threshold` replaced by `fill` (dtype kept)."""
    return tf.where(logits < threshold, tf.cast(fill, logits.dtype), logits)


@bug("top_k_filter", "keeps k + 1 tokens")
def top_k_one_too_many():
    """k + 1 kept: the threshold is the (k + 1)-th largest value"""

    def top_k_filter(logits, k):
        k = tf.minimum(k + 1, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:])

    return top_k_filter


@bug("top_k_filter", "keeps the k smallest")
def top_k_smallest():
    """the k smallest kept (top_k of the negated logits)"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        kth_smallest = -tf.math.top_k(-logits, k).values[..., -1:]
        return tf.where(logits > kth_smallest, tf.cast(_NEG_INF, logits.dtype), logits)

    return top_k_filter


@bug("top_k_filter", "removed entries are 0")
def top_k_zero_fill():
    """0 instead of −inf for the removed tokens"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:], fill=0.0)

    return top_k_filter


@bug("top_k_filter", "filters along axis 0")
def top_k_wrong_axis():
    """filters along the batch axis (top_k of the transposed logits)"""

    def top_k_filter(logits, k):
        columns = tf.transpose(logits)  # (vocab, batch): the wrong way round
        k = tf.minimum(k, tf.shape(columns)[-1])
        kth = tf.math.top_k(columns, k).values[..., -1:]
        return tf.transpose(_below(columns, kth))

    return top_k_filter


@bug("top_k_filter", "ties with the k-th largest value are kept")
def top_k_ties_dropped():
    """exactly k kept: top_k's indices scattered into a mask, ties dropped"""

    def top_k_filter(logits, k):
        k = tf.minimum(k, tf.shape(logits)[-1])
        indices = tf.math.top_k(logits, k).indices
        kept = tf.reduce_any(
            tf.one_hot(indices, tf.shape(logits)[-1], on_value=True, off_value=False),
            axis=-2,
        )
        return tf.where(kept, logits, tf.cast(_NEG_INF, logits.dtype))

    return top_k_filter


@bug("top_k_filter", "k at least the vocabulary size must change nothing")
def top_k_no_clip():
    """k larger than the vocabulary is passed to tf.math.top_k (an error)"""
    return lambda logits, k: _below(logits, tf.math.top_k(logits, k).values[..., -1:])


@bug("top_k_filter", "any number of leading axes")
def top_k_rank_two_only():
    """assumes (batch, vocab): the threshold is read with [:, k - 1]"""

    def top_k_filter(logits, k):
        k = min(k, logits.shape[-1])
        kth = tf.sort(logits, direction="DESCENDING")[:, k - 1]
        return _below(logits, kth[:, tf.newaxis])

    return top_k_filter


@bug("top_k_filter", "keep the logits' dtype")
def top_k_float32():
    """casts to float32 and returns float32"""

    def top_k_filter(logits, k):
        logits = tf.cast(logits, tf.float32)
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:])

    return top_k_filter


@bug("top_k_filter", "a temperature belongs to the sampler")
def top_k_temperature_multiplied():
    """the kept logits multiplied by a temperature of 0.7"""

    def top_k_filter(logits, k, temperature=0.7):
        k = tf.minimum(k, tf.shape(logits)[-1])
        return _below(logits, tf.math.top_k(logits, k).values[..., -1:]) * temperature

    return top_k_filter


@bug("top_k_filter", "so it runs inside tf.function")
def top_k_numpy():
    """NumPy on .numpy(): right eagerly, fails inside tf.function"""

    def top_k_filter(logits, k):
        values = logits.numpy()
        kth = np.sort(values, axis=-1)[..., ::-1][..., min(k, values.shape[-1]) - 1]
        kept = np.where(values < kth[..., None], -np.inf, values)
        return tf.constant(kept, logits.dtype)

    return top_k_filter


@alternative("top_k_filter")
def top_k_sorted_threshold():
    """threshold from tf.sort and tf.gather, k clipped in Python when known"""

    def top_k_filter(logits, k):
        vocab = tf.shape(logits)[-1]
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
        kth = tf.gather(ranked, [tf.minimum(k, vocab) - 1], axis=-1)
        return tf.where(logits >= kth, logits, -np.inf * tf.ones_like(logits))

    return top_k_filter


@alternative("top_k_filter")
def top_k_flattened_rows():
    """flattened to (rows, vocab), filtered, reshaped back"""

    def top_k_filter(logits, k):
        shape = tf.shape(logits)
        rows = tf.reshape(logits, (-1, shape[-1]))
        values, _ = tf.math.top_k(rows, tf.minimum(k, shape[-1]))
        smallest_kept = tf.reduce_min(values, axis=1, keepdims=True)
        masked = tf.where(
            rows < smallest_kept, float("-inf"), tf.cast(rows, tf.float32)
        )
        return tf.cast(tf.reshape(masked, shape), logits.dtype)

    return top_k_filter


# ------------------------------------------------------ top_p_filter (lesson 11)


def _nucleus(
    logits,
    p,
    *,
    direction="DESCENDING",
    crossing_kept=True,
    softmax=True,
    sort=True,
    fill=_NEG_INF,
    axis=-1,
):
    """A top-p filter with knobs for the catalogue's mistakes."""
    scores = (
        tf.nn.softmax(tf.cast(logits, tf.float32), axis=axis) if softmax else logits
    )
    scores = tf.cast(scores, tf.float32)
    ranked = tf.sort(scores, axis=axis, direction=direction) if sort else scores
    total = tf.cumsum(ranked, axis=axis)
    needed = total - ranked < p if crossing_kept else total <= p
    if not sort:  # the set is read in vocabulary order
        return tf.where(needed, logits, tf.cast(fill, logits.dtype))
    smallest = tf.reduce_min(tf.where(needed, ranked, np.inf), axis=axis, keepdims=True)
    if direction == "ASCENDING":
        largest = tf.reduce_max(
            tf.where(needed, ranked, -np.inf), axis=axis, keepdims=True
        )
        return tf.where(scores > largest, tf.cast(fill, logits.dtype), logits)
    return tf.where(scores < smallest, tf.cast(fill, logits.dtype), logits)


@bug("top_p_filter", "the token whose probability crosses p is missing")
def top_p_drops_crossing_token():
    """keeps tokens while the running total including them is <= p"""
    return lambda logits, p: _nucleus(logits, p, crossing_kept=False)


@bug("top_p_filter", "sort the probabilities in descending order")
def top_p_no_sort():
    """cumulative sum in vocabulary order, without sorting"""
    return lambda logits, p: _nucleus(logits, p, sort=False)


@bug("top_p_filter", "keeps the least probable tokens")
def top_p_ascending():
    """sorted in ascending order"""
    return lambda logits, p: _nucleus(logits, p, direction="ASCENDING")


@bug("top_p_filter", "removed entries are 0")
def top_p_zero_fill():
    """0 instead of −inf for the removed tokens"""
    return lambda logits, p: _nucleus(logits, p, fill=0.0)


@bug("top_p_filter", "turn them into probabilities with a softmax")
def top_p_on_logits():
    """cumulative sum of the logits, no softmax"""
    return lambda logits, p: _nucleus(logits, p, softmax=False)


@bug("top_p_filter", "filters along axis 0")
def top_p_wrong_axis():
    """softmax, sort and sum along axis 0"""
    return lambda logits, p: _nucleus(logits, p, axis=0)


@bug("top_p_filter", "rounding makes the running total")
def top_p_one_not_special():
    """p = 1 goes through the float32 running total (rounding drops tiny tokens)"""
    return lambda logits, p: _nucleus(logits, p)


@bug("top_p_filter", "keep the logits' dtype")
def top_p_float32():
    """returns float32 for any input"""
    return lambda logits, p: tf.cast(
        logits if p == 1 else _nucleus(logits, p), "float32"
    )


@bug("top_p_filter", "a temperature belongs to the sampler")
def top_p_temperature_multiplied():
    """the kept logits multiplied by a temperature of 0.7"""

    def top_p_filter(logits, p, temperature=0.7):
        return logits if p == 1 else _nucleus(logits, p) * temperature

    return top_p_filter


@bug("top_p_filter", "any number of leading axes")
def top_p_rank_two_only():
    """assumes (batch, vocab): sorts with argsort and gathers with batch_dims=1"""

    def top_p_filter(logits, p):
        if p == 1:
            return logits
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        order = tf.argsort(probabilities, direction="DESCENDING")
        ranked = tf.gather(probabilities, order, batch_dims=1)
        needed = tf.cumsum(ranked, axis=1, exclusive=True) < p
        inverse = tf.argsort(order)
        kept = tf.gather(needed, inverse, batch_dims=1)
        return tf.where(kept, logits, tf.cast(_NEG_INF, logits.dtype))

    return top_p_filter


@alternative("top_p_filter")
def top_p_argsort_scatter():
    """argsort, exclusive cumsum, the kept flags put back with the inverse order"""

    def top_p_filter(logits, p):
        if p >= 1:
            return logits
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        order = tf.argsort(probabilities, axis=-1, direction="DESCENDING")
        ranked = tf.gather(probabilities, order, batch_dims=order.shape.rank - 1)
        needed = tf.cumsum(ranked, axis=-1, exclusive=True) < p
        inverse = tf.argsort(order, axis=-1)
        kept = tf.gather(needed, inverse, batch_dims=order.shape.rank - 1)
        return tf.where(kept, logits, tf.cast(-np.inf, logits.dtype))

    return top_p_filter


@alternative("top_p_filter")
def top_p_log_space_threshold():
    """the smallest kept probability as a logit threshold (log-softmax)"""

    def top_p_filter(logits, p):
        if p == 1:
            return logits
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        ranked = tf.sort(log_probs, direction="DESCENDING")
        before = tf.cumsum(tf.exp(ranked), axis=-1) - tf.exp(ranked)
        threshold = tf.reduce_min(
            tf.where(before < p, ranked, ranked[..., :1]), axis=-1, keepdims=True
        )
        removed = log_probs < threshold
        return tf.where(removed, tf.constant(-np.inf, logits.dtype), logits)

    return top_p_filter
