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
    scale=True,
    axis=-1,
    mask_mode="before",
    polarity=True,
    fill=-1e9,
    zero=True,
    use_dropout=True,
    returned="before dropout",
    dtype="value",
    float32_scores=True,
):
    def f(query, key, value, mask=None, dropout=None):
        scores = tf.matmul(query, key, transpose_b=True)
        if float32_scores:
            scores = tf.cast(scores, tf.float32)
        depth = tf.cast(tf.shape(key)[-1], scores.dtype)
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
            weights = tf.where(mask, weights, tf.zeros_like(weights))
        if dtype == "value":
            weights = tf.cast(weights, value.dtype)
        dropped = dropout(weights) if dropout is not None and use_dropout else weights
        output = tf.matmul(tf.cast(dropped, value.dtype), value)
        if dtype == "float32":
            output = tf.cast(output, tf.float32)
        return output, dropped if returned == "after dropout" else weights

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


@bug("scaled_dot_product_attention", "`dropout` was not applied")
def sdpa_ignores_dropout():
    """accepts `dropout` but never calls it"""
    return _attention(use_dropout=False)


@bug("scaled_dot_product_attention", "as they were before dropout")
def sdpa_returns_dropped_weights():
    """returns the weights after dropout"""
    return _attention(returned="after dropout")


@bug("scaled_dot_product_attention", "in the dtype of `value`")
def sdpa_float32_results():
    """returns float32 results for float16 inputs"""
    return _attention(dtype="float32")


@bug("scaled_dot_product_attention", "overflows")
def sdpa_float16_minus_1e9():
    """masks with -1e9 in the inputs' dtype: -inf and NaN in float16"""

    def f(query, key, value, mask=None, dropout=None):
        scores = tf.matmul(query, key, transpose_b=True)
        scores /= tf.sqrt(tf.cast(tf.shape(key)[-1], scores.dtype))
        if mask is not None:
            scores += (1.0 - tf.cast(mask, scores.dtype)) * -1e9
        weights = tf.nn.softmax(scores)
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)
        attended = weights if dropout is None else dropout(weights)
        return tf.matmul(attended, value), weights

    return f


@alternative("scaled_dot_product_attention")
def sdpa_einsum():
    """einsum, additive mask in float32, then zeroed masked weights"""

    def f(query, key, value, mask=None, dropout=None):
        scores = tf.einsum("...qd,...kd->...qk", query, key)
        scores = tf.cast(scores, tf.float32)
        scores /= tf.sqrt(tf.cast(tf.shape(query)[-1], tf.float32))
        if mask is not None:
            scores += (1.0 - tf.cast(mask, tf.float32)) * -1e9
        weights = tf.nn.softmax(scores)
        if mask is not None:
            weights *= tf.cast(mask, weights.dtype)
        weights = tf.cast(weights, value.dtype)
        attended = weights if dropout is None else dropout(weights)
        return tf.einsum("...qk,...kv->...qv", attended, value), weights

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


@bug("padding_mask", "use TensorFlow ops")
def pad_numpy():
    """NumPy comparison: fails inside tf.function, where the ids are symbolic"""
    return lambda ids, pad_id=0: tf.constant((np.asarray(ids) != pad_id)[:, None, :])


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


@bug("causal_mask", "length may be a scalar tensor")
def causal_loops():
    """nested Python loops over range(length): fails for a tensor length"""
    return lambda n: np.array(
        [[j <= i for j in range(n)] for i in range(n)], dtype=bool
    )


@bug("causal_mask", "length may be a scalar tensor")
def causal_numpy_tril():
    """np.tril of a NumPy array: a symbolic length has no value in tf.function"""
    return lambda n: tf.constant(np.tril(np.ones((n, n), dtype=bool)))


@alternative("causal_mask")
def causal_sequence_mask():
    """row i keeps its first i + 1 positions (tf.sequence_mask)"""
    return lambda n: tf.sequence_mask(tf.range(1, n + 1), n)


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
            return (
                self.scale
                * self.d_model**-0.5
                * tf.minimum(tf.math.rsqrt(s), s * self.warmup_steps**-1.5)
            )

    return Schedule


@bug("transformer_schedule", "symbolic step")
def schedule_python_math():
    """Python math: fails on a symbolic step"""
    base = _ref("TransformerSchedule")

    class Schedule(base):
        def __call__(self, step):
            s = float(step) + 1
            rate = min(s**-0.5, s * self.warmup_steps**-1.5)
            return self.scale * self.d_model**-0.5 * rate

    return Schedule


@bug("transformer_schedule", "by `scale`")
def schedule_ignores_scale():
    """the `scale` argument is stored but never used"""
    return _schedule(
        lambda s, d, w: d**-0.5 * tf.minimum(tf.math.rsqrt(s + 1), (s + 1) * w**-1.5)
    )


@bug("transformer_schedule", "return every constructor argument")
def schedule_config_without_scale():
    """get_config leaves out `scale`"""
    base = _ref("TransformerSchedule")

    class Schedule(base):
        def get_config(self):
            return {"d_model": self.d_model, "warmup_steps": self.warmup_steps}

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


# ------------------------------------------------------------ extract_patches


def _patches(order=(0, 1, 3, 2, 4, 5), batch_from_shape=False, dtype=None):
    """Split into (batch, rows, p, columns, p, channels), permute, flatten."""

    def extract_patches(images, patch_size):
        images = tf.convert_to_tensor(images)
        _, height, width, channels = images.shape
        rows, columns = height // patch_size, width // patch_size
        batch = images.shape[0] if batch_from_shape else tf.shape(images)[0]
        split = tf.reshape(
            images, (batch, rows, patch_size, columns, patch_size, channels)
        )
        patches = tf.reshape(tf.transpose(split, order), (batch, rows * columns, -1))
        return patches if dtype is None else tf.cast(patches, dtype)

    return extract_patches


@bug("extract_patches", "column order")
def patches_column_order():
    """patches read top to bottom first (columns of the grid before rows)"""
    return _patches(order=(0, 3, 1, 2, 4, 5))


@bug("extract_patches", "channels first")
def patches_channels_first():
    """each patch flattened channel by channel, (channels, p, p)"""
    return _patches(order=(0, 1, 3, 5, 2, 4))


@bug("extract_patches", "column by column")
def patches_pixel_columns():
    """the pixels of a patch flattened column by column"""
    return _patches(order=(0, 1, 3, 4, 2, 5))


@bug("extract_patches", "plain reshape")
def patches_plain_reshape():
    """the classic: one reshape of the image, without the transpose"""

    def extract_patches(images, patch_size):
        _, height, width, channels = images.shape
        count = (height // patch_size) * (width // patch_size)
        return tf.reshape(images, (-1, count, patch_size * patch_size * channels))

    return extract_patches


@bug("extract_patches", "overlap")
def patches_overlapping():
    """sliding windows with stride 1 instead of patch_size"""

    def extract_patches(images, patch_size):
        windows = tf.image.extract_patches(
            images,
            sizes=[1, patch_size, patch_size, 1],
            strides=[1, 1, 1, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )
        return tf.reshape(windows, (tf.shape(images)[0], -1, windows.shape[-1]))

    return extract_patches


@bug("extract_patches", "not flattened")
def patches_grid():
    """returns the (batch, rows, columns, p·p·channels) grid"""

    def extract_patches(images, patch_size):
        return tf.nn.space_to_depth(images, patch_size)

    return extract_patches


@bug("extract_patches", "wrong patch count")
def patches_count_not_squared():
    """counts height · width / patch_size patches (forgets patch_size²)"""

    def extract_patches(images, patch_size):
        _, height, width, _ = images.shape
        patches = _patches()(images, patch_size)
        return tf.reshape(
            patches, (tf.shape(images)[0], height * width // patch_size, -1)
        )

    return extract_patches


@bug("extract_patches", "keep the dtype")
def patches_cast_to_float32():
    """casts the patches to float32"""
    return _patches(dtype=tf.float32)


@bug("extract_patches", "tf.shape(images)[0]")
def patches_static_batch():
    """takes the batch size from images.shape[0] (None while tracing)"""
    return _patches(batch_from_shape=True)


@bug("extract_patches", "batch axis is missing")
def patches_first_image_only():
    """drops the batch axis (patches of all images in one list)"""

    def extract_patches(images, patch_size):
        patches = _patches()(images, patch_size)
        return tf.reshape(patches, (-1, patches.shape[-1]))[: patches.shape[1]]

    return extract_patches


@alternative("extract_patches")
def patches_tf_image():
    """tf.image.extract_patches with strides = sizes = patch_size"""

    def extract_patches(images, patch_size):
        windows = tf.image.extract_patches(
            images,
            sizes=[1, patch_size, patch_size, 1],
            strides=[1, patch_size, patch_size, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )  # (batch, rows, columns, p·p·channels)
        count = windows.shape[1] * windows.shape[2]
        return tf.reshape(windows, (-1, count, windows.shape[3]))

    return extract_patches


@alternative("extract_patches")
def patches_space_to_depth():
    """tf.nn.space_to_depth, whose depth is ordered (row, column, channel)"""

    def extract_patches(images, patch_size):
        if patch_size > 1:  # space_to_depth needs blocks of 2 pixels or more
            blocks = tf.nn.space_to_depth(images, patch_size)
        else:
            blocks = images
        _, rows, columns, values = blocks.shape
        return tf.reshape(blocks, (tf.shape(blocks)[0], rows * columns, values))

    return extract_patches


@alternative("extract_patches")
def patches_python_loops():
    """Python loops over the patch grid, slicing and stacking"""

    def extract_patches(images, patch_size):
        _, height, width, channels = images.shape
        batch = tf.shape(images)[0]
        patches = []
        for top in range(0, height, patch_size):
            for left in range(0, width, patch_size):
                window = images[:, top : top + patch_size, left : left + patch_size]
                patches.append(tf.reshape(window, (batch, -1)))
        return tf.stack(patches, axis=1)

    return extract_patches


# ------------------------------------------------------------- mask_tokens


def _masking(
    select_special=False,
    pool="allowed",
    decide="one_draw",
    fixed_rate=None,
    fixed_split=None,
    selection_shape="full",
    none_seed=None,
    use_seed=True,
    output_dtype=None,
    static_shape=False,
):
    """`mask_tokens` with one mistake switched on by each argument."""

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
        ids = tf.convert_to_tensor(token_ids)
        rate = fixed_rate if fixed_rate is not None else rate
        if fixed_split is not None:
            mask_token_rate, random_token_rate = fixed_split
        shape = ids.shape if static_shape else tf.shape(ids)
        if seed is None:
            seed = none_seed
        if seed is None or not use_seed:
            draw = lambda s, **kw: tf.random.uniform(s, **kw)  # noqa: E731
        else:
            if isinstance(seed, int):
                pair = tf.constant([seed, 0], tf.int64)
            else:
                pair = tf.cast(seed, tf.int64)
            streams = iter(tf.unstack(tf.random.experimental.stateless_split(pair, 4)))
            draw = lambda s, **kw: tf.random.stateless_uniform(  # noqa: E731
                s, seed=next(streams), **kw
            )
        if selection_shape == "row":
            select = draw(tf.stack([tf.shape(ids)[0], 1])) < rate
        elif selection_shape == "column":
            select = draw(tf.stack([1, tf.shape(ids)[1]])) < rate
        else:
            select = draw(shape) < rate
        selectable = tf.ones_like(ids, tf.bool)
        if not select_special:
            for special in unselectable_ids:
                selectable &= ids != special
        selected = select & selectable
        kind = draw(shape)
        to_mask = selected & (kind < mask_token_rate)
        if decide == "all_mask":
            to_mask = selected
        if decide == "two_draws":
            to_random = selected & ~to_mask & (draw(shape) < random_token_rate)
        else:
            to_random = (
                selected & ~to_mask & (kind < mask_token_rate + random_token_rate)
            )
        if pool == "allowed":
            excluded = set(unselectable_ids) | {mask_token_id}
            allowed = [i for i in range(vocabulary_size) if i not in excluded]
        else:
            allowed = list(range(vocabulary_size))
        index = draw(shape, maxval=len(allowed), dtype=tf.int32)
        random_ids = tf.gather(tf.constant(allowed, ids.dtype), index)
        masked = tf.where(to_random, random_ids, ids)
        masked = tf.where(to_mask, tf.cast(mask_token_id, ids.dtype), masked)
        if output_dtype is not None:
            masked = tf.cast(masked, output_dtype)
        return masked, selected

    return mask_tokens


@bug("mask_tokens", "select only tokens not in `unselectable_ids`")
def mask_selects_padding():
    """padding and special tokens can be selected"""
    return _masking(select_special=True)


@bug("mask_tokens", "only `mask_token_rate` of them")
def mask_every_selected_token():
    """every selected token becomes [MASK] (no 80/10/10)"""
    return _masking(decide="all_mask")


@bug("mask_tokens", "without `unselectable_ids` and `mask_token_id`")
def mask_random_from_whole_vocabulary():
    """random replacements drawn from the whole vocabulary, specials included"""
    return _masking(pool="vocabulary")


@bug("mask_tokens", "is `rate` used")
def mask_fixed_rate():
    """15 % hard-coded instead of `rate`"""
    return _masking(fixed_rate=0.15)


@bug("mask_tokens", "is `mask_token_rate` used")
def mask_fixed_split():
    """80/10/10 hard-coded instead of the rate arguments"""
    return _masking(fixed_split=(0.8, 0.1))


@bug("mask_tokens", "ONE draw per token")
def mask_two_draws():
    """random replacement decided by a second, independent draw"""
    return _masking(decide="two_draws")


@bug("mask_tokens", "selected all at once")
def mask_whole_rows():
    """one selection draw per row: whole sequences selected or not"""
    return _masking(selection_shape="row")


@bug("mask_tokens", "not (length,)")
def mask_same_for_every_row():
    """one selection draw per position, shared by every row"""
    return _masking(selection_shape="column")


@bug("mask_tokens", "fresh randomness at every call")
def mask_fixed_seed_when_none():
    """seed=None replaced by a fixed seed 0"""
    return _masking(none_seed=0)


@bug("mask_tokens", "the same seed must give the same output")
def mask_ignores_seed():
    """stateful random ops: the seed is ignored"""
    return _masking(use_seed=False)


@bug("mask_tokens", "keep the dtype of token_ids")
def mask_casts_to_int32():
    """masked_ids always int32"""
    return _masking(output_dtype=tf.int32)


@bug("mask_tokens", "💥")
def mask_static_shape():
    """draws with the static shape (None inside tf.function)"""
    return _masking(static_shape=True)


@alternative("mask_tokens")
def mask_with_categorical_kind():
    """the kind of replacement from one categorical draw; seeds offset by hand"""

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
        token_ids = tf.convert_to_tensor(token_ids)
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        elif isinstance(seed, int):
            seed = tf.constant([seed, 1])
        seed = tf.cast(seed, tf.int32)
        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        special = tf.constant(list(unselectable_ids) or [-1], token_ids.dtype)
        is_special = tf.reduce_any(token_ids[..., None] == special, axis=-1)
        coin = tf.random.stateless_uniform([batch, length], seed=seed)
        selected = (coin < rate) & ~is_special
        keep_rate = max(0.0, 1.0 - mask_token_rate - random_token_rate)
        probabilities = [mask_token_rate, random_token_rate, keep_rate]
        logits = tf.math.log([[max(p, 1e-30) for p in probabilities]])
        kind = tf.random.stateless_categorical(logits, batch * length, seed + 1)
        kind = tf.reshape(kind, [batch, length])
        allowed = np.setdiff1d(
            np.arange(vocabulary_size), [*unselectable_ids, mask_token_id]
        )
        pick = tf.random.stateless_uniform(
            [batch, length], seed=seed + 2, maxval=len(allowed), dtype=tf.int32
        )
        random_ids = tf.gather(tf.constant(allowed, token_ids.dtype), pick)
        replaced = tf.where(
            kind == 0, tf.cast(mask_token_id, token_ids.dtype), random_ids
        )
        replaced = tf.where(kind == 2, token_ids, replaced)
        return tf.where(selected, replaced, token_ids), selected

    return mask_tokens


@alternative("mask_tokens")
def mask_with_float_ids():
    """random ids from a scaled float draw; one uniform table per purpose"""

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
        ids = tf.convert_to_tensor(token_ids)
        if seed is None:
            seed = tf.random.uniform([2], 0, 2**30, dtype=tf.int64)
        elif not tf.is_tensor(seed) and np.ndim(seed) == 0:
            seed = [seed, 7]
        uniforms = tf.random.stateless_uniform(
            tf.concat([[3], tf.shape(ids)], 0), seed=tf.cast(seed, tf.int64)
        )  # (3, batch, length)
        selectable = tf.logical_not(
            tf.reduce_any(
                tf.equal(
                    ids[..., None], tf.cast(list(unselectable_ids) + [-1], ids.dtype)
                ),
                -1,
            )
        )
        selected = tf.logical_and(uniforms[0] < rate, selectable)
        allowed = sorted(
            set(range(vocabulary_size)) - set(unselectable_ids) - {mask_token_id}
        )
        index = tf.minimum(
            tf.cast(uniforms[2] * len(allowed), tf.int32), len(allowed) - 1
        )
        random_ids = tf.gather(tf.constant(allowed, ids.dtype), index)
        masked = ids
        masked = tf.where(
            selected
            & (uniforms[1] >= mask_token_rate)
            & (uniforms[1] < mask_token_rate + random_token_rate),
            random_ids,
            masked,
        )
        masked = tf.where(
            selected & (uniforms[1] < mask_token_rate),
            tf.fill(tf.shape(ids), tf.cast(mask_token_id, ids.dtype)),
            masked,
        )
        return masked, selected

    return mask_tokens


# ------------------------------------------------------------- masked_mean


@bug("masked_mean", "the mean counts padding")
def mean_counts_padding():
    """plain mean over every position"""
    return lambda sequence, mask: tf.reduce_mean(sequence, axis=1)


@bug("masked_mean", "gives NaN")
def mean_nan_for_empty_row():
    """masked sum / count, 0 / 0 for a row without real positions"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        return tf.reduce_sum(sequence * weights, 1) / tf.reduce_sum(weights, 1)

    return masked_mean


@bug("masked_mean", "divided by the full length")
def mean_divides_by_length():
    """masked sum divided by the padded length"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        length = tf.cast(tf.shape(sequence)[1], sequence.dtype)
        return tf.reduce_sum(sequence * weights, 1) / length

    return masked_mean


@bug("masked_mean", "this is the masked sum")
def mean_is_a_sum():
    """masked sum, never divided"""

    def masked_mean(sequence, mask):
        return tf.reduce_sum(sequence * tf.cast(mask, sequence.dtype)[..., None], 1)

    return masked_mean


@bug("masked_mean", "True/1 in `mask` is a real token")
def mean_of_the_padding():
    """the mask read the wrong way round"""

    def masked_mean(sequence, mask):
        weights = 1 - tf.cast(mask, sequence.dtype)[..., None]
        total = tf.reduce_sum(sequence * weights, 1)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1))

    return masked_mean


@bug("masked_mean", "the output dtype must equal sequence.dtype")
def mean_always_float32():
    """computes and returns float32 whatever the input"""

    def masked_mean(sequence, mask):
        sequence = tf.cast(sequence, tf.float32)
        weights = tf.cast(mask, tf.float32)[..., None]
        total = tf.reduce_sum(sequence * weights, 1)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1))

    return masked_mean


@bug("masked_mean", "drop the length axis")
def mean_keeps_the_length_axis():
    """keepdims=True: (batch, 1, depth)"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        total = tf.reduce_sum(sequence * weights, 1, keepdims=True)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1, keepdims=True))

    return masked_mean


@bug("masked_mean", "not over depth")
def mean_over_depth():
    """averages each vector over its depth"""

    def masked_mean(sequence, mask):
        return tf.reduce_mean(sequence, axis=2) * tf.cast(mask, sequence.dtype)

    return masked_mean


@bug("masked_mean", "expected zeros")
def mean_uniform_for_empty_row():
    """a row without real positions falls back to the plain mean"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)[..., None]
        count = tf.reduce_sum(weights, 1)
        masked = tf.math.divide_no_nan(tf.reduce_sum(sequence * weights, 1), count)
        return tf.where(count > 0, masked, tf.reduce_mean(sequence, 1))

    return masked_mean


@alternative("masked_mean")
def mean_with_einsum_and_maximum():
    """einsum for the sum, count clipped at 1"""

    def masked_mean(sequence, mask):
        weights = tf.cast(mask, sequence.dtype)
        total = tf.einsum("bld,bl->bd", sequence, weights)
        count = tf.maximum(tf.reduce_sum(weights, -1, keepdims=True), 1)
        return total / count

    return masked_mean


@alternative("masked_mean")
def mean_with_ragged_rows():
    """a ragged tensor of the real positions, then its mean, NaN replaced"""

    def masked_mean(sequence, mask):
        real = tf.ragged.boolean_mask(sequence, tf.cast(mask, tf.bool))
        mean = tf.reduce_mean(real, axis=1)
        return tf.where(tf.math.is_nan(mean), tf.zeros_like(mean), mean)

    return masked_mean


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


# --------------------------------------------------------------- transformer


def _transformer(
    logits="logits",
    source_mask=True,
    target_mask=True,
    memory="encoded",
    cross_mask=True,
    target_embedding="target",
    training_passed=True,
):
    """A Transformer whose `call` wires the parts with one mistake."""
    base = _ref("Transformer")

    def call(self, inputs, training=None, return_attention_scores=False):
        source_ids, target_ids = self.split_inputs(inputs)
        training = training if training_passed else None
        source_padding = tf.not_equal(source_ids, 0) if source_mask else None
        target_padding = tf.not_equal(target_ids, 0) if target_mask else None
        source_vectors = self.source_embedding(source_ids)
        encoded, encoder_weights = self.encoder(
            source_vectors,
            padding_mask=source_padding,
            training=training,
            return_attention_scores=True,
        )
        embed = (
            self.target_embedding
            if target_embedding == "target"
            else self.source_embedding
        )
        decoded, decoder_weights = self.decoder(
            embed(target_ids),
            encoded if memory == "encoded" else source_vectors,
            padding_mask=target_padding,
            encoder_padding_mask=tf.not_equal(source_ids, 0) if cross_mask else None,
            training=training,
            return_attention_scores=True,
        )
        outputs = self.output_projection(decoded)
        if logits == "softmax":
            outputs = tf.nn.softmax(outputs, axis=-1)
        if return_attention_scores:
            return outputs, {
                "encoder": encoder_weights,
                "decoder_self_attention": decoder_weights["self_attention"],
                "decoder_cross_attention": decoder_weights["cross_attention"],
            }
        return outputs

    return type("BuggyTransformer", (base,), {"call": call})


@bug("transformer", "return the logits")
def transformer_returns_probabilities():
    """applies the softmax to the logits"""
    return _transformer(logits="softmax")


@bug("transformer", "give the decoder encoder_padding_mask")
def transformer_no_cross_padding():
    """the decoder is not told where the source's padding is"""
    return _transformer(cross_mask=False)


@bug("transformer", "give the encoder padding_mask")
def transformer_no_source_padding():
    """the encoder runs without the source padding mask"""
    return _transformer(source_mask=False)


@bug("transformer", "give the decoder padding_mask")
def transformer_no_target_padding():
    """the decoder runs without the target padding mask"""
    return _transformer(target_mask=False)


@bug("transformer", "self.target_embedding")
def transformer_one_embedding():
    """embeds the target ids with the source embedding"""
    return _transformer(target_embedding="source")


@bug("transformer", "it attends to the encoder's output")
def transformer_skips_encoder():
    """the decoder attends to the source embeddings, not the encoder output"""
    return _transformer(memory="embeddings")


@bug("transformer", "`training` passed on")
def transformer_drops_training():
    """`training` is not passed to the encoder and decoder"""
    return _transformer(training_passed=False)


@bug("transformer", "decoder_cross_attention")
def transformer_scores_as_tuple():
    """returns the attention weights as a tuple, not a dict"""
    base = _transformer()

    def call(self, inputs, training=None, return_attention_scores=False):
        outputs = base.call(self, inputs, training, return_attention_scores)
        if return_attention_scores:
            logits, weights = outputs
            return logits, tuple(weights.values())
        return outputs

    return type("BuggyTransformer", (base,), {"call": call})


@alternative("transformer")
def transformer_weights_only_when_asked():
    """masks from `ids > 0`; the weights are asked for only when returned"""
    base = _ref("Transformer")

    def call(self, inputs, training=None, return_attention_scores=False):
        source_ids, target_ids = self.split_inputs(inputs)
        source_mask, target_mask = source_ids > 0, target_ids > 0
        encoder_out = self.encoder(
            self.source_embedding(source_ids),
            padding_mask=source_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        encoded = encoder_out[0] if return_attention_scores else encoder_out
        decoder_out = self.decoder(
            self.target_embedding(target_ids),
            encoded,
            padding_mask=target_mask,
            encoder_padding_mask=source_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        if not return_attention_scores:
            return self.output_projection(decoder_out)
        decoded, weights = decoder_out
        return self.output_projection(decoded), {
            "encoder": encoder_out[1],
            "decoder_self_attention": weights["self_attention"],
            "decoder_cross_attention": weights["cross_attention"],
        }

    return type("AlternativeTransformer", (base,), {"call": call})


# ---------------------------------------------------------------- tile_digits


def _tile(slots="right", order=1, fill=0.0, transpose=False, dtype="float32"):
    """tile_digits with one choice made differently from the contract."""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")[::order]
        if transpose:
            digits = np.transpose(digits, (0, 2, 1, 3))
        count, height, width, channels = digits.shape
        strip = np.full((height, width * max_digits, channels), fill, dtype)
        first = max_digits - count if slots == "right" else 0
        strip[:, first * width :] = 0.0
        for i, digit in enumerate(digits):
            strip[:, (first + i) * width : (first + i + 1) * width] = digit
        return strip

    return tile_digits


@bug("tile_digits", "right-align them")
def tile_left_aligned():
    """digits in the first slots (left-aligned)"""
    return _tile(slots="left")


@bug("tile_digits", "reverse order")
def tile_reversed():
    """units digit first"""
    return _tile(order=-1)


@bug("tile_digits", "transposed")
def tile_transposed():
    """each digit image transposed"""
    return _tile(transpose=True)


@bug("tile_digits", "empty slots are not 0")
def tile_filled_with_ink():
    """empty slots filled with 1 (ink) instead of 0"""
    return _tile(fill=1.0)


@bug("tile_digits", "return float32")
def tile_float64():
    """the strip made with np.zeros(...) in float64"""
    return _tile(dtype="float64")


@bug("tile_digits", "stacked vertically")
def tile_stacked_vertically():
    """digits stacked along the height"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        count, height, width, channels = digits.shape
        strip = np.zeros((height * max_digits, width, channels), "float32")
        first = max_digits - count
        for i, digit in enumerate(digits):
            strip[(first + i) * height : (first + i + 1) * height] = digit
        return strip

    return tile_digits


@bug("tile_digits", "holds only the digits")
def tile_without_empty_slots():
    """the digits concatenated, without the empty slots"""
    return lambda digit_images, max_digits=3: np.concatenate(
        list(np.asarray(digit_images, "float32")), axis=1
    )


@bug("tile_digits", "nothing hard-coded")
def tile_three_slots_always():
    """always three slots of 8 pixels (the lesson's sizes hard-coded)"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        strip = np.zeros((digits.shape[1], 24, digits.shape[3]), "float32")
        for i, digit in enumerate(digits):
            slot = 3 - len(digits) + i
            strip[:, slot * 8 : slot * 8 + digits.shape[2]] = digit
        return strip

    return tile_digits


@bug("tile_digits", "channel axis is missing")
def tile_without_channels():
    """the channel axis dropped (2-D strip)"""
    return lambda digit_images, max_digits=3: _tile()(digit_images, max_digits)[:, :, 0]


@bug("tile_digits", "changed the digit images")
def tile_in_place():
    """writes the strip into the caller's array"""

    def tile_digits(digit_images, max_digits=3):
        strip = _tile()(digit_images, max_digits)
        digit_images[...] = 0.0
        return strip

    return tile_digits


@alternative("tile_digits")
def tile_by_concatenation():
    """blank slots and digits concatenated along the width"""

    def tile_digits(digit_images, max_digits=3):
        digits = np.asarray(digit_images, "float32")
        blank = np.zeros_like(digits[0])
        slots = [blank] * (max_digits - len(digits)) + list(digits)
        return np.concatenate(slots, axis=1)

    return tile_digits
