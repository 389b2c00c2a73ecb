"""Check of `Transformer.call`, the assembled model (lesson 8)."""

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
    DROPOUT_AT_INFERENCE,
    compare,
    dropout_behaviour,
    gradient_bugs,
    gradients_match,
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


@exercise(
    "transformer",
    lesson=8,
    points=2,
    kind="class",
    reference="Transformer",
    methods=("call",),
)
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
    gradients_match(
        ctx,
        model,
        reference,
        (((SOURCE, TARGET),), {"training": False}),
        [],
        f"{what} on a padded batch",
    )
    round_trip(
        ctx, student_cls, model, lambda lay: lay((SOURCE, TARGET), training=False)
    )


# ------------------------------------------------- catalogue of typical bugs


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
    base = library_object("Transformer")

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
    base = library_object("Transformer")

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


gradient_bugs("transformer", "Transformer", "output_projection")
