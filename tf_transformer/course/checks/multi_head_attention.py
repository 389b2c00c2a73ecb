"""Check of `MultiHeadAttention` (lesson 4)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    alternative,
    bug,
    close,
    exercise,
    library_object,
    to_numpy,
)
from tf_transformer.course.checks._layers import (
    compare,
    dropout_behaviour,
    gradient_bugs,
    gradients_match,
    round_trip,
    safe_hint,
    twins,
)
from tf_transformer.course.grading.wire import Slot


def _x(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _output(result, what, scores=False):
    if scores:
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise Failure(
                f"{what}: with return_attention_scores=True return (output, scores), "
                f"got a {type(result).__name__}"
            )
        return to_numpy(result[0], what), to_numpy(result[1], what)
    if isinstance(result, tuple | list):
        raise Failure(
            f"{what}: returned a {type(result).__name__}; return just the output"
        )
    return to_numpy(result, what)


def _diagnose(ctx, student_cls, reference_cls, layer, call_kwargs, query, value, key):
    """Why the outputs differ: W_O, heads, masks, key/value roles."""
    kwargs = dict(call_kwargs, training=False)
    actual = _output(layer(query, value, key=key, **kwargs), "MultiHeadAttention")
    # W_O: changing the output projection must change the output.
    original = [w.numpy() for w in layer.output_dense.weights]
    layer.output_dense.kernel.assign(original[0] * 2.0 + 0.5)
    changed = _output(layer(query, value, key=key, **kwargs), "MultiHeadAttention")
    for weight, value_before in zip(layer.output_dense.weights, original, strict=True):
        weight.assign(value_before)
    if close(actual, changed, atol=1e-6):
        return (
            "changing W_O (output_dense) does not change the output — apply the "
            "output projection"
        )
    mask = call_kwargs.get("attention_mask")
    if mask is not None:
        inverted = layer_of(reference_cls, layer)(
            query, value, key=key, attention_mask=tf.logical_not(mask), training=False
        )
        if close(actual, inverted, atol=1e-4):
            return "the mask is inverted: True means 'may attend'"
        unmasked = layer_of(reference_cls, layer)(query, value, key=key, training=False)
        if close(actual, unmasked, atol=1e-4):
            return "the output ignores attention_mask — pass it on to the attention"
    if call_kwargs.get("use_causal_mask"):
        later = tf.concat([value[:, :-1], value[:, -1:] + 5.0], axis=1)
        moved = _output(layer(later, later, **kwargs), "MultiHeadAttention")
        if not close(actual[:, :-1], moved[:, :-1], atol=1e-5):
            return (
                "outputs at earlier positions change when the last position changes — "
                "honour use_causal_mask (query t attends keys 0..t only)"
            )
    if key is not None:
        swapped = layer_of(reference_cls, layer)(query, key, key=value, training=False)
        if close(actual, swapped, atol=1e-4):
            return (
                "keys and values are swapped: keys come from `key`, values from `value`"
            )
        no_key = layer_of(reference_cls, layer)(query, value, training=False)
        if close(actual, no_key, atol=1e-4):
            return (
                "`key` is ignored: when given, the keys come from `key` (else from "
                "`value`)"
            )
    # With a single head, splitting and merging heads is the identity.
    single, reference, _ = twins(
        ctx, student_cls, reference_cls, lambda lay: lay(query, value), 1, key_dim=8
    )
    one = _output(
        single(query, value, training=False), "MultiHeadAttention(1, key_dim=8)"
    )
    if close(one, reference(query, value, training=False), atol=1e-4):
        return (
            "correct with one head, wrong with several: split the heads with reshape "
            "to "
            "(batch, length, heads, depth) then transpose to (batch, heads, length, "
            "depth), "
            "and undo both when merging"
        )
    return "check the projections W_Q, W_K, W_V, the attention of each head and W_O"


def layer_of(reference_cls, layer):
    """A reference layer with the student layer's weights, built lazily."""
    clone = reference_cls.from_config(
        {k: v for k, v in layer.get_config().items() if k in _CONFIG_KEYS}
    )

    def call(query, value, **kwargs):
        if not clone.built:
            clone(query, value, key=kwargs.get("key"))
            clone.set_weights(layer.get_weights())
        return np.asarray(clone(query, value, **kwargs))

    return call


_CONFIG_KEYS = (
    "num_heads",
    "key_dim",
    "value_dim",
    "dropout",
    "use_bias",
    "output_dim",
)


@exercise(
    "multi_head_attention",
    lesson=4,
    points=3,
    kind="class",
    reference="MultiHeadAttention",
    methods=("split_heads", "merge_heads", "call"),
)
def check_multi_head_attention(ctx, student_cls, reference_cls):
    x = _x(0, (2, 5, 8))
    source = _x(1, (2, 6, 8))
    keys = _x(2, (2, 6, 8))
    lengths = np.array([4, 6])
    pad = tf.constant(np.arange(6)[None, None, :] < lengths[:, None, None])  # (2, 1, 6)
    layer, reference, what = twins(
        ctx,
        student_cls,
        reference_cls,
        lambda lay: lay(x, source, key=keys),
        2,
        key_dim=4,
    )
    cases = [
        ("self-attention, x (2, 5, 8)", x, x, None, {}),
        ("cross-attention, query (2, 5, 8), value (2, 6, 8)", x, source, None, {}),
        ("query, value and a distinct key", x, source, keys, {}),
        ("attention_mask (2, 1, 6)", x, source, None, {"attention_mask": pad}),
        ("use_causal_mask=True", x, x, None, {"use_causal_mask": True}),
        ("batch 1, length 3", x[:1, :3], x[:1, :3], None, {}),
    ]
    for description, query, value, key, kwargs in cases:
        call = f"{what} with {description}"
        result = ctx.call(
            layer, query, value, key=key, training=False, what=call, **kwargs
        )
        actual = _output(result, call)
        expected = np.asarray(
            reference(query, value, key=key, training=False, **kwargs)
        )
        if actual.shape == expected.shape and not close(actual, expected, atol=1e-4):
            hint = safe_hint(
                lambda args=(layer, kwargs, query, value, key): _diagnose(
                    ctx, student_cls, reference_cls, *args
                )
            )
            compare(actual, expected, call, hint)
        compare(actual, expected, call, "")
    ctx.ok("matches the reference: self, cross, key ≠ value, masks, causal, batch 1")

    call = f"{what} with return_attention_scores=True"
    result = ctx.call(
        layer, x, source, attention_mask=pad, return_attention_scores=True, what=call
    )
    output, scores = _output(result, call, scores=True)
    want_output, want_scores = reference(
        x, source, attention_mask=pad, return_attention_scores=True
    )
    compare(
        output, want_output, call, "the output changes with return_attention_scores"
    )
    compare(
        scores,
        want_scores,
        call + " (scores)",
        "scores are (batch, heads, target, source)",
    )
    ctx.ok(
        "return_attention_scores gives (output, (batch, heads, target, source) weights)"
    )

    layer, reference, what = twins(
        ctx, student_cls, reference_cls, lambda lay: lay(x, x), 2, dropout=0.5
    )
    inference = [
        to_numpy(ctx.call(layer, x, x, training=False, what=what), what) for _ in "ab"
    ]
    training = [
        to_numpy(ctx.call(layer, x, x, training=True, what=what), what) for _ in "ab"
    ]
    dropout_behaviour(ctx, inference, training, what + " (attention dropout)")

    spec = tf.TensorSpec((None, None, 8), tf.float32)
    graph = tf.function(
        lambda q, v: layer(q, v, use_causal_mask=True, training=False),
        input_signature=[spec, spec],
    )
    call = f"{what} inside tf.function with unknown batch and length"
    compare(
        ctx.call(graph, x, x, what=call),
        reference(x, x, use_causal_mask=True, training=False),
        call,
        "use tf.shape(x) for sizes unknown until run time",
    )
    ctx.ok("works inside tf.function with unknown batch and length")
    gradients_match(
        ctx,
        layer,
        reference,
        ((Slot(0), Slot(1)), {"training": False}),
        [x, source],
        f"{what} on query (2, 5, 8), value (2, 6, 8)",
    )
    round_trip(ctx, student_cls, layer, lambda lay: lay(x, source, training=False))


# ------------------------------------------------- catalogue of typical bugs


def _mha(
    split="transpose", use_output=True, causal=True, mask=True, polarity=True, key="ok"
):
    attention = library_object("scaled_dot_product_attention")

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

        q = heads(self.query_dense(query), self.key_dim)
        k = heads(self.key_dense(key_input), self.key_dim)
        v = heads(self.value_dense(value), self.value_dim)
        masks = []
        if attention_mask is not None and mask:
            m = tf.cast(attention_mask, tf.bool)
            masks.append(m if polarity else tf.logical_not(m))
        if use_causal_mask and causal:
            masks.append(library_object("causal_mask")(tf.shape(query)[1]))
        combined = library_object("combine_masks")(*masks)
        if combined is not None and combined.shape.rank == 3:
            combined = combined[:, tf.newaxis]
        out, weights = attention(q, k, v, combined)
        b, t = tf.shape(out)[0], tf.shape(out)[2]
        out = tf.reshape(
            tf.transpose(out, (0, 2, 1, 3)), (b, t, self.num_heads * self.value_dim)
        )
        if use_output:
            out = self.output_dense(out)
        return (out, weights) if return_attention_scores else out

    base = library_object("MultiHeadAttention")

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


gradient_bugs("multi_head_attention", "MultiHeadAttention", "query_dense")


@alternative("multi_head_attention")
def mha_private_sizes():
    """the library's answer with the head sizes read from `_key_dim` and
    `_value_dim`, as answers written before `key_dim` and `value_dim` were
    public did"""
    import inspect
    import textwrap

    base = library_object("MultiHeadAttention")
    source = textwrap.dedent(inspect.getsource(base.call))
    for name in ("key_dim", "value_dim"):
        source = source.replace(f"self.{name})", f"self._{name})")
    assert "self._key_dim)" in source and "self._value_dim)" in source
    namespace = {
        "scaled_dot_product_attention": library_object("scaled_dot_product_attention")
    }
    exec(source, namespace)  # noqa: S102 - the library's own source
    return type("PrivateSizesMultiHeadAttention", (base,), {"call": namespace["call"]})
