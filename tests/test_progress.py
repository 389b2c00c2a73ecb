"""Long steps say what they do and how long it took: whole lines in logs, a
live line on a terminal."""

import io
import re

import pytest

from tf_transformer.data import load_translation
from tf_transformer.progress import TrainingProgress, step


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_step_in_a_log_is_two_whole_lines():
    log = io.StringIO()
    with step("training the WordPiece tokenizers", stream=log):
        pass
    lines = log.getvalue().splitlines()
    assert lines[0] == "training the WordPiece tokenizers …"
    assert re.fullmatch(r"  done in \d+\.\d s", lines[1]), lines
    assert len(lines) == 2 and "\r" not in log.getvalue()


def test_a_failed_step_says_so_and_the_error_goes_on():
    log = io.StringIO()
    with pytest.raises(OSError, match="disk full"):
        with step("exporting the translator", stream=log):
            raise OSError("disk full")
    assert re.fullmatch(
        r"exporting the translator …\n  failed after \d+\.\d s\n", log.getvalue()
    )


def test_a_step_on_a_terminal_is_one_line_rewritten_in_place():
    screen = Terminal()
    with step("evaluating on the test split", stream=screen):
        pass
    text = screen.getvalue()
    assert text.startswith("\r\x1b[Kevaluating on the test split … 0 s")
    assert re.search(r"\r\x1b\[Kevaluating on the test split … done in \S+ s\n$", text)
    assert text.count("\n") == 1


def test_a_step_inside_a_step_on_a_terminal_keeps_both_lines():
    screen = Terminal()
    with step("evaluating", stream=screen):
        with step("generating the corpus", stream=screen):
            pass
    # What stays on the screen: each line's last drawing.
    lines = [line.split("\r\x1b[K")[-1] for line in screen.getvalue().split("\n")]
    assert lines[0] == "evaluating … 0 s"
    assert re.fullmatch(r"generating the corpus … done in \S+ s", lines[1])
    assert re.fullmatch(r"evaluating … done in \S+ s", lines[2])
    assert lines[3:] == [""]


def run_one_epoch(callback, steps=5):
    """The callback methods Keras calls in one epoch of `steps` steps."""
    callback.set_params({"epochs": 3, "steps": steps})
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for batch in range(steps):
        callback.on_train_batch_end(batch, {"loss": 2.5 - batch / 10})
    callback.on_test_begin()
    callback.on_test_batch_end(0)
    callback.on_test_end()
    callback.on_epoch_end(0, {"loss": 2.1})
    callback.on_train_end()


def test_training_progress_writes_nothing_to_a_log():
    # The log keeps fit(verbose=2)'s one line per epoch, no carriage returns.
    log = io.StringIO()
    run_one_epoch(TrainingProgress(stream=log, min_interval=0))
    assert log.getvalue() == ""


def test_training_progress_on_a_terminal_is_erased_before_the_epoch_line():
    screen = Terminal()
    run_one_epoch(TrainingProgress(stream=screen, min_interval=0))
    text = screen.getvalue()
    assert "epoch 1/3  step 3/5  ████████████░░░░░░░░  loss 2.300" in text
    assert "epoch 1: validating, batch 1" in text
    assert "\n" not in text and text.endswith("\r\x1b[K")  # nothing left behind


def test_generating_a_corpus_says_what_and_how_long(tmp_path, capsys):
    load_translation("dates", "test", "de", "en", data_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert "Downloading" not in err and "Unknown size" not in err
    assert "dataset_info.json" not in err  # TFDS's warning about its own folder
    assert re.fullmatch(
        r"generating the dates de→en corpus \(32,000 pairs\) …\n"
        r"  done in \d+\.\d s\n",
        err,
    ), err
    load_translation("dates", "validation", "de", "en", data_dir=str(tmp_path))
    assert capsys.readouterr().err == ""  # prepared: nothing to say


def test_a_one_config_dataset_is_named_when_it_is_generated():
    # The classification builders share the translation plumbing but have no
    # language pair: their message names the dataset.
    import tensorflow_datasets as tfds

    from tf_transformer.data import classification  # noqa: F401 - registers them
    from tf_transformer.data.corpora import _preparation_message

    builder = tfds.builder("tf_transformer_parity")
    message = _preparation_message(builder)
    assert message == "generating the dataset tf_transformer_parity"
