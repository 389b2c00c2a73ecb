"""Set-up for the whole test run (tests/ and the solution notebooks).

The test run keeps its generated corpora in one temporary TFDS data
directory, `$TFDS_DATA_DIR`, shared by every pytest-xdist worker, every test
module and every notebook kernel (they inherit the environment). Each corpus
is then generated once per run, not once per module and worker, and the
tests never write into the user's `~/tensorflow_datasets`. The directory is
made by the first pytest process (the controller, under xdist) before the
workers start, and removed when that process ends.

Under pytest-xdist each TensorFlow process (worker, notebook kernel,
grader sandbox, subprocess) gets `TF_NUM_INTRAOP_THREADS` and
`TF_NUM_INTEROP_THREADS` of cores / workers, unless they are set already:
TensorFlow otherwise sizes both pools to every core in every process, and
two workers on two cores then run four busy threads on two cores. The suite
took 780 s with one thread each against 968 s without (2 cores, 2
workers, 2026-12-03, `pytest --durations=0`).

Tests that train a model, execute a notebook (every solution notebook's
cells, under nbval) or start a process are marked `slow`:
`pytest -m "not slow"` runs the others, the fast tier for the inner loop.

The files that take longest run first (`SLOWEST_FIRST`): pytest-xdist gives
each worker whole files in collection order (`--dist loadfile
--no-loadscope-reorder` in pyproject.toml), and a long file started last
would leave the other worker idle while it runs.
"""

import os
import shutil
import tempfile

import pytest

_OWNER = "TF_TRANSFORMER_TEST_DATA_OWNER"

if _OWNER not in os.environ:
    os.environ["TFDS_DATA_DIR"] = tempfile.mkdtemp(prefix="tf_transformer_tfds_")
    os.environ[_OWNER] = str(os.getpid())


# Test files by the time they took (`pytest --durations=30`, 2 cores,
# 2026-12-02), longest first; every other file follows in collection order.
SLOWEST_FIRST = (
    "tests/test_train.py",
    "tests/test_grade.py",
    "tests/test_grade_sandbox.py",
    "tests/test_grade_integrity.py",
    "tests/test_colab_setup.py",
    "solutions/13_image_captioning.ipynb",
    "solutions/08_training.ipynb",
    "solutions/10_sequence_classification.ipynb",
    "solutions/11_language_models.ipynb",
    "solutions/14_modern_decoder.ipynb",
    "solutions/12_vision_transformer.ipynb",
    "tests/test_lessons_unanswered_b.py",
    "tests/test_cli.py",
    "tests/test_cli_captioner.py",
    "tests/test_image_captioner.py",
    "solutions/07_decoder.ipynb",
    "tests/test_quiet_start.py",
    "tests/test_lessons_unanswered_a.py",
    "tests/test_nbgrader_autograde.py",
    "solutions/09_inference.ipynb",
)


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: trains a model, executes a notebook or starts a process; "
        '`pytest -m "not slow"` leaves them out (the fast tier)',
    )
    workers = config.getoption("numprocesses", default=None)
    if isinstance(workers, int) and workers > 1:
        threads = str(max(1, _cores() // workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)


@pytest.hookimpl(tryfirst=True)  # marked before `-m` selects
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":  # nbval runs the notebook's cells
            item.add_marker(pytest.mark.slow)
    rank = {path: index for index, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_unconfigure(config):
    if os.environ.get(_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ["TFDS_DATA_DIR"], ignore_errors=True)
