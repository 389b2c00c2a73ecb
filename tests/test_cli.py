"""The `tf-transformer` command: train, evaluate, translate, and its errors."""

import contextlib
import io
import json
import re
import subprocess
import sys

import keras
import pytest
from attention_pages import external_references, views_in, weights_of

from tf_transformer.cli import main


@pytest.fixture(scope="module")
def train_run(tmp_path_factory, data_dir):
    """A run made by the CLI itself: 1 epoch of 2 steps on the default corpus.

    Returns the run directory, what the command printed on stdout and
    stderr (not a terminal, as in a log or CI), and the paths of the models
    it loaded from disk.
    """
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    loaded = []
    load_model = keras.models.load_model

    def counting_load_model(path, *args, **kwargs):
        loaded.append(str(path))
        return load_model(path, *args, **kwargs)

    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        patch.setattr(keras.models, "load_model", counting_load_model)
        code = main(
            [
                "train",
                "--epochs",
                "1",
                "--steps",
                "2",
                "--out",
                str(out),
                "--data-dir",
                str(data_dir),
                "--no-jit-compile",
            ]
        )
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue(), loaded


@pytest.fixture(scope="module")
def run_dir(train_run):
    return train_run[0]


@pytest.mark.slow
def test_train_reports_each_step_in_whole_lines_in_a_log(train_run):
    _, out, err, _ = train_run
    assert "\r" not in out + err  # no live line outside a terminal
    for step in (
        "training the WordPiece tokenizers",
        "evaluating on the test split",
        "exporting the translator",
    ):
        assert re.search(rf"^{step}.* …\n  done in \d+\.\d s$", err, re.M), err
    # stderr holds the steps only (a corpus may be generated first): no
    # TensorFlow, absl or TFDS lines.
    for line in err.splitlines():
        assert re.fullmatch(
            r"(generating|training|evaluating|exporting) .* …|"
            r"  done in .* s",
            line,
        ), line
    assert re.search(r"^2/2 - .*loss", out, re.M)  # fit's one line per epoch
    assert "trained for" in out and "sample translations:" in out


@pytest.mark.slow
def test_train_loads_the_kept_model_from_disk_once(train_run):
    # Evaluation, export and the sample translations share the `Run`.
    out, _, _, loaded = train_run
    assert loaded == [str(out / "model.keras")]


@pytest.mark.slow
def test_train_writes_metrics_attention_and_translator(run_dir, capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("exact_match", "token_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert 0.0 <= metrics["bleu"] <= 100.0 and metrics["train_seconds"] > 0
    assert (run_dir / "attention.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "translator" / "saved_model.pb").exists()
    assert (run_dir / "model.keras").exists()


@pytest.mark.slow
def test_translate_arguments_and_stdin(run_dir, capsys, monkeypatch):
    assert main(["translate", "--model", str(run_dir), "twenty-one", "seven"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("twenty-one\nseven\n"))
    assert main(["translate", "--model", str(run_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == lines


@pytest.mark.slow
def test_train_writes_an_interactive_attention_page(run_dir):
    page = (run_dir / "attention.html").read_text(encoding="utf-8")
    (view,) = views_in(page)
    assert list(weights_of(view)) == ["encoder", "decoder", "cross"]
    assert external_references(page) == []


@pytest.mark.slow
def test_translate_writes_the_attention_of_each_sentence(run_dir, tmp_path, capsys):
    import numpy as np
    import tensorflow as tf

    from tf_transformer.training.train import load_run

    page = tmp_path / "attention.html"
    argv = ["translate", "--model", run_dir, "--attention-html", page, "twenty-one"]
    assert main([str(arg) for arg in [*argv, "seven"]]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the translations only
    views = views_in(page.read_text(encoding="utf-8"))
    assert len(views) == 2
    run = load_run(run_dir)
    model, source_tokenizer = run.model, run.source_tokenizer
    translator = run.translator()
    source, output = translator.decode_one("seven")
    _, weights = model(
        (tf.constant([source]), tf.constant([[2] + output[:-1]])),
        return_attention_scores=True,
    )
    assert views[1]["sequences"]["source"] == [
        source_tokenizer.id_to_token(i) for i in source
    ]
    np.testing.assert_allclose(
        weights_of(views[1])["cross"],
        np.stack([w[0] for w in weights["decoder_cross_attention"]]),
        atol=0.5 / 255 + 1e-6,
    )


@pytest.mark.slow
def test_evaluate_prints_the_scores(run_dir, capsys):
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(run_dir),
                "--split",
                "validation",
                "--examples",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "exact match" in out and "BLEU" in out


@pytest.mark.slow
def test_overlong_input_is_truncated(run_dir, capsys):
    sentence = " ".join(["nine hundred and ninety-nine"] * 60)
    assert main(["translate", "--model", str(run_dir), sentence]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, message",
    [
        (["translate", "--model", "{missing}", "seven"], "no run directory"),
        (["translate", "--model", "{corrupt}", "seven"], "cannot load"),
        (["translate", "--model", "{run}", "seven", "  "], "input 2 is empty"),
        (["evaluate", "--model", "{empty}"], "no model.keras"),
        (["train", "--resume", "--out", "{missing}"], "resume"),
        (
            [
                "translate",
                "--model",
                "{run}",
                "--attention-html",
                "{missing}/a.html",
                "x",
            ],
            "--attention-html must name a file in an existing folder",
        ),
    ],
)
def test_errors_are_one_line_with_exit_status_2(
    argv, message, run_dir, tmp_path, capsys
):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.keras").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    paths = {
        "missing": tmp_path / "nope",
        "corrupt": corrupt,
        "run": run_dir,
        "empty": tmp_path / "empty",
    }
    argv = [arg.format(**paths) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert message in err.lower(), err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--config", "enormous"],
        ["train", "--corpus", "wikipedia"],
        ["train", "--strategy", "cluster"],
        ["train", "--batch-size", "0"],
        ["train", "--epochs", "-3"],
        ["train", "--steps", "two"],
        ["translate", "--model", "x", "--beam-width", "0"],
    ],
)
def test_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    option, value = argv[-2], argv[-1]
    assert option in err and repr(value) in err, err  # names the option and value


@pytest.mark.slow
def test_the_installed_command_runs():
    result = subprocess.run(
        ["tf-transformer", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    for command in ("train", "evaluate", "translate", "grade"):
        assert command in result.stdout


def test_the_cli_lists_and_defaults_follow_the_training_module():
    # jobs.py spells these out so that `--help` needs no TensorFlow import;
    # this keeps them equal to the values training actually uses.
    from tf_transformer import jobs
    from tf_transformer.cli import build_parser
    from tf_transformer.data.corpora import OFFLINE_CORPORA, ONLINE_CORPORA
    from tf_transformer.training.train import MODEL_CONFIGS, STRATEGIES, TrainConfig

    assert set(jobs.MODEL_CONFIG_NAMES) == set(MODEL_CONFIGS)
    assert set(jobs.STRATEGY_NAMES) == set(STRATEGIES)
    assert set(jobs.CORPORA) == set(OFFLINE_CORPORA) | set(ONLINE_CORPORA)
    commands = next(
        action
        for action in build_parser()._actions
        if hasattr(action, "choices") and isinstance(action.choices, dict)
    )
    help_text = " ".join(commands.choices["train"].format_help().split())
    assert f"training steps per epoch (default {TrainConfig.steps})" in help_text
    assert f"sentences per batch (default {TrainConfig.batch_size})" in help_text
    assert f"(default {TrainConfig.config};" in help_text
    assert f"(default {TrainConfig.corpus}:" in help_text
