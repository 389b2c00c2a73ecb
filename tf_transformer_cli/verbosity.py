"""Whether the user asked to see TensorFlow's own log lines.

`--verbose` on the command line or `TF_TRANSFORMER_VERBOSE=1` in the
environment. Both the entry point (before TensorFlow loads) and
`tf_transformer.cli` (for its `--verbose` option) read it here; this module
imports nothing of the project's, so neither of them imports the other for it.
"""

from __future__ import annotations

import os

VERBOSE_ENV = "TF_TRANSFORMER_VERBOSE"


def verbose_from_environment() -> bool:
    """Whether `TF_TRANSFORMER_VERBOSE` asks for TensorFlow's own lines."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def wants_verbose(argv: list[str]) -> bool:
    """Whether TensorFlow's own lines are wanted: `--verbose` or the env var."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--verbose" in options or verbose_from_environment()
