"""tf_transformer: the Transformer of "Attention Is All You Need" in Keras 3.

A course (numbered notebooks in `lessons/`) and the Keras layer library its
exercises are answered by. Everything below is importable from the top level.
"""

from importlib.metadata import PackageNotFoundError, version

from tf_transformer.inference import (
    Translator,
    beam_search,
    generate,
    greedy_decode,
    top_k_filter,
    top_p_filter,
)
from tf_transformer.layers import (
    ClassToken,
    Decoder,
    DecoderLayer,
    Dropout,
    Encoder,
    EncoderLayer,
    FeedForward,
    LearnedPositionEmbedding,
    MaskedLMHead,
    MultiHeadAttention,
    PatchEmbedding,
    PositionalEmbedding,
    causal_mask,
    combine_masks,
    extract_patches,
    mask_tokens,
    masked_mean,
    padding_mask,
    positional_encoding,
    scaled_dot_product_attention,
)
from tf_transformer.models import (
    CausalLM,
    MaskedLanguageModel,
    SequenceClassifier,
    Transformer,
    VisionTransformer,
)
from tf_transformer.training import (
    TransformerSchedule,
    masked_accuracy,
    masked_loss,
    masked_sentence_accuracy,
)

try:
    __version__ = version("tf-transformer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Dropout",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "MultiHeadAttention",
    "PositionalEmbedding",
    "Transformer",
    "TransformerSchedule",
    "Translator",
    "__version__",
    "beam_search",
    "causal_mask",
    "combine_masks",
    "greedy_decode",
    "masked_accuracy",
    "masked_sentence_accuracy",
    "masked_loss",
    "padding_mask",
    "positional_encoding",
    "scaled_dot_product_attention",
    "ClassToken",
    "LearnedPositionEmbedding",
    "PatchEmbedding",
    "VisionTransformer",
    "extract_patches",
]
__all__ += [
    "MaskedLMHead",
    "MaskedLanguageModel",
    "SequenceClassifier",
    "mask_tokens",
    "masked_mean",
]
__all__ += ["CausalLM", "generate", "top_k_filter", "top_p_filter"]

from tf_transformer.models import TransformerBase  # noqa: E402

__all__ += ["TransformerBase"]

from tf_transformer.data.captions import tile_digits  # noqa: E402
from tf_transformer.inference.captioner import Captioner  # noqa: E402
from tf_transformer.models.image_captioner import ImageCaptioner  # noqa: E402

__all__ += ["Captioner", "ImageCaptioner", "tile_digits"]

from tf_transformer.layers import (  # noqa: E402
    GroupedQueryAttention,
    ModernDecoder,
    ModernDecoderLayer,
    RMSNorm,
    RotaryEmbedding,
    SwiGLUFeedForward,
    apply_rotary_embedding,
    grouped_query_attention,
    rms_norm,
    swiglu_width,
)
from tf_transformer.models.modern_causal_lm import ModernCausalLM  # noqa: E402

__all__ += [
    "GroupedQueryAttention",
    "ModernCausalLM",
    "ModernDecoder",
    "ModernDecoderLayer",
    "RMSNorm",
    "RotaryEmbedding",
    "SwiGLUFeedForward",
    "apply_rotary_embedding",
    "grouped_query_attention",
    "rms_norm",
    "swiglu_width",
]
