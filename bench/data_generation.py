"""How long the offline corpora take to generate, load and tokenize.

Prints one line per measurement. Each run uses a fresh temporary TFDS data
directory, so nothing is read from an earlier cache.

    python bench/data_generation.py
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow_datasets as tfds  # noqa: E402

from tf_transformer.data import (  # noqa: E402
    TfTransformerMixed,
    TranslationConfig,
    load_translation,
    make_batches,
    train_tokenizers,
)


def seconds(function):
    """(wall-clock and CPU seconds as text, result) of calling `function`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return f"{wall:.2f} s (CPU {cpu:.2f} s)", result


def main():
    tfds.disable_progress_bar()
    with tempfile.TemporaryDirectory() as data_dir:
        # 50 000 pairs: 24 000 numbers and 24 000 dates for train, 500 + 500
        # for validation and for test, en → fr.
        config = TranslationConfig(
            name="en-fr-bench-50k",
            source_lang="en",
            target_lang="fr",
            split_sizes={"train": 24_000, "validation": 500, "test": 500},
        )
        builder = TfTransformerMixed(config=config, data_dir=data_dir)
        elapsed, _ = seconds(builder.download_and_prepare)
        total = sum(split.num_examples for split in builder.info.splits.values())
        print(f"generate {total} pairs (tfds, cached to disk): {elapsed}")

        elapsed, _ = seconds(
            lambda: load_translation("mixed", "test", data_dir=data_dir)
        )
        print(f"generate the default mixed/en-fr corpus (74 000 pairs): {elapsed}")

        pairs = load_translation("mixed", "train", data_dir=data_dir)
        elapsed, _ = seconds(lambda: sum(1 for _ in pairs.batch(1024)))
        print(f"read the 70 000 cached training pairs: {elapsed}")

        elapsed, tokenizers = seconds(lambda: train_tokenizers(pairs))
        sizes = [tokenizer.vocabulary_size for tokenizer in tokenizers]
        print(f"train both WordPiece vocabularies {sizes}: {elapsed}")

        batches = make_batches(pairs, *tokenizers, batch_size=64, max_length=64)
        elapsed, count = seconds(lambda: sum(1 for _ in batches))
        print(f"first epoch of {count} batches (tokenize + cache): {elapsed}")
        elapsed, count = seconds(lambda: sum(1 for _ in batches))
        print(f"next epoch of {count} batches (from the cache): {elapsed}")


if __name__ == "__main__":
    main()
