"""Offline translation corpora, tokenizers and tf.data pipelines.

Importing this package registers the TFDS builders `tf_transformer_numbers`,
`tf_transformer_dates` and `tf_transformer_mixed` (translation), and
`tf_transformer_language`, `tf_transformer_parity` and
`tf_transformer_pretraining_text` (classification and unlabelled text).
"""

# Public: the loaders, builders, tokenizers, pipelines and token ids lessons use.

from tf_transformer.data.captions import (
    LANGUAGE_TOKENS,
    MAX_DIGITS,
    NUMBER_IMAGE_SHAPE,
    TfTransformerNumberCaptions,
    load_number_captions,
    number_splits,
    render_number,
    tile_digits,
)
from tf_transformer.data.classification import (
    CLASSIFICATION_TASKS,
    TfTransformerLanguage,
    TfTransformerParity,
    TfTransformerPretrainingText,
    language_identification_floor,
    load_classification,
    load_pretraining_text,
)
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
from tf_transformer.data.digits import (
    DIGIT_IMAGE_SHAPE,
    DIGIT_SPLITS,
    NUM_DIGIT_CLASSES,
    load_digits,
)
from tf_transformer.data.french_numbers import french_number_value, is_french_number
from tf_transformer.data.language_modelling import (
    language_model_texts,
    make_language_model_batches,
    tokenize_prompts,
    translation_prompt,
)
from tf_transformer.data.pipeline import make_batches, truncate_ids
from tf_transformer.data.tokenizers import (
    CLS_ID,
    END_ID,
    FRAMING_TOKENS,
    MASK_ID,
    PAD_ID,
    RESERVED_TOKENS,
    SEP_ID,
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
    # translation corpora (lessons 01-09, the main job)
    "load_translation",
    "BUILDER_NAMES",
    "LANGUAGES",
    "OFFLINE_CORPORA",
    "ONLINE_CORPORA",
    "SPLITS",
    "OfflineError",
    "TranslationConfig",
    "TfTransformerNumbers",
    "TfTransformerDates",
    "TfTransformerMixed",
    "number_in_words",
    "date_in_words",
    "french_number_value",
    "is_french_number",
    # tokenizers and their reserved ids
    "SubwordTokenizer",
    "train_tokenizer",
    "train_tokenizers",
    "load_tokenizer",
    "word_level_vectorizer",
    "normalize",
    "RESERVED_TOKENS",
    "FRAMING_TOKENS",
    "PAD_ID",
    "UNK_ID",
    "START_ID",
    "END_ID",
    "CLS_ID",
    "SEP_ID",
    "MASK_ID",
    # batches
    "make_batches",
    "truncate_ids",
    # classification and pretraining text (lesson 10)
    "load_classification",
    "load_pretraining_text",
    "CLASSIFICATION_TASKS",
    "TfTransformerLanguage",
    "TfTransformerParity",
    "TfTransformerPretrainingText",
    "language_identification_floor",
    # language modelling (lesson 11)
    "language_model_texts",
    "make_language_model_batches",
    "tokenize_prompts",
    "translation_prompt",
    # digits for the Vision Transformer (lesson 12)
    "load_digits",
    "DIGIT_IMAGE_SHAPE",
    "DIGIT_SPLITS",
    "NUM_DIGIT_CLASSES",
    # pictures of numbers with captions (lesson 13)
    "load_number_captions",
    "TfTransformerNumberCaptions",
    "LANGUAGE_TOKENS",
    "MAX_DIGITS",
    "NUMBER_IMAGE_SHAPE",
    "number_splits",
    "render_number",
    "tile_digits",
]
