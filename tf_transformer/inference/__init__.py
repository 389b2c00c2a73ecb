"""Inference: decoding with a key/value cache, the Translator, attention plots,
and sampling from a decoder-only language model."""

# Public: the decoding loops and their pieces, the exportable modules, the plot.

from tf_transformer.inference.attention_plot import (
    plot_attention,
    plot_attention_head,
)
from tf_transformer.inference.attention_view import AttentionView, attention_view
from tf_transformer.inference.captioner import Captioner, image_for_captioner
from tf_transformer.inference.decoding import (
    beam_search,
    cached_decoder_step,
    greedy_decode,
    length_penalty,
    sequence_log_probability,
)
from tf_transformer.inference.generation import generate
from tf_transformer.inference.sampling import (
    sample_next_token,
    top_k_filter,
    top_p_filter,
)
from tf_transformer.inference.translator import Translator

__all__ = [
    # encoder-decoder decoding
    "greedy_decode",
    "cached_decoder_step",
    "beam_search",
    "length_penalty",
    "sequence_log_probability",
    # decoder-only generation and sampling
    "generate",
    "sample_next_token",
    "top_k_filter",
    "top_p_filter",
    # exportable modules: text or pictures in, text out
    "Translator",
    "Captioner",
    "image_for_captioner",
    # pictures and pages of attention
    "plot_attention",
    "plot_attention_head",
    "AttentionView",
    "attention_view",
]
