"""Complete models built from tf_transformer layers."""

from tf_transformer.models.causal_lm import CausalLM
from tf_transformer.models.transformer import Transformer

__all__ = ["Transformer"]
__all__ += ["CausalLM"]
