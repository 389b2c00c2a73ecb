"""Offline translation corpora, tokenizers and tf.data pipelines.

Importing this package registers the TFDS builders `tf_transformer_numbers`,
`tf_transformer_dates` and `tf_transformer_mixed` (translation), and
`tf_transformer_language`, `tf_transformer_parity` and
`tf_transformer_pretraining_text` (classification and unlabelled text).
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
from tf_transformer.data.digits import (
    DIGIT_IMAGE_SHAPE,
    DIGIT_SPLITS,
    NUM_DIGIT_CLASSES,
    load_digits,
)
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
    "DIGIT_IMAGE_SHAPE",
    "DIGIT_SPLITS",
    "NUM_DIGIT_CLASSES",
    "load_digits",
    "CLS_ID",
    "FRAMING_TOKENS",
    "MASK_ID",
    "SEP_ID",
]

from tf_transformer.data.classification import (  # noqa: E402
    CLASSIFICATION_TASKS,
    TfTransformerLanguage,
    TfTransformerParity,
    TfTransformerPretrainingText,
    language_identification_floor,
    load_classification,
    load_pretraining_text,
)

__all__ += [
    "CLASSIFICATION_TASKS",
    "TfTransformerLanguage",
    "TfTransformerParity",
    "TfTransformerPretrainingText",
    "language_identification_floor",
    "load_classification",
    "load_pretraining_text",
]
__all__ += [
    "language_model_texts",
    "make_language_model_batches",
    "tokenize_prompts",
    "translation_prompt",
]

from tf_transformer.data.french_numbers import (  # noqa: E402
    french_number_value,
    is_french_number,
)

__all__ += ["french_number_value", "is_french_number"]

from tf_transformer.data.captions import (  # noqa: E402
    LANGUAGE_TOKENS,
    MAX_DIGITS,
    NUMBER_IMAGE_SHAPE,
    TfTransformerNumberCaptions,
    load_number_captions,
    number_splits,
    render_number,
    tile_digits,
)

__all__ += [
    "LANGUAGE_TOKENS",
    "MAX_DIGITS",
    "NUMBER_IMAGE_SHAPE",
    "TfTransformerNumberCaptions",
    "load_number_captions",
    "number_splits",
    "render_number",
    "tile_digits",
]
