"""Complete models built from tf_transformer layers."""

# Public: every complete model, and the `TransformerBase` lesson 08 inherits.

from tf_transformer.models.causal_lm import CausalLM
from tf_transformer.models.image_captioner import ImageCaptioner, caption_inputs
from tf_transformer.models.lora import add_lora, merge_lora
from tf_transformer.models.masked_language_model import MaskedLanguageModel
from tf_transformer.models.modern_causal_lm import ModernCausalLM
from tf_transformer.models.sequence_classifier import SequenceClassifier
from tf_transformer.models.transformer import Transformer, TransformerBase
from tf_transformer.models.vision_transformer import VisionTransformer

__all__ = [
    # encoder-decoder
    "Transformer",
    "TransformerBase",
    # encoder only
    "MaskedLanguageModel",
    "SequenceClassifier",
    "VisionTransformer",
    # decoder only
    "CausalLM",
    "ModernCausalLM",
    # image -> text
    "ImageCaptioner",
    "caption_inputs",
    # low-rank adapters on a trained model (lesson 15)
    "add_lora",
    "merge_lora",
]
