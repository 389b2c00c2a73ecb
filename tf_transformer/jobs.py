"""The main job as `tf-transformer` subcommands: train, evaluate, translate.

`tf-transformer` with no command runs `train` with its defaults: it trains
the tiny model on the offline numbers + dates corpus, evaluates it on the
held-out test split, prints sample translations and writes, under
`runs/<timestamp>/`: the model, tokenizers, an exported translator
(SavedModel), `metrics.json`, `attention.png` and TensorBoard logs.

Every expected failure (bad option, missing or corrupt model directory, an
empty input line, no network for an online corpus) ends with a one-line
`error: ...` on stderr and exit status 2, never a traceback.
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
    train.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="TFDS data directory for the corpora",
    )
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


def _guarded(handler):
    """Run `handler`; turn expected failures into one line on stderr, exit 2."""

    def run(args):
        from tf_transformer.data import OfflineError

        try:
            return handler(args)
        except (
            JobError,
            ValueError,
            TypeError,
            FileNotFoundError,
            OfflineError,
            RuntimeError,
        ) as error:
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
