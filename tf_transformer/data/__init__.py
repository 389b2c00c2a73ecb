"""Offline translation corpora, tokenizers and tf.data pipelines.

Importing this package registers the TFDS builders `tf_transformer_numbers`,
`tf_transformer_dates` and `tf_transformer_mixed`.
"""

from tf_transformer.data.corpora import (
    BUILDER_NAMES,
    LANGUAGES,
    OFFLINE_CORPORA,
    ONLINE_CORPORA,
    SPLITS,
    OfflineError,
    TfTransformerDates,
    TfTransformerMixed,
    TfTransformerNumbers,
    TranslationConfig,
    date_in_words,
    load_translation,
    number_in_words,
)
from tf_transformer.data.language_modelling import (
    language_model_texts,
    make_language_model_batches,
    tokenize_prompts,
    translation_prompt,
)
from tf_transformer.data.pipeline import make_batches, truncate_ids
from tf_transformer.data.tokenizers import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    SubwordTokenizer,
    load_tokenizer,
    normalize,
    train_tokenizer,
    train_tokenizers,
    word_level_vectorizer,
)

__all__ = [
    "BUILDER_NAMES",
    "END_ID",
    "LANGUAGES",
    "OFFLINE_CORPORA",
    "ONLINE_CORPORA",
    "OfflineError",
    "PAD_ID",
    "RESERVED_TOKENS",
    "SPLITS",
    "START_ID",
    "SubwordTokenizer",
    "TfTransformerDates",
    "TfTransformerMixed",
    "TfTransformerNumbers",
    "TranslationConfig",
    "UNK_ID",
    "date_in_words",
    "load_tokenizer",
    "load_translation",
    "make_batches",
    "normalize",
    "number_in_words",
    "train_tokenizer",
    "train_tokenizers",
    "truncate_ids",
    "word_level_vectorizer",
]
__all__ += [
    "language_model_texts",
    "make_language_model_batches",
    "tokenize_prompts",
    "translation_prompt",
]
