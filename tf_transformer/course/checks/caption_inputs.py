"""Check of `caption_inputs` (lesson 13): the captioner's memory and decoder input."""

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

START, END = 2, 3
# Two captions framed [START] … [END], the second padded; their languages.
CAPTIONS = np.array([[START, 57, 88, 61, END], [START, 70, END, 0, 0]], "int32")
LANGUAGES = np.array([43, 40], "int32")
NUM_PATCHES, D_MODEL = 6, 4


def _encoded(seed, batch=2, num_patches=NUM_PATCHES):
    """(batch, 1 + num_patches, d_model): a class token row, then the patches."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(batch, 1 + num_patches, D_MODEL)).astype("float32")
    values[:, 0] += 10.0  # the class token stands out, so keeping it shows
    return values


def _triple(ctx, result, what):
    if not isinstance(result, tuple | list) or len(result) != 3:
        raise Failure(
            f"{what} returned {type(result).__name__}, expected a tuple "
            "(memory, target_in_ids, target_out_ids)"
        )
    return [to_numpy(part, what) for part in result]


def _memory(ctx, memory, encoded, what):
    expected = encoded[:, 1:]
    if memory.shape == encoded.shape and close(memory, encoded):
        raise Failure(
            f"{what}: the memory keeps the class token (position 0) — drop it: "
            "the decoder's cross-attention reads every patch itself, so the memory "
            "is the patch vectors only, encoded[:, 1:]"
        )
    if memory.shape in ((len(encoded), D_MODEL), (len(encoded), 1, D_MODEL)):
        pooled = [encoded[:, 0], encoded[:, 1:].mean(axis=1), encoded.mean(axis=1)]
        which = next(
            (
                name
                for name, vector in zip(
                    ("the class token", "the mean of the patches", "the mean"),
                    pooled,
                    strict=True,
                )
                if close(memory.reshape(len(encoded), D_MODEL), vector, atol=1e-5)
            ),
            "one vector",
        )
        raise Failure(
            f"{what}: the memory is one vector per image ({which}), shape "
            f"{memory.shape} — keep the sequence of patch vectors (batch, "
            f"num_patches, d_model), so that each word can read its own patch"
        )
    if memory.shape != expected.shape:
        raise Failure(
            f"{what}: the memory has shape {memory.shape}, expected "
            f"{expected.shape} — encoded without its position 0"
        )
    if close(memory, encoded[:, :-1]):
        raise Failure(
            f"{what}: the memory drops the last patch instead of the class token — "
            "the class token is at position 0: encoded[:, 1:]"
        )
    if not close(memory, expected, atol=1e-6):
        raise Failure(
            f"{what}: the memory's values differ from encoded[:, 1:] — pass the "
            "patch vectors on unchanged"
        )


def _targets(ctx, target_in, target_out, captions, languages, what):
    expected_in = np.concatenate([languages[:, None], captions[:, 1:-1]], axis=1)
    expected_out = captions[:, 1:]
    if target_in.shape == captions.shape:
        raise Failure(
            f"{what}: target_in_ids has shape {target_in.shape}, as long as the "
            f"caption, expected {expected_in.shape} — the target is not shifted: "
            "the input drops the last token, the labels the first"
        )
    if target_out.shape == captions.shape:
        raise Failure(
            f"{what}: target_out_ids has shape {target_out.shape}, expected "
            f"{expected_out.shape} — the labels are the caption without its first "
            "token"
        )
    if target_in.shape != expected_in.shape:
        raise Failure(
            f"{what}: target_in_ids has shape {target_in.shape}, expected "
            f"{expected_in.shape}"
        )
    if np.array_equal(target_in, captions[:, :-1]):
        raise Failure(
            f"{what}: target_in_ids starts with [START] — the language token takes "
            "its place: column 0 holds language_ids, so the model knows which "
            "language to write"
        )
    if np.array_equal(target_in[:, 1:], captions[:, :-2]) and np.array_equal(
        target_in[:, 0], languages
    ):
        raise Failure(
            f"{what}: target_in_ids puts the language token before [START] and "
            "drops a word — the language token *replaces* [START]"
        )
    if np.array_equal(target_in[:, 1:], expected_in[:, 1:]) and not np.array_equal(
        target_in[:, 0], languages
    ):
        raise Failure(
            f"{what}: column 0 of target_in_ids is {target_in[:, 0].tolist()}, "
            f"expected the language tokens {languages.tolist()}"
        )
    if not np.array_equal(target_in, expected_in):
        raise Failure(
            f"{what}: target_in_ids is {target_in.tolist()}, expected "
            f"{expected_in.tolist()} — language token, then the caption without "
            "[START] and without its last column"
        )
    if np.array_equal(target_out, expected_in):
        raise Failure(
            f"{what}: target_out_ids equals target_in_ids — the labels are the "
            "next tokens: caption_ids[:, 1:]"
        )
    if not np.array_equal(target_out, expected_out):
        raise Failure(
            f"{what}: target_out_ids is {target_out.tolist()}, expected "
            f"{expected_out.tolist()} — the caption without its first token "
            "(ending with [END])"
        )
    if str(target_in.dtype) != str(captions.dtype) or str(target_out.dtype) != str(
        captions.dtype
    ):
        raise Failure(
            f"{what}: the ids are {target_in.dtype} and {target_out.dtype}, "
            f"expected the dtype of caption_ids, {captions.dtype}"
        )


@exercise(
    "caption_inputs",
    lesson=13,
    points=1,
    kind="function",
    reference="caption_inputs",
)
def check_caption_inputs(ctx, student, reference):
    def run(function, encoded, captions, languages, what):
        result = ctx.call(
            function,
            tf.constant(encoded),
            tf.constant(captions),
            tf.constant(languages),
            what=what,
        )
        memory, target_in, target_out = _triple(ctx, result, what)
        _memory(ctx, memory, encoded, what)
        _targets(ctx, target_in, target_out, captions, languages, what)

    what = "caption_inputs(encoded (2, 7, 4), two captions, languages [43, 40])"
    run(student, _encoded(0), CAPTIONS, LANGUAGES, what)
    ctx.ok("memory: the patch vectors, without the class token")
    ctx.ok("decoder input: the language token, then the caption; labels shifted by one")

    # Other sizes and int64 ids: nothing may be hard-coded.
    captions = np.array(
        [[START, 9, 9, END], [START, 11, END, 0], [START, 5, 6, END]], "int64"
    )
    languages = np.array([44, 41, 42], "int64")
    what = "caption_inputs(encoded (3, 4, 4), int64 captions (3, 4), 3 languages)"
    run(student, _encoded(1, batch=3, num_patches=3), captions, languages, what)

    graph = tf.function(
        lambda e, c, lang: student(e, c, lang),
        input_signature=[
            tf.TensorSpec((None, None, D_MODEL), tf.float32),
            tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None,), tf.int32),
        ],
    )
    what = "caption_inputs inside tf.function with unknown batch and lengths"
    run(graph, _encoded(0), CAPTIONS, LANGUAGES, what)
    ctx.ok("other sizes, int64 ids, and inside tf.function with unknown shapes")


# ------------------------------------------------- catalogue of typical bugs


def _wiring(
    memory=lambda encoded: encoded[:, 1:],
    first=lambda captions, languages: tf.cast(languages, captions.dtype)[:, None],
    body=lambda captions: captions[:, 1:-1],
    labels=lambda captions: captions[:, 1:],
):
    """The reference's wiring with one of its four parts done another way."""

    def caption_inputs(encoded, caption_ids, language_ids):
        encoded = tf.convert_to_tensor(encoded)
        caption_ids = tf.convert_to_tensor(caption_ids)
        target_in = tf.concat(
            [first(caption_ids, language_ids), body(caption_ids)], axis=1
        )
        return memory(encoded), target_in, labels(caption_ids)

    return caption_inputs


@bug("caption_inputs", "keeps the class token")
def caption_class_token_kept():
    """the class token left in the memory"""
    return _wiring(memory=lambda encoded: encoded)


@bug("caption_inputs", "one vector per image (the mean of the patches)")
def caption_pooled_memory():
    """memory = the mean of the patch vectors (one pooled vector, as a classifier)"""
    return _wiring(
        memory=lambda encoded: tf.reduce_mean(encoded[:, 1:], axis=1, keepdims=True)
    )


@bug("caption_inputs", "one vector per image (the class token)")
def caption_class_token_memory():
    """memory = the class token's vector only"""
    return _wiring(memory=lambda encoded: encoded[:, :1])


@bug("caption_inputs", "drops the last patch")
def caption_last_patch_dropped():
    """encoded[:, :-1]: the class token kept, the last patch lost"""
    return _wiring(memory=lambda encoded: encoded[:, :-1])


@bug("caption_inputs", "starts with [START]")
def caption_start_kept():
    """[START] left as the first decoder token, the language never given"""
    return _wiring(first=lambda captions, languages: captions[:, :1])


@bug("caption_inputs", "*replaces* [START]")
def caption_language_before_start():
    """the language token put in front of [START] (input one word short)"""
    return _wiring(body=lambda captions: captions[:, :-2])


@bug("caption_inputs", "not shifted")
def caption_not_shifted():
    """decoder input and labels both the whole caption (no shift)"""
    return _wiring(
        body=lambda captions: captions[:, 1:], labels=lambda captions: captions
    )


@bug("caption_inputs", "target_out_ids equals target_in_ids")
def caption_labels_not_shifted():
    """labels = the decoder input (the model learns to copy)"""

    def caption_inputs(encoded, caption_ids, language_ids):
        memory, target_in, _ = library_object("caption_inputs")(
            encoded, caption_ids, language_ids
        )
        return memory, target_in, target_in

    return caption_inputs


@bug("caption_inputs", "expected the dtype of caption_ids")
def caption_ids_as_int32():
    """the ids cast to int32 whatever they were"""

    def caption_inputs(encoded, caption_ids, language_ids):
        memory, target_in, target_out = library_object("caption_inputs")(
            encoded, caption_ids, language_ids
        )
        return memory, tf.cast(target_in, tf.int32), tf.cast(target_out, tf.int32)

    return caption_inputs


@alternative("caption_inputs")
def caption_with_tensor_scatter():
    """column 0 overwritten with tf.tensor_scatter_nd_update"""

    def caption_inputs(encoded, caption_ids, language_ids):
        caption_ids = tf.convert_to_tensor(caption_ids)
        target_in = caption_ids[:, :-1]
        rows = tf.range(tf.shape(target_in)[0])
        indices = tf.stack([rows, tf.zeros_like(rows)], axis=1)
        target_in = tf.tensor_scatter_nd_update(
            target_in, indices, tf.cast(language_ids, caption_ids.dtype)
        )
        return tf.convert_to_tensor(encoded)[:, 1:], target_in, caption_ids[:, 1:]

    return caption_inputs
