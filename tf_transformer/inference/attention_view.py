"""Attention you can explore: every layer and head of a model, as one
self-contained HTML page that works offline.

`attention_view(model, inputs)` runs a library model once with
`return_attention_scores=True` (or its `encode` method, for the models built
on one encoder) and returns an `AttentionView`. In a notebook it displays
itself (`_repr_html_`); `save(path)` writes the same HTML as one `.html`
file. The page carries its JavaScript, CSS and data inline: no network, no
CDN, no widget extension, so it works in Jupyter, Colab, VS Code and a
browser opened from disk alike.

In the page: hover, click or focus (Tab, then the arrow keys) a token to see
its attention from every head of the chosen layer (colour = head, opacity =
weight); Enter or Space pins it. A grid of thumbnails shows every layer x
head; a menu switches between encoder self-attention, decoder (masked)
self-attention and cross-attention. For a picture (the `ImageCaptioner`, the
`VisionTransformer`) the weights are also drawn over its patches.

Weights are rounded to multiples of 1/255 and packed one byte each.
"""

from __future__ import annotations

import base64
import html
import json
import os
import uuid
from importlib import resources

import numpy as np

KINDS = {
    "encoder": ("encoder self-attention", "source", "source"),
    "decoder": ("decoder self-attention (masked)", "target", "target"),
    "cross": ("cross-attention (decoder reads the source)", "target", "source"),
}
"""Each kind of attention: its label, the sequence of its queries and of its
keys."""

# The models' own names for the kinds (`return_attention_scores=True`).
_MODEL_KEYS = {
    "encoder": "encoder",
    "decoder_self_attention": "decoder",
    "decoder_cross_attention": "cross",
}

MAX_TOKENS = 512
"""Default most tokens of one sequence (`max_tokens`)."""

MAX_WEIGHTS = 16_000_000
"""Default most weights of one view, all kinds, layers and heads together
(`max_weights`): one byte each in the page, 4/3 of that as base64."""

LEVELS = 255  # a weight is stored as round(weight * 255), one byte


class AttentionView:
    """Every layer's and head's attention weights of one example, with its
    tokens, rendered as one interactive, self-contained HTML page.

    Build it with `attention_view(model, inputs)`, or directly from weights
    you already have (for example a model of your own).

    Args:
        attention: the weights as the library's models return them with
            `return_attention_scores=True`: a dict with any of the keys
            `"encoder"`, `"decoder_self_attention"`, `"decoder_cross_attention"`
            (or `"encoder"`, `"decoder"`, `"cross"`), each a list with one
            (1, heads, queries, keys) or (heads, queries, keys) tensor per
            layer, or one (layers, heads, queries, keys) array. A bare list
            or array is one stack of self-attention: the encoder's when only
            `source_tokens` is given, the decoder's when only
            `target_tokens` is.
        source_tokens: labels of the encoder's positions (a sentence, or
            the patches of `image`, which are labelled for you).
        target_tokens: labels of the decoder's positions.
        image: optional picture (height, width) or (height, width,
            channels), values in [0, 1]; its patches are the source.
        patch_size: side of a square patch in pixels; required with
            `image`.
        prompt_length: for a language model's prompt and its continuation:
            how many of the target tokens are the prompt (the rest are shown
            as generated).
        title: a line above the view.
        max_tokens: most tokens of one sequence. Defaults to 512.
        max_weights: most weights in all. Defaults to 16,000,000.

    Raises:
        ValueError, TypeError: shapes that do not match the tokens, weights
            outside [0, 1], a size above `max_tokens` or `max_weights`; the
            message names the argument and the value received.

    Example:

    >>> view = attention_view(model, (source_ids, target_in_ids),
    ...                       tokens=(source_tokenizer, target_tokenizer))
    >>> view  # in a notebook: the interactive view
    >>> view.save("attention.html")
    """

    def __init__(
        self,
        attention,
        source_tokens=None,
        target_tokens=None,
        *,
        image=None,
        patch_size=None,
        prompt_length=None,
        title=None,
        max_tokens=MAX_TOKENS,
        max_weights=MAX_WEIGHTS,
    ):
        self.max_tokens = _check_count("max_tokens", max_tokens)
        self.max_weights = _check_count("max_weights", max_weights)
        self.image = None
        self.patch_size = None
        self.patch_grid = None
        if image is not None:
            self.image, self.patch_size, self.patch_grid = _check_image(
                image, patch_size
            )
        elif patch_size is not None:
            raise ValueError(
                "`patch_size` needs an `image`. "
                f"Received: patch_size={patch_size!r} and image=None"
            )
        sequences = {
            "source": _check_tokens("source_tokens", source_tokens, self.max_tokens),
            "target": _check_tokens("target_tokens", target_tokens, self.max_tokens),
        }
        if self.image is not None:
            patches = self.patch_grid[0] * self.patch_grid[1]
            if sequences["source"] is None:
                sequences["source"] = _patch_labels(*self.patch_grid)
            if len(sequences["source"]) not in (patches, patches + 1):
                raise ValueError(
                    f"`source_tokens` must label the image's {patches} patches "
                    f"(and at most one class token before them). Received: "
                    f"{len(sequences['source'])} source_tokens"
                )
        self.weights = _kinds_of(attention, sequences)
        self.sequences = sequences
        total = 0
        for kind, weights in self.weights.items():
            _, queries, keys = KINDS[kind]
            layers, heads, rows, columns = weights.shape
            expected = (_length(sequences, queries), _length(sequences, keys))
            if (rows, columns) != expected:
                raise ValueError(
                    f"`attention[{kind!r}]` must be (layers, heads, {expected[0]}, "
                    f"{expected[1]}) for {expected[0]} {queries}_tokens (queries) "
                    f"and {expected[1]} {keys}_tokens (keys). Received: shape "
                    f"{weights.shape}"
                )
            total += weights.size
        if total > self.max_weights:
            raise ValueError(
                f"The view would hold {total:,} weights, more than "
                f"max_weights={self.max_weights:,}: show fewer tokens or layers, "
                "or raise `max_weights`. Received: "
                + ", ".join(f"{k} {tuple(w.shape)}" for k, w in self.weights.items())
            )
        if prompt_length is not None:
            target = sequences["target"] or []
            prompt_length = _check_count("prompt_length", prompt_length, minimum=0)
            if prompt_length > len(target):
                raise ValueError(
                    f"`prompt_length` must be at most the {len(target)} "
                    f"target_tokens. Received: prompt_length={prompt_length}"
                )
        self.prompt_length = prompt_length
        if title is not None and not isinstance(title, str):
            raise TypeError(
                f"`title` must be a str. Received: title of type {type(title).__name__}"
            )
        self.title = title

    def packed(self):
        """The page's data: tokens, and every kind's weights as base64 bytes
        (layers, heads, queries, keys), each byte round(weight * 255)."""
        kinds = []
        for kind, weights in self.weights.items():
            label, queries, keys = KINDS[kind]
            layers, heads = weights.shape[:2]
            quantized = np.rint(weights * LEVELS).astype(np.uint8)
            kinds.append(
                {
                    "kind": kind,
                    "label": label,
                    "queries": queries,
                    "keys": keys,
                    "layers": layers,
                    "heads": heads,
                    "weights": base64.b64encode(quantized.tobytes()).decode("ascii"),
                }
            )
        data = {
            "title": self.title,
            "sequences": self.sequences,
            "prompt_length": self.prompt_length,
            "levels": LEVELS,
            "kinds": kinds,
            "image": None,
        }
        if self.image is not None:
            height, width, channels = self.image.shape
            pixels = np.rint(self.image * 255).astype(np.uint8)
            data["image"] = {
                "height": height,
                "width": width,
                "channels": channels,
                "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
                "patch_size": self.patch_size,
                "grid": list(self.patch_grid),
                # a class token before the patches is no patch of the picture
                "offset": len(self.sequences["source"])
                - self.patch_grid[0] * self.patch_grid[1],
            }
        return data

    def to_html(self):
        """The view as an HTML fragment: markup, inline CSS and JavaScript,
        the data in a JSON script. What a notebook shows; `save` wraps it in
        a page."""
        view_id = "tf-attention-" + uuid.uuid4().hex[:12]
        # "<" escaped: a token such as "</script>" cannot end the data early.
        data = json.dumps(self.packed(), ensure_ascii=True).replace("<", "\\u003c")
        return (
            f'<div class="tf-attention" id="{view_id}">'
            f"<style>{_asset('attention_view.css')}</style>"
            f'<script type="application/json" class="tf-attention-data">{data}'
            "</script>"
            '<p class="tfa-note">The interactive attention view needs JavaScript '
            "(in Jupyter: a trusted notebook).</p>"
            "</div>"
            f"<script>{_asset('attention_view.js')}\n"
            f'tfAttentionView(document.getElementById("{view_id}"));</script>'
        )

    def _repr_html_(self):
        return self.to_html()

    def save(self, path):
        """Write the view as one self-contained `.html` file; returns the path."""
        return save_html(path, [self])

    def __repr__(self):
        shapes = ", ".join(f"{k} {tuple(w.shape)}" for k, w in self.weights.items())
        return f"<AttentionView {shapes}>"


def save_html(path, views, title="Attention"):
    """Write one or more `AttentionView`s as one self-contained page.

    The page forbids every request beyond itself (a Content-Security-Policy
    allowing only its inline scripts, styles and `data:` images).
    """
    if isinstance(views, AttentionView):
        views = [views]
    views = list(views)
    if not views or not all(isinstance(view, AttentionView) for view in views):
        raise TypeError(
            "`views` must be AttentionView objects. Received: "
            f"{[type(view).__name__ for view in views]}"
        )
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"`path` must be a file path. Received: path of type {type(path).__name__}"
        ) from None
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{html.escape(title)}</title>\n</head>\n<body class='tfa-page'>\n"
        + "\n".join(view.to_html() for view in views)
        + "\n</body>\n</html>\n"
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return path


def attention_view(
    model,
    inputs,
    tokens=None,
    *,
    prompt_length=None,
    title=None,
    max_tokens=MAX_TOKENS,
    max_weights=MAX_WEIGHTS,
):
    """Collect every layer's and head's attention of a library model on one
    example and return an `AttentionView`.

    Args:
        model: a library model, or a `Translator`:
            - `Transformer`: `inputs` = `(source_ids, target_in_ids)`;
              encoder, decoder and cross-attention.
            - `ImageCaptioner`: `inputs` = `(image, target_in_ids)`; the
              patches of the image are the source.
            - `Translator`: `inputs` = a sentence (str); it is translated,
              then the model re-reads its own translation.
            - `CausalLM`: `inputs` = token ids (a prompt and its generated
              continuation; see `prompt_length`).
            - `SequenceClassifier`, `MaskedLanguageModel`: token ids.
            - `VisionTransformer`: an image.
        inputs: one example, with or without its batch axis of 1. Token ids
            equal to 0 (`[PAD]`) are left out of the view.
        tokens: labels of the positions: a tokenizer (anything with
            `id_to_token`, e.g. `SubwordTokenizer`), or a list of str; for a
            pair model a pair `(source, target)` of those. Defaults to the
            ids themselves (the `Translator`'s tokenizers for a
            `Translator`).
        prompt_length: `CausalLM` only: how many leading tokens are the
            prompt.
        title: a line above the view.
        max_tokens, max_weights: size caps, see `AttentionView`.

    Returns:
        An `AttentionView`: `view` in a notebook displays it,
        `view.save("attention.html")` writes it.

    Example:

    >>> ids = tf.constant([[2, 17, 9, 33, 3]])
    >>> attention_view(classifier, ids, tokens=tokenizer).save("view.html")
    """
    from tf_transformer.inference.translator import Translator
    from tf_transformer.models._encoder_model import EncoderModel
    from tf_transformer.models.causal_lm import CausalLM
    from tf_transformer.models.image_captioner import ImageCaptioner
    from tf_transformer.models.transformer import TransformerBase
    from tf_transformer.models.vision_transformer import VisionTransformer

    caps = dict(max_tokens=max_tokens, max_weights=max_weights, title=title)
    if prompt_length is not None and not isinstance(model, CausalLM):
        raise ValueError(
            "`prompt_length` is for a CausalLM's prompt. Received: "
            f"prompt_length={prompt_length!r} with a {type(model).__name__}"
        )
    if isinstance(model, Translator):
        if not isinstance(inputs, str):
            raise TypeError(
                "With a Translator, `inputs` must be a sentence (str). "
                f"Received: inputs of type {type(inputs).__name__}"
            )
        source_ids, output_ids = model.decode_one(inputs)
        target_in = [2] + output_ids[:-1]  # row t predicted output token t
        if tokens is None:
            tokens = (model.source_tokenizer, model.target_tokenizer)
        return attention_view(
            model.model,
            (source_ids, target_in),
            tokens,
            title=title or f"{inputs} → {model.detokenize_one(output_ids)}",
            max_tokens=max_tokens,
            max_weights=max_weights,
        )
    if isinstance(model, (TransformerBase, ImageCaptioner)):
        image_model = isinstance(model, ImageCaptioner)
        first_name = "image" if image_model else "source_ids"
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(
                f"With a {type(model).__name__}, `inputs` must be a pair "
                f"({first_name}, target_in_ids). Received: inputs of type "
                f"{type(inputs).__name__}"
            )
        source_labels, target_labels = _pair_of_labels(tokens, image_model)
        target_ids, target_keep = _one_sequence("target_in_ids", inputs[1])
        if image_model:
            image = _one_image("image", inputs[0], model.image_shape)
            source = image[np.newaxis]
            source_keep = None
            labels = None if source_labels is None else _labels(source_labels, None)
        else:
            source_ids, source_keep = _one_sequence("source_ids", inputs[0])
            source = source_ids[np.newaxis]
            labels = _labels(source_labels, source_ids[source_keep])
        _, weights = model(
            (source, target_ids[np.newaxis]), return_attention_scores=True
        )
        weights = _kept(weights, source_keep, target_keep)
        target_tokens = _labels(target_labels, target_ids[target_keep])
        if image_model:
            return AttentionView(
                weights,
                labels,
                target_tokens,
                image=image,
                patch_size=model.patch_size,
                **caps,
            )
        return AttentionView(weights, labels, target_tokens, **caps)
    if isinstance(model, VisionTransformer):
        image = _one_image("inputs", inputs, model.image_shape)
        _, weights = model.encode(image[np.newaxis], return_attention_scores=True)
        labels = None
        if model.class_token is not None:
            labels = ["[CLS]"] + _patch_labels(*_grid(model.image_shape, model))
        return AttentionView(
            {"encoder": weights},
            labels,
            image=image,
            patch_size=model.patch_size,
            **caps,
        )
    if isinstance(model, (CausalLM, EncoderModel)):
        if (
            isinstance(tokens, (tuple, list))
            and len(tokens) == 2
            and not all(isinstance(token, str) for token in tokens)
        ):
            raise TypeError(
                f"A {type(model).__name__} reads one sequence: `tokens` must be "
                "one tokenizer or one list of str. Received: a pair"
            )
        ids, keep = _one_sequence("inputs", inputs)
        labels = _labels(tokens, ids[keep])
        if isinstance(model, CausalLM):
            if prompt_length is not None and not keep.all():
                raise ValueError(
                    "With `prompt_length`, `inputs` must hold no padding (id 0). "
                    f"Received: {int((~keep).sum())} padding ids"
                )
            _, weights = model(ids[np.newaxis], return_attention_scores=True)
            return AttentionView(
                {"decoder": _kept(weights, keep, None)},
                target_tokens=labels,
                prompt_length=prompt_length,
                **caps,
            )
        _, _, weights = model.encode(ids[np.newaxis], None, False, True)
        return AttentionView({"encoder": _kept(weights, keep, None)}, labels, **caps)
    raise TypeError(
        "`model` must be a tf_transformer Transformer, ImageCaptioner, CausalLM, "
        "SequenceClassifier, MaskedLanguageModel, VisionTransformer or "
        f"Translator. Received: model of type {type(model).__name__}"
    )


# --------------------------------------------------------------- helpers


def _asset(name):
    return (
        resources.files("tf_transformer.inference")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def _check_count(name, value, minimum=1):
    from tf_transformer import validation

    return validation.check_int(name, value, minimum=minimum)


def _length(sequences, name):
    return len(sequences[name]) if sequences[name] is not None else None


def _check_tokens(name, tokens, max_tokens):
    if tokens is None:
        return None
    if isinstance(tokens, str) or not hasattr(tokens, "__len__"):
        raise TypeError(
            f"`{name}` must be a list of str. Received: {name} of type "
            f"{type(tokens).__name__}"
        )
    tokens = list(tokens)
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(
                f"`{name}` must be a list of str. Received: an item of type "
                f"{type(token).__name__} ({token!r})"
            )
    if not tokens:
        raise ValueError(f"`{name}` must not be empty. Received: {name}=[]")
    if len(tokens) > max_tokens:
        raise ValueError(
            f"`{name}` has {len(tokens)} tokens, more than max_tokens="
            f"{max_tokens}: the view would be slow and its file large. Show a "
            f"shorter input, or raise `max_tokens`. Received: {len(tokens)} {name}"
        )
    return tokens


def _stacked(name, weights):
    """(layers, heads, queries, keys) float32 of a list of per-layer tensors
    (with or without a batch of 1) or a stacked array."""
    if isinstance(weights, (list, tuple)):
        if not weights:
            raise ValueError(f"`{name}` must hold at least one layer. Received: []")
        layers = [_as_array(name, w) for w in weights]
        layers = [w[0] if w.ndim == 4 and w.shape[0] == 1 else w for w in layers]
        if any(w.ndim != 3 for w in layers) or len({w.shape for w in layers}) != 1:
            raise ValueError(
                f"`{name}` must be one (1, heads, queries, keys) or (heads, "
                "queries, keys) tensor per layer, all of one shape. Received: "
                f"shapes {[tuple(w.shape) for w in layers]}"
            )
        array = np.stack(layers)
    else:
        array = _as_array(name, weights)
        if array.ndim == 3:  # one layer
            array = array[np.newaxis]
    if array.ndim != 4:
        raise ValueError(
            f"`{name}` must be (layers, heads, queries, keys). Received: shape "
            f"{array.shape}"
        )
    if array.size and not (
        np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0 + 1e-4
    ):
        raise ValueError(
            f"`{name}` must hold attention weights, in [0, 1]. Received: values in "
            f"[{array.min()}, {array.max()}]"
        )
    return np.clip(array, 0.0, 1.0)


def _as_array(name, weights):
    try:
        array = np.asarray(weights, dtype="float32")
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be numbers (a tensor or an array). Received: "
            f"{type(weights).__name__}"
        ) from None
    if array.ndim == 5:  # (layers, batch, heads, queries, keys)
        if array.shape[1] != 1:
            raise ValueError(
                f"`{name}` must be one example. Received: a batch of "
                f"{array.shape[1]} (shape {array.shape})"
            )
        array = array[:, 0]
    return array


def _kinds_of(attention, sequences):
    if isinstance(attention, dict):
        kinds = {}
        for key, value in attention.items():
            kind = _MODEL_KEYS.get(key, key)
            if kind not in KINDS or kind in kinds:
                raise ValueError(
                    "`attention` keys must be among "
                    f"{sorted(set(_MODEL_KEYS) | set(KINDS))}, each kind once. "
                    f"Received: keys {list(attention)}"
                )
            kinds[kind] = _stacked(f"attention[{key!r}]", value)
    else:
        source, target = sequences["source"], sequences["target"]
        if (source is None) == (target is None):
            raise ValueError(
                "Bare `attention` weights are one stack of self-attention: give "
                "either `source_tokens` (an encoder) or `target_tokens` (a "
                "decoder), or a dict naming the kind. Received: "
                f"source_tokens={'None' if source is None else len(source)}, "
                f"target_tokens={'None' if target is None else len(target)}"
            )
        kinds = {"encoder" if source is not None else "decoder": attention}
        kinds = {k: _stacked("attention", v) for k, v in kinds.items()}
    if not kinds:
        raise ValueError("`attention` must hold at least one kind. Received: {}")
    for kind, weights in kinds.items():
        _, queries, keys = KINDS[kind]
        for side in (queries, keys):
            if sequences[side] is None:  # unlabelled: the positions' numbers
                size = weights.shape[2] if side == queries else weights.shape[3]
                sequences[side] = [str(i) for i in range(size)]
    return dict(sorted(kinds.items(), key=lambda item: list(KINDS).index(item[0])))


def _check_image(image, patch_size):
    from tf_transformer import validation

    array = np.asarray(image, dtype="float32")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(
            "`image` must be (height, width) or (height, width, 1 or 3 channels). "
            f"Received: image with shape {np.shape(image)}"
        )
    if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        raise ValueError(
            "`image` pixels must be in [0, 1]. Received: values in "
            f"[{array.min()}, {array.max()}]"
        )
    if patch_size is None:
        raise ValueError("`image` needs its `patch_size`. Received: patch_size=None")
    patch_size = validation.check_int("patch_size", patch_size)
    height, width = array.shape[:2]
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"`patch_size` must divide the image's height and width. Received: "
            f"patch_size={patch_size} for an image of {height}x{width}"
        )
    return array, patch_size, (height // patch_size, width // patch_size)


def _patch_labels(rows, columns):
    return [f"r{r + 1}c{c + 1}" for r in range(rows) for c in range(columns)]


def _grid(image_shape, model):
    return image_shape[0] // model.patch_size, image_shape[1] // model.patch_size


def _one_sequence(name, ids):
    """Token ids of one example as a 1-D int array, and which are not
    padding."""
    try:
        array = np.asarray(ids)
    except (TypeError, ValueError):
        array = None
    if array is None or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"`{name}` must be integer token ids. Received: {name} of type "
            f"{type(ids).__name__}"
            + (f" with dtype {array.dtype}" if array is not None else "")
        )
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be one example: (length,) or (1, length). Received: "
            f"{name} with shape {array.shape}"
        )
    keep = array != 0
    if not keep.any():
        raise ValueError(
            f"`{name}` must hold a token that is not padding (id 0). Received: "
            f"{name}={array.tolist()}"
        )
    return array.astype("int32"), keep


def _one_image(name, image, image_shape):
    array = np.asarray(image, dtype="float32")
    if array.ndim == len(image_shape) + 1 and array.shape[0] == 1:
        array = array[0]
    if array.shape != tuple(image_shape):
        raise ValueError(
            f"`{name}` must be one image of shape {tuple(image_shape)} (or with a "
            f"batch of 1). Received: {name} with shape {np.shape(image)}"
        )
    return array


def _kept(weights, key_keep, query_keep):
    """Weights without the padding positions: per layer, keys (and queries
    of self-attention) of the source where `key_keep`, target positions
    where `query_keep`. Works on a list or the models' dict."""

    def cut(layer, rows, columns):
        layer = np.asarray(layer)[0]  # (heads, queries, keys)
        if rows is not None:
            layer = layer[:, rows]
        if columns is not None:
            layer = layer[:, :, columns]
        return layer

    if isinstance(weights, dict):
        source, target = key_keep, query_keep
        cuts = {
            "encoder": (source, source),
            "decoder_self_attention": (target, target),
            "decoder_cross_attention": (target, source),
        }
        return {
            key: [cut(layer, *cuts[key]) for layer in layers]
            for key, layers in weights.items()
        }
    return [cut(layer, key_keep, key_keep) for layer in weights]


def _pair_of_labels(tokens, image_model):
    if tokens is None:
        return None, None
    if isinstance(tokens, (tuple, list)) and len(tokens) == 2:
        first, second = tokens
        if not (isinstance(first, str) and isinstance(second, str)):
            return first, second
    if image_model:  # the patches label themselves
        return None, tokens
    raise ValueError(
        "For a pair model, `tokens` must be a pair (source, target), each a "
        "tokenizer or a list of str. Received: tokens of type "
        f"{type(tokens).__name__}"
    )


def _labels(labels, ids):
    """A label per id: the list given, the tokenizer's token, or the id."""
    if labels is None:
        return None if ids is None else [str(int(i)) for i in ids]
    if hasattr(labels, "id_to_token"):
        return [labels.id_to_token(int(i)) for i in ids]
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise TypeError(
            "`tokens` must be a tokenizer (with `id_to_token`) or a list of str. "
            f"Received: {type(labels).__name__}"
        )
    labels = list(labels)
    if ids is not None and len(labels) != len(ids):
        raise ValueError(
            f"`tokens` must give one label per token that is not padding: "
            f"{len(ids)}. Received: {len(labels)} labels"
        )
    return labels
