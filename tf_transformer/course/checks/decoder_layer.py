"""Check of `DecoderLayer` (lesson 7)."""

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


def residual_variants(reference, x, memory):
    """Outputs of a post-LN decoder layer with one typical mistake each."""
    self_attend = lambda y: reference.self_attention(y, y, use_causal_mask=True)  # noqa: E731
    cross = lambda y: reference.cross_attention(y, memory)  # noqa: E731
    ffn = lambda y: reference.feed_forward(y, training=False)  # noqa: E731
    ln1 = reference.self_attention_layer_norm
    ln2 = reference.cross_attention_layer_norm
    ln3 = reference.feed_forward_layer_norm
    h1 = ln1(x + self_attend(x))
    h2 = ln2(h1 + cross(h1))
    return [
        (
            ln3(ffn(ln2(cross(ln1(self_attend(x)))))),
            "residual connections are missing: use LayerNorm(x + Sublayer(x))",
        ),
        (
            (lambda h: ln3(h + ffn(h)))(ln2(cross(h1))),
            "the residual around cross-attention is missing: LayerNorm(x + "
            "CrossAttention(x, memory))",
        ),
        (
            (lambda h: ln3(h + ffn(h)))(
                ln2(ln1(self_attend(x)) + cross(ln1(self_attend(x))))
            ),
            "the residual around the masked self-attention is missing",
        ),
        (ln3(ffn(h2)), "the residual around the feed-forward network is missing"),
        (
            (lambda h: ln3(h + ffn(h)))(ln2(x + cross(x))),
            "the masked self-attention sublayer is skipped",
        ),
    ]


def _future_hint(layer, x, memory):
    moved = tf.concat([x[:, :-1], x[:, -1:] + 3.0], axis=1)
    before = np.asarray(layer(x, memory, training=False))
    after = np.asarray(layer(moved, memory, training=False))
    if not close(before[:, :-1], after[:, :-1], atol=1e-5):
        return (
            "outputs at earlier positions change when the last target token changes — "
            "the self-attention needs the causal mask (use_causal_mask)"
        )
    return None


def _memory_hints(layer, x, memory, mask):
    before = np.asarray(layer(x, memory, encoder_padding_mask=mask, training=False))
    other = np.asarray(
        layer(x, memory * 2.0 + 1.0, encoder_padding_mask=mask, training=False)
    )
    if close(before, other, atol=1e-5):
        return (
            "the output does not depend on encoder_outputs — cross-attention attends "
            "to them"
        )
    moved = tf.concat([memory[:, :4], memory[:, 4:] + 3.0], axis=1)
    after = np.asarray(layer(x, moved, encoder_padding_mask=mask, training=False))
    if not close(before[1], after[1], atol=1e-5):
        return (
            "changing padded encoder positions changes the output — use "
            "encoder_padding_mask"
        )
    return None


@exercise(
    "decoder_layer",
    lesson=7,
    points=3,
    kind="class",
    reference="DecoderLayer",
    methods=("call",),
)
def check_decoder_layer(ctx, student_cls, reference_cls):
    x = _x(0, (2, 5, 8))
    memory = _x(1, (2, 6, 8))
    source_pad = tf.constant([[True] * 6, [True] * 4 + [False] * 2])[
        :, None, :
    ]  # (2, 1, 6)
    target_pad = tf.constant([[True] * 5, [True] * 3 + [False] * 2])[
        :, None, :
    ]  # (2, 1, 5)
    for norm_first in (False, True):
        layer, reference, what = twins(
            ctx,
            student_cls,
            reference_cls,
            lambda lay: lay(x, memory),
            8,
            2,
            16,
            norm_first=norm_first,
        )
        cases = [
            ("target (2, 5, 8), encoder outputs (2, 6, 8)", x, memory, {}),
            (
                "padding_mask and encoder_padding_mask",
                x,
                memory,
                {"padding_mask": target_pad, "encoder_padding_mask": source_pad},
            ),
            ("batch 1, target length 3", x[:1, :3], memory[:1], {}),
        ]
        for description, inputs, encoded, kwargs in cases:
            call = f"{what} with {description}"
            result = ctx.call(
                layer, inputs, encoded, training=False, what=call, **kwargs
            )
            if isinstance(result, tuple | list):
                raise Failure(
                    f"{call} returned a {type(result).__name__}; return the output"
                )
            actual = to_numpy(result, call)
            expected = np.asarray(reference(inputs, encoded, training=False, **kwargs))
            if actual.shape == (inputs.shape[0], encoded.shape[1], 8) != expected.shape:
                raise Failure(
                    f"{call} has shape {actual.shape}, the encoder's length — in "
                    "cross-attention the queries come from the decoder, keys and "
                    "values "
                    "from encoder_outputs"
                )
            if actual.shape == expected.shape and not close(
                actual, expected, atol=1e-4
            ):

                def diagnose(
                    actual=actual,
                    layer=layer,
                    inputs=inputs,
                    encoded=encoded,
                    norm_first=norm_first,
                    reference=reference,
                ):
                    if inference_is_random(lambda: layer(x, memory, training=False)):
                        return DROPOUT_AT_INFERENCE
                    hint = _memory_hints(layer, x, memory, source_pad)
                    hint = hint or _future_hint(layer, x, memory)
                    if hint:
                        return hint
                    if not norm_first and not is_normalized(actual):
                        return (
                            "with norm_first=False (post-LN) each output vector is "
                            "LayerNorm(x + FFN(x)): mean 0, variance 1 — is the last "
                            "LayerNorm missing or misplaced?"
                        )
                    if norm_first and is_normalized(actual):
                        return (
                            "with norm_first=True (pre-LN) LayerNorm goes before "
                            "each sublayer"
                        )
                    if not norm_first:
                        for variant, variant_hint in residual_variants(
                            reference, inputs, encoded
                        ):
                            if close(actual, variant, atol=1e-4):
                                return variant_hint
                    return None

                compare(actual, expected, call, safe_hint(diagnose))
            compare(actual, expected, call, "")
    ctx.ok("matches the reference, post-LN and pre-LN, with and without padding")

    call = f"{what} with return_attention_scores=True"
    result = ctx.call(layer, x, memory, return_attention_scores=True, what=call)
    if not isinstance(result, tuple | list) or len(result) != 3:
        raise Failure(
            f"{call}: return (outputs, self_attention_scores, cross_attention_scores)"
        )
    want = reference(x, memory, return_attention_scores=True)
    for got, expected, part in zip(
        result, want, ("outputs", "self scores", "cross scores"), strict=True
    ):
        compare(
            got, expected, f"{call} ({part})", "self (B, H, T, T), cross (B, H, T, S)"
        )
    ctx.ok("return_attention_scores gives (outputs, self weights, cross weights)")

    layer, reference, what = twins(
        ctx,
        student_cls,
        reference_cls,
        lambda lay: lay(x, memory),
        8,
        2,
        16,
        dropout=0.5,
    )
    inference = [
        to_numpy(ctx.call(layer, x, memory, training=False, what=what), what)
        for _ in "ab"
    ]
    training = [
        to_numpy(ctx.call(layer, x, memory, training=True, what=what), what)
        for _ in "ab"
    ]
    dropout_behaviour(ctx, inference, training, what)

    spec = tf.TensorSpec((None, None, 8), tf.float32)
    graph = tf.function(
        lambda inputs, encoded: layer(inputs, encoded, training=False),
        input_signature=[spec, spec],
    )
    call = f"{what} inside tf.function with unknown batch and lengths"
    compare(
        ctx.call(graph, x, memory, what=call),
        reference(x, memory, training=False),
        call,
        "use tf.shape(x) for sizes unknown until run time",
    )
    ctx.ok("works inside tf.function with unknown batch and lengths")
    gradients_match(
        ctx,
        layer,
        reference,
        ((Slot(0), Slot(1)), {"training": False}),
        [x, memory],
        f"{what} on inputs and encoder_outputs",
    )
    round_trip(ctx, student_cls, layer, lambda lay: lay(x, memory, training=False))


# ------------------------------------------------- catalogue of typical bugs


def _decoder(causal=True, cross="ok", residual=True, dropout="ok", memory_mask=True):
    base = library_object("DecoderLayer")

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


gradient_bugs("decoder_layer", "DecoderLayer", "cross_attention")
