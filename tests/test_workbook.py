"""The workbook carries a learner's passed classes to later lessons."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import types

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


def learner_copy(name):
    """The library's answer as a learner would save it: their own text."""
    return library_source(SOURCES[name]) + "\n# written by the learner\n"


def save_answers(*names):
    for name in names:
        assert workbook.save(name, learner_copy(name))


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


def fail_the_feed_forward_check(tmp_path, monkeypatch):
    """A learner's FeedForward that returns its input fails its check."""
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


def test_empty_workbook_gives_the_library_classes_and_says_so(folder, capsys):
    encoder_layer, decoder_layer = workbook.load("EncoderLayer", "DecoderLayer")
    assert encoder_layer is tt.EncoderLayer and decoder_layer is tt.DecoderLayer
    printed = capsys.readouterr().out
    assert "the library's tt.EncoderLayer" in printed
    assert "no EncoderLayer of yours is saved (it is when its check in lesson 06" in (
        printed
    )
    assert "no DecoderLayer of yours is saved (it is when its check in lesson 07" in (
        printed
    )


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
    fail_the_feed_forward_check(tmp_path, monkeypatch)
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


@pytest.mark.slow
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
    from tf_transformer.course.grading import confine

    monkeypatch.setenv(workbook.WORKBOOK_ENV, str(tmp_path / "instructor"))
    env = confine.submission_env(str(tmp_path), confine.Limits(), 10.0)
    assert env[workbook.WORKBOOK_ENV] == "off"


# ------------------------------------------------- a workbook that never lies


def feed_forward_source(call_body):
    """A learner's FeedForward whose call returns `call_body`."""
    return textwrap.dedent(
        f"""
        class FeedForward(tt.FeedForward):
            def call(self, inputs, training=None):
                return {call_body}
        """
    )


def test_sublayers_under_the_librarys_layer_are_reported_as_not_used(folder, capsys):
    save_answers("MultiHeadAttention")
    encoder_layer = workbook.load("EncoderLayer")
    assert encoder_layer is tt.EncoderLayer
    assert encoder_layer.attention_class is tt.MultiHeadAttention
    lines = dict(
        line.split(None, 1) for line in capsys.readouterr().out.splitlines()[:3]
    )
    assert lines["EncoderLayer"].startswith("the library's tt.EncoderLayer")
    assert "your MultiHeadAttention is therefore not used" in lines["EncoderLayer"]
    assert lines["MultiHeadAttention"].startswith("not used")


def test_a_requested_sublayer_is_reported_as_yours(folder, capsys):
    save_answers("MultiHeadAttention")
    attention = workbook.load("MultiHeadAttention")
    assert attention.__module__ == "workbook.MultiHeadAttention"
    assert capsys.readouterr().out.startswith("MultiHeadAttention  yours (lesson 04")


def test_helpers_and_constants_of_the_cell_are_saved_with_the_class(
    folder, tmp_path, monkeypatch
):
    module = learner_module(
        tmp_path,
        monkeypatch,
        "helpers",
        """
        import tensorflow as tf
        import tf_transformer as tt

        SCALE = 1.0
        UNUSED = object()


        def scaled(x):
            return x * SCALE


        class FeedForward(tt.FeedForward):
            def call(self, inputs, training=None):
                return scaled(super().call(inputs, training=training))
        """,
    )
    assert check("feed_forward", module.FeedForward, verbose=False).passed
    source = workbook.saved("FeedForward")
    assert "def scaled(x):" in source and "SCALE = 1.0" in source
    assert "UNUSED" not in source
    feed_forward = workbook.load("FeedForward", verbose=False)
    assert feed_forward.__module__ == "workbook.FeedForward"
    layer = feed_forward(d_model=8, dff=16)
    assert layer(tf.ones((1, 2, 8))).shape == (1, 2, 8)


def test_a_class_using_a_name_defined_nowhere_is_rejected_when_saved(
    folder, tmp_path, monkeypatch, capsys
):
    module = learner_module(
        tmp_path,
        monkeypatch,
        "elsewhere",
        """
        import tf_transformer as tt

        class FeedForward(tt.FeedForward):
            def call(self, inputs, training=None):
                return helper(super().call(inputs, training=training))
        """,
    )
    module.helper = lambda x: x  # defined at run time, in no source
    assert check("feed_forward", module.FeedForward).passed
    printed = capsys.readouterr().out
    assert "Not saved in your workbook: FeedForward uses `helper`" in printed
    assert workbook.saved("FeedForward") is None


@pytest.mark.parametrize(
    "call_body, reason",
    [
        ("tf.stop_gradient(super().call(inputs))", "no gradient reaches its inputs"),
        ("inputs + 0.0 * self.intermediate_dense(inputs)[..., :1]", "no gradient"),
        ("missing_helper(inputs)", "NameError: name 'missing_helper'"),
    ],
)
def test_a_saved_class_failing_its_smoke_test_falls_back_with_a_reason(
    folder, capsys, call_body, reason
):
    assert workbook.save("FeedForward", feed_forward_source(call_body))
    assert workbook.load("FeedForward") is tt.FeedForward
    line = capsys.readouterr().out.strip()
    assert line.startswith("FeedForward  the library's tt.FeedForward — yours failed")
    assert reason in line and "\n" not in line


def test_the_librarys_classes_pass_the_smoke_test():
    for name in workbook.LESSONS:
        assert workbook.smoke_test(name, workbook.library_class(name)) is None, name


def test_saved_time_and_latest_check_are_shown(folder, tmp_path, monkeypatch, capsys):
    save_answers("FeedForward")
    workbook.load("FeedForward")
    printed = capsys.readouterr().out
    assert re.search(r"saved 20\d\d-\d\d-\d\d \d\d:\d\d UTC", printed), printed
    assert "its latest check passed" in printed
    fail_the_feed_forward_check(tmp_path, monkeypatch)
    assert workbook.saved("FeedForward") == learner_copy("FeedForward")
    workbook.load("FeedForward")
    printed = capsys.readouterr().out
    assert "its latest check failed" in printed
    assert "this is the version that passed" in printed


def test_forget_is_documented_where_a_learner_reads(folder, capsys):
    save_answers("FeedForward")
    workbook.load("FeedForward")
    assert 'workbook.forget("Name")' in capsys.readouterr().out
    assert "forget(name)" in workbook.__doc__
    workbook.forget("FeedForward")
    assert (
        workbook.saved("FeedForward") is None and workbook.status("FeedForward") == {}
    )
    with pytest.raises(ValueError, match="Received: name='Encoder'"):
        workbook.forget("Encoder")


def test_a_solution_notebooks_answer_is_never_saved(folder):
    """Solution notebooks' exercise cells hold the library's own answer."""
    for name, dotted in SOURCES.items():
        assert not workbook.save(name, library_source(dotted)), name
    assert workbook.saved("FeedForward") is None


@pytest.mark.parametrize("value", ["1", "true", "yes", "grading"])
def test_any_grading_run_never_writes_the_workbook(folder, monkeypatch, value):
    save_answers("FeedForward")
    before = sorted(p.name for p in folder.iterdir())
    monkeypatch.setenv(GRADING_ENV, value)
    assert not workbook.save("FeedForward", learner_copy("FeedForward") + "# 2\n")
    assert not workbook.record("FeedForward", type("FeedForward", (), {}), False)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert workbook.status("FeedForward")["check_passed"] is True


def test_learners_functions_and_schedule_are_kept_and_used(
    folder, tmp_path, monkeypatch, capsys
):
    module = learner_module(
        tmp_path,
        monkeypatch,
        "functions",
        """
        import tf_transformer as tt


        def masked_loss(y_true, y_pred, label_smoothing=0.0, pad_id=0):
            return tt.masked_loss(y_true, y_pred, label_smoothing, pad_id)


        def greedy_decode(model, source_ids, max_length=None, use_cache=True):
            return tt.greedy_decode(model, source_ids, max_length, use_cache)


        def cached_decoder_step(model, token_ids, index, cache):
            return tt.cached_decoder_step(model, token_ids, index, cache)


        class TransformerSchedule(tt.TransformerSchedule):
            pass
        """,
    )
    for exercise, name in (
        ("masked_loss", "masked_loss"),
        ("greedy_decode", "greedy_decode"),
        ("cached_decoder_step", "cached_decoder_step"),
        ("transformer_schedule", "TransformerSchedule"),
    ):
        assert check(exercise, getattr(module, name), verbose=False).passed, name
        assert workbook.saved(name) is not None, name
    loss, decode, step, schedule, accuracy = workbook.load(
        "masked_loss",
        "greedy_decode",
        "cached_decoder_step",
        "TransformerSchedule",
        "masked_accuracy",
    )
    assert accuracy is tt.masked_accuracy
    for obj in (loss, decode, step, schedule):
        assert obj.__module__.startswith("workbook."), obj
    printed = capsys.readouterr().out
    assert "masked_loss          yours (lesson 08" in printed
    assert "greedy_decode        yours (lesson 09" in printed
    assert "cached_decoder_step  yours (lesson 09" in printed
    assert "the library's tt.masked_accuracy — no masked_accuracy of yours" in printed


def test_a_loss_that_cuts_the_gradient_falls_back(folder, capsys):
    source = textwrap.dedent(
        """
        def masked_loss(y_true, y_pred, label_smoothing=0.0, pad_id=0):
            return tt.masked_loss(y_true, tf.stop_gradient(y_pred))
        """
    )
    assert workbook.save("masked_loss", source)
    assert workbook.load("masked_loss") is tt.masked_loss
    assert "no gradient reaches the logits" in capsys.readouterr().out


def test_colab_without_drive_says_the_library_stands_in(folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    workbook.load("EncoderLayer")
    assert "without your workbook in Google Drive" in capsys.readouterr().out
    monkeypatch.setenv(workbook.WORKBOOK_ENV, workbook.COLAB_DRIVE + "/MyDrive/wb")
    assert not workbook.in_colab_without_drive()
    monkeypatch.delitem(sys.modules, "google.colab")
    monkeypatch.setenv(workbook.WORKBOOK_ENV, "off")
    assert not workbook.in_colab_without_drive()
