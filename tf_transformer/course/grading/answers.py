"""The answers' process (run as a script by the judge, with the command
`grade.py` builds; see `judge` and `remote`).

It first sets the resource limits the grader asks for
(`confine.apply_limits`). Then it is driven by the judge over its
stdin/stdout, one JSON line per message. The first message gives the
notebook's code cells and the source text of the library modules that
define the graded functions, with those functions stubbed
(`wire.hide_definitions`); an import hook loads these modules from that
text, so the references never exist here, and an audit hook refuses to
open the modules' files and to start processes. Then the student's
definitions are taken from the cells. The notebook's own code never runs
here, except:

- import statements, ``def`` and ``class`` statements, and assignments of
  constants or names to plain names (so helpers and constants the answer
  uses exist); nothing else (no calls, no attribute assignments, no check
  cells);
- the bodies of the student's functions and classes, on what the judge
  sends (``call``, or ``trace`` then ``run`` for `tf.function`), results
  going back as plain data (`wire.encode`).

A class exercise's objects stay here too: an instance of the student's
class, its sublayers, variables and bound methods are kept in a table and
the judge names them by handle (``call``, ``getattr``, ``array`` on a
target), getting back plain data or more handles; ``gradient`` on a layer
computes its gradients here (`checks._layers.gradients_of`) and sends them
back as arrays, for the judge to compare with the reference's.

`answers.py --probe`, run once before grading (`grade.resolve_sandbox`), only
starts as the answers' process does and imports the library (`probe`).

`_snapshot` and `_changed` (the attributes of the grading modules,
``tf_transformer``, ``numpy`` and ``builtins``, compared before and after)
let the tests show that a check changes nothing it should not.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import importlib.util  # here: `_HiddenSource.find_spec` must not import it
import json
import os
import sys
import threading
import traceback
import types
from typing import Any

if __package__:
    from tf_transformer.course.grading.confine import apply_limits
else:  # run as a script, before tf_transformer may be imported: see main
    from confine import apply_limits

WATCHED_MODULES = ("builtins", "math", "numpy", "numpy.testing", "tensorflow", "keras")


def python_source(cell_source: str) -> str:
    """IPython syntax (magics, `!cmd`) turned into plain Python.

    A cell that is plain Python already is returned as it is: IPython's
    transformations only rewrite what Python cannot parse (magics, shell
    escapes, `?` help, prompts, an indented first line), and importing
    IPython costs an answers' process a noticeable part of its start.
    """
    try:
        parse(cell_source)
        return cell_source
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the text
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 - fall back to the raw text
        return cell_source


# CPython 3.11 keeps the depth counter of `ast.parse`'s tree building in
# interpreter-wide state. If a garbage-collection finalizer lets another
# thread run in the middle of a parse, and that thread parses too, the first
# parse fails with "SystemError: AST constructor recursion depth mismatch".
# The grader parses notebooks in several threads, so every parse takes this
# lock; parses are short next to the checks, which run in child processes.
_PARSE_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, safe to call from several threads at once."""
    with _PARSE_LOCK:
        return ast.parse(source, filename)


def _safe_value(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _safe_value(node.value)
    if isinstance(node, ast.UnaryOp):
        return _safe_value(node.operand)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_safe_value(e) for e in node.elts)
    return False


def kept_statements(tree: ast.Module) -> list[ast.stmt]:
    """The statements of a cell the grader runs: imports, defs, simple constants."""
    kept = []
    for node in tree.body:
        if isinstance(
            node,
            ast.Import
            | ast.ImportFrom
            | ast.FunctionDef
            | ast.AsyncFunctionDef
            | ast.ClassDef,
        ):
            kept.append(node)
        elif (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) for t in node.targets)
            and _safe_value(node.value)
        ):
            kept.append(node)
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
            and _safe_value(node.value)
        ):
            kept.append(node)
    return kept


def defined_names(cells: list[str]) -> tuple[set[str], dict[str, str]]:
    """Top-level def/class names of the cells, and syntax errors by cell."""
    names: set[str] = set()
    errors: dict[str, str] = {}
    for index, source in enumerate(cells):
        try:
            tree = parse(python_source(source))
        except SyntaxError as error:
            errors[str(index)] = (
                f"SyntaxError in cell {index}, line {error.lineno}: {error.msg}"
            )
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return names, errors


class _ModuleProxy(types.ModuleType):
    """A view of a tf_transformer module with some names hidden."""

    def __init__(self, module: types.ModuleType, hidden: dict[str, type]):
        super().__init__(module.__name__)
        object.__setattr__(self, "_real", module)
        object.__setattr__(self, "_hidden", hidden)

    def __getattr__(self, name: str) -> Any:
        hidden = object.__getattribute__(self, "_hidden")
        if name in hidden:
            return hidden[name]
        value = getattr(object.__getattribute__(self, "_real"), name)
        if isinstance(value, types.ModuleType) and value.__name__.startswith(
            "tf_transformer"
        ):
            return _ModuleProxy(value, hidden)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("tf_transformer modules are read-only while grading")


def _hidden_reference(name: str) -> type:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"tf_transformer's {name} is the answer of the exercise being graded; "
            "your notebook must define its own"
        )

    return type(
        name,
        (),
        {
            "__init__": refuse,
            "__init_subclass__": classmethod(refuse),
            "__call__": refuse,
        },
    )


def _guarded_import(hidden: dict[str, type]):
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        module = real_import(name, globals, locals, fromlist, level)
        if isinstance(module, types.ModuleType) and module.__name__.startswith(
            "tf_transformer"
        ):
            return _ModuleProxy(module, hidden)
        return module

    return guarded


REGISTRY = "tf_transformer.course.checks.EXERCISES"


def _fingerprint(value: Any, depth: int = 0) -> Any:
    """What must stay the same about a watched attribute.

    Its identity; for a function also its code and defaults, and for a class
    of the library its own attributes (methods included): these change in
    place, keeping the object's id.
    """
    if isinstance(value, types.FunctionType):
        return (
            id(value),
            id(value.__code__),
            id(value.__defaults__),
            id(value.__kwdefaults__),
        )
    if (
        depth == 0
        and isinstance(value, type)
        and getattr(value, "__module__", "").startswith("tf_transformer")
    ):
        own = sorted(
            (key, _fingerprint(item, 1))
            for key, item in list(vars(value).items())
            if key not in ("__dict__", "__weakref__", "__doc__")
        )
        return (id(value), tuple(own))
    return id(value)


def _watched() -> dict[str, dict[str, Any]]:
    """Attributes by module name, and the registry's entries under REGISTRY."""
    names = [n for n in list(sys.modules) if n.startswith("tf_transformer")]
    watched = {}
    for name in names + list(WATCHED_MODULES):
        module = sys.modules.get(name)
        if module is not None:
            watched[name] = dict(vars(module))
    core = sys.modules.get("tf_transformer.course.checks._core")
    if core is not None:
        watched[REGISTRY] = dict(core.EXERCISES)
    return watched


def _snapshot() -> dict[str, dict[str, Any]]:
    return {
        name: {key: _fingerprint(value) for key, value in attributes.items()}
        for name, attributes in _watched().items()
    }


def _changed(before: dict[str, dict[str, Any]]) -> str | None:
    now_all = _watched()
    for name, attributes in before.items():
        if name not in now_all:
            return name
        now = now_all[name]
        for key, fingerprint in attributes.items():
            where = f"{name}[{key!r}]" if name == REGISTRY else f"{name}.{key}"
            if key not in now:
                return where
            if key.startswith("__") and name != REGISTRY:
                continue
            if _fingerprint(now[key]) != fingerprint:
                return where
    return None


def _define(cells: list[str], object_names, namespace) -> tuple[dict, dict]:
    """Run the kept statements of the cells; the answers defined, and errors."""
    import linecache

    definitions: dict[str, Any] = {}
    definition_errors: dict[str, str] = {}
    for index, cell_source in enumerate(cells):
        source = python_source(cell_source)
        filename = f"<cell {index}>"
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        try:
            tree = parse(source, filename)
        except SyntaxError as error:
            for line in cell_source.splitlines():
                for obj in object_names:
                    if line.startswith(
                        (f"def {obj}(", f"class {obj}(", f"class {obj}:")
                    ):
                        definition_errors[obj] = (
                            f"SyntaxError in cell {index}, line {error.lineno}: "
                            f"{error.msg}"
                        )
            continue
        for node in kept_statements(tree):
            code = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")
            defines = getattr(node, "name", None)
            try:
                exec(code, namespace)  # noqa: S102 - the grader's purpose
            except BaseException as error:  # noqa: BLE001 - student code may raise anything
                if defines in object_names:
                    definition_errors[defines] = (
                        f"defining {defines} in cell {index} raised "
                        f"{type(error).__name__}: {str(error)[:200]}"
                    )
                continue
            if defines in object_names:
                definitions[defines] = namespace[defines]
                definition_errors.pop(defines, None)
    return definitions, definition_errors


class _HiddenSource:
    """Imports the library modules that define graded answers from given text.

    The text (from `wire.hide_definitions`) has those answers replaced by
    functions that raise, so the reference never exists in this process.
    """

    def __init__(self, modules: dict[str, dict]):
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        info = self.modules.get(fullname)
        if info is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname, self, origin=info["origin"], is_package=info["package"]
        )
        if info["package"]:
            spec.submodule_search_locations = [os.path.dirname(info["origin"])]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        info = self.modules[module.__spec__.name]
        code = compile(info["source"], info["origin"], "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the library's own text

    def get_source(self, fullname: str) -> str:
        return self.modules[fullname]["source"]


PROCESS_EVENTS = (
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.posix_spawn",
    "os.spawn",
    "os.exec",
    "subprocess.Popen",
    "pty.spawn",
)


def _install_guard(hidden_files: set[str]) -> None:
    """An audit hook (it cannot be removed): no reading of the hidden
    modules' files, no new processes."""
    busy = threading.local()

    def hook(event: str, args: tuple) -> None:
        if event in PROCESS_EVENTS:
            raise PermissionError(f"{event} is not allowed while grading")
        if event != "open" or not args or getattr(busy, "on", False):
            return
        target = args[0]
        if not isinstance(target, str | bytes | os.PathLike):
            return
        busy.on = True
        try:
            path = os.path.realpath(os.fsdecode(target))
        finally:
            busy.on = False
        if path in hidden_files:
            raise PermissionError(
                f"reading {path} is not allowed while grading: it holds the answer"
            )

    sys.addaudithook(hook)


def _hidden_files(modules: dict[str, dict]) -> set[str]:
    files = set()
    for info in modules.values():
        origin = os.path.realpath(info["origin"])
        files.add(origin)
        for level in ("", 1, 2):
            files.add(
                os.path.realpath(
                    importlib.util.cache_from_source(origin, optimization=level)
                )
            )
    return files


def _raised(error: BaseException):
    """The `wire.Raised` report of an exception of the student's code."""
    from tf_transformer.course.checks import _core
    from tf_transformer.course.grading import wire

    return wire.Raised(
        type=type(error).__name__[:80],
        message=str(error)[:4000],
        where=_core.student_location(error),
        student_raised=_core._raised_in_student_code(error),
        code=repr(error.code)[:80] if isinstance(error, SystemExit) else None,
    )


class _Server:
    """Runs the student's answers on what the judge sends (see `judge`)."""

    def __init__(self, definitions: dict, wire):
        self.definitions = definitions
        self.wire = wire
        self.objects: dict[int, Any] = {}
        self.traced: dict[int, Any] = {}
        self.kept: list[Any] = []  # objects the judge names by handle

    def _resolve(self, target) -> Any:
        """A definition `["d", name]` or a kept object `["h", key]`."""
        kind, key = target
        if kind == "d":
            return self.definitions[key]
        if kind == "h" and type(key) is int:
            return self.kept[key]
        raise ValueError(f"unknown target {target!r}")

    def _keep(self, value: Any) -> dict:
        from keras.optimizers.schedules import LearningRateSchedule

        self.kept.append(value)
        return {
            "handle": len(self.kept) - 1,
            "type": type(value).__name__[:80],
            "schedule": isinstance(value, LearningRateSchedule),
        }

    def _load(self, text: str) -> Any:
        import io
        import pickle

        objects, resolve = self.objects, self._resolve

        class Loader(pickle.Unpickler):
            def persistent_load(self, key):
                if type(key) is int:
                    return objects[key]
                return resolve(key)

        import base64

        return Loader(io.BytesIO(base64.b64decode(text))).load()

    def _answer(self, compute, keep):
        """Run student code; its result as plain data (and handles if `keep`)."""
        try:
            value = compute()
        except BaseException as error:  # noqa: BLE001 - reported to the judge
            return self.wire.Reply(raised=_raised(error))
        return self.wire.Reply(value=self.wire.encode(value, keep=keep))

    def handle(self, request):
        """The `wire.Reply` to a `wire.Request` (its `id` is set by `serve`)."""
        op = request.op
        if op == "put":
            self.objects[request.key] = self._load(request.payload)
            return self.wire.Reply()
        if op in ("call", "getattr", "array"):
            target = self._resolve(request.target)
            # A function exercise gets plain data back; a class exercise's
            # objects stay here and the judge names them by handle.
            keep = (
                None
                if request.target[0] == "d" and not isinstance(target, type)
                else self._keep
            )
            if op == "call":
                args, kwargs = self._load(request.payload)
                return self._answer(lambda: target(*args, **kwargs), keep)
            if op == "getattr":
                return self._answer(lambda: getattr(target, request.name), keep)
            import numpy as np

            return self._answer(lambda: np.asarray(target), None)
        if op == "gradient":
            from tf_transformer.course.checks._layers import gradients_of

            layer = self._resolve(request.target)
            call, inputs = self._load(request.payload)
            return self._answer(lambda: gradients_of(layer, call, inputs), None)
        if op == "trace":
            return self._trace(request)
        if op == "run":
            values = self._load(request.payload)
            return self._answer(lambda: self.traced[request.trace](*values), None)
        raise ValueError(op)

    def _trace(self, request):
        import tensorflow as tf

        function = self._resolve(request.target)
        template, specs = self._load(request.payload)
        wire = self.wire

        def fill(tensors):
            return tf.nest.map_structure(
                lambda x: tensors[x.index] if isinstance(x, wire.Slot) else x,
                template,
            )

        def body(*tensors):
            args, kwargs = fill(tensors)
            return function(*args, **kwargs)

        graph = tf.function(body, input_signature=specs)
        try:
            outputs = graph.get_concrete_function().structured_outputs
        except BaseException as error:  # noqa: BLE001
            return wire.Reply(raised=_raised(error))
        dtypes: list[str] = []

        def describe(value):
            if tf.is_tensor(value):
                dtypes.append(value.dtype.name)
                return {"leaf": len(dtypes) - 1}
            if type(value) in (list, tuple):
                return {type(value).__name__: [describe(v) for v in value]}
            if type(value) is dict:
                return {"dict": {str(k): describe(v) for k, v in value.items()}}
            return {"const": wire.encode(value)}

        structure = describe(outputs)
        key = len(self.traced)

        def run(*values):
            return [
                t.numpy() for t in tf.nest.flatten(graph(*values)) if tf.is_tensor(t)
            ]

        self.traced[key] = run
        return wire.Reply(trace=key, structure=structure, dtypes=dtypes)


# Packages that Keras imports when it is imported, only for what no check
# uses (its scikit-learn wrappers, its notebook display of saved files, its
# image-gallery plots), and that cost an answers' process about a quarter of
# its start (measured: bench/grade_throughput.py, docs/grading.md
# "Throughput"). They are kept out while the answers' process imports
# TensorFlow, Keras and the library (Keras then leaves those features off),
# then importable again: the notebook's own imports of them work as usual.
SKIPPED_AT_START = ("sklearn", "IPython", "matplotlib")


@contextlib.contextmanager
def _without(names):
    """Within the block, importing the packages `names` (not imported yet)
    raises ImportError; afterwards they import as usual."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # the import system's "not found" marker
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def startup_imports() -> None:
    """NumPy, TensorFlow and Keras, imported before the guard (the checks
    need them) with `SKIPPED_AT_START` kept out: what every answers'
    process imports first, and what the fork server imports once for all
    (`forkserver`)."""
    with _without(SKIPPED_AT_START):
        import keras  # noqa: F401
        import numpy  # noqa: F401
        import tensorflow  # noqa: F401


def serve(inp, out, report) -> None:
    """The submission's process: the answers run here, the references never.

    `report` is the grader's stream for a start that fails (the judge shows
    its last lines); it is closed before any submission code runs.
    """
    try:
        # The library's text goes in before anything imports tf_transformer
        # (the message types included): read the first message as plain JSON.
        first = json.loads(inp.readline())
        sys.meta_path.insert(0, _HiddenSource(first["hidden_modules"]))
        startup_imports()
        with _without(SKIPPED_AT_START):
            from tf_transformer.course.checks import (
                _core,  # noqa: F401 - error reports
                _layers,  # noqa: F401 - gradients
            )
            from tf_transformer.course.grading import wire

        init = wire.AnswersInit.from_dict(first)
    except BaseException:  # noqa: BLE001 - no submission code has run yet
        traceback.print_exc(file=report)
        report.flush()
        os._exit(1)
    report.close()
    _install_guard(_hidden_files(init.hidden_modules))

    def emit(message) -> None:
        out.write(message.dumps())
        out.flush()

    object_names = init.objects  # exercise name by object name
    hidden = {obj: _hidden_reference(obj) for obj in object_names}
    namespace: dict[str, Any] = {"__name__": "__main__"}
    student_builtins = dict(vars(builtins))
    student_builtins["__import__"] = _guarded_import(hidden)
    namespace["__builtins__"] = student_builtins
    definitions, errors = _define(init.cells, object_names, namespace)
    found = {}
    for obj in object_names:
        if obj in definitions:
            found[obj] = wire.Definition(
                defined=True, is_class=isinstance(definitions[obj], type)
            )
        else:
            found[obj] = wire.Definition(defined=False, error=errors.get(obj))
    emit(wire.Ready(found))
    server = _Server(definitions, wire)
    for line in inp:
        request = wire.Request.loads(line)
        try:
            reply = server.handle(request)
        except BaseException as error:  # noqa: BLE001 - the protocol must go on
            reply = wire.Reply(raised=_raised(error))
        reply = dataclasses.replace(reply, id=request.id)
        try:
            emit(reply)
        except ValueError:  # e.g. a NaN that JSON refuses: report it as text
            raised = wire.Raised("ValueError", "the result could not be sent")
            emit(wire.Reply(id=request.id, raised=raised))


PACKAGES = ("numpy", "tensorflow", "keras", "nbclient", "ipykernel")


def probe() -> None:
    """Start as the processes that run submission code start, once, before
    anything is graded (`grade.resolve_sandbox`): find the packages, start the
    notebook's kernel's Python, import the library. Raises where one fails
    (the grader shows the traceback's last lines)."""
    import subprocess

    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"{sys.executable} finds no {', '.join(missing)} on sys.path {sys.path}"
        )
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = KernelSpecManager().get_kernel_spec("python3").argv[0]
    major, minor = sys.version_info[:2]
    if kernel in {"python", f"python{major}", f"python{major}.{minor}"}:
        kernel = sys.executable  # as jupyter_client starts it
    subprocess.run([kernel, "-c", "import ipykernel"], check=True)
    import tf_transformer  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--probe"]):
        print(
            "usage: answers.py [--probe] (its requests come on stdin)",
            file=sys.stderr,
        )
        return 2
    apply_limits()
    if argv == ["--probe"]:
        probe()
        return 0
    run()


def run() -> None:
    """Serve the judge on stdin/stdout (the start's failures on stderr),
    with the process's own descriptors 0-2 on /dev/null; never returns."""
    inp = os.fdopen(os.dup(0), "r", encoding="utf-8")
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    report = os.fdopen(os.dup(2), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    sys.stderr = sys.stdout
    serve(inp, out, report)
    out.flush()
    os._exit(0)  # skip interpreter teardown that student objects could hook


if __name__ == "__main__":
    # Run as a script (see grade.py): keep the grading folder off the path.
    sys.path[:] = [
        p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)
    ]
    sys.exit(main())
