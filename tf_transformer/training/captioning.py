"""Train and evaluate the image captioner of lesson 13 in one call each.

`train_captioner()` is what `tf-transformer train-captioner` runs: it
trains a caption tokenizer on the training split's captions (each with its
language token in front, `captions_with_language`), builds an
`ImageCaptioner` with `CAPTIONER_CONFIG` and fits it with Adam and the
masked loss, keeping an exponential moving average of the weights that
Keras writes into the model when `fit` ends. `evaluate_captioner()`
captions every picture of a split in every language with the KV-cached
greedy decoder and counts exact matches, overall, per number of digits and
per language.

Example:

>>> model, tokenizer, seconds = train_captioner()
>>> evaluate_captioner(model, tokenizer)["exact_match"]  # e.g. 0.91
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from tf_transformer import validation
from tf_transformer.data.captions import (
    LANGUAGE_TOKENS,
    NUMBER_IMAGE_SHAPE,
    captions_with_language,
    load_number_captions,
    make_caption_batches,
)
from tf_transformer.data.corpora import SPLITS
from tf_transformer.data.tokenizers import normalize, train_tokenizer
from tf_transformer.inference.decoding import greedy_decode
from tf_transformer.models.image_captioner import ImageCaptioner
from tf_transformer.progress import step
from tf_transformer.training.losses import masked_accuracy, masked_loss

CAPTIONER_CONFIG = {
    "patch_size": 4,
    "num_layers": 2,
    "d_model": 64,
    "num_heads": 4,
    "dff": 128,
    "dropout": 0.1,
    "vocabulary_size": 300,
    "max_length": 24,
    "batch_size": 64,
    "learning_rate": 2e-3,
    "use_ema": True,
    "ema_momentum": 0.99,
    "steps": 2400,
}
"""The configuration of lesson 13's captioner (solutions/13_image_captioning).

Model: `patch_size` 4 (12 patches of an 8×24 picture), `num_layers` 2
(encoder and decoder), `d_model` 64, `num_heads` 4, `dff` 128, `dropout`
0.1, decoder positions `max_length` 24. Data: a WordPiece vocabulary of at
most `vocabulary_size` 300 tokens, batches of 64 captions. Training: Adam
at a constant `learning_rate` 2e-3 for `steps` 2400, with `use_ema` and
`ema_momentum` 0.99 (Keras averages the weights over about the last 100
steps and writes the average into the model at the end of `fit`).
"""


def train_caption_tokenizer(examples, vocabulary_size=300):
    """A WordPiece tokenizer of captions with their language tokens.

    Args:
        examples: `load_number_captions` examples (dicts with `language`
            and `caption`).
        vocabulary_size: most tokens. Defaults to 300.

    Returns:
        A `SubwordTokenizer` trained on `captions_with_language` texts, so
        each language token (`"deutsch"`, …) is one token.
    """
    texts = examples.batch(4096).map(
        lambda batch: captions_with_language(batch["language"], batch["caption"])
    )
    return train_tokenizer(texts.unbatch(), vocabulary_size)


def build_captioner(vocabulary_size, config=None):
    """An untrained `ImageCaptioner` for the number pictures, with `config`
    (defaults to `CAPTIONER_CONFIG`) and a caption vocabulary of
    `vocabulary_size` tokens."""
    config = CAPTIONER_CONFIG if config is None else config
    return ImageCaptioner(
        image_shape=NUMBER_IMAGE_SHAPE,
        patch_size=config["patch_size"],
        num_layers=config["num_layers"],
        d_model=config["d_model"],
        num_heads=config["num_heads"],
        dff=config["dff"],
        target_vocab_size=vocabulary_size,
        max_length=config["max_length"],
        dropout=config["dropout"],
    )


def train_captioner(
    steps: int = CAPTIONER_CONFIG["steps"],
    seed: int = 0,
    *,
    batch_size: int = CAPTIONER_CONFIG["batch_size"],
    learning_rate: float = CAPTIONER_CONFIG["learning_rate"],
    vocabulary_size: int = CAPTIONER_CONFIG["vocabulary_size"],
    data_dir: str | None = None,
    callbacks=None,
    verbose: int | str = 2,
):
    """Train lesson 13's image captioner on `load_number_captions("train")`.

    Every picture comes once per language (de, en, es, fr, pt); one model
    writes all five, asked for a language by its first decoder token.

    Args:
        steps: training steps (batches). Defaults to 2400.
        seed: seed of the initial weights, the shuffling and the dropout.
            Defaults to 0.
        batch_size: captions per batch. Defaults to 64.
        learning_rate: Adam's constant learning rate. Defaults to 2e-3.
        vocabulary_size: most tokens of the caption tokenizer. Defaults to
            300.
        data_dir: TFDS data directory of the captions data set. Defaults to
            TFDS's own.
        callbacks: Keras callbacks for `fit`. Defaults to none.
        verbose: `fit`'s verbosity. Defaults to 2 (one line at the end).

    Returns:
        `(model, tokenizer, train_seconds)`: the trained `ImageCaptioner`
        (with the averaged weights), its `SubwordTokenizer`, and the seconds
        `fit` took (tracing the first step included; making the data and
        the tokenizer is not).

    Example:

    >>> model, tokenizer, seconds = train_captioner(steps=300, seed=1)
    >>> tt.Captioner(model, tokenizer).export("captioner")
    """
    steps = validation.check_int("steps", steps)
    seed = validation.check_int("seed", seed, minimum=0)
    batch_size = validation.check_int("batch_size", batch_size)
    learning_rate = validation.check_positive_float("learning_rate", learning_rate)
    vocabulary_size = validation.check_int("vocabulary_size", vocabulary_size)
    keras.utils.set_random_seed(seed)
    train_examples = load_number_captions("train", data_dir=data_dir)
    with step("training the WordPiece tokenizer of the captions"):
        tokenizer = train_caption_tokenizer(train_examples, vocabulary_size)
    batches = make_caption_batches(train_examples, tokenizer, batch_size, seed=seed)
    model = build_captioner(tokenizer.vocabulary_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate,
            use_ema=CAPTIONER_CONFIG["use_ema"],
            ema_momentum=CAPTIONER_CONFIG["ema_momentum"],
        ),
        loss=masked_loss,
        metrics=[masked_accuracy],
    )
    start = time.perf_counter()
    model.fit(
        batches.repeat(),
        steps_per_epoch=steps,
        epochs=1,
        callbacks=list(callbacks or []),
        verbose=verbose,
        shuffle=False,  # the batches are shuffled already
    )
    return model, tokenizer, time.perf_counter() - start


def language_start_ids(tokenizer, languages):
    """int32 ids of the language tokens that start the captions of
    `languages` (codes of `LANGUAGES`, `str` or bytes)."""
    ids = []
    for lang in languages:
        lang = lang.decode() if isinstance(lang, bytes) else lang
        ids.append(tokenizer.token_to_id(LANGUAGE_TOKENS[lang]))
    return np.asarray(ids, "int32")


def evaluate_captioner(model, tokenizer, split="test", data_dir=None):
    """Exact match of greedy captions of every picture of `split`, in every
    language.

    A caption counts when it equals the normalized reference word for word
    (`normalize`: lower case, the tokenizer's spacing).

    Args:
        model: a trained `ImageCaptioner`.
        tokenizer: its caption tokenizer, holding the language tokens.
        split: `"train"`, `"validation"` or `"test"`. Defaults to `"test"`.
        data_dir: TFDS data directory. Defaults to TFDS's own.

    Returns:
        A dict: `split`, `captions` (how many were compared), `exact_match`
        (a fraction), `exact_match_by_digits` and `captions_by_digits`
        (keys `"1"`, `"2"`, `"3"`: numbers of that many digits), and
        `exact_match_by_language` (keys the language codes).

    Example:

    >>> metrics = evaluate_captioner(model, tokenizer, "validation")
    >>> metrics["exact_match_by_language"]["de"]
    """
    validation.check_choice("split", split, SPLITS)
    examples = load_number_captions(split, data_dir=data_dir)
    rows = next(examples.batch(1_000_000).as_numpy_iterator())  # one batch: all
    start_ids = language_start_ids(tokenizer, rows["language"])
    decode = tf.function(lambda x, s: greedy_decode(model, x, start_ids=s))
    output_ids = decode(tf.constant(rows["image"]), tf.constant(start_ids))
    predicted = tokenizer.detokenize(output_ids).numpy()
    expected = normalize(tf.constant(rows["caption"])).numpy()
    correct = predicted == expected
    digits = np.array([len(str(number)) for number in rows["number"]])
    languages = np.array([lang.decode() for lang in rows["language"]])
    by_digits = {str(k): correct[digits == k] for k in sorted(set(digits.tolist()))}
    return {
        "split": split,
        "captions": int(correct.size),
        "exact_match": float(correct.mean()),
        "exact_match_by_digits": {k: float(v.mean()) for k, v in by_digits.items()},
        "captions_by_digits": {k: int(v.size) for k, v in by_digits.items()},
        "exact_match_by_language": {
            lang: float(correct[languages == lang].mean())
            for lang in sorted(set(languages.tolist()))
        },
    }


__all__ = [
    "CAPTIONER_CONFIG",
    "build_captioner",
    "evaluate_captioner",
    "language_start_ids",
    "train_caption_tokenizer",
    "train_captioner",
]
