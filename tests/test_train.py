"""Training runs: artefacts, resume, multi-device training, evaluation."""

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_transformer.training import masked_sentence_accuracy
from tf_transformer.training.train import (
    MODEL_CONFIGS,
    SCHEDULES,
    AveragedWeights,
    Run,
    TrainConfig,
    best_checkpoint,
    build_model,
    dtype_policy,
    evaluate,
    exact_match,
    load_run,
    train,
)


class Interrupt(keras.callbacks.Callback):
    """Stops a run abruptly after `epoch` epochs, as a crash or Ctrl-C would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, data_dir):
    """A run of 3 epochs of 3 steps, interrupted after its first epoch and
    resumed: `(out, the resumed `Run`, what the interruption left)`.

    One interrupted-and-resumed run serves the artefact, resume and
    evaluation tests (each run costs tens of seconds of tracing).
    """
    out = tmp_path_factory.mktemp("run") / "short"
    config = dict(
        out=str(out),
        epochs=3,
        steps=3,
        train_size=3000,
        validation_size=20,
        data_dir=data_dir,
        vocabulary_size=400,
        jit_compile=True,  # the XLA path; other tests use the graph path
    )
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**config), callbacks=[Interrupt(epoch=1)])
    interrupted = {
        "backup": (out / "backup").exists(),
        "history": (out / "history.json").exists(),
    }
    return out, train(TrainConfig(resume=True, **config)), interrupted


@pytest.mark.slow
def test_a_run_writes_its_artefacts(short_run):
    out, run, _ = short_run
    for name in (
        "config.json",
        "model.keras",
        "history.json",
        "tokenizers/source",
        "tokenizers/target",
        "logs",
    ):
        assert (out / name).exists(), name
    assert not (out / "backup").exists()  # a finished run leaves nothing to resume
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 == run.epochs_run  # epochs 2 and 3
    assert set(history) >= {"loss", "masked_accuracy", "val_loss", "val_exact_match"}
    # Epoch 2 could not pass (its teacher-forced sentence accuracy is below
    # the target), so it was not decoded; the last epoch always is.
    assert history["val_masked_sentence_accuracy"][0] < 0.995
    assert history["val_exact_match"][0] is None
    assert 0.0 <= history["val_exact_match"][1] <= 1.0
    assert TrainConfig.load(out / "config.json").steps == 3


@pytest.mark.slow
def test_evaluate_reports_fractions_and_bleu(short_run, data_dir):
    out, _, _ = short_run
    metrics = evaluate(out, split="validation", examples=2, data_dir=data_dir)
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["token_accuracy"] <= 1
    assert 0 <= metrics["bleu"] <= 100
    assert metrics["pairs"] > 0 and len(metrics["examples"]) == 2


@pytest.mark.slow
def test_resume_continues_an_interrupted_run(short_run):
    out, run, interrupted = short_run
    # The interruption left a backup and no history; the resumed run ran
    # the two remaining epochs from the backed-up weights and optimizer.
    assert interrupted == {"backup": True, "history": False}
    assert run.epochs_run == 2
    assert not (out / "backup").exists()
    model = keras.saving.load_model(out / "model.keras")
    assert int(model.optimizer.iterations) == 3 * 3


@pytest.mark.slow
def test_the_run_holds_the_kept_model_and_what_the_directory_holds(short_run):
    out, run, _ = short_run
    assert isinstance(run, Run) and run.out == out and run.steps_per_epoch == 3
    assert run.train_seconds > 0 and run.config == TrainConfig.load(out / "config.json")
    loaded = load_run(out)
    assert loaded.history == run.history and loaded.train_seconds is None
    # The model is the best checkpoint's, as load_run reads it.
    for mine, theirs in zip(run.model.weights, loaded.model.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    metrics = run.metrics({"exact_match": 0.5})
    assert metrics["exact_match"] == 0.5 and metrics["epochs_run"] == 2
    assert metrics["train_seconds"] == round(run.train_seconds, 2)
    assert (metrics["config"], metrics["corpus"]) == ("tiny", "mixed")


@pytest.mark.slow
def test_evaluate_takes_the_run_itself(short_run, data_dir):
    out, run, _ = short_run
    from_run = evaluate(run, split="validation", examples=0, data_dir=data_dir)
    from_disk = evaluate(out, split="validation", examples=0, data_dir=data_dir)
    from_run.pop("decode_seconds"), from_disk.pop("decode_seconds")
    assert from_run == from_disk


class _FailOnTrainBegin(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.policy = keras.config.dtype_policy().name
        raise RuntimeError("training failed midway")


@pytest.mark.slow
def test_a_failed_mixed_precision_run_puts_the_previous_policy_back(tmp_path, data_dir):
    keras.config.set_dtype_policy("float16")
    failing = _FailOnTrainBegin()
    config = TrainConfig(
        out=str(tmp_path / "run"),
        mixed_precision=True,
        train_size=300,
        vocabulary_size=200,
        validation_size=5,
        data_dir=data_dir,
    )
    with pytest.raises(RuntimeError, match="midway"):
        train(config, callbacks=[failing])
    assert failing.policy == "mixed_bfloat16"  # the run itself was mixed
    assert keras.config.dtype_policy().name == "float16"


@pytest.mark.parametrize("raises", [False, True])
def test_dtype_policy_restores_the_previous_policy(raises):
    keras.config.set_dtype_policy("mixed_bfloat16")
    with contextlib.suppress(KeyError):
        with dtype_policy("float16"):
            assert keras.config.dtype_policy().name == "float16"
            if raises:
                raise KeyError("midway")
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    with dtype_policy(None):  # None: the block runs under the current policy
        assert keras.config.dtype_policy().name == "mixed_bfloat16"


def test_resume_without_a_backup_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume"):
        train(TrainConfig(out=str(tmp_path / "nothing"), resume=True))


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("config", "huge", ValueError),
        ("strategy", "cluster", ValueError),
        ("batch_size", 0, ValueError),
        ("epochs", -1, ValueError),
        ("steps", 2.5, TypeError),
        ("label_smoothing", 1.0, ValueError),
        ("target_exact_match", 1.5, ValueError),
        ("dropout", -0.1, ValueError),
        ("bucket_by_length", "yes", TypeError),
        ("warmup_steps", 0, ValueError),
        ("ema_momentum", 1.0, ValueError),
    ],
)
def test_bad_config_names_the_field(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


def test_each_model_size_has_its_schedule():
    assert set(SCHEDULES) == set(MODEL_CONFIGS)
    tiny = TrainConfig()
    assert (tiny.warmup_steps, tiny.learning_rate_scale) == SCHEDULES["tiny"]
    base = TrainConfig(config="base")
    assert (base.warmup_steps, base.learning_rate_scale) == (4000, 1.0)
    chosen = TrainConfig(config="base", warmup_steps=50, learning_rate_scale=3.0)
    assert (chosen.warmup_steps, chosen.learning_rate_scale) == (50, 3.0)
    # The resolved values are what config.json keeps.
    assert TrainConfig(**dataclasses.asdict(tiny)) == tiny


@pytest.mark.slow
def test_the_train_step_is_traced_once():
    # build_model's model (averaging optimizer, two metrics) also builds all
    # its variables before the first trace (Transformer._build_training_state;
    # test_training_utils checks a plainly compiled Transformer).
    model = build_model(TrainConfig(), 30, 30)
    traced = []
    train_step = model.train_step

    def counting_train_step(data):
        traced.append(1)
        return train_step(data)

    model.train_step = counting_train_step
    rng = np.random.default_rng(0)
    source = rng.integers(1, 30, (16, 7)).astype("int32")
    target = rng.integers(1, 30, (16, 6)).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices(((source, target), target))
    model.fit(dataset.batch(4), epochs=2, shuffle=False, verbose=0)
    assert len(traced) == 1


def test_exact_match_compares_normalized_text():
    assert exact_match(["vingt et un", "sept"], ["Vingt  et un", "huit"]) == 0.5
    with pytest.raises(ValueError, match="same length"):
        exact_match(["a"], [])


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    from tf_transformer.training.train import TrainConfig, build_model, make_strategy
    from tf_transformer.training.train import set_logical_cpus
    set_logical_cpus(2)
    import keras

    rng = np.random.default_rng(0)
    source = rng.integers(4, 50, (8 * 16, 7)).astype("int32")
    target = rng.integers(4, 50, (8 * 16, 9)).astype("int32")
    data = ((source, target[:, :-1]), target[:, 1:])
    config = TrainConfig(dropout=0.0, warmup_steps=20, jit_compile=False)
    losses = {}
    for name in ("default", "mirrored"):
        keras.utils.set_random_seed(0)
        strategy = make_strategy(name)
        with strategy.scope():
            model = build_model(config, 50, 50)
        batches = tf.data.Dataset.from_tensor_slices(data).batch(16)
        history = model.fit(batches, epochs=3, verbose=0)
        losses[name] = history.history["loss"]
        losses[name + "_replicas"] = strategy.num_replicas_in_sync
    print(json.dumps(losses))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_follows_the_single_device_run():
    # The two replicas run side by side: TensorFlow's own thread pools, not
    # the smaller ones the test run may set for each process (conftest.py).
    pools = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    env = {name: value for name, value in os.environ.items() if name not in pools}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert losses["mirrored_replicas"] == 2 and losses["default_replicas"] == 1
    np.testing.assert_allclose(losses["mirrored"], losses["default"], rtol=1e-3)
    assert losses["default"][-1] < losses["default"][0]


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Records the model's weights at the end of epoch 1 and stops training."""

    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.numpy().copy() for w in self.model.trainable_weights]
        self.model.stop_training = True


@pytest.mark.slow
@pytest.mark.parametrize("keep", [True, False])
def test_averaged_weights_survive_an_early_stop(keep):
    config = TrainConfig(ema_momentum=0.9)
    model = build_model(config, 30, 30)
    rng = np.random.default_rng(0)
    source = rng.integers(1, 30, (16, 7)).astype("int32")
    target = rng.integers(1, 30, (16, 6)).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices(((source, target), target)).batch(4)
    averaged, stop = AveragedWeights(), _StopAfterFirstEpoch()
    callbacks = [averaged, stop] + ([averaged.keep_on_early_stop()] if keep else [])
    model.fit(dataset, epochs=3, callbacks=callbacks, verbose=0, shuffle=False)
    trained = [w.numpy() for w in model.trainable_weights]
    # `stop` saw the averaged weights (what validation and the checkpoint see);
    # the stopped model must keep them, not the last trained ones.
    same = all(np.array_equal(a, b) for a, b in zip(trained, stop.weights, strict=True))
    assert same is keep


def test_an_unmeasured_exact_match_saves_nothing(tmp_path):
    path = tmp_path / "model.keras"
    checkpoint = best_checkpoint(path)
    checkpoint.set_model(build_model(TrainConfig(), 30, 30))
    checkpoint.on_epoch_end(0, {"val_exact_match": float("nan")})
    assert not path.exists()
    checkpoint.on_epoch_end(1, {"val_exact_match": 0.25})
    assert path.exists()
    saved = path.stat().st_mtime_ns
    checkpoint.on_epoch_end(2, {"val_exact_match": float("nan")})
    checkpoint.on_epoch_end(3, {"val_exact_match": 0.2})
    assert path.stat().st_mtime_ns == saved  # neither beat 0.25


def test_sentence_accuracy_needs_every_real_token():
    labels = tf.constant([[5, 6, 0], [5, 6, 7], [5, 0, 0]])
    logits = tf.one_hot([[5, 6, 9], [5, 9, 7], [5, 3, 3]], 10)
    # Row 1 is wrong only at padding; row 2 at a real token; row 3 at padding.
    assert masked_sentence_accuracy(labels, logits).numpy().tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="y_pred"):
        masked_sentence_accuracy(labels, logits[:, 0])  # rank 2, not 3


@pytest.mark.parametrize("momentum", [0.0, 0.98, None])
def test_the_optimizer_averages_with_the_configured_momentum(momentum):
    optimizer = build_model(TrainConfig(ema_momentum=momentum), 30, 30).optimizer
    assert optimizer.use_ema is (momentum is not None)
    if momentum is not None:
        assert optimizer.ema_momentum == momentum
