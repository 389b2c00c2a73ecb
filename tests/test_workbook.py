"""The workbook carries a learner's passed classes to later lessons."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_transformer as tt
from tf_transformer.course import workbook
from tf_transformer.course.build.notebooks import library_source
from tf_transformer.course.checks import GRADING_ENV, check

SOURCES = {
    "MultiHeadAttention": "tf_transformer.layers.attention.MultiHeadAttention",
    "FeedForward": "tf_transformer.layers.feed_forward.FeedForward",
    "EncoderLayer": "tf_transformer.layers.encoder.EncoderLayer",
    "DecoderLayer": "tf_transformer.layers.decoder.DecoderLayer",
    "Transformer": "tf_transformer.models.transformer.Transformer",
}
IDS = (tf.constant([[2, 7, 11, 3, 0]]), tf.constant([[2, 5, 9]]))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(workbook.WORKBOOK_ENV, str(tmp_path / "workbook"))
    monkeypatch.delenv(GRADING_ENV, raising=False)
    return tmp_path / "workbook"


def save_answers(*names):
    for name in names:
        assert workbook.save(name, library_source(SOURCES[name]))


def small_model(transformer=tt.Transformer, encoder_layer=None, decoder_layer=None):
    return transformer(
        num_layers=1,
        d_model=16,
        num_heads=2,
        dff=32,
        input_vocab_size=30,
        target_vocab_size=40,
        encoder_layer_class=encoder_layer,
        decoder_layer_class=decoder_layer,
    )


def learner_module(tmp_path, monkeypatch, name, source):
    """Import `source` as a module file, as a learner's class outside Jupyter."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_empty_workbook_gives_the_library_classes_and_says_so(folder, capsys):
    encoder_layer, decoder_layer = workbook.load("EncoderLayer", "DecoderLayer")
    assert encoder_layer is tt.EncoderLayer and decoder_layer is tt.DecoderLayer
    printed = capsys.readouterr().out
    assert "the library's tt.EncoderLayer" in printed
    assert "lesson 06 passes" in printed and "lesson 07 passes" in printed


def test_saved_layers_are_rebuilt_on_the_learners_sublayers(folder, capsys):
    save_answers(*SOURCES)
    transformer, encoder_layer, decoder_layer = workbook.load(
        "Transformer", "EncoderLayer", "DecoderLayer"
    )
    assert "the library's" not in capsys.readouterr().out
    for cls in (transformer, encoder_layer, decoder_layer):
        assert cls.__module__.startswith("workbook.")
    attention = encoder_layer.attention_class
    assert attention.__module__ == "workbook.MultiHeadAttention"
    assert decoder_layer.feed_forward_class.__module__ == "workbook.FeedForward"
    model = small_model(transformer, encoder_layer, decoder_layer)
    model(IDS)
    layer = model.encoder.stack[0]
    assert type(layer) is encoder_layer and type(layer.self_attention) is attention
    reference = small_model()
    reference(IDS)
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(model(IDS), reference(IDS), atol=1e-5)


def test_learner_classes_leave_the_library_names_registered(folder):
    save_answers("EncoderLayer")
    encoder_layer = workbook.load("EncoderLayer", verbose=False)
    registered = keras.saving.get_registered_object("tf_transformer>EncoderLayer")
    assert registered is tt.EncoderLayer
    assert keras.saving.get_registered_name(encoder_layer) == "workbook>EncoderLayer"


def test_model_of_learner_layers_survives_a_keras_round_trip(folder, tmp_path):
    save_answers("EncoderLayer", "DecoderLayer")
    encoder_layer, decoder_layer = workbook.load(
        "EncoderLayer", "DecoderLayer", verbose=False
    )
    model = small_model(tt.Transformer, encoder_layer, decoder_layer)
    expected = model(IDS)
    assert model.get_config()["decoder_layer_class"] == "workbook>DecoderLayer"
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.decoder.stack[0]) is decoder_layer
    np.testing.assert_allclose(reloaded(IDS), expected, atol=1e-6)


def test_library_model_config_names_no_layer_class():
    config = small_model().get_config()
    assert "encoder_layer_class" not in config
    assert "decoder_layer_class" not in config


def test_layer_class_that_is_no_layer_is_refused_by_name():
    with pytest.raises(TypeError, match="decoder_layer_class=3"):
        tt.Transformer(1, 16, 2, 32, 30, 40, decoder_layer_class=3)
    with pytest.raises(ValueError, match="no registered layer class"):
        tt.Encoder(1, 16, 2, 32, layer_class="nowhere>Nothing")


def test_passed_check_saves_the_definition_and_a_failed_one_does_not(
    folder, tmp_path, monkeypatch
):
    good = learner_module(
        tmp_path,
        monkeypatch,
        "answer",
        """
        import tf_transformer as tt

        class FeedForward(tt.FeedForward):
            pass
        """,
    )
    assert check("feed_forward", good.FeedForward, verbose=False).passed
    assert "class FeedForward(tt.FeedForward):" in workbook.saved("FeedForward")

    workbook.forget("FeedForward")
    wrong = learner_module(
        tmp_path,
        monkeypatch,
        "wrong",
        """
        import tf_transformer as tt

        class FeedForward(tt.FeedForward):
            def call(self, inputs, training=None):
                return inputs
        """,
    )
    assert not check("feed_forward", wrong.FeedForward, verbose=False).passed
    assert workbook.saved("FeedForward") is None


def test_grading_saves_nothing(folder, monkeypatch):
    monkeypatch.setenv(GRADING_ENV, "1")
    assert not workbook.save("FeedForward", "class FeedForward: pass\n")
    assert not folder.exists()


def test_unwritable_folder_is_skipped_quietly(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(workbook.WORKBOOK_ENV, str(blocker / "workbook"))
    monkeypatch.delenv(GRADING_ENV, raising=False)
    assert not workbook.save("FeedForward", "class FeedForward: pass\n")


def test_off_turns_the_workbook_off(monkeypatch):
    monkeypatch.setenv(workbook.WORKBOOK_ENV, "off")
    assert workbook.folder() is None
    assert not workbook.save("FeedForward", "class FeedForward: pass\n")


def test_saved_source_that_no_longer_builds_falls_back_with_the_error(folder, capsys):
    assert workbook.save("EncoderLayer", "class EncoderLayer(Missing):\n    pass\n")
    assert workbook.load("EncoderLayer") is tt.EncoderLayer
    assert "NameError" in capsys.readouterr().out


def test_unknown_class_name_is_refused():
    with pytest.raises(ValueError, match="Received: names=\\('Encoder',\\)"):
        workbook.load("Encoder")


def test_a_notebook_cell_is_found_in_the_kernel_history(folder, tmp_path):
    """In Jupyter the class source comes from the cell that defined it."""
    script = textwrap.dedent(
        """
        from IPython.testing.globalipapp import start_ipython
        shell = start_ipython()
        cell = (
            "import tf_transformer as tt\\n"
            "class FeedForward(tt.FeedForward):\\n"
            "    '''mine'''\\n"
        )
        shell.run_cell(cell, store_history=True)
        shell.run_cell(
            "from tf_transformer.course.checks import check\\n"
            "result = check('feed_forward', FeedForward, verbose=False)",
            store_history=True,
        )
        assert shell.user_ns["result"].passed
        from tf_transformer.course import workbook
        print(workbook.saved("FeedForward"))
        """
    )
    env = dict(os.environ, TF_TRANSFORMER_WORKBOOK=str(folder))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "class FeedForward(tt.FeedForward):\n    '''mine'''" in done.stdout


def test_graded_submissions_run_with_the_workbook_off(tmp_path, monkeypatch):
    from tf_transformer.course.grading import grade

    monkeypatch.setenv(workbook.WORKBOOK_ENV, str(tmp_path / "instructor"))
    env = grade._submission_env(str(tmp_path), grade.Limits(), 10.0)
    assert env[workbook.WORKBOOK_ENV] == "off"
