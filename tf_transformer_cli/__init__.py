"""Entry point of the `tf-transformer` command: quiet before TensorFlow loads.

TensorFlow writes its start-up lines (oneDNN, CUDA stubs, CPU features,
absl's "All log messages before absl::InitializeLog()") to file descriptor
2 while it is imported, whatever `TF_CPP_MIN_LOG_LEVEL` says, and
importing anything inside the `tf_transformer` package imports TensorFlow.
So this entry point sits beside the package: it decides before that import.

Without `--verbose` (or `TF_TRANSFORMER_VERBOSE=1`) the import runs with
file descriptor 2 going to a temporary file; afterwards every captured line
goes to stderr except TensorFlow's log records below `TF_CPP_MIN_LOG_LEVEL`
(default 3: informational, warning and error records are held back, a fatal
one is shown), so Python errors and warnings raised while importing still
surface. `TF_CPP_MIN_LOG_LEVEL` is set to 3 for the rest of the run unless
the user set it. With `--verbose` nothing is held back or changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

from tf_transformer_cli.verbosity import (
    VERBOSE_ENV,
    verbose_from_environment,
    wants_verbose,
)

__all__ = [
    "VERBOSE_ENV",
    "main",
    "startup_lines_held_back",
    "startup_lines_kept",
    "verbose_from_environment",
    "wants_verbose",
]

# A C++ log record: "I0000 00:00:1796473427.003556    5956 port.cc:153] ..."
_RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ [^\]]+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    except ValueError:
        return 3


def startup_lines_kept(text: str, min_level: int) -> str:
    """`text` without TensorFlow's log records below `min_level`.

    A held-back record takes its continuation lines with it (lines that are
    not records themselves, such as the second line of cpu_feature_guard's
    message); absl's banner goes whenever anything below level 3 is hidden.
    """
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            dropping = _SEVERITY[record.group(1)] < min_level
        elif line.startswith(_BANNER):
            dropping = min_level > 0
        elif not line.startswith(("To enable the following instructions", " ")):
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def startup_lines_held_back(min_level: int):
    """File descriptor 2 into a temporary file, then the lines worth keeping.

    What is kept is written to stderr when the block ends, also when it
    raises, so an error while importing is never lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            sys.stderr.write(startup_lines_kept(text, min_level))
            sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if wants_verbose(argv):
        from tf_transformer.cli import main as run

        return run(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with startup_lines_held_back(_min_level()):
        from tf_transformer.cli import main as run
    return run(argv)
