"""The learner's workbook: answered classes carried from lesson to lesson.

Each lesson runs in its own process, so a class written in lesson 06 is gone
by lesson 08. When the self-check of a class exercise passes, `check` saves
the class's definition into the workbook folder, with what it needs from
the notebook (helper functions, constants, imports); a later lesson rebuilds
it with `load`::

    from tf_transformer.course import workbook

    EncoderLayer, DecoderLayer = workbook.load("EncoderLayer", "DecoderLayer")

`load` returns the learner's class when the workbook holds one that still
builds and passes a smoke test (a forward pass and gradients on a tiny batch),
and the library's otherwise. It prints, for each class, which one is
actually used and why, when the learner's was saved and whether its latest
check passed. The learner's `EncoderLayer` and `DecoderLayer` are rebuilt on
the learner's own `MultiHeadAttention` and `FeedForward` when those are saved
too; under the library's `EncoderLayer` the learner's sublayers are not used,
and `load` says so.

`forget(name)` removes a saved class: the library's is used again until the
check passes once more.

The folder is `~/.tf_transformer/workbook`, or the value of the environment
variable `TF_TRANSFORMER_WORKBOOK`; the value `off` turns the workbook off.
Nothing is saved while grading (`TF_TRANSFORMER_GRADING` set), nor by the
solution notebooks (a definition equal to the library's own answer is not
saved: the library's class is that answer already), and a folder that cannot
be written (a read-only sandbox) is skipped without a word: the workbook
never changes what a check reports.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import datetime
import importlib
import inspect
import json
import linecache
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from tf_transformer.course.environment import GRADING_ENV

WORKBOOK_ENV = "TF_TRANSFORMER_WORKBOOK"
# Where Colab mounts Google Drive: the only folder that outlives a notebook's
# machine there (the lessons' setup cell offers to keep the workbook in it).
COLAB_DRIVE = "/content/drive"
DEFAULT_FOLDER = Path("~/.tf_transformer/workbook")

# The classes and functions the workbook keeps, with the lesson whose check
# saves each one. A class is rebuilt on the learner's versions of the
# classes it builds on.
LESSONS = {
    "MultiHeadAttention": 4,
    "FeedForward": 6,
    "EncoderLayer": 6,
    "DecoderLayer": 7,
    "Transformer": 8,
    "masked_loss": 8,
    "masked_accuracy": 8,
    "TransformerSchedule": 8,
    "greedy_decode": 9,
    "cached_decoder_step": 9,
}
SUBLAYERS = {
    "EncoderLayer": {
        "attention_class": "MultiHeadAttention",
        "feed_forward_class": "FeedForward",
    },
    "DecoderLayer": {
        "attention_class": "MultiHeadAttention",
        "feed_forward_class": "FeedForward",
    },
}
# Registered under this package, the learner's classes never replace the
# library's `tf_transformer>...` names in Keras's registry.
PACKAGE = "workbook"
# Names a definition may use without defining them.
_IMPLICIT = frozenset(dir(builtins)) | {"__class__", "__name__", "__file__"}


class NotSaved(Exception):
    """A passed class that cannot be kept: the message says why and what to do."""


def folder() -> Path | None:
    """The workbook folder, or None when the workbook is turned off."""
    value = os.environ.get(WORKBOOK_ENV)
    if value is None:
        return DEFAULT_FOLDER.expanduser()
    if value.strip().lower() in ("", "off", "0", "false", "no"):
        return None
    return Path(value).expanduser()


def grading() -> bool:
    """True in any run with `TF_TRANSFORMER_GRADING` set (to anything but a no)."""
    value = os.environ.get(GRADING_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _path(name: str, suffix: str = ".py") -> Path | None:
    where = folder()
    return None if where is None else where / f"{name}{suffix}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------- what a class needs


def _input_history() -> list[str]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return []
    return [cell for cell in shell.user_ns.get("In", []) if isinstance(cell, str)]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:  # a cell with IPython magics, or unfinished code
        return None


def _statement_source(source: str, node: ast.stmt) -> str:
    lines = source.splitlines()
    first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    return "\n".join(lines[first - 1 : node.end_lineno])


def _defines(node: ast.stmt, name: str) -> bool:
    """`node` is the top-level `class name` or `def name`."""
    kinds = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    return isinstance(node, kinds) and node.name == name


def _class_definition(source: str, name: str) -> str | None:
    """`source`'s top-level `class name` (or `def name`), decorators
    included, or None."""
    tree = _parse(source)
    for node in tree.body if tree else []:
        if _defines(node, name):
            return _statement_source(source, node) + "\n"
    return None


def _bound_names(node: ast.stmt) -> list[str]:
    """The top-level names a statement defines."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [
            alias.asname or alias.name.split(".")[0]
            for alias in node.names
            if alias.name != "*"
        ]
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [
            name.id
            for target in targets
            for name in ast.walk(target)
            if isinstance(name, ast.Name)
        ]
    return []


def _free_names(node: ast.AST) -> set[str]:
    """Names `node` reads that it does not bind itself (an over-approximation
    of bound names: a name bound anywhere inside counts as bound)."""
    loaded, bound = set(), set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            (loaded if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            bound.add(child.name)
        elif isinstance(child, ast.ClassDef) and child is not node:
            bound.add(child.name)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            bound.update(_bound_names(child))
        elif isinstance(child, ast.ExceptHandler) and child.name:
            bound.add(child.name)
    return loaded - bound


def _rebuild_namespace(name: str) -> dict[str, Any]:
    """What a saved definition of `name` runs in: the namespace of the library
    module that holds the reference, plus the usual short names."""
    import keras
    import numpy
    import tensorflow

    reference = library_class(name)
    namespace = dict(vars(importlib.import_module(reference.__module__)))
    namespace.update(
        keras=keras,
        np=numpy,
        tf=tensorflow,
        tt=importlib.import_module("tf_transformer"),
        __name__=f"{PACKAGE}.{name}",
    )
    return namespace


def gather(name: str, sources: list[str]) -> str:
    """The definition of class `name` from the latest of `sources` (notebook
    cells in the order they ran, or one module file) that defines it,
    preceded by the top-level statements it needs from `sources`: helper
    functions, constants, imports, other classes (the latest definition of
    each name).

    Raises:
        NotSaved: no source defines the class, or it uses a name that none of
            `sources` defines and the rebuilt class would not have.
    """
    definitions: dict[str, tuple[int, int, str, ast.stmt]] = {}
    target = None
    for cell_index, source in enumerate(sources):
        tree = _parse(source)
        for statement_index, node in enumerate(tree.body if tree else []):
            if _defines(node, name):
                target = (_statement_source(source, node), node)
                continue
            for bound in _bound_names(node):
                definitions[bound] = (
                    cell_index,
                    statement_index,
                    _statement_source(source, node),
                    node,
                )
    if target is None:
        raise NotSaved(f"no cell that ran defines `{name}`")
    available = set(_rebuild_namespace(name)) | _IMPLICIT
    needed: dict[tuple[int, int], str] = {}
    missing: list[str] = []
    queue = sorted(_free_names(target[1]))
    seen = {name}
    while queue:
        free = queue.pop(0)
        if free in seen:
            continue
        seen.add(free)
        if free in definitions:
            cell_index, statement_index, text, node = definitions[free]
            needed[(cell_index, statement_index)] = text
            queue.extend(sorted(_free_names(node)))
        elif free not in available:
            missing.append(free)
    if missing:
        names = ", ".join(f"`{m}`" for m in sorted(missing))
        raise NotSaved(
            f"{name} uses {names}, which no cell that ran defines — define or "
            f"import it in the cell that defines {name}, run that cell and the "
            "check again"
        )
    parts = [needed[key] for key in sorted(needed)] + [target[0]]
    return "\n\n".join(parts) + "\n"


def class_source(cls: type) -> str | None:
    """The definition of `cls` with what it needs from its notebook (the
    kernel's input history) or, outside a notebook, from its module file.

    Raises:
        NotSaved: the class uses a name that is defined nowhere it can be taken from.
    """
    history = _input_history()
    if any(_class_definition(cell, cls.__name__) for cell in history):
        return gather(cls.__name__, history)
    module = sys.modules.get(getattr(cls, "__module__", ""), None)
    filename = getattr(module, "__file__", None)
    if filename:
        try:
            text = Path(filename).read_text()
        except OSError:
            return None
        if _class_definition(text, cls.__name__) is not None:
            return gather(cls.__name__, [text])
    return None


# ------------------------------------------------------------ saving


def is_library_answer(name: str, source: str) -> bool:
    """True when `source` defines `name` exactly as the library does (the
    solution notebooks' exercise cells are filled from the library)."""
    reference = textwrap.dedent(inspect.getsource(library_class(name))).strip()
    return source.strip().endswith(reference)


def save(name: str, source: str) -> bool:
    """Keep `source` (a class definition with what it needs) as the learner's
    `name`, with the time it was saved.

    Returns True when it was written. Never raises for an unwritable folder.
    """
    path = _path(name)
    if path is None or grading() or name not in LESSONS:
        return False
    if is_library_answer(name, source):
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(source, encoding="utf-8")
        partial.replace(path)
    except OSError:
        return False
    now = _now()
    _write_status(name, {"saved_at": now, "check_passed": True, "checked_at": now})
    return True


def _write_status(name: str, status: dict) -> None:
    path = _path(name, ".json")
    try:
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(status), encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass


def status(name: str) -> dict:
    """When the saved `name` was saved and whether its latest check passed:
    `{"saved_at", "check_passed", "checked_at"}` (empty when not known)."""
    path = _path(name, ".json")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError):
        return {}
    return value if isinstance(value, dict) else {}


def record(name: str, cls: Any, passed: bool = True) -> bool:
    """After a check of the class `cls`: save it as the learner's `name` when
    it passed, or note that the latest check failed (the saved version stays).

    Returns True when the class was saved.

    Raises:
        NotSaved: it passed but uses a name that cannot be saved with it.
    """
    if name not in LESSONS or not callable(cls) or grading():
        return False
    if getattr(cls, "__name__", None) != name:
        return False  # saved under its own name only
    if str(getattr(cls, "__module__", "")).split(".")[0] == "tf_transformer":
        return False  # the library's own class is no answer to keep
    if not passed:
        if saved(name) is not None:
            note = dict(status(name), check_passed=False, checked_at=_now())
            _write_status(name, note)
        return False
    source = class_source(cls)
    return source is not None and save(name, source)


def saved(name: str) -> str | None:
    """The saved source of `name`, or None."""
    path = _path(name)
    try:
        return None if path is None else path.read_text(encoding="utf-8")
    except OSError:
        return None


def forget(name: str) -> None:
    """Remove `name` from the workbook: the library's class is used again
    until its check passes once more. E.g. `workbook.forget("EncoderLayer")`."""
    if name not in LESSONS:
        raise ValueError(
            f"`name` must be among {', '.join(LESSONS)}. Received: name={name!r}"
        )
    for suffix in (".py", ".json"):
        path = _path(name, suffix)
        if path is not None:
            path.unlink(missing_ok=True)


# ------------------------------------------------------------ loading


def library_class(name: str) -> Any:
    """The library's class (or function) `name`: the reference answer."""
    return getattr(importlib.import_module("tf_transformer"), name)


def rebuild(name: str, source: str, sublayers: dict[str, type] | None = None) -> type:
    """The class `name` defined by `source`, built in the namespace of the
    library module that holds the reference (so the names the given parts
    use resolve), with `sublayers` as class attributes.

    Raises whatever defining the class raises.
    """
    import keras

    reference = library_class(name)
    namespace = _rebuild_namespace(name)
    # Registered with linecache, the source stays readable by `inspect`, which
    # AutoGraph needs to convert the methods inside tf.function.
    filename = f"<workbook {name}>"
    linecache.cache[filename] = (
        len(source),
        None,
        source.splitlines(keepends=True),
        filename,
    )
    registry = keras.saving.get_custom_objects()
    before = dict(registry)
    try:
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    finally:
        # A decorator in the source may have claimed `tf_transformer>{name}`.
        registry.clear()
        registry.update(before)
    cls = namespace.get(name)
    if not isinstance(reference, type):
        if not callable(cls):
            raise TypeError(f"the saved source defines no function {name}")
        return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
    if not (isinstance(cls, type) and issubclass(cls, reference.__mro__[1])):
        raise TypeError(f"the saved source defines no class {name}")
    for attribute, value in (sublayers or {}).items():
        setattr(cls, attribute, value)
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


SMOKE_LAYERS = (
    "MultiHeadAttention",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Transformer",
)


def _tiny_call(name: str, cls: type):
    """A tiny instance of `cls` and a function of it that runs a forward pass
    on a tiny batch; returns (layer, run, float_input or None)."""
    import tensorflow as tf

    x = tf.random.stateless_normal((2, 3, 8), seed=(1, 2))
    if name == "MultiHeadAttention":
        layer = cls(num_heads=2, key_dim=4)
        return layer, lambda inputs: layer(inputs, inputs), x
    if name == "FeedForward":
        layer = cls(d_model=8, dff=16, dropout=0.0)
        return layer, lambda inputs: layer(inputs), x
    if name == "EncoderLayer":
        layer = cls(d_model=8, num_heads=2, dff=16, dropout=0.0)
        return layer, lambda inputs: layer(inputs), x
    if name == "DecoderLayer":
        layer = cls(d_model=8, num_heads=2, dff=16, dropout=0.0)
        return layer, lambda inputs: layer(inputs, inputs), x
    model = _tiny_transformer(cls)
    ids = (tf.constant([[2, 5, 7, 3, 0]]), tf.constant([[2, 4, 9]]))
    return model, lambda _: model(ids), None


def _tiny_transformer(cls: type):
    return cls(
        num_layers=1,
        d_model=8,
        num_heads=2,
        dff=16,
        input_vocab_size=11,
        target_vocab_size=13,
        dropout=0.0,
    )


def _smoke_test_function(name: str, function: Any) -> str | None:
    """`smoke_test` of a function exercise (or the schedule): one tiny call."""
    import numpy as np
    import tensorflow as tf

    labels = tf.constant([[5, 2, 0]])
    logits = tf.random.stateless_normal((1, 3, 7), seed=(3, 4))
    if name == "TransformerSchedule":
        schedule = function(d_model=16, warmup_steps=4)
        rates = np.array([float(schedule(step)) for step in (0, 1, 5)])
        if not (np.all(np.isfinite(rates)) and np.all(rates > 0)):
            return f"its rates at steps 0, 1, 5 are {rates.tolist()}, not positive"
        return None
    if name == "cached_decoder_step":
        import tf_transformer
        from tf_transformer.inference.decoding import DecoderCache

        model = _tiny_transformer(tf_transformer.Transformer)
        model.build(((None, None), (None, None)))
        cache = DecoderCache.create(model, tf.constant([[2, 5, 7, 3]]), 3)
        logits, new_cache = function(model, tf.constant([2]), 0, cache)
        if tuple(logits.shape) != (1, 13) or set(new_cache) != set(cache):
            return "it did not return (logits (1, vocabulary), the cache's dict)"
        return None
    if name == "greedy_decode":
        import tf_transformer

        model = _tiny_transformer(tf_transformer.Transformer)
        output = function(model, tf.constant([[2, 5, 7, 3]]), max_length=4)
        if len(output.shape) != 2 or output.shape[0] != 1 or output.dtype.is_floating:
            got = f"{output.dtype.name} {tuple(output.shape)}"
            return f"it returned {got}, not token ids (1, length)"
        return None
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = function(labels, logits)
    if not np.all(np.isfinite(np.asarray(value))):
        return "a tiny call gave NaN or inf"
    if name == "masked_loss" and tape.gradient(value, logits) is None:
        return "no gradient reaches the logits (a tf.stop_gradient?)"
    return None


def smoke_test(name: str, cls: type) -> str | None:
    """Build a tiny `cls`, run it forward and take gradients on a tiny batch
    (for a function: one tiny call, and the loss's gradient).

    Returns None when it works, else one line saying what went wrong.
    """
    import numpy as np
    import tensorflow as tf

    if name not in SMOKE_LAYERS:
        try:
            return _smoke_test_function(name, cls)
        except Exception as error:  # noqa: BLE001 - any failure is a reason
            return f"a tiny call failed: {one_line(error)}"
    try:
        layer, run, x = _tiny_call(name, cls)
        with tf.GradientTape() as tape:
            if x is not None:
                tape.watch(x)
            output = run(x)
            output = output[0] if isinstance(output, tuple | list) else output
            loss = tf.reduce_sum(tf.square(tf.cast(output, tf.float32)))
        weights = layer.trainable_weights
        gradients = tape.gradient(loss, ([] if x is None else [x]) + weights)
    except Exception as error:  # noqa: BLE001 - any failure is a reason to report
        return f"a tiny forward pass failed: {one_line(error)}"
    if not np.all(np.isfinite(output.numpy())):
        return "a tiny forward pass gave NaN or inf"
    if not weights:
        return "it has no trainable weights"
    if x is not None and gradients.pop(0) is None:
        return "no gradient reaches its inputs (a tf.stop_gradient?)"
    for weight, gradient in zip(weights, gradients, strict=True):
        if gradient is None:
            return (
                f"no gradient reaches its weight {weight.path} "
                "(a tf.stop_gradient, or a weight the output does not use?)"
            )
    return None


def one_line(error: BaseException) -> str:
    """`Type: message` of the error the learner's code raised, on one line
    (Keras wraps an error raised in `call` in a message of several lines)."""
    while str(error).startswith("Exception encountered") and error.__context__:
        error = error.__context__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


@dataclasses.dataclass
class Choice:
    """Which class a name gets, and why."""

    name: str
    cls: type
    yours: bool
    reason: str = ""  # why the library's stands in
    saved_at: str = ""
    latest_check: str = ""

    def line(self, requested: bool, users: dict[str, Choice]) -> str:
        lesson = f"lesson {LESSONS[self.name]:02d}"
        if not self.yours:
            return f"the library's tt.{self.name} — {self.reason}"
        when = f"saved {self.saved_at}" if self.saved_at else "saved"
        text = f"yours ({lesson}, {when}{self.latest_check})"
        parents = [users[n] for n in SUBLAYERS_OF.get(self.name, []) if n in users]
        if not requested and parents and not any(p.yours for p in parents):
            names = " and ".join(p.name for p in parents)
            return (
                f"not used — yours is saved ({lesson}), but the library's {names} "
                f"stand{'s' if len(parents) == 1 else ''} in, and "
                f"{'it builds' if len(parents) == 1 else 'they build'} on the "
                f"library's {self.name}"
            )
        return text


SUBLAYERS_OF = {
    sublayer: [name for name, parts in SUBLAYERS.items() if sublayer in parts.values()]
    for sublayer in {s for parts in SUBLAYERS.values() for s in parts.values()}
}


def choose(*names: str) -> dict[str, Choice]:
    """For each of `names` and the classes they build on: the class to use
    (the learner's when saved, rebuilt and smoke-tested, else the library's)
    and why. In dependency order."""
    unknown = [name for name in names if name not in LESSONS]
    if not names or unknown:
        raise ValueError(
            f"`names` must be among {', '.join(LESSONS)}. Received: names={names!r}"
        )
    choices: dict[str, Choice] = {}

    def get(name: str) -> Choice:
        if name in choices:
            return choices[name]
        parts = {
            attribute: get(sublayer)
            for attribute, sublayer in SUBLAYERS.get(name, {}).items()
        }
        source = saved(name)
        lesson = f"lesson {LESSONS[name]:02d}"
        choice = Choice(name, library_class(name), yours=False)
        if source is None:
            choice.reason = (
                f"no {name} of yours is saved (it is when its check in {lesson} passes)"
            )
        else:
            ours = {a: c.cls for a, c in parts.items() if c.yours}
            try:
                cls = rebuild(name, source, ours)
            except Exception as error:  # noqa: BLE001 - a broken save falls back
                cls = None
                choice.reason = f"yours did not rebuild: {one_line(error)}"
            problem = None if cls is None else smoke_test(name, cls)
            if cls is not None and problem is not None:
                choice.reason = f"yours failed a smoke test: {problem}"
            elif cls is not None:
                note = status(name)
                choice = Choice(
                    name, cls, yours=True, saved_at=note.get("saved_at", "")
                )
                if note.get("check_passed") is False:
                    choice.latest_check = (
                        f"; its latest check failed {note.get('checked_at', '')}: "
                        "this is the version that passed"
                    )
                elif note:
                    choice.latest_check = "; its latest check passed"
        if not choice.yours:
            unused = [c.name for c in parts.values() if c.yours]
            if unused:
                choice.reason += (
                    f"; your {' and '.join(unused)} "
                    f"{'is' if len(unused) == 1 else 'are'} therefore not used here"
                )
        choices[name] = choice
        return choice

    for name in names:
        get(name)
    return choices


def report(choices: dict[str, Choice], requested: tuple[str, ...]) -> str:
    """One line per class: which is used and why, and how to forget one."""
    width = max(len(name) for name in choices)
    lines = [
        f"{name:{width}}  {choice.line(name in requested, choices)}"
        for name, choice in choices.items()
    ]
    if in_colab_without_drive():
        lines.append(
            "In Colab each notebook runs on a machine of its own: without your "
            "workbook in Google Drive (the setup cell at the top offers it), what "
            "earlier lessons saved is not here, and the library's classes stand in."
        )
    if any(choice.yours for choice in choices.values()):
        lines.append(
            '(workbook.forget("Name") drops a saved class until its check passes again)'
        )
    return "\n".join(lines)


def in_colab_without_drive() -> bool:
    """True in Google Colab when the workbook is not kept in Google Drive."""
    if "google.colab" not in sys.modules:
        return False
    where = folder()
    return where is None or not str(where).startswith(COLAB_DRIVE)


def load(*names: str, verbose: bool = True) -> type | tuple[type, ...]:
    """The learner's classes `names` when the workbook holds them and they
    pass a smoke test, else the library's; prints which one each name gets,
    the classes they build on included, and why.

    Returns one class for one name, else a tuple in the order of `names`.
    """
    choices = choose(*names)
    if verbose:
        print(report(choices, names))
    classes = tuple(choices[name].cls for name in names)
    return classes[0] if len(classes) == 1 else classes
