"""Check of `Transformer.call`, the assembled model (lesson 8)."""

import numpy as np
import tensorflow as tf

from tf_transformer.course.checks._core import Failure, close, exercise, to_numpy
from tf_transformer.course.checks._layers import (
    DROPOUT_AT_INFERENCE,
    compare,
    dropout_behaviour,
    inference_is_random,
    round_trip,
    safe_hint,
    twins,
)

SIZES = dict(
    num_layers=1,
    d_model=8,
    num_heads=2,
    dff=16,
    input_vocab_size=20,
    target_vocab_size=24,
)
# Two sentences each, the second padded: (batch, source_len), (batch, target_len).
SOURCE = tf.constant([[2, 7, 11, 5, 3], [2, 9, 3, 0, 0]])
TARGET = tf.constant([[2, 4, 13, 6], [2, 17, 0, 0]])
SCORE_KEYS = ("encoder", "decoder_self_attention", "decoder_cross_attention")


def wiring_variants(reference, source, target):
    """Logits of the reference's parts wired with one typical mistake each."""
    source_mask, target_mask = source != 0, target != 0
    source_vectors = reference.source_embedding(source)
    target_vectors = reference.target_embedding(target)
    encoded = reference.encoder(source_vectors, padding_mask=source_mask)
    unmasked = reference.encoder(source_vectors)

    def logits(inputs, memory, padding_mask=target_mask, memory_mask=source_mask):
        decoded = reference.decoder(
            inputs, memory, padding_mask=padding_mask, encoder_padding_mask=memory_mask
        )
        return reference.output_projection(decoded)

    return [
        (
            logits(target_vectors, encoded, memory_mask=None),
            "cross-attention reads the source's [PAD]s: give the decoder "
            "encoder_padding_mask=source_ids != 0",
        ),
        (
            logits(target_vectors, unmasked),
            "the encoder's self-attention reads the source's [PAD]s: give the "
            "encoder padding_mask=source_ids != 0",
        ),
        (
            logits(target_vectors, encoded, padding_mask=None),
            "the decoder's self-attention reads the target's [PAD]s: give the "
            "decoder padding_mask=target_ids != 0",
        ),
        (
            logits(reference.source_embedding(target), encoded),
            "the target ids are embedded with source_embedding; they go through "
            "self.target_embedding",
        ),
        (
            logits(target_vectors, source_vectors),
            "the decoder attends to the source embeddings; it attends to the "
            "encoder's output, self.encoder(...)",
        ),
    ]


def wiring_hint(model, reference, actual):
    """The likely mistake behind logits that differ from the reference's."""
    if inference_is_random(lambda: model((SOURCE, TARGET), training=False)):
        return DROPOUT_AT_INFERENCE
    if np.all(actual >= 0) and np.allclose(actual.sum(-1), 1.0, atol=1e-4):
        return (
            "the outputs are probabilities (they sum to 1): return the logits, "
            "output_projection's output; the loss applies the softmax"
        )
    for variant, hint in wiring_variants(reference, SOURCE, TARGET):
        if close(actual, np.asarray(variant), atol=1e-4):
            return hint
    return None


def model_twins(ctx, student_cls, reference_cls, dropout):
    """The student's model and the reference, small, with the same weights."""
    return twins(
        ctx,
        student_cls,
        reference_cls,
        lambda model: model((SOURCE, TARGET)),
        **SIZES,
        dropout=dropout,
    )


@exercise("transformer", lesson=8, points=2, kind="class")
def check_transformer(ctx, student_cls, reference_cls):
    model, reference, what = model_twins(ctx, student_cls, reference_cls, 0.0)
    call = f"{what} on a padded batch"
    result = ctx.call(model, (SOURCE, TARGET), training=False, what=call)
    if isinstance(result, tuple | list):
        raise Failure(
            f"{call} returned a {type(result).__name__}; return the logits "
            "(the attention weights only with return_attention_scores=True)"
        )
    actual = to_numpy(result, call)
    expected = np.asarray(reference((SOURCE, TARGET), training=False))
    if actual.shape == expected.shape and not close(actual, expected, atol=1e-4):
        compare(
            actual,
            expected,
            call,
            safe_hint(
                lambda: wiring_hint(model, reference, actual),
                "follow the diagram: embed, encode, embed, decode, project",
            ),
        )
    compare(actual, expected, call, "")
    ctx.ok("logits match the reference, padding masked on both sides")

    call = f"{what} with return_attention_scores=True"
    result = ctx.call(model, (SOURCE, TARGET), return_attention_scores=True, what=call)
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise Failure(f"{call}: return (logits, attention_scores)")
    scores = result[1]
    if not isinstance(scores, dict) or set(scores) != set(SCORE_KEYS):
        raise Failure(
            f"{call}: the scores must be a dict with the keys "
            f"{', '.join(SCORE_KEYS)} (one list of per-layer weights each); "
            f"got {type(scores).__name__}"
            + (f" with keys {sorted(scores)}" if isinstance(scores, dict) else "")
        )
    _, wanted = reference((SOURCE, TARGET), return_attention_scores=True)
    for key in SCORE_KEYS:
        if len(scores[key]) != len(wanted[key]):
            raise Failure(
                f"{call}: scores[{key!r}] has {len(scores[key])} items, expected one "
                f"per layer ({len(wanted[key])})"
            )
        for got, want in zip(scores[key], wanted[key], strict=True):
            compare(got, want, f"{call}, scores[{key!r}]", "")
    ctx.ok("return_attention_scores gives the encoder's and the decoder's weights")

    model, reference, what = model_twins(ctx, student_cls, reference_cls, 0.5)
    inference = [
        to_numpy(ctx.call(model, (SOURCE, TARGET), training=False, what=what), what)
        for _ in "ab"
    ]
    training = [
        to_numpy(ctx.call(model, (SOURCE, TARGET), training=True, what=what), what)
        for _ in "ab"
    ]
    dropout_behaviour(ctx, inference, training, what)

    graph = tf.function(
        lambda source, target: model((source, target), training=False),
        input_signature=[
            tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None, None), tf.int32),
        ],
    )
    call = f"{what} inside tf.function with unknown batch and lengths"
    compare(
        ctx.call(graph, SOURCE, TARGET, what=call),
        reference((SOURCE, TARGET), training=False),
        call,
        "use tf.shape(x) for sizes unknown until run time",
    )
    ctx.ok("works inside tf.function with unknown batch and lengths")
    round_trip(
        ctx, student_cls, model, lambda lay: lay((SOURCE, TARGET), training=False)
    )
