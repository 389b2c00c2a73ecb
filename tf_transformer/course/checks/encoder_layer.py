"""Check of `EncoderLayer` (lesson 6)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import (
    Failure,
    bug,
    close,
    exercise,
    library_object,
    to_numpy,
)
from tf_transformer.course.checks._layers import (
    DROPOUT_AT_INFERENCE,
    compare,
    dropout_behaviour,
    gradient_bugs,
    gradients_match,
    inference_is_random,
    is_normalized,
    round_trip,
    safe_hint,
    twins,
)
from tf_transformer.course.grading.wire import Slot


def _x(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _np(x):
    return np.asarray(x)


def residual_variants(reference, x, mask=None):
    """Outputs of a post-LN encoder layer with one typical mistake each."""

    def attend(y):
        return reference.self_attention(y, y, attention_mask=mask, training=False)

    ffn = lambda y: reference.feed_forward(y, training=False)  # noqa: E731
    ln1, ln2 = reference.self_attention_layer_norm, reference.feed_forward_layer_norm
    h = ln1(x + attend(x))
    h0 = ln1(attend(x))
    h_sum = x + ln1(attend(x))
    return [
        (
            ln2(ffn(h0)),
            "residual connections are missing: use LayerNorm(x + Sublayer(x))",
        ),
        (
            ln2(h0 + ffn(h0)),
            "the residual around self-attention is missing: "
            "LayerNorm(x + Attention(x))",
        ),
        (
            ln2(ffn(h)),
            "the residual around the feed-forward network is missing: "
            "LayerNorm(x + FFN(x))",
        ),
        (
            h_sum + ln2(ffn(h_sum)),
            "LayerNorm is applied to the sublayer output; it goes on the sum: "
            "LayerNorm(x + Sublayer(x))",
        ),
    ]


def post_norm_hint(actual, norm_first):
    if not norm_first and not is_normalized(actual):
        return (
            "with norm_first=False (post-LN, the paper) the output is LayerNorm(x + "
            "FFN(x)), "
            "so each vector should have mean 0 and variance 1 — is the last LayerNorm "
            "missing or misplaced?"
        )
    if norm_first and is_normalized(actual):
        return (
            "with norm_first=True (pre-LN) the output is x + Sublayer(LayerNorm(x)), "
            "not normalized — LayerNorm goes before each sublayer"
        )
    return None


def padding_hint(layer, x, keyword, mask, real):
    """Does the output at real positions depend on padded positions?"""
    moved = tf.concat([x[:, :real], x[:, real:] + 3.0], axis=1)
    before = _np(layer(x, training=False, **{keyword: mask}))
    after = _np(layer(moved, training=False, **{keyword: mask}))
    if not close(before[:, :real], after[:, :real], atol=1e-5):
        return (
            "outputs at real tokens change when padded tokens change — is "
            f"`{keyword}` used?"
        )
    return None


@exercise(
    "encoder_layer",
    lesson=6,
    points=2,
    kind="class",
    reference="EncoderLayer",
    methods=("call",),
)
def check_encoder_layer(ctx, student_cls, reference_cls):
    x = _x(0, (2, 5, 8))
    pad = tf.constant([[True] * 5, [True] * 3 + [False] * 2])[:, None, :]  # (2, 1, 5)
    for norm_first in (False, True):
        layer, reference, what = twins(
            ctx,
            student_cls,
            reference_cls,
            lambda lay: lay(x),
            8,
            2,
            16,
            norm_first=norm_first,
        )
        cases = [
            ("x (2, 5, 8)", x, {}),
            ("padding_mask (2, 1, 5)", x, {"padding_mask": pad}),
            ("batch 1, length 3", _x(1, (1, 3, 8)), {}),
        ]
        for description, inputs, kwargs in cases:
            call = f"{what} with {description}"
            result = ctx.call(layer, inputs, training=False, what=call, **kwargs)
            if isinstance(result, tuple | list):
                raise Failure(
                    f"{call} returned a {type(result).__name__}; return the output"
                )
            actual = to_numpy(result, call)
            expected = _np(reference(inputs, training=False, **kwargs))
            if actual.shape == expected.shape and not close(
                actual, expected, atol=1e-4
            ):

                def diagnose(
                    actual=actual,
                    kwargs=kwargs,
                    inputs=inputs,
                    layer=layer,
                    norm_first=norm_first,
                    reference=reference,
                ):
                    if inference_is_random(lambda: layer(inputs, training=False)):
                        return DROPOUT_AT_INFERENCE
                    if "padding_mask" in kwargs:
                        hint = padding_hint(layer, inputs, "padding_mask", pad, 3)
                        if hint:
                            return hint
                    hint = post_norm_hint(actual, norm_first)
                    if hint or norm_first:
                        return hint
                    mask = kwargs.get("padding_mask")
                    for variant, variant_hint in residual_variants(
                        reference, inputs, mask
                    ):
                        if close(actual, variant, atol=1e-4):
                            return variant_hint
                    return None

                compare(actual, expected, call, safe_hint(diagnose))
            compare(actual, expected, call, "")
    ctx.ok("matches the reference, post-LN and pre-LN, with and without padding")

    call = f"{what} with return_attention_scores=True"
    result = ctx.call(
        layer, x, padding_mask=pad, return_attention_scores=True, what=call
    )
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise Failure(f"{call}: return (outputs, attention_scores)")
    want = reference(x, padding_mask=pad, return_attention_scores=True)
    compare(result[0], want[0], call, "")
    compare(
        result[1],
        want[1],
        call + " (scores)",
        "scores are (batch, heads, length, length)",
    )
    ctx.ok("return_attention_scores gives the self-attention weights")

    layer, reference, what = twins(
        ctx, student_cls, reference_cls, lambda lay: lay(x), 8, 2, 16, dropout=0.5
    )
    inference = [
        to_numpy(ctx.call(layer, x, training=False, what=what), what) for _ in "ab"
    ]
    training = [
        to_numpy(ctx.call(layer, x, training=True, what=what), what) for _ in "ab"
    ]
    dropout_behaviour(ctx, inference, training, what)

    graph = tf.function(
        lambda inputs, mask: layer(inputs, padding_mask=mask, training=False),
        input_signature=[
            tf.TensorSpec((None, None, 8), tf.float32),
            tf.TensorSpec((None, 1, None), tf.bool),
        ],
    )
    call = f"{what} inside tf.function with unknown batch and length"
    compare(
        ctx.call(graph, x, pad, what=call),
        reference(x, padding_mask=pad, training=False),
        call,
        "use tf.shape(x) for sizes unknown until run time",
    )
    ctx.ok("works inside tf.function with unknown batch and length")
    gradients_match(
        ctx,
        layer,
        reference,
        ((Slot(0),), {"padding_mask": pad, "training": False}),
        [x],
        f"{what} on x (2, 5, 8) with padding_mask",
    )
    round_trip(ctx, student_cls, layer, lambda lay: lay(x, training=False))


# ------------------------------------------------- catalogue of typical bugs


def _encoder(residual=(True, True), post_norm=True, dropout="ok", padding=True):
    base = library_object("EncoderLayer")

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


gradient_bugs("encoder_layer", "EncoderLayer", "feed_forward")
