"""The self-checks: references pass, typical mistakes fail with the right hint."""

import collections
import re

import numpy as np
import pytest
import tensorflow as tf

from tf_transformer.course import checks
from tf_transformer.course.checks import (
    ALTERNATIVES,
    BUGS,
    EXERCISES,
    CheckFailed,
    check,
    run_check,
)
from tf_transformer.course.checks import greedy_decode as decoding_check
from tf_transformer.course.grading import answers

# Hand-written from shared/DESIGN.md ("Checks and grading" and the course
# arc): the registry may grow, but these exercises keep their names, kinds and
# lessons. Everything else below is read from the registry.
DESIGN_FUNCTIONS = {
    "scaled_dot_product_attention",
    "positional_encoding",
    "padding_mask",
    "causal_mask",
    "masked_loss",
    "masked_accuracy",
    "greedy_decode",
}
DESIGN_CLASSES = {
    "multi_head_attention",
    "feed_forward",
    "encoder_layer",
    "decoder_layer",
    "transformer_schedule",
}
DESIGN_CLASSES |= {"lora_dense", "class_token"}
DESIGN_LESSONS = {
    "positional_encoding": 2,
    "scaled_dot_product_attention": 3,
    "multi_head_attention": 4,
    "padding_mask": 5,
    "causal_mask": 5,
    "encoder_layer": 6,
    "decoder_layer": 7,
    "lora_dense": 15,
    "class_token": 12,
}


def named_after(exercise, reference):
    """A function exercise is named as its function; a class exercise is the
    class's name in lower case with underscores between the words
    (`multi_head_attention`; `lora_dense` for `LoRADense`)."""
    if reference.islower():
        return exercise == reference
    return exercise.islower() and exercise.replace("_", "") == reference.lower()


def test_registry_holds_the_exercises_of_the_design():
    functions = {n for n, ex in EXERCISES.items() if ex.kind == "function"}
    classes = {n for n, ex in EXERCISES.items() if ex.kind == "class"}
    assert DESIGN_FUNCTIONS <= functions
    assert DESIGN_CLASSES <= classes
    assert (
        DESIGN_LESSONS.items() <= {n: ex.lesson for n, ex in EXERCISES.items()}.items()
    )
    assert EXERCISES["multi_head_attention"].object_name == "MultiHeadAttention"
    decode = EXERCISES["greedy_decode"]
    assert (decode.kind, decode.object_name, decode.points) == (
        "function",
        "greedy_decode",
        2,
    )


@pytest.mark.parametrize("name", list(EXERCISES))
def test_each_exercise_is_declared_once_in_its_own_module(name):
    ex = EXERCISES[name]
    module = f"tf_transformer.course.checks.{name}"
    assert ex.checker.__module__ == module
    assert ex.points >= 0 and ex.lesson >= 1
    # Named after its function, or its class in snake_case (DESIGN.md).
    assert named_after(name, ex.reference), (name, ex.reference)
    assert ex.kind == ("class" if ex.reference[0].isupper() else "function")
    reference = ex.load_reference()
    assert isinstance(reference, type) == (ex.kind == "class")
    for method in ex.methods:
        assert method in vars(reference), method
    assert ex.source.endswith(f".{ex.reference}")
    # Its catalogue sits beside its check.
    for entry in BUGS + ALTERNATIVES:
        if entry.exercise == name:
            assert entry.make.__module__ == module, entry.make.__name__


def test_registry_is_ordered_by_lesson_then_name():
    keys = [(ex.lesson, ex.name) for ex in EXERCISES.values()]
    assert keys == sorted(keys)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_reference_passes_its_own_check(name):
    before = answers._snapshot()
    result = run_check(name, EXERCISES[name].load_reference())
    assert result.passed, result.report()
    assert result.points == result.max_points == EXERCISES[name].points
    assert result.status == "passed"
    # A check changes nothing the grader's tampering detection watches.
    assert answers._changed(before) is None


def test_catalogue_has_at_least_five_mistakes_per_exercise():
    counts = collections.Counter(b.exercise for b in BUGS)
    assert len(BUGS) >= 60
    assert set(counts) == set(EXERCISES)
    assert min(counts.values()) >= 5, counts


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: f"{b.exercise}-{b.make.__name__}")
def test_typical_mistake_fails_with_a_hint_naming_it(bug):
    result = run_check(bug.exercise, bug.make())
    assert not result.passed
    assert result.points == 0
    assert result.status in ("failed", "error")
    assert bug.hint in result.hint(), result.report()


@pytest.mark.parametrize("exercise", ["mask_tokens", "sample_next_token"])
def test_each_mistake_gets_its_own_hint(exercise):
    # The checks run in an order where no mistake is caught first by the
    # check of another: each message names its own mistake and no other.
    mistakes = [b for b in BUGS if b.exercise == exercise]
    hints = [b.hint for b in mistakes]
    assert len(set(hints)) == len(hints)
    for mistake in mistakes:
        message = run_check(exercise, mistake.make()).hint()
        named = [hint for hint in hints if hint in message]
        assert named == [mistake.hint], (mistake.make.__name__, message)


@pytest.mark.parametrize(
    "alt", ALTERNATIVES, ids=lambda b: f"{b.exercise}-{b.make.__name__}"
)
def test_correct_alternative_implementation_passes(alt):
    result = run_check(alt.exercise, alt.make())
    assert result.passed, result.report()


def test_not_implemented_reports_not_attempted_without_traceback(capsys):
    def causal_mask(length):
        raise NotImplementedError()

    result = check("causal_mask", causal_mask)
    assert (result.status, result.passed, result.points) == ("not_attempted", False, 0)
    printed = capsys.readouterr().out
    assert "not implemented yet" in printed
    assert "Traceback" not in printed


def test_student_exception_names_type_and_student_line(capsys):
    def padding_mask(token_ids, pad_id=0):
        scale = 1 / 0
        return scale

    result = check("padding_mask", padding_mask)
    assert result.status == "error"
    assert "ZeroDivisionError" in result.hint()
    assert "scale = 1 / 0" in result.hint()
    assert "Traceback" not in capsys.readouterr().out


def test_class_exercise_given_a_function_fails_clearly():
    result = run_check("feed_forward", lambda x: x)
    assert result.status == "failed"
    assert "expected the class FeedForward" in result.hint()


def test_unknown_exercise_name_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="name='attention'"):
        run_check("attention", lambda: None)


def test_raise_on_fail_raises_an_assertion_error():
    wrong = BUGS[0].make()
    with pytest.raises(AssertionError) as info:
        check(BUGS[0].exercise, wrong, raise_on_fail=True, verbose=False)
    assert isinstance(info.value, CheckFailed)
    assert info.value._render_traceback_()[0].startswith("CheckFailed")


def test_grading_environment_variable_turns_on_raising(monkeypatch):
    monkeypatch.setenv(checks.GRADING_ENV, "1")
    with pytest.raises(AssertionError):
        check("causal_mask", lambda n: [[True]], verbose=False)
    monkeypatch.delenv(checks.GRADING_ENV)
    assert not check("causal_mask", lambda n: [[True]], verbose=False).passed


def test_report_is_compact_and_marks_success(capsys):
    check("causal_mask", EXERCISES["causal_mask"].load_reference())
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("✅ causal_mask: all checks passed (1/1)")
    assert len(printed) <= 6


def test_greedy_decode_check_model_decides_by_clear_margins():
    """The check's tiny model still makes the decisions its bugs rely on.

    Rows end at different steps (one never), unmasked [PAD]/[START] would win
    a step, and every greedy choice wins by far more than rounding.
    """
    model = decoding_check.tiny_model()
    reference = EXERCISES["greedy_decode"].load_reference()
    cases = [
        (
            decoding_check.BATCH,
            6,
            [[4, 3, 0, 0, 0, 0], [4, 4, 4, 4, 3, 0], [4, 4, 4, 4, 4, 7]],
        ),
        (decoding_check.SINGLE, None, [[4, 4, 4, 4, 3] + [0] * 8]),
    ]
    for source, max_length, expected in cases:
        ids = reference(model, tf.constant(source), max_length=max_length).numpy()
        np.testing.assert_array_equal(ids, expected)
        target_in = np.concatenate([np.full((len(ids), 1), 2), ids[:, :-1]], 1)
        logits = model((tf.constant(source), tf.constant(target_in)), training=False)
        logits = logits.numpy()
        allowed = np.delete(logits, [0, 2], axis=-1)
        top2 = np.sort(allowed, axis=-1)[..., -2:]
        produced = np.cumsum(ids == 3, axis=1) - (ids == 3) == 0  # up to [END]
        assert (top2[..., 1] - top2[..., 0])[produced].min() > 0.1
    unmasked = decoding_check.decode_variant(
        model, decoding_check.BATCH, 6, forbid=False
    )
    assert np.isin(unmasked, [0, 2]).any()


def test_greedy_decode_may_ignore_use_cache():
    reference = EXERCISES["greedy_decode"].load_reference()

    def always_uncached(model, source_ids, max_length=None, use_cache=True):
        return reference(model, source_ids, max_length, use_cache=False)

    assert run_check("greedy_decode", always_uncached).passed


def test_catalogue_has_at_least_eight_mistakes_per_lesson_10_exercise():
    counts = collections.Counter(b.exercise for b in BUGS)
    alternatives = collections.Counter(a.exercise for a in ALTERNATIVES)
    for name in ("mask_tokens", "masked_mean"):
        assert counts[name] >= 8, counts
        assert alternatives[name] >= 2, alternatives


def test_readme_course_map_names_each_exercise_in_its_lessons_row():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {
        int(match.group(1)): match.group(0)
        for match in re.finditer(r"^\| \[(\d\d) · .*$", readme, flags=re.M)
    }
    for ex in EXERCISES.values():
        assert f"`{ex.object_name}`" in rows[ex.lesson], (ex.name, ex.lesson)


def test_lesson_00_course_map_names_each_lesson_and_its_exercises():
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    notebook = json.loads((repo / "solutions" / "00_big_picture.ipynb").read_text())
    (course_map,) = [
        cell["source"]
        for cell in notebook["cells"]
        if cell["source"].startswith("## 8. The map of the course")
    ]
    rows = {
        int(match.group(1)): match.group(0)
        for match in re.finditer(r"^\| (\d\d) \|.*$", course_map, flags=re.M)
    }
    lessons = sorted(int(p.name[:2]) for p in (repo / "solutions").glob("*.ipynb"))
    assert sorted(rows) == lessons
    for ex in EXERCISES.values():
        assert f"`{ex.object_name}`" in rows[ex.lesson], (ex.name, ex.lesson)


def test_a_practice_exercise_is_checked_but_never_graded():
    # tile_digits (lesson 13) is practice: 0 points, so the grader's lesson
    # list leaves it out while the self-check still runs and says so.
    from tf_transformer.course.checks import exercises_of_lesson

    practice = EXERCISES["tile_digits"]
    assert (practice.points, practice.graded) == (0, False)
    assert "tile_digits" not in {ex.name for ex in exercises_of_lesson(13)}
    result = run_check("tile_digits", practice.load_reference())
    assert result.passed
    assert "practice, not graded" in result.report()


def test_class_token_declares_the_methods_the_learner_writes():
    ex = EXERCISES["class_token"]
    assert (ex.kind, ex.object_name, ex.lesson) == ("class", "ClassToken", 12)
    assert set(ex.methods) == {"build", "call", "compute_mask", "get_config"}
