"""Reading an attention view's page back: what its data says, and whether it
asks for anything outside itself (shared by the view's tests)."""

import base64
import json
import re

import keras
import numpy as np

DATA = re.compile(
    r'<script type="application/json" class="tf-attention-data">(.*?)</script>', re.S
)
# Anything that would make a browser fetch: an attribute naming a resource, a
# CSS url() or @import, a protocol-relative or absolute web address.
EXTERNAL = re.compile(
    r"""\b(?:src|href|srcset|action|poster)\s*=\s*["']?(?!#)"""
    r"""|url\(|@import|https?://|//cdn|fetch\(|XMLHttpRequest|WebSocket""",
    re.I,
)


def views_in(page):
    """The decoded data of every view in the HTML: tokens, and each kind's
    weights as float arrays (layers, heads, queries, keys)."""
    views = []
    for text in DATA.findall(page):
        data = json.loads(text)
        for kind in data["kinds"]:
            rows = len(data["sequences"][kind["queries"]])
            columns = len(data["sequences"][kind["keys"]])
            raw = np.frombuffer(base64.b64decode(kind["weights"]), np.uint8)
            shape = (kind["layers"], kind["heads"], rows, columns)
            kind["weights"] = raw.reshape(shape) / data["levels"]
        views.append(data)
    return views


def weights_of(view):
    return {kind["kind"]: kind["weights"] for kind in view["kinds"]}


def external_references(page):
    """Every place in the page that could reach outside it."""
    return [match.group(0) for match in EXTERNAL.finditer(page)]


def small_model(model_class, seed=0, **kwargs):
    """A small library model with random weights (the seed fixes them)."""
    keras.utils.set_random_seed(seed)
    sizes = dict(num_layers=2, d_model=16, num_heads=4, dff=32, dropout=0.0)
    return model_class(**{**sizes, **kwargs})


def small_captioner(**kwargs):
    """An `ImageCaptioner` of 8x24 pictures in 12 patches of 4x4."""
    from tf_transformer.models import ImageCaptioner

    return small_model(
        ImageCaptioner,
        image_shape=(8, 24, 1),
        patch_size=4,
        target_vocab_size=30,
        **kwargs,
    )
