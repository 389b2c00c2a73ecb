"""Crafted submissions for the grader's tests, written as notebooks on the fly.

Each submission is a list of code cells; `write_class` writes one notebook
per student into a folder, as an instructor's download would look.
"""

from pathlib import Path

import nbformat

CORRECT_PADDING = """
def padding_mask(token_ids, pad_id=0):
    return (token_ids != pad_id)[:, tf.newaxis, :]
"""
CORRECT_CAUSAL = """
def causal_mask(length):
    return tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)
"""
IMPORTS = "import numpy as np\nimport tensorflow as tf"

# Each answer below reaches the library's reference by a path other than an
# import statement and returns what the reference computes.
TAMPERING = {
    "sys_modules": [
        IMPORTS,
        """
import sys
import importlib

def padding_mask(token_ids, pad_id=0):
    return sys.modules["tf_transformer.layers.masks"].padding_mask(token_ids, pad_id)

def causal_mask(length):
    return importlib.import_module("tf_transformer.layers.masks").causal_mask(length)
""",
    ],
    "gc": [
        IMPORTS,
        """
import gc

def _library(name):
    for item in gc.get_objects():
        if (
            callable(item)
            and getattr(item, "__name__", "") == name
            and getattr(item, "__module__", "").startswith("tf_transformer")
        ):
            return item

def padding_mask(token_ids, pad_id=0):
    return _library("padding_mask")(token_ids, pad_id)

def causal_mask(length):
    return _library("causal_mask")(length)
""",
    ],
    "frames": [
        IMPORTS,
        """
import sys

def _caller_reference():
    frame = sys._getframe(1)
    while frame is not None:
        found = frame.f_locals.get("reference")
        if callable(found):
            return found
        frame = frame.f_back

def padding_mask(token_ids, pad_id=0):
    return _caller_reference()(token_ids, pad_id)

def causal_mask(length):
    return _caller_reference()(length)
""",
    ],
    "proxy": [
        IMPORTS,
        """
import tf_transformer.layers.masks as masks

def padding_mask(token_ids, pad_id=0):
    return object.__getattribute__(masks, "_real").padding_mask(token_ids, pad_id)

def causal_mask(length):
    return vars(object.__getattribute__(masks, "_real"))["causal_mask"](length)
""",
    ],
    "source": [
        IMPORTS,
        """
import importlib.util

def _library():
    path = importlib.util.find_spec("tf_transformer.layers.masks").origin
    namespace = {"__name__": "copied"}
    with open(path) as handle:
        exec(handle.read(), namespace)
    return namespace

def padding_mask(token_ids, pad_id=0):
    return _library()["padding_mask"](token_ids, pad_id)

def causal_mask(length):
    return _library()["causal_mask"](length)
""",
    ],
}


def write_notebook(path: Path, cells: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source.strip()) for source in cells]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def write_class(folder: Path, submissions: dict[str, list[str]]) -> Path:
    """One `NAME/05_masking.ipynb` per submission; returns the folder."""
    for name, cells in submissions.items():
        write_notebook(folder / name / "05_masking.ipynb", cells)
    return folder


def library_answer(obj) -> list[str]:
    """Cells that answer with the library's own code of `obj`: its module's
    imports (and the base classes the lesson imports), then its definition
    (a correct answer, copied)."""
    import ast
    import inspect

    module = inspect.getmodule(obj)
    source = inspect.getsource(module)
    imports = [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    imports += [
        f"from {module.__name__} import {base.__name__}"
        for base in getattr(obj, "__bases__", ())
        if base.__module__ == module.__name__
    ]
    return ["\n".join(imports), inspect.getsource(obj)]


# Class answers (lesson 8's TransformerSchedule) that look for the library's
# class by a path other than an import statement and construct it.
FIND_SCHEDULE = {
    "subclasses": """
def _reference():
    for cls in keras.optimizers.schedules.LearningRateSchedule.__subclasses__():
        if cls.__name__ == "TransformerSchedule" and cls.__module__.startswith(
            "tf_transformer"
        ):
            return cls
""",
    "gc": """
import gc

def _reference():
    for item in gc.get_objects():
        if (
            isinstance(item, type)
            and item.__name__ == "TransformerSchedule"
            and item.__module__.startswith("tf_transformer")
        ):
            return item
""",
    "sys_modules": """
import sys

def _reference():
    return sys.modules["tf_transformer.training.schedule"].TransformerSchedule
""",
    "importlib": """
import importlib

def _reference():
    return importlib.import_module("tf_transformer").TransformerSchedule
""",
    "frames": """
import sys

def _reference():
    frame = sys._getframe(1)
    while frame is not None:
        for name in ("reference_cls", "reference"):
            found = frame.f_locals.get(name)
            if isinstance(found, type):
                return found
        frame = frame.f_back
""",
}
DELEGATING_SCHEDULE = """
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, *args, **kwargs):
        self.inner = _reference()(*args, **kwargs)

    def __call__(self, step):
        return self.inner(step)

    def get_config(self):
        return self.inner.get_config()
"""
CLASS_TAMPERING = {
    f"schedule_{trick}": [
        "import keras\nimport numpy as np\nimport tensorflow as tf",
        finder,
        DELEGATING_SCHEDULE,
    ]
    for trick, finder in FIND_SCHEDULE.items()
}
# Lesson 6's FeedForward, delegating to a Keras layer class of the library.
CLASS_TAMPERING["feed_forward_layer_subclasses"] = [
    "import keras",
    """
def _reference():
    for cls in keras.layers.Layer.__subclasses__():
        if cls.__name__ == "FeedForward" and cls.__module__.startswith(
            "tf_transformer"
        ):
            return cls

class FeedForward(keras.layers.Layer):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.inner = _reference()(*args, **kwargs)

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def get_config(self):
        return self.inner.get_config()
""",
]
