"""Messages between the grader's judge and the process that runs an answer.

The judge (trusted) sends arguments as pickles: only the submission's
process unpickles them. What comes back is untrusted, so it is plain JSON
that `decode` turns into tensors, arrays and Python values (nothing the
submission chose runs in the judge): arrays travel as dtype, shape and raw
bytes, any other object as its type name and a short `repr`.

The messages themselves are small typed records (`Message` subclasses), one
JSON object per line: between the grader and its judge (`JudgeRequest`,
`Verdict`, `Done`), between the judge and the answers' process
(`AnswersInit`, `Ready`, `Request`, `Reply`, `Raised`), and from the notebook
runner (`NotebookRun`). `Message.from_dict` refuses a field it does not know.

`hide_definitions` rewrites a library module's source so that the functions
being graded raise instead of computing the answer; the submission's process
imports that text instead of the file.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
import math
import pickle
from typing import Any

import numpy as np

# dtypes an answer may return (names as NumPy/TensorFlow spell them)
DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "bfloat16",
)
MAX_DEPTH = 16
MAX_ELEMENTS = 1 << 26  # elements of one returned array (256 MiB of float32)


class Slot:
    """Stands for the `index`-th tensor argument of a traced call."""

    def __init__(self, index: int):
        self.index = index


def pack(value: Any) -> str:
    """Judge -> submission: a pickle, as text."""
    return base64.b64encode(pickle.dumps(value)).decode("ascii")


def unpack(text: str) -> Any:
    """Only ever called in the submission's process (the data is the judge's)."""
    return pickle.loads(base64.b64decode(text))  # noqa: S301 - sent by the judge


def _numpy_dtype(name: str):
    if name == "bfloat16":
        import tensorflow as tf

        return np.dtype(tf.bfloat16.as_numpy_dtype)
    return np.dtype(name)


def _array(array) -> dict:
    array = np.asarray(array)  # a scalar stays 0-d
    name = array.dtype.name
    if name not in DTYPES:
        raise TypeError(name)
    return {
        "dtype": name,
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes(order="C")).decode("ascii"),
    }


def encode(value: Any, depth: int = 0, keep=None) -> dict:
    """A JSON-safe description of what an answer returned (submission side).

    With `keep` (class exercises), a variable or any object that is not plain
    data stays in the submission's process: `keep(value)` stores it and
    returns the handle that names it (`{"handle": key, ...}`), and a
    `TensorShape` travels as a tuple.
    """
    import tensorflow as tf

    try:
        if value is None or type(value) in (bool, int, str):
            return {"py": value}
        if type(value) is float:
            return {"float": repr(value)}
        if depth < MAX_DEPTH:
            if keep is not None and isinstance(value, tf.TensorShape):
                return encode(tuple(value.as_list()), depth + 1)
            if keep is not None and _is_variable(value):
                return keep(value)
            if isinstance(value, tf.Tensor | tf.Variable) and hasattr(value, "numpy"):
                return {"tensor": _array(value.numpy())}
            if isinstance(value, np.ndarray):
                return {"array": _array(value)}
            if isinstance(value, np.generic):
                return {"scalar": _array(np.asarray(value))}
            if type(value) in (list, tuple):
                items = [encode(v, depth + 1, keep) for v in value]
                return {type(value).__name__: items}
            if type(value) is dict and all(type(k) is str for k in value):
                items = {k: encode(v, depth + 1, keep) for k, v in value.items()}
                return {"dict": items}
    except Exception:  # noqa: BLE001 - an odd object is reported as opaque
        pass
    if keep is not None:
        return keep(value)
    try:
        text = repr(value)[:200]
    except Exception:  # noqa: BLE001
        text = "?"
    return {"opaque": type(value).__name__[:80], "repr": text}


class Opaque:
    """Something an answer returned that is not a tensor, array or plain value."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is not an array")


def _decode_array(item: dict) -> np.ndarray:
    if set(item) != {"dtype", "shape", "data"} or item["dtype"] not in DTYPES:
        raise ValueError("malformed array")
    shape = item["shape"]
    if not (
        isinstance(shape, list)
        and len(shape) <= 32
        and all(type(n) is int and 0 <= n for n in shape)
    ):
        raise ValueError("malformed shape")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError("array too large")
    dtype = _numpy_dtype(item["dtype"])
    data = base64.b64decode(item["data"], validate=True)
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise ValueError("array size does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _is_variable(value: Any) -> bool:
    import keras
    import tensorflow as tf

    return isinstance(value, tf.Variable | keras.Variable)


def decode(item: Any, depth: int = 0, handles=None) -> Any:
    """The judge's view of an encoded value; raises ValueError if malformed.

    `handles(item)` turns a handle (see `encode`'s `keep`) into the judge's
    stand-in for the object; without it a handle is malformed.
    """
    if not isinstance(item, dict) or not item or depth > MAX_DEPTH:
        raise ValueError("malformed value")
    (key, value), *_ = item.items()
    if key == "handle" and handles is not None and type(value) is int:
        return handles(item)
    if len(item) > 2:
        raise ValueError("malformed value")
    if key == "py" and (value is None or type(value) in (bool, int, str)):
        return value
    if key == "float" and isinstance(value, str):
        return float(value)
    if key == "tensor":
        import tensorflow as tf

        array = _decode_array(value)
        return tf.constant(array, dtype=tf.as_dtype(value["dtype"]))
    if key == "array":
        return _decode_array(value)
    if key == "scalar":
        return _decode_array(value)[()]
    if key in ("list", "tuple") and isinstance(value, list):
        items = [decode(v, depth + 1, handles) for v in value]
        return items if key == "list" else tuple(items)
    if key == "dict" and isinstance(value, dict):
        return {str(k): decode(v, depth + 1, handles) for k, v in value.items()}
    if key == "opaque" and isinstance(value, str) and isinstance(item.get("repr"), str):
        name = value if value.isidentifier() else "object"
        return type(name, (Opaque,), {})(item["repr"])
    raise ValueError("malformed value")


def dumps(message: dict) -> str:
    return json.dumps(message, allow_nan=False) + "\n"


# ------------------------------------------------------------------- messages


@dataclasses.dataclass(frozen=True)
class Message:
    """A message between two of the grader's processes."""

    def as_dict(self) -> dict:
        return {
            field.name: _plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }

    def dumps(self) -> str:
        """One line of JSON."""
        return dumps(self.as_dict())

    @classmethod
    def from_dict(cls, data: Any):
        """The message `data` holds; ValueError if it is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
        try:
            return cls(**data)
        except TypeError as error:  # a required field is missing
            raise ValueError(f"{cls.__name__}: {error}") from None

    @classmethod
    def loads(cls, text: str):
        return cls.from_dict(json.loads(text))


def _plain(value: Any) -> Any:
    if isinstance(value, Message):
        return value.as_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class JudgeRequest(Message):
    """Grader -> judge: check the exercises of one submission. `commands`
    start one answers' process per group of exercises (`answer_groups`);
    the judge's lines for it start with `nonce`."""

    nonce: str
    cells: list[str]
    groups: list[list[str]]
    timeout: float
    commands: list[list[str]]
    env: dict[str, str]
    cwd: str
    # Per group, the view (`confine.layout`) of an answers' process forked
    # from the judge's fork server (`forks`); None: `commands` start them.
    layouts: list[list[list[str]]] | None = None


@dataclasses.dataclass(frozen=True)
class Verdict(Message):
    """Judge -> grader: the result of one exercise."""

    exercise: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class Done(Message):
    """Judge -> grader: every exercise of the request has its verdict;
    how many answers' processes were forked (`forks`) and started afresh,
    and why the fork server could not serve (if it could not)."""

    done: bool = True
    forked: int = 0
    fresh: int = 0
    fork_failure: str = ""


@dataclasses.dataclass(frozen=True)
class AnswersInit(Message):
    """Judge -> answers' process, first: the notebook's code cells, the
    exercise name of each answer to define (by object name), and the
    library modules to import from text (`hide_definitions`)."""

    cells: list[str]
    objects: dict[str, str]
    hidden_modules: dict[str, dict]


@dataclasses.dataclass(frozen=True)
class Definition(Message):
    """Whether the cells define one answer, and as a class or not."""

    defined: bool
    is_class: bool = False
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Ready(Message):
    """Answers' process -> judge, first: what the cells define."""

    ready: dict[str, Definition]

    def __post_init__(self):
        found = {
            name: item if isinstance(item, Definition) else Definition.from_dict(item)
            for name, item in dict(self.ready).items()
        }
        object.__setattr__(self, "ready", found)


@dataclasses.dataclass(frozen=True)
class Request(Message):
    """Judge -> answers' process: `op` is `put` (an argument object under
    `key`), `call`, `getattr` or `array` on `target` (`["d", name]` or
    `["h", handle]`), `trace` (a function traced for `tf.function`), `run`
    (a traced function, by `trace`) or `gradient` (of a layer `target`: the
    gradients of a scalar of its output with respect to the inputs and its
    weights, `checks._layers.gradients_of`; `payload` holds the call as
    `(args, kwargs)` with `Slot`s, and the inputs). Arguments travel in
    `payload` (`pack`)."""

    op: str
    id: int
    target: list | None = None
    payload: str | None = None
    name: str | None = None
    trace: int | None = None
    key: int | None = None


@dataclasses.dataclass(frozen=True)
class Raised(Message):
    """What the answer raised: its type's name, message, the student's line
    (`where`), whether it was raised in the student's code, and for
    `SystemExit` its code."""

    type: str
    message: str
    where: str = ""
    student_raised: bool = False
    code: str | None = None


@dataclasses.dataclass(frozen=True)
class Reply(Message):
    """Answers' process -> judge: to request `id`, the encoded `value`
    (`encode`), or what it `raised`; for `trace`, the traced function's key,
    its output `structure` and `dtypes`."""

    id: int | None = None
    value: Any = None
    raised: Raised | None = None
    trace: int | None = None
    structure: Any = None
    dtypes: list[str] | None = None

    def __post_init__(self):
        if isinstance(self.raised, dict):
            object.__setattr__(self, "raised", Raised.from_dict(self.raised))


@dataclasses.dataclass(frozen=True)
class NotebookRun(Message):
    """Notebook runner -> grader: `ok`, `dead` (the kernel died), `timeout`
    or `error`, with the index of the code cell running then."""

    status: str
    cell: int | None = None
    message: str = ""


def hide_definitions(source: str, names: set[str]) -> str:
    """`source` with the top-level functions and classes `names` emptied.

    A replaced function body raises `RuntimeError`; a replaced class keeps
    its name, bases and decorators, and its only method, `__init__`, raises.
    Blank lines keep the other lines where they were, so tracebacks still
    point at the right lines.
    """
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    for node in reversed(tree.body):
        is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        if not (is_function or isinstance(node, ast.ClassDef)) or (
            node.name not in names
        ):
            continue
        first, last = node.body[0].lineno, node.end_lineno
        indent = " " * node.body[0].col_offset
        message = (
            f"tf_transformer's {node.name} is the answer of an exercise being "
            "graded; it is not available while grading"
        )
        body = [f"{indent}raise RuntimeError({message!r})\n"]
        if not is_function:
            body = [f"{indent}def __init__(self, *args, **kwargs):\n", indent + body[0]]
        body += ["\n"] * (last - first + 1 - len(body))
        lines[first - 1 : last] = body
    return "".join(lines)
