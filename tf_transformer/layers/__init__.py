"""Keras layers of the Transformer, one concept per module."""

# Public: what models and lessons build with, and the exercises' `*Base` classes.

from tf_transformer.layers.attention import (
    MultiHeadAttention,
    MultiHeadAttentionBase,
    scaled_dot_product_attention,
)
from tf_transformer.layers.class_token import ClassToken
from tf_transformer.layers.decoder import Decoder, DecoderLayer, DecoderLayerBase
from tf_transformer.layers.dropout import Dropout, hash_dropout
from tf_transformer.layers.encoder import (
    Encoder,
    EncoderLayer,
    EncoderLayerBase,
    TransformerBlock,
)
from tf_transformer.layers.feed_forward import FeedForward, FeedForwardBase
from tf_transformer.layers.grouped_query_attention import (
    GroupedQueryAttention,
    grouped_query_attention,
)
from tf_transformer.layers.learned_position import LearnedPositionEmbedding
from tf_transformer.layers.lora import LoRADense, LoRADenseBase
from tf_transformer.layers.masked_lm import MaskedLMHead, mask_tokens
from tf_transformer.layers.masks import causal_mask, combine_masks, padding_mask
from tf_transformer.layers.modern_decoder import ModernDecoder, ModernDecoderLayer
from tf_transformer.layers.patches import PatchEmbedding, extract_patches
from tf_transformer.layers.pooling import masked_mean
from tf_transformer.layers.positional import PositionalEmbedding, positional_encoding
from tf_transformer.layers.rms_norm import RMSNorm, rms_norm
from tf_transformer.layers.rotary import RotaryEmbedding, apply_rotary_embedding
from tf_transformer.layers.swiglu_feed_forward import SwiGLUFeedForward, swiglu_width

__all__ = [
    # masks (True = may attend)
    "padding_mask",
    "causal_mask",
    "combine_masks",
    # positions
    "PositionalEmbedding",
    "positional_encoding",
    "LearnedPositionEmbedding",
    # attention
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    # the encoder and decoder stacks
    "Dropout",
    "hash_dropout",
    "FeedForward",
    "EncoderLayer",
    "Encoder",
    "DecoderLayer",
    "Decoder",
    # masked-LM pretraining and pooling
    "mask_tokens",
    "MaskedLMHead",
    "masked_mean",
    # images as patch tokens
    "extract_patches",
    "PatchEmbedding",
    "ClassToken",
    # the Keras plumbing the exercise classes inherit (lessons 04, 06, 07)
    "MultiHeadAttentionBase",
    "FeedForwardBase",
    "TransformerBlock",
    "EncoderLayerBase",
    "DecoderLayerBase",
    # today's decoder block (lesson 14)
    "rms_norm",
    "RMSNorm",
    "apply_rotary_embedding",
    "RotaryEmbedding",
    "swiglu_width",
    "SwiGLUFeedForward",
    "grouped_query_attention",
    "GroupedQueryAttention",
    "ModernDecoderLayer",
    "ModernDecoder",
    # low-rank adapters (lesson 15)
    "LoRADense",
    "LoRADenseBase",
]
