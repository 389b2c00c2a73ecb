"""The learner's workbook: answered classes carried from lesson to lesson.

Each lesson runs in its own process, so a class written in lesson 06 is gone
by lesson 08. When the self-check of a class exercise passes, `check` saves
the source of the cell that defines the class into the workbook folder; a
later lesson rebuilds it with `load`::

    from tf_transformer.course import workbook

    EncoderLayer, DecoderLayer = workbook.load("EncoderLayer", "DecoderLayer")

`load` returns the learner's class when the workbook holds one that still
builds, and the library's otherwise, and prints which one it returns. The
learner's `EncoderLayer` and `DecoderLayer` are rebuilt on the learner's own
`MultiHeadAttention` and `FeedForward` when those are saved too.

The folder is `~/.tf_transformer/workbook`, or the value of the environment
variable `TF_TRANSFORMER_WORKBOOK`; the value `off` turns the workbook off.
Nothing is saved while grading (`TF_TRANSFORMER_GRADING=1`), and a folder
that cannot be written (a read-only sandbox) is skipped without a word: the
workbook never changes what a check reports.
"""

from __future__ import annotations

import ast
import importlib
import linecache
import os
import sys
from pathlib import Path
from typing import Any

from tf_transformer.course.environment import grading_mode

WORKBOOK_ENV = "TF_TRANSFORMER_WORKBOOK"
DEFAULT_FOLDER = Path("~/.tf_transformer/workbook")

# The classes the workbook keeps, with the lesson whose check saves each one.
# A class is rebuilt on the learner's versions of the classes it builds on.
LESSONS = {
    "MultiHeadAttention": 4,
    "FeedForward": 6,
    "EncoderLayer": 6,
    "DecoderLayer": 7,
    "Transformer": 8,
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


def folder() -> Path | None:
    """The workbook folder, or None when the workbook is turned off."""
    value = os.environ.get(WORKBOOK_ENV)
    if value is None:
        return DEFAULT_FOLDER.expanduser()
    if value.strip().lower() in ("", "off", "0", "false", "no"):
        return None
    return Path(value).expanduser()


def _path(name: str) -> Path | None:
    where = folder()
    return None if where is None else where / f"{name}.py"


def class_source(cls: type) -> str | None:
    """The source of the notebook cell (or file) that defines `cls`.

    In a notebook the latest executed cell with a top-level `class` of that
    name is taken from the kernel's input history; elsewhere the file.
    """
    for cell in reversed(_input_history()):
        found = _class_definition(cell, cls.__name__)
        if found is not None:
            return found
    module = sys.modules.get(getattr(cls, "__module__", ""), None)
    filename = getattr(module, "__file__", None)
    if filename:
        try:
            return _class_definition(Path(filename).read_text(), cls.__name__)
        except OSError:
            return None
    return None


def _input_history() -> list[str]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return []
    return [cell for cell in shell.user_ns.get("In", []) if isinstance(cell, str)]


def _class_definition(source: str, name: str) -> str | None:
    """`source`'s top-level `class name`, decorators included, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            return "\n".join(lines[first - 1 : node.end_lineno]) + "\n"
    return None


def save(name: str, source: str) -> bool:
    """Keep `source` (one class definition) as the learner's `name`.

    Returns True when it was written. Never raises for an unwritable folder.
    """
    path = _path(name)
    if path is None or grading_mode() or name not in LESSONS:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(source, encoding="utf-8")
        partial.replace(path)
    except OSError:
        return False
    return True


def record(name: str, cls: Any) -> bool:
    """Save the class `cls` as the learner's `name` if its source is found."""
    if name not in LESSONS or not isinstance(cls, type):
        return False
    if cls.__module__.split(".")[0] == "tf_transformer":
        return False  # the library's own class is no answer to keep
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
    """Remove `name` from the workbook (the library's class is used again)."""
    path = _path(name)
    if path is not None:
        path.unlink(missing_ok=True)


def library_class(name: str) -> type:
    """The library's class `name` (the reference answer)."""
    return getattr(importlib.import_module("tf_transformer"), name)


def rebuild(name: str, source: str, sublayers: dict[str, type] | None = None) -> type:
    """The class `name` defined by `source`, built in the namespace of the
    library module that holds the reference (so the names the given parts
    use resolve), with `sublayers` as class attributes.

    Raises whatever defining the class raises.
    """
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
    if not (isinstance(cls, type) and issubclass(cls, reference.__mro__[1])):
        raise TypeError(f"the saved source defines no class {name}")
    for attribute, value in (sublayers or {}).items():
        setattr(cls, attribute, value)
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def load(*names: str, verbose: bool = True) -> type | tuple[type, ...]:
    """The learner's classes `names` when the workbook holds them, else the
    library's; prints which one each name gets.

    Returns one class for one name, else a tuple in the order of `names`.
    """
    unknown = [name for name in names if name not in LESSONS]
    if not names or unknown:
        raise ValueError(
            f"`names` must be among {', '.join(LESSONS)}. Received: names={names!r}"
        )
    loaded: dict[str, type] = {}
    notes: dict[str, str] = {}

    def get(name: str) -> type:
        if name in loaded:
            return loaded[name]
        sublayers = {
            attribute: get(sublayer)
            for attribute, sublayer in SUBLAYERS.get(name, {}).items()
        }
        source = saved(name)
        cls = library_class(name)
        if source is None:
            notes[name] = (
                f"the library's tt.{name} (yours is saved when its check in "
                f"lesson {LESSONS[name]:02d} passes)"
            )
        else:
            ours = {
                attribute: value
                for attribute, value in sublayers.items()
                if value.__module__.startswith(f"{PACKAGE}.")
            }
            try:
                cls = rebuild(name, source, ours)
                notes[name] = f"yours (lesson {LESSONS[name]:02d})"
            except Exception as error:  # noqa: BLE001 - a broken save falls back
                notes[name] = (
                    f"the library's tt.{name} (yours did not rebuild: "
                    f"{type(error).__name__}: {error})"
                )
        loaded[name] = cls
        return cls

    classes = tuple(get(name) for name in names)
    if verbose:
        width = max(len(name) for name in notes)
        for name, note in notes.items():
            print(f"{name:{width}}  {note}")
    return classes[0] if len(classes) == 1 else classes
