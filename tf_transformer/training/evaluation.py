"""Scoring a translator: exact match, token accuracy and BLEU.

`evaluate` scores a trained run (a `Run`, or its directory) on a split of
its corpus; `exact_match` and `translate_all` are the pieces it shares with
the validation callback of training.
"""

from __future__ import annotations

import time

import tensorflow as tf

from tf_transformer.data import load_translation, make_batches, normalize
from tf_transformer.training.losses import masked_accuracy
from tf_transformer.training.run import Run, load_run


def exact_match(translations, references):
    """Fraction of translations equal to their reference (after normalize)."""
    if len(translations) != len(references):
        raise ValueError(
            "`translations` and `references` must have the same length. "
            f"Received: {len(translations)} and {len(references)}"
        )
    if not references:
        return 0.0
    expected = normalize(list(references))
    return sum(t == e for t, e in zip(translations, expected, strict=True)) / len(
        references
    )


def translate_all(translator, sentences, batch_size=256):
    """Translate a list of str in batches; returns a list of str."""
    out = []
    for start in range(0, len(sentences), batch_size):
        batch = tf.constant(sentences[start : start + batch_size])
        out.extend(s.decode() for s in translator.translate(batch).numpy())
    return out


def read_pairs(dataset, limit=None):
    """The first `limit` (all: None) pairs of `dataset` as two lists of str."""
    if limit is not None:
        dataset = dataset.take(limit)
    sources, references = [], []
    for source, target in dataset.as_numpy_iterator():
        sources.append(source.decode())
        references.append(target.decode())
    return sources, references


def evaluate(run, split="test", examples=5, data_dir=None):
    """Exact match, token accuracy and BLEU of a trained run on a split.

    Token accuracy is the masked accuracy of next-token prediction with
    teacher forcing; exact match and BLEU (sacrebleu, corpus level, 0-100)
    score greedy translations against the references.

    Args:
        run: a `Run` (what `train` returns), or a run directory, which is
            loaded with `load_run`.
        split: the corpus split to score.
        examples: how many (source, reference, translation) triples to keep.
        data_dir: TFDS data directory of the corpus (None: the run's own).

    Returns:
        A dict with `split`, `pairs`, `exact_match`, `token_accuracy`,
        `bleu`, `decode_seconds` and `examples`.
    """
    import sacrebleu

    if not isinstance(run, Run):
        run = load_run(run)
    config = run.config
    pairs = load_translation(
        config.corpus,
        split,
        source_lang=config.source_lang,
        target_lang=config.target_lang,
        data_dir=data_dir or config.data_dir,
    )
    sources, references = read_pairs(pairs)
    start = time.perf_counter()
    translations = translate_all(run.translator(), sources)
    decode_seconds = time.perf_counter() - start
    normalized = normalize(references)
    return {
        "split": split,
        "pairs": len(sources),
        "exact_match": exact_match(translations, references),
        "token_accuracy": _token_accuracy(run, pairs),
        "bleu": sacrebleu.corpus_bleu(translations, [normalized]).score,
        "decode_seconds": decode_seconds,
        "examples": [
            {"source": s, "reference": r, "translation": t}
            for s, r, t in list(zip(sources, normalized, translations, strict=True))[
                :examples
            ]
        ],
    }


def _token_accuracy(run, pairs):
    """Masked next-token accuracy over every real target token of `pairs`."""
    batches = make_batches(
        pairs,
        run.source_tokenizer,
        run.target_tokenizer,
        batch_size=256,
        max_length=run.config.max_length,
        shuffle=False,
    )
    correct = total = 0.0
    for (source_ids, target_in), target_out in batches:
        logits = run.model((source_ids, target_in), training=False)
        real = float(tf.reduce_sum(tf.cast(target_out != 0, tf.float32)))
        total += real
        correct += float(masked_accuracy(target_out, logits)) * real
    return correct / total if total else 0.0
