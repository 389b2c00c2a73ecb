"""Inference: decoding with a key/value cache, the Translator, attention plots,
and sampling from a decoder-only language model."""

from tf_transformer.inference.attention_plot import plot_attention
from tf_transformer.inference.decoding import (
    beam_search,
    greedy_decode,
    length_penalty,
    sequence_log_probability,
)
from tf_transformer.inference.generation import generate, next_token_logits
from tf_transformer.inference.sampling import top_k_filter, top_p_filter
from tf_transformer.inference.translator import Translator

__all__ = [
    "Translator",
    "beam_search",
    "greedy_decode",
    "length_penalty",
    "plot_attention",
    "sequence_log_probability",
]
__all__ += ["generate", "next_token_logits", "top_k_filter", "top_p_filter"]

from tf_transformer.inference.captioner import Captioner  # noqa: E402

__all__ += ["Captioner"]

from tf_transformer.inference.captioner import image_for_captioner  # noqa: E402

__all__ += ["image_for_captioner"]

from tf_transformer.inference.attention_view import (  # noqa: E402
    AttentionView,
    attention_view,
)

__all__ += ["AttentionView", "attention_view"]
