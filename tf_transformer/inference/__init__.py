"""Inference: greedy and beam-search decoding with a key/value cache."""

from tf_transformer.inference.decoding import (
    beam_search,
    greedy_decode,
    length_penalty,
    sequence_log_probability,
)

__all__ = ["beam_search", "greedy_decode", "length_penalty", "sequence_log_probability"]
