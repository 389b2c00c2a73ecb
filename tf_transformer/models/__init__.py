"""Complete models built from tf_transformer layers."""

from tf_transformer.models.transformer import Transformer
from tf_transformer.models.vision_transformer import VisionTransformer

__all__ = ["Transformer", "VisionTransformer"]
