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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        )
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value
