"""Argument types of the `tf-transformer` command's options.

Each turns the text of one option into its value, or raises
`argparse.ArgumentTypeError`, which argparse reports as a usage error naming
the option and the text received (exit status 2). Every subcommand's parser
(`tf_transformer.cli`, `tf_transformer.jobs`, the grader's) takes its types
from here, so no parser module imports another for them.
"""

from __future__ import annotations

import argparse


def positive_float(text: str) -> float:
    """A number > 0, such as a number of seconds."""
    return _parsed(
        text, float, lambda value: value > 0, "a number of seconds", "positive"
    )


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _parsed(text, int, lambda value: value >= 1, "a whole number", ">= 1")


def _parsed(text, convert, acceptable, kind, bound):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not acceptable(value):
        raise argparse.ArgumentTypeError(f"expected {kind} ({bound}), got {text!r}")
    return value
