"""`tf-transformer train-captioner` and `tf-transformer caption`, end to end."""

import contextlib
import datetime
import io
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from attention_pages import views_in, weights_of

import tf_transformer as tt
from tf_transformer.cli import main
from tf_transformer.data import LANGUAGES, load_number_captions, number_splits
from tf_transformer.inference import Captioner, image_for_captioner
from tf_transformer.training.captioning import (
    CAPTIONER_CONFIG,
    build_captioner,
    evaluate_captioner,
    train_caption_tokenizer,
    train_captioner,
)


def run_cli(argv):
    """(exit status, stdout, stderr) of the command."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in argv])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def captioner_run(tmp_path_factory, data_dir):
    """A run of `train-captioner` itself, 2 training steps: the run
    directory, and what the command printed on stdout and stderr."""
    out = tmp_path_factory.mktemp("captioner") / "run"
    code, stdout, stderr = run_cli(
        ["train-captioner", "--steps", 2, "--out", out, "--data-dir", data_dir]
    )
    assert code == 0, stderr
    return out, stdout, stderr


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, data_dir):
    """An exported captioner with random weights, and its pictures.

    Two training steps teach a captioner to stop at once (every caption
    empty); random weights write nonsense that depends on every pixel, so
    equal captions mean equal inputs. Returns the export folder, the
    in-memory `Captioner` and five test pictures with sharp ink (0 or 1,
    which an 8-bit PNG holds exactly).
    """
    keras.utils.set_random_seed(0)
    examples = load_number_captions("train[:200]", data_dir=data_dir)
    tokenizer = train_caption_tokenizer(examples, 300)
    captioner = Captioner(build_captioner(tokenizer.vocabulary_size), tokenizer)
    folder = tmp_path_factory.mktemp("untrained") / "captioner"
    captioner.export(folder)
    test = next(
        load_number_captions("test", "en", data_dir).batch(5).as_numpy_iterator()
    )
    pictures = (test["image"] > 0.5).astype("float32")
    return folder, captioner, pictures


def write_pngs(folder, pictures, transform=lambda pixels: pixels):
    paths = []
    for i, picture in enumerate(pictures):
        pixels = transform(np.round(picture * 255).astype("uint8"))
        path = folder / f"picture{i}.png"
        path.write_bytes(tf.io.encode_png(pixels).numpy())
        paths.append(path)
    return paths


def expected_captions(captioner, pictures, language="en"):
    captions = [c.decode() for c in captioner(pictures, language).numpy()]
    assert len(set(captions)) > 1, "the captions must tell the pictures apart"
    return captions


# ------------------------------------------------------------ train-captioner


@pytest.mark.slow
def test_train_captioner_prints_its_figures_and_steps_only(captioner_run):
    _, stdout, stderr = captioner_run
    for line in (
        "trained for ",
        "test: exact match ",
        "  3-digit numbers: ",
        "  by language: de ",
        "sample captions (en):",
        "try: tf-transformer caption --model ",
    ):
        assert line in stdout, stdout
    assert re.search(r"^2/2 - .*loss", stdout, re.M)  # fit's line
    # stderr: the long steps (the pictures may be generated first), no
    # TensorFlow or Keras warnings.
    for line in stderr.splitlines():
        assert re.fullmatch(
            r"(generating|training|captioning|exporting) .* …|  done in .* s", line
        ), line
    assert "exporting the captioner" in stderr


@pytest.mark.slow
def test_train_captioner_writes_captioner_metrics_and_samples(captioner_run):
    out, _, _ = captioner_run
    assert (out / "captioner" / "saved_model.pb").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["date"] == datetime.date.today().isoformat()
    assert metrics["steps"] == 2 and metrics["seed"] == 0
    assert metrics["train_seconds"] > 0
    assert 0.0 <= metrics["exact_match"] <= 1.0
    assert metrics["captions_by_digits"] == {"1": 20, "2": 180, "3": 1800}
    assert metrics["captions"] == 2000
    assert set(metrics["exact_match_by_language"]) == set(LANGUAGES)
    samples = sorted((out / "samples").glob("*.png"))
    numbers = sorted(int(path.stem) for path in samples)
    assert sorted(len(str(n)) for n in numbers) == [1, 2, 3, 3]
    assert set(numbers) <= set(number_splits()["test"])


@pytest.mark.slow
def test_sample_files_hold_test_pictures_of_their_numbers(captioner_run, data_dir):
    out, _, _ = captioner_run
    pictures = {}
    for example in load_number_captions("test", "en", data_dir).as_numpy_iterator():
        pictures.setdefault(int(example["number"]), []).append(example["image"])
    for path in (out / "samples").glob("*.png"):
        image = image_for_captioner(path)
        closest = min(np.abs(image - p).max() for p in pictures[int(path.stem)])
        assert closest <= 0.5 / 255 + 1e-6, path.name


@pytest.mark.slow
def test_caption_takes_the_run_directory_or_its_captioner_folder(captioner_run):
    out, _, _ = captioner_run
    samples = sorted((out / "samples").glob("*.png"))
    code, from_run, err = run_cli(["caption", "--model", out, *samples])
    assert code == 0, err
    assert len(from_run.splitlines()) == len(samples) == 4
    code, from_folder, err = run_cli(
        ["caption", "--model", out / "captioner", *samples]
    )
    assert code == 0, err
    assert from_folder == from_run


# -------------------------------------------------------------------- caption


def test_png_files_are_captioned_as_their_pictures_in_order(untrained, tmp_path):
    folder, captioner, pictures = untrained
    paths = write_pngs(tmp_path, pictures)
    order = [2, 0, 4, 1, 3]
    code, out, err = run_cli(["caption", "--model", folder, *[paths[i] for i in order]])
    assert code == 0, err
    expected = expected_captions(captioner, pictures)
    assert out.splitlines() == [expected[i] for i in order]


def test_dark_ink_on_white_paper_is_captioned_as_the_picture(untrained, tmp_path):
    folder, captioner, pictures = untrained
    paths = write_pngs(tmp_path, pictures, transform=lambda pixels: 255 - pixels)
    code, out, err = run_cli(["caption", "--model", folder, *paths])
    assert code == 0, err
    assert out.splitlines() == expected_captions(captioner, pictures)


def test_larger_colour_pictures_and_npy_files_are_captioned_as_the_pictures(
    untrained, tmp_path
):
    folder, captioner, pictures = untrained
    paths = write_pngs(
        tmp_path,
        pictures,
        transform=lambda pixels: np.repeat(
            np.kron(pixels, np.ones((4, 4, 1))), 3, -1
        ).astype("uint8"),
    )
    np.save(tmp_path / "picture.npy", pictures[1])
    code, out, err = run_cli(
        ["caption", "--model", folder, *paths, tmp_path / "picture.npy"]
    )
    assert code == 0, err
    expected = expected_captions(captioner, pictures)
    assert out.splitlines() == expected + [expected[1]]


def test_language_and_beam_width_reach_the_decoder(untrained, tmp_path):
    folder, captioner, pictures = untrained
    paths = write_pngs(tmp_path, pictures)
    argv = ["caption", "--model", folder, "--language", "de", "--beam-width", 3]
    code, out, err = run_cli([*argv, *paths])
    assert code == 0, err
    beam = Captioner(captioner.model, captioner.tokenizer, beam_width=3)
    expected = [c.decode() for c in beam(pictures, "de").numpy()]
    assert out.splitlines() == expected
    assert expected != expected_captions(captioner, pictures, "de")  # not greedy


def test_caption_writes_the_attention_of_each_picture(untrained, tmp_path):
    folder, captioner, pictures = untrained
    paths = write_pngs(tmp_path, pictures[:2])
    page = tmp_path / "captions.html"
    argv = ["caption", "--model", folder, "--language", "fr", "--attention-html", page]
    code, out, err = run_cli([*argv, *paths])
    assert code == 0, err
    assert len(out.splitlines()) == 2  # the captions only
    views = views_in(page.read_text(encoding="utf-8"))
    assert len(views) == 2
    model, tokenizer = captioner.model, captioner.tokenizer
    start = int(captioner.language_start_ids[LANGUAGES.index("fr")])
    for view, picture in zip(views, pictures[:2], strict=True):
        ids = tt.greedy_decode(model, picture[np.newaxis], start_ids=[start])[0]
        ids = [int(i) for i in ids.numpy() if i != 0]
        target_in = tf.constant([[start] + ids[:-1]])
        _, weights = model(
            (picture[np.newaxis], target_in), return_attention_scores=True
        )
        assert view["sequences"]["target"] == [
            tokenizer.id_to_token(int(i)) for i in target_in[0]
        ]
        assert view["image"]["grid"] == [2, 6] and view["image"]["patch_size"] == 4
        for kind, key in (("encoder", "encoder"), ("cross", "decoder_cross_attention")):
            np.testing.assert_allclose(
                weights_of(view)[kind],
                np.stack([w[0] for w in weights[key]]),
                atol=0.5 / 255 + 1e-6,
            )


def test_a_captioner_exported_without_attention_is_a_one_line_error(
    untrained, tmp_path
):
    _, captioner, pictures = untrained
    older = Captioner(captioner.model, captioner.tokenizer)
    del older.attention  # as exported before the attention view existed
    older.export(tmp_path / "older")
    paths = write_pngs(tmp_path, pictures[:1])
    argv = ["caption", "--model", tmp_path / "older", "--attention-html"]
    code, out, err = run_cli([*argv, tmp_path / "a.html", *paths])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "exported without its attention function" in err
    assert not (tmp_path / "a.html").exists()


def test_the_exported_beam_search_of_width_one_is_greedy(untrained):
    folder, captioner, pictures = untrained
    reloaded = tf.saved_model.load(str(folder))
    languages = tf.constant(["fr"] * len(pictures))
    beam = reloaded.beam_caption(tf.constant(pictures), languages, 1).numpy()
    greedy = reloaded.caption(tf.constant(pictures), languages).numpy()
    assert beam.tolist() == greedy.tolist()
    assert beam.tolist() == captioner(pictures, "fr").numpy().tolist()


@pytest.fixture(scope="module")
def not_a_captioner(tmp_path_factory):
    """A SavedModel of something else (as a translator's export would be)."""
    module = tf.Module()
    module.double = tf.function(
        lambda x: 2 * x, input_signature=[tf.TensorSpec([None], tf.float32)]
    )
    folder = tmp_path_factory.mktemp("other")
    tf.saved_model.save(module, str(folder))
    return folder


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--model", "{missing}", "{png}"], "{missing}"),
        (["--model", "{empty}", "{png}"], "{empty}"),
        (["--model", "{corrupt}", "{png}"], "{corrupt}"),
        (["--model", "{other}", "{png}"], "{other}"),
        (["--model", "{untrained}", "{png}", "{missing_png}"], "{missing_png}"),
        (["--model", "{untrained}", "{png}", "{text_png}"], "{text_png}"),
        (["--model", "{untrained}", "--language", "xx", "{png}"], "'xx'"),
    ],
    ids=[
        "missing-model",
        "empty-model-dir",
        "corrupt-savedmodel",
        "not-a-captioner",
        "missing-image",
        "unreadable-image",
        "bad-language",
    ],
)
def test_caption_errors_are_one_line_with_exit_status_2(
    argv, named, untrained, not_a_captioner, tmp_path
):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"not a protocol buffer")
    (tmp_path / "empty").mkdir()
    png = write_pngs(tmp_path, untrained[2][:1])[0]
    (tmp_path / "notes.png").write_text("four hundred and twenty-seven")
    paths = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "corrupt": corrupt,
        "other": not_a_captioner,
        "untrained": untrained[0],
        "png": png,
        "missing_png": tmp_path / "nowhere.png",
        "text_png": tmp_path / "notes.png",
    }
    code, out, err = run_cli(["caption", *[arg.format(**paths) for arg in argv]])
    assert code == 2 and out == ""
    err = err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert named.format(**paths) in err, err


def test_an_out_folder_that_cannot_be_made_is_one_line_with_exit_status_2(tmp_path):
    # A file where a folder must go: refused as root too, unlike permissions.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "run"
    code, stdout, err = run_cli(["train-captioner", "--steps", "1", "--out", out])
    assert code == 2 and stdout == ""
    err = err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert str(blocker) in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["caption", "--model", "x", "--beam-width", "0"],
        ["train-captioner", "--steps", "0"],
        ["train-captioner", "--steps", "many"],
    ],
)
def test_bad_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert argv[-2] in err and repr(argv[-1]) in err, err


def test_the_cli_lists_and_defaults_follow_the_library():
    # jobs.py spells these out so that `--help` needs no TensorFlow import.
    from tf_transformer import jobs
    from tf_transformer.cli import build_parser

    assert jobs.CAPTION_LANGUAGES == tuple(LANGUAGES)
    assert jobs.CAPTIONER_STEPS == CAPTIONER_CONFIG["steps"]
    help_text = " ".join(build_parser().format_help().split())
    assert "train-captioner" in help_text and "caption" in help_text


@pytest.mark.parametrize(
    "arguments, named",
    [
        (dict(steps=0), "steps=0"),
        (dict(seed=-1), "seed=-1"),
        (dict(batch_size=2.5), "batch_size=2.5"),
        (dict(learning_rate=0), "learning_rate=0"),
    ],
)
def test_train_captioner_names_a_bad_argument(arguments, named):
    with pytest.raises((TypeError, ValueError), match=re.escape(named)):
        train_captioner(**arguments)


def test_evaluate_captioner_names_a_bad_split():
    with pytest.raises(ValueError, match="split='dev'"):
        evaluate_captioner(None, None, split="dev")
