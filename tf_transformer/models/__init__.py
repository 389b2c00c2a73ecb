"""Complete models built from tf_transformer layers."""

from tf_transformer.models.causal_lm import CausalLM
from tf_transformer.models.transformer import Transformer
from tf_transformer.models.vision_transformer import VisionTransformer

__all__ = ["Transformer", "VisionTransformer"]

from tf_transformer.models.masked_language_model import MaskedLanguageModel  # noqa: E402
from tf_transformer.models.sequence_classifier import SequenceClassifier  # noqa: E402

__all__ += ["MaskedLanguageModel", "SequenceClassifier"]

__all__ += ["CausalLM"]

from tf_transformer.models.transformer import TransformerBase  # noqa: E402

__all__ += ["TransformerBase"]

from tf_transformer.models.image_captioner import ImageCaptioner  # noqa: E402

__all__ += ["ImageCaptioner"]
from tf_transformer.models.modern_causal_lm import ModernCausalLM  # noqa: E402

__all__ += ["ModernCausalLM"]
