"""Inference: decoding with a key/value cache, the Translator, attention plots."""

from tf_transformer.inference.attention_plot import plot_attention
from tf_transformer.inference.decoding import (
    beam_search,
    greedy_decode,
    length_penalty,
    sequence_log_probability,
)
from tf_transformer.inference.translator import Translator

__all__ = [
    "Translator",
    "beam_search",
    "greedy_decode",
    "length_penalty",
    "plot_attention",
    "sequence_log_probability",
]
