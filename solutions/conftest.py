"""nbval set-up for the solution notebooks.

TensorFlow logs to stderr at import and at odd moments; those lines are not
part of a lesson's result, so stderr streams are left out of every output
comparison. Only cells marked `# NBVAL_CHECK_OUTPUT` are compared at all
(`--nbval-lax`).
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inherited by the kernels
# Classes that pass their checks are saved in a workbook (course.workbook):
# a fresh folder per test process, never the user's home.
os.environ.setdefault("TF_TRANSFORMER_WORKBOOK", tempfile.mkdtemp(prefix="workbook-"))


def _without_stderr(outputs):
    return [
        output
        for output in outputs
        if not (
            output.get("output_type") == "stream" and output.get("name") == "stderr"
        )
    ]


def pytest_collection_modifyitems(items):
    for item in items:
        compare = getattr(item, "compare_outputs", None)
        if compare is None:
            continue

        def compare_without_stderr(test, ref, skip_compare=None, _compare=compare):
            return _compare(_without_stderr(test), _without_stderr(ref), skip_compare)

        item.compare_outputs = compare_without_stderr
