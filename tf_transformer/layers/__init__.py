"""Keras layers of the Transformer, one concept per module."""

from tf_transformer.layers.attention import (
    MultiHeadAttention,
    scaled_dot_product_attention,
)
from tf_transformer.layers.class_token import ClassToken
from tf_transformer.layers.decoder import Decoder, DecoderLayer
from tf_transformer.layers.dropout import Dropout, hash_dropout
from tf_transformer.layers.encoder import Encoder, EncoderLayer
from tf_transformer.layers.feed_forward import FeedForward
from tf_transformer.layers.learned_position import LearnedPositionEmbedding
from tf_transformer.layers.masks import causal_mask, combine_masks, padding_mask
from tf_transformer.layers.patches import PatchEmbedding, extract_patches
from tf_transformer.layers.positional import PositionalEmbedding, positional_encoding

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Dropout",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "MultiHeadAttention",
    "PositionalEmbedding",
    "causal_mask",
    "combine_masks",
    "hash_dropout",
    "padding_mask",
    "positional_encoding",
    "scaled_dot_product_attention",
    "ClassToken",
    "LearnedPositionEmbedding",
    "PatchEmbedding",
    "extract_patches",
]

from tf_transformer.layers.masked_lm import MaskedLMHead, mask_tokens  # noqa: E402
from tf_transformer.layers.pooling import masked_mean  # noqa: E402

__all__ += ["MaskedLMHead", "mask_tokens", "masked_mean"]

# The Keras plumbing the exercise classes inherit (lessons 04, 06, 07).
from tf_transformer.layers.attention import MultiHeadAttentionBase  # noqa: E402
from tf_transformer.layers.decoder import DecoderLayerBase  # noqa: E402
from tf_transformer.layers.encoder import (  # noqa: E402
    EncoderLayerBase,
    TransformerBlock,
)
from tf_transformer.layers.feed_forward import FeedForwardBase  # noqa: E402

__all__ += [
    "DecoderLayerBase",
    "EncoderLayerBase",
    "FeedForwardBase",
    "MultiHeadAttentionBase",
    "TransformerBlock",
]

# Today's decoder block (lesson 14).
from tf_transformer.layers.grouped_query_attention import (  # noqa: E402
    GroupedQueryAttention,
    grouped_query_attention,
)
from tf_transformer.layers.modern_decoder import (  # noqa: E402
    ModernDecoder,
    ModernDecoderLayer,
)
from tf_transformer.layers.rms_norm import RMSNorm, rms_norm  # noqa: E402
from tf_transformer.layers.rotary import (  # noqa: E402
    RotaryEmbedding,
    apply_rotary_embedding,
)
from tf_transformer.layers.swiglu_feed_forward import (  # noqa: E402
    SwiGLUFeedForward,
    swiglu_width,
)

__all__ += [
    "GroupedQueryAttention",
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
