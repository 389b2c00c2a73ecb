"""Run a lesson notebook unanswered and report what its self-checks said."""

import json
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tf_transformer.course.checks import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def cell_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


# Training cells of the lessons, shortened for the unanswered runs. These
# runs test that every cell runs and that each self-check reports "not
# implemented yet"; how long the model trains changes neither. The full
# trainings run in the solutions' nbval tests. Each text must occur exactly
# once in its lesson, so a changed lesson fails here instead of silently
# training in full.
SHORTER_TRAINING = {
    "00_big_picture": [("epochs=4, verbose=2", "epochs=1, verbose=2")],
    "08_training": [
        ("epochs=7,", "epochs=1,"),
        ("ABLATION_STEPS = 60", "ABLATION_STEPS = 10"),
    ],
    "09_inference": [("epochs=8, steps_per_epoch=100", "epochs=1, steps_per_epoch=20")],
    "12_vision_transformer": [
        ("EPOCHS, BATCH_SIZE = 60, 64", "EPOCHS, BATCH_SIZE = 1, 64"),
        ("STEPS_PER_SIZE, BATCH = 200, 32", "STEPS_PER_SIZE, BATCH = 5, 32"),
        ("fine_epochs = 40", "fine_epochs = 1"),
    ],
    "10_sequence_classification": [
        ("steps=150, seed=0", "steps=3, seed=0"),
        (".shuffle(len(pretraining_ids), seed=0)", ".take(192)"),
        ("steps=120)", "steps=3)"),
    ],
}
SHORTER_TRAINING["11_language_models"] = [
    ("STEPS = 600", "STEPS = 100"),
    ("WARMUP_STEPS, PEAK_RATE = 100,", "WARMUP_STEPS, PEAK_RATE = 10,"),
    ("test_pairs.take(300)", "test_pairs.take(16)"),
    ("lengths = [16, 64, 128]", "lengths = [4, 8]"),
    ("[0.0, 1.0, 1.5, 2.0, 2.5, 3.0]", "[0.0, 3.0]"),
    ("[1, 2, 3, 5, 10]", "[1, 10]"),
    ("[0.3, 0.6, 0.8, 0.95, 1.0]", "[0.3, 1.0]"),
    ("epochs=5, steps_per_epoch=50,", "epochs=1, steps_per_epoch=5,"),
]
SHORTER_TRAINING["13_image_captioning"] = [("STEPS = 2400", "STEPS = 8")]
SHORTER_TRAINING["14_modern_decoder"] = [
    (
        "STEPS, WARMUP, TRAIN_LENGTH = 150, 40, 28",
        "STEPS, WARMUP, TRAIN_LENGTH = 50, 10, 28",
    ),
    ("if len(held_out[group]) < 100:", "if len(held_out[group]) < 8:"),
]
SHORTER_TRAINING["15_lora"] = [
    ("BASE_STEPS, STEPS = 240, 100", "BASE_STEPS, STEPS = 20, 20"),
]


def shorten_training(notebook, stem):
    """Apply `SHORTER_TRAINING[stem]` to the notebook's code cells, in place."""
    for old, new in SHORTER_TRAINING.get(stem, []):
        cells = [c for c in notebook.cells if c.cell_type == "code" and old in c.source]
        count = sum(c.source.count(old) for c in cells)
        if count != 1:
            raise AssertionError(f"{stem}: {old!r} occurs {count} times, not once")
        cells[0].source = cells[0].source.replace(old, new)


def run_unanswered(path, tmp_path, timeout=300):
    """Execute the lesson as a student who answered nothing would, with its
    training shortened (`SHORTER_TRAINING`).

    Returns (errors, check_reports): the cells that raised, and for each
    self-check cell the text it printed.
    """
    notebook = nbformat.read(path, as_version=4)
    shorten_training(notebook, Path(path).stem)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # An empty workbook: the lesson uses the library's classes, as a student's
    # who answered nothing (the kernel inherits the environment).
    os.environ["TF_TRANSFORMER_WORKBOOK"] = str(Path(tmp_path) / "workbook")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors, reports = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("tf_transformer", {})
        if "check" in meta:
            reports.append((meta["check"], cell_text(cell)))
        elif "exercise" not in meta and any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            # Exercise cells hold the stubs; every other cell must run.
            errors.append((cell.source[:80], cell_text(cell)[-500:]))
    return errors, reports


def library_exercises(path):
    notebook = json.loads(Path(path).read_text())
    names = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("tf_transformer", {})
        if meta.get("exercise") in EXERCISES:
            names.append(meta["exercise"])
    return names


def assert_runs_unanswered(path, tmp_path):
    """The lesson runs to the end and each library self-check says "not
    implemented yet" (no traceback)."""
    errors, reports = run_unanswered(path, tmp_path)
    assert not errors, errors
    exercises = library_exercises(path)
    for exercise in exercises:
        assert any(name == exercise for name, _ in reports), exercise
    for name, text in reports:
        if name in exercises:
            assert "not implemented yet" in text, (name, text)
            assert "Traceback" not in text


# Lesson 00's seq2seq bottleneck experiment (two small GRU translators).
SHORTER_TRAINING["00_big_picture"].append(
    ("batch_size=60, epochs=8, verbose=0", "batch_size=60, epochs=1, verbose=0")
)
