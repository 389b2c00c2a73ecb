"""The main job as `tf-transformer` subcommands: train, evaluate, translate;
and the image captioner's: train-captioner, caption.

`tf-transformer` with no command runs `train` with its defaults: it trains
the tiny model on the offline numbers + dates corpus, evaluates it on the
held-out test split, prints sample translations and writes, under
`runs/<timestamp>/`: the model, tokenizers, an exported translator
(SavedModel), `metrics.json`, `attention.png` and TensorBoard logs.

Every expected failure (bad option, missing or corrupt model directory, an
empty input line, an output folder that cannot be made, no network for an
online corpus) ends with a one-line `error: ...` on stderr and exit status
2, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

CORPORA = ("mixed", "numbers", "dates", "ted_hrlr_translate/pt_to_en")
MODEL_CONFIG_NAMES = ("tiny", "small", "base", "paper", "big")
STRATEGY_NAMES = ("default", "mirrored", "tpu")
SAMPLE_SENTENCES = (
    "four hundred and twenty-one",
    "seventy-seven thousand, nine hundred and ninety-one",
    "Sunday, November 22, 2026",
    "Friday, July 14, 1989",
)


from tf_transformer.cli import _positive_float, _positive_int  # noqa: E402


class JobError(Exception):
    """An expected failure: reported as one line, exit status 2."""


def add_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a translator, evaluate it, show translations (the default)",
        description=__doc__.split("\n\n")[1],
    )
    train.add_argument(
        "--config",
        choices=MODEL_CONFIG_NAMES,
        default="tiny",
        help="model size (default tiny; base/paper = the paper's base "
        "model, big = its big variant)",
    )
    train.add_argument(
        "--corpus",
        choices=CORPORA,
        default="mixed",
        help="training corpus (default mixed: numbers + dates)",
    )
    train.add_argument(
        "--source-lang", default=None, help="source language (default en; pt for TED)"
    )
    train.add_argument(
        "--target-lang", default=None, help="target language (default fr; en for TED)"
    )
    train.add_argument("--epochs", type=_positive_int, default=None, metavar="N")
    train.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        metavar="N",
        help="training steps per epoch (default 125)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="sentences per batch (default 128)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory (default runs/<timestamp>)",
    )
    train.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        default="default",
        help="tf.distribute strategy (default: one device)",
    )
    train.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPU, mixed_bfloat16 on CPU/TPU",
    )
    train.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="compile the train step with XLA (default off: slower on 2 CPU cores)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out"
    )
    train.add_argument(
        "--time-budget",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="stop training after this long",
    )
    _add_data_dir(train, "TFDS data directory for the corpora")
    train.set_defaults(handler=_guarded(run_train))

    evaluate = commands.add_parser(
        "evaluate", help="exact match, token accuracy and BLEU of a trained model"
    )
    evaluate.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="DIR",
        help="a run directory written by `train`",
    )
    evaluate.add_argument(
        "--split", choices=("train", "validation", "test"), default="test"
    )
    evaluate.add_argument(
        "--examples",
        type=int,
        default=5,
        metavar="N",
        help="example translations to show (default 5)",
    )
    evaluate.add_argument("--data-dir", default=None, metavar="DIR")
    evaluate.set_defaults(handler=_guarded(run_evaluate))

    translate = commands.add_parser(
        "translate",
        help="translate sentences given as arguments, or one per line on stdin",
        description="Inputs longer than the model's max_source_length tokens are "
        "truncated (the end is dropped).",
    )
    translate.add_argument("--model", type=Path, required=True, metavar="DIR")
    translate.add_argument(
        "sentences",
        nargs="*",
        metavar="TEXT",
        help="sentences; none (or -) reads stdin, one per line",
    )
    translate.add_argument(
        "--beam-width",
        type=_positive_int,
        default=1,
        metavar="N",
        help="1 = greedy (default); more = beam search",
    )
    translate.set_defaults(handler=_guarded(run_translate))
    _add_captioner_commands(commands)


def _add_data_dir(parser, help: str) -> None:
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=help)


def _guarded(handler):
    """Run `handler`; turn expected failures into one line on stderr, exit 2.

    Expected: the job's own `JobError`; a `ValueError` from the library's
    checks of what the user gave (a run directory, a config value, a model
    that cannot be loaded); an `OSError` (a missing file, an --out that
    cannot be written); `OfflineError` (a corpus that needs the network); the
    `RuntimeError` of `--strategy tpu` without a TPU. Anything else (a
    `TypeError`, a `KeyError`) is a bug, shown with its traceback.
    """

    def run(args):
        from tf_transformer.data import OfflineError

        try:
            return handler(args)
        except (JobError, ValueError, OSError, OfflineError, RuntimeError) as error:
            message = " ".join(str(error).split())
            print(f"error: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(
                "interrupted: resume with `tf-transformer train --resume --out DIR`",
                file=sys.stderr,
            )
            return 130

    return run


def run_train(args) -> int:
    from tf_transformer.progress import TrainingProgress
    from tf_transformer.training.train import TrainConfig, train

    out = args.out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    overrides = {
        "epochs": args.epochs,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "source_lang": args.source_lang,
        "target_lang": args.target_lang,
        "time_budget": args.time_budget,
        "data_dir": args.data_dir,
    }
    if args.corpus.startswith("ted_hrlr"):  # the TED corpus is Portuguese -> English
        overrides["source_lang"] = args.source_lang or "pt"
        overrides["target_lang"] = args.target_lang or "en"
    config = TrainConfig(
        config=args.config,
        corpus=args.corpus,
        out=str(out),
        strategy=args.strategy,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        resume=args.resume,
        **{key: value for key, value in overrides.items() if value is not None},
    )
    print(
        f"training {config.config} on {config.corpus} "
        f"({config.source_lang}->{config.target_lang}) into {out}",
        flush=True,
    )
    summary = train(config, callbacks=[TrainingProgress()])
    print(
        f"trained for {summary['train_seconds']:.1f} s "
        f"({summary['epochs_run']} epochs of {summary['steps_per_epoch']} steps)"
    )
    metrics = _evaluate_and_report(out, "test", 5, config.data_dir)
    metrics["train_seconds"] = round(summary["train_seconds"], 2)
    metrics["epochs_run"] = summary["epochs_run"]
    metrics["config"] = config.config
    metrics["corpus"] = config.corpus
    metrics["date"] = datetime.date.today().isoformat()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _translate_samples_and_plot(out)
    print(f"wrote {out / 'metrics.json'}")
    return 0


def _evaluate_and_report(run_dir, split, examples, data_dir):
    from tf_transformer.progress import step
    from tf_transformer.training.train import evaluate, load_run

    run = load_run(run_dir)  # a missing or broken run fails before the step
    with step(f"evaluating on the {split} split (greedy translations, BLEU)"):
        metrics = evaluate(
            run_dir, split=split, examples=examples, data_dir=data_dir, run=run
        )
    print(
        f"{split}: exact match {metrics['exact_match']:.4f}, token accuracy "
        f"{metrics['token_accuracy']:.4f}, BLEU {metrics['bleu']:.2f} "
        f"({metrics['pairs']} pairs)"
    )
    for example in metrics["examples"]:
        mark = "✓" if example["translation"] == example["reference"] else "✗"
        print(
            f"  {mark} {example['source']}\n      -> {example['translation']}"
            + ("" if mark == "✓" else f"\n      expected {example['reference']}")
        )
    return metrics


def _translate_samples_and_plot(run_dir: Path) -> None:
    from tf_transformer.inference import Translator, plot_attention
    from tf_transformer.progress import step
    from tf_transformer.training.train import load_run

    model, source_tokenizer, target_tokenizer = load_run(run_dir)
    translator = Translator(model, source_tokenizer, target_tokenizer)
    with step("exporting the translator (SavedModel with its tokenizers)"):
        translator.export(run_dir / "translator")
    print("sample translations:")
    for sentence, translation in zip(
        SAMPLE_SENTENCES, translator(list(SAMPLE_SENTENCES)).numpy(), strict=True
    ):
        print(f"  {sentence} -> {translation.decode()}")
    info = translator.translate_with_attention(SAMPLE_SENTENCES[2])
    path = run_dir / "attention.png"
    plot_attention(
        info["cross_attention"],
        info["source_tokens"],
        info["target_tokens"],
        path=path,
        title=f"cross-attention, last decoder layer: {info['translation']}",
    )
    print(f"wrote {path} and {run_dir / 'translator'}")


def run_evaluate(args) -> int:
    _evaluate_and_report(args.model, args.split, args.examples, args.data_dir)
    return 0


def run_translate(args) -> int:
    from tf_transformer.inference import Translator
    from tf_transformer.training.train import load_run

    sentences = list(args.sentences)
    if not sentences or sentences == ["-"]:
        sentences = [line.rstrip("\n") for line in sys.stdin]
    for number, sentence in enumerate(sentences, start=1):
        if not sentence.strip():
            raise JobError(f"input {number} is empty: give a sentence to translate")
    model, source_tokenizer, target_tokenizer = load_run(args.model)
    translator = Translator(
        model, source_tokenizer, target_tokenizer, beam_width=args.beam_width
    )
    for start in range(0, len(sentences), 256):
        for line in translator(sentences[start : start + 256]).numpy():
            print(line.decode())
    return 0


# ---------------------------------------------------------------- captioner

# Spelled out so that `--help` needs no TensorFlow import; a test keeps them
# equal to tf_transformer.data.LANGUAGES and CAPTIONER_CONFIG["steps"].
CAPTION_LANGUAGES = ("de", "en", "es", "fr", "pt")
CAPTIONER_STEPS = 2400
SAMPLE_NUMBERS = 4  # test pictures written as PNG files by train-captioner


def _add_captioner_commands(commands) -> None:
    train = commands.add_parser(
        "train-captioner",
        help="train lesson 13's image captioner, evaluate it, export it",
        description="Train the image captioner of lesson 13 (pictures of "
        "handwritten numbers 0-999, captions in de/en/es/fr/pt) on the offline "
        "data, caption every test picture in every language, and write under "
        "--out: the exported captioner (captioner/, a SavedModel), "
        "metrics.json and a few test pictures (samples/<number>.png).",
    )
    train.add_argument(
        "--steps",
        type=_positive_int,
        default=CAPTIONER_STEPS,
        metavar="N",
        help=f"training steps of 64 captions (default {CAPTIONER_STEPS})",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="K",
        help="seed of the weights, shuffling and dropout (default 0)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory (default runs/captioner-<timestamp>)",
    )
    _add_data_dir(train, "TFDS data directory of the pictures")
    train.set_defaults(handler=_guarded(run_train_captioner))

    caption = commands.add_parser(
        "caption",
        help="caption pictures of numbers with an exported captioner",
        description="Print one caption per picture, in the order given. A "
        "picture (PNG, JPEG, BMP, GIF or .npy) is made grayscale, inverted when "
        "it is mostly bright (dark ink on white paper) and resized to the "
        "captioner's 8x24 pixels when its size differs.",
    )
    caption.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="DIR",
        help="a run directory of train-captioner, or its captioner/ folder",
    )
    caption.add_argument(
        "--language",
        default="en",
        metavar="CODE",
        help=f"caption language, one of {', '.join(CAPTION_LANGUAGES)} (default en)",
    )
    caption.add_argument(
        "--beam-width",
        type=_positive_int,
        default=1,
        metavar="N",
        help="1 = greedy (default); more = beam search",
    )
    caption.add_argument(
        "images", nargs="+", metavar="IMAGE", help="picture files to caption"
    )
    caption.set_defaults(handler=_guarded(run_caption))


def run_train_captioner(args) -> int:
    import numpy as np

    from tf_transformer.progress import TrainingProgress, step
    from tf_transformer.training.captioning import (
        evaluate_captioner,
        train_captioner,
    )

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("runs") / f"captioner-{stamp}"
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails first
    print(f"training the image captioner ({args.steps} steps) into {out}", flush=True)
    model, tokenizer, seconds = train_captioner(
        steps=args.steps,
        seed=args.seed,
        data_dir=args.data_dir,
        callbacks=[TrainingProgress()],
    )
    print(f"trained for {seconds:.1f} s ({args.steps} steps)", flush=True)
    with step("captioning the test split (greedy, every picture in 5 languages)"):
        metrics = evaluate_captioner(model, tokenizer, "test", args.data_dir)
    _print_caption_metrics(metrics)
    from tf_transformer.inference import Captioner

    captioner = Captioner(model, tokenizer)
    with step("exporting the captioner (SavedModel with its tokenizer)"):
        captioner.export(out / "captioner")
    samples = _write_sample_pictures(out / "samples", args.data_dir)
    print("sample captions (en):")
    captions = captioner(np.stack([image for _, image in samples]), "en")
    for (path, _), text in zip(samples, captions.numpy(), strict=True):
        print(f"  {path.name} -> {text.decode()}")
    metrics.update(
        train_seconds=round(seconds, 2),
        steps=args.steps,
        seed=args.seed,
        date=datetime.date.today().isoformat(),
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'metrics.json'}, {out / 'captioner'} and {out / 'samples'}")
    print(f"try: tf-transformer caption --model {out} {samples[0][0]}")
    return 0


def _print_caption_metrics(metrics) -> None:
    print(
        f"{metrics['split']}: exact match {metrics['exact_match']:.4f} "
        f"({metrics['captions']} captions)"
    )
    for digits, value in metrics["exact_match_by_digits"].items():
        count = metrics["captions_by_digits"][digits]
        print(f"  {digits}-digit numbers: {value:.4f} of {count}")
    print(
        "  by language: "
        + ", ".join(
            f"{lang} {value:.4f}"
            for lang, value in metrics["exact_match_by_language"].items()
        ),
        flush=True,  # before the next step's line on stderr
    )


def _write_sample_pictures(folder: Path, data_dir):
    """PNG files of the first test pictures of numbers with 1, 2 and 3
    digits (3 digits for the rest), as the captioner sees them: 8x24 pixels,
    ink bright on black. Returns (path, image) pairs."""
    import numpy as np
    import tensorflow as tf

    from tf_transformer.data import load_number_captions

    wanted = [1, 2] + [3] * (SAMPLE_NUMBERS - 2)
    samples = []
    folder.mkdir(parents=True, exist_ok=True)
    for example in load_number_captions("test", "en", data_dir).as_numpy_iterator():
        digits = len(str(example["number"]))
        if digits in wanted:
            wanted.remove(digits)
            path = folder / f"{example['number']}.png"
            pixels = np.round(example["image"] * 255).astype("uint8")
            path.write_bytes(tf.io.encode_png(pixels).numpy())
            samples.append((path, example["image"]))
        if not wanted:
            break
    return samples


def _captioner_folder(model: Path) -> Path:
    """The SavedModel folder of `--model`: DIR/captioner or DIR itself."""
    for folder in (model / "captioner", model):
        if (folder / "saved_model.pb").is_file():
            return folder
    if not model.exists():
        raise JobError(f"no such directory. Received: --model={str(model)!r}")
    raise JobError(
        "not an exported captioner: no captioner/saved_model.pb or "
        f"saved_model.pb in it (train-captioner writes one). "
        f"Received: --model={str(model)!r}"
    )


def run_caption(args) -> int:
    if args.language not in CAPTION_LANGUAGES:
        raise JobError(
            f"--language must be one of {', '.join(CAPTION_LANGUAGES)}. "
            f"Received: --language={args.language!r}"
        )
    folder = _captioner_folder(args.model)
    for image in args.images:  # before the slow load: a typo fails at once
        if not Path(image).is_file():
            raise JobError(f"no such image file. Received: IMAGE={image!r}")
    import numpy as np
    import tensorflow as tf

    from tf_transformer.inference.captioner import image_for_captioner

    try:
        captioner = tf.saved_model.load(str(folder))
    except Exception as error:  # a damaged SavedModel raises many kinds
        raise JobError(
            f"cannot load the exported captioner ({type(error).__name__}). "
            f"Received: --model={str(args.model)!r}"
        ) from None
    if not hasattr(captioner, "beam_caption") or not hasattr(captioner, "caption"):
        raise JobError(
            "not an exported captioner (no caption function; a translator?). "
            f"Received: --model={str(args.model)!r}"
        )
    images_spec = captioner.signatures["serving_default"].structured_input_signature
    image_shape = tuple(images_spec[1]["images"].shape[1:])
    images = np.stack([image_for_captioner(path, image_shape) for path in args.images])
    for start in range(0, len(images), 256):
        batch = tf.constant(images[start : start + 256])
        languages = tf.fill([len(batch)], args.language)
        if args.beam_width == 1:
            captions = captioner.caption(batch, languages)
        else:
            captions = captioner.beam_caption(batch, languages, args.beam_width)
        for line in captions.numpy():
            print(line.decode())
    return 0
