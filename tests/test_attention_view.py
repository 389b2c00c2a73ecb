"""The attention view: every layer's and head's weights of each library model,
packed into a self-contained page, and clear errors for bad input."""

import re

import keras
import numpy as np
import pytest
from attention_pages import (
    external_references,
    small_captioner,
    small_model,
    views_in,
    weights_of,
)

import tf_transformer as tt
from tf_transformer.inference import AttentionView, attention_view

ROUNDING = 0.5 / 255 + 1e-6  # weights are stored as multiples of 1/255


class Labels:
    """A stand-in tokenizer: `id_to_token` is all the view asks of one."""

    def id_to_token(self, token_id):
        return f"w{token_id}"


@pytest.fixture(scope="module")
def transformer():
    return small_model(tt.Transformer, input_vocab_size=40, target_vocab_size=50)


SOURCE = np.array([[2, 11, 12, 13, 3, 0, 0]], "int32")
TARGET = np.array([[2, 21, 22, 0]], "int32")


def page_of(view):
    (data,) = views_in(view.to_html())
    return data


def test_every_kind_layer_and_head_of_a_transformer_is_in_the_page(transformer):
    view = attention_view(transformer, (SOURCE, TARGET), tokens=(Labels(), Labels()))
    _, expected = transformer((SOURCE, TARGET), return_attention_scores=True)
    data = page_of(view)
    assert data["sequences"]["source"] == ["w2", "w11", "w12", "w13", "w3"]
    assert data["sequences"]["target"] == ["w2", "w21", "w22"]
    page = weights_of(data)
    cuts = {
        "encoder": ("encoder", slice(0, 5), slice(0, 5)),
        "decoder": ("decoder_self_attention", slice(0, 3), slice(0, 3)),
        "cross": ("decoder_cross_attention", slice(0, 3), slice(0, 5)),
    }
    assert list(page) == ["encoder", "decoder", "cross"]
    for kind, (key, rows, columns) in cuts.items():
        model = np.stack([w[0].numpy() for w in expected[key]])[:, :, rows, columns]
        assert page[kind].shape == model.shape == (2, 4) + model.shape[2:]
        np.testing.assert_allclose(page[kind], model, atol=ROUNDING)


def test_a_translator_shows_its_own_translation(transformer):
    class Tokenizer(Labels):
        def tokenize(self, strings):
            import tensorflow as tf

            return tf.ragged.constant([[2, 11, 12, 3]] * len(strings))

        def detokenize(self, ids):
            import tensorflow as tf

            return tf.constant(["fake"] * int(ids.shape[0]))

    translator = tt.Translator(transformer, Tokenizer(), Tokenizer(), margin=4)
    source, output = translator.decode_one("a sentence")
    data = page_of(attention_view(translator, "a sentence"))
    assert data["sequences"]["source"] == [f"w{i}" for i in source]
    assert len(data["sequences"]["target"]) == len(output)
    assert data["title"] == "a sentence → fake"


def test_a_causal_lm_marks_the_prompt_and_keeps_the_future_hidden():
    model = small_model(tt.CausalLM, vocabulary_size=30, max_length=16)
    ids = np.array([5, 6, 7, 8, 9, 10], "int32")
    view = attention_view(model, ids, tokens=[f"t{i}" for i in ids], prompt_length=3)
    data = page_of(view)
    assert data["prompt_length"] == 3 and list(weights_of(data)) == ["decoder"]
    weights = weights_of(data)["decoder"]
    _, expected = model(ids[np.newaxis], return_attention_scores=True)
    np.testing.assert_allclose(
        weights, np.stack([w[0] for w in expected]), atol=ROUNDING
    )
    assert np.all(np.triu(weights, k=1) == 0)  # no position sees its future


@pytest.mark.parametrize("model_name", ["classifier", "masked_lm"])
def test_encoder_models_show_their_encoder(model_name):
    keras.utils.set_random_seed(0)
    encoder = tt.Encoder(
        num_layers=3, d_model=16, num_heads=2, dff=32, vocab_size=30, dropout=0.0
    )
    if model_name == "classifier":
        model = tt.SequenceClassifier(encoder, num_classes=2)
    else:
        model = tt.MaskedLanguageModel(encoder)
    ids = np.array([[2, 7, 8, 9, 0]], "int32")
    data = page_of(attention_view(model, ids))
    assert data["sequences"]["source"] == ["2", "7", "8", "9"]  # no padding
    _, _, expected = model.encode(ids, None, False, True)
    np.testing.assert_allclose(
        weights_of(data)["encoder"],
        np.stack([w[0, :, :4, :4] for w in expected]),
        atol=ROUNDING,
    )


def test_an_image_captioner_shows_the_picture_and_its_patches():
    model = small_captioner(num_layers=1, num_heads=2)
    image = np.random.default_rng(0).random((8, 24, 1)).astype("float32")
    data = page_of(attention_view(model, (image, [2, 5, 6]), tokens=["a", "b", "c"]))
    assert data["sequences"]["source"][:2] == ["r1c1", "r1c2"]
    assert len(data["sequences"]["source"]) == 12
    assert data["image"]["grid"] == [2, 6] and data["image"]["offset"] == 0
    assert weights_of(data)["cross"].shape == (1, 2, 3, 12)


def test_a_vision_transformer_labels_its_class_token():
    keras.utils.set_random_seed(0)
    model = tt.VisionTransformer((8, 8, 1), 4, 1, 8, 2, 8, num_classes=3)
    data = page_of(attention_view(model, np.zeros((1, 8, 8, 1), "float32")))
    assert data["sequences"]["source"][0] == "[CLS]"
    assert data["image"]["offset"] == 1
    assert weights_of(data)["encoder"].shape == (1, 2, 5, 5)


def test_the_page_and_the_notebook_show_one_self_contained_html(transformer, tmp_path):
    view = attention_view(transformer, (SOURCE, TARGET))
    fragment = view._repr_html_()  # what Jupyter stores as the text/html output
    assert "<script>" in fragment and "<style>" in fragment
    assert external_references(fragment) == []
    page = open(view.save(tmp_path / "view.html"), encoding="utf-8").read()
    assert external_references(page) == []
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # one renderer: the saved page is the notebook's fragment in a page
    same_id = lambda html: re.sub(r"tf-attention-[0-9a-f]{12}", "ID", html)  # noqa: E731
    assert same_id(fragment) in same_id(page)


def test_a_token_cannot_end_the_data_script():
    weights = np.full((1, 1, 2, 2), 0.5, "float32")
    view = AttentionView(weights, source_tokens=["</script><b>", "x"])
    html = view.to_html()
    assert "</script><b>" not in html
    assert page_of(view)["sequences"]["source"][0] == "</script><b>"


def test_too_many_tokens_is_a_clear_error_naming_the_cap(transformer):
    ids = np.full((1, 40), 7, "int32")
    with pytest.raises(ValueError, match=r"max_tokens=30.*Received: 40 source_tokens"):
        attention_view(transformer, (ids, TARGET), max_tokens=30)
    with pytest.raises(ValueError, match=r"max_weights=100\b"):
        attention_view(transformer, (SOURCE, TARGET), max_weights=100)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: attention_view(m, SOURCE), ValueError, "must be a pair"),
        (
            lambda m: attention_view(m, (np.ones((2, 5), "int32"), TARGET)),
            ValueError,
            r"one example.*shape \(2, 5\)",
        ),
        (
            lambda m: attention_view(m, (SOURCE.astype("float32"), TARGET)),
            TypeError,
            "source_ids.*float32",
        ),
        (
            lambda m: attention_view(m, (SOURCE, TARGET), tokens=(["a"], Labels())),
            ValueError,
            "one label per token.*5.*Received: 1",
        ),
        (
            lambda m: attention_view("a model", [1]),
            TypeError,
            "Received: model of type str",
        ),
        (
            lambda m: attention_view(m, (SOURCE, TARGET), prompt_length=2),
            ValueError,
            "prompt_length=2 with a Transformer",
        ),
        (
            lambda m: AttentionView(
                np.full((1, 1, 2, 2), 2.0), source_tokens=["a", "b"]
            ),
            ValueError,
            r"in \[0, 1\].*2\.0",
        ),
        (
            lambda m: AttentionView(np.full((1, 1, 2, 2), 0.5), source_tokens=["a"]),
            ValueError,
            r"\(layers, heads, 1, 1\).*\(1, 1, 2, 2\)",
        ),
        (
            lambda m: AttentionView({"sideways": [np.zeros((1, 2, 2))]}, ["a", "b"]),
            ValueError,
            "keys must be among.*sideways",
        ),
        (
            lambda m: AttentionView(np.zeros((1, 1, 2, 2)), ["a", "b"], ["c", "d"]),
            ValueError,
            "give either `source_tokens`",
        ),
        (
            lambda m: AttentionView(
                np.zeros((1, 1, 2, 2)), ["a", "b"], image=np.zeros((8, 8)), patch_size=3
            ),
            ValueError,
            "patch_size=3 for an image of 8x8",
        ),
        (
            lambda m: AttentionView(np.zeros((1, 1, 2, 2)), ["a", "b"], max_tokens=0),
            ValueError,
            "max_tokens=0",
        ),
        (
            lambda m: AttentionView(np.zeros((1, 1, 1, 1)), "ab"),
            TypeError,
            "list of str",
        ),
    ],
    ids=[
        "not-a-pair",
        "a-batch",
        "float-ids",
        "labels-miscounted",
        "not-a-model",
        "prompt-length-elsewhere",
        "weights-above-one",
        "shape-vs-tokens",
        "unknown-kind",
        "bare-weights-two-sequences",
        "patch-size",
        "max-tokens",
        "tokens-a-str",
    ],
)
def test_bad_input_is_named(transformer, call, error, message):
    with pytest.raises(error, match=message):
        call(transformer)


def test_save_refuses_what_is_not_a_path(transformer):
    view = AttentionView(np.zeros((1, 1, 1, 1)), ["a"])
    with pytest.raises(TypeError, match="path of type int"):
        view.save(3)


@pytest.mark.parametrize(
    "lesson",
    [
        "04_multi_head_attention",
        "09_inference",
        "11_language_models",
        "13_image_captioning",
    ],
)
def test_the_lessons_keep_the_view_as_self_contained_html(lesson):
    import json
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "solutions" / f"{lesson}.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    pages = [
        "".join(output["data"]["text/html"])
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if "tf-attention-data" in "".join(output.get("data", {}).get("text/html", ""))
    ]
    assert len(pages) == 1, "the view is stored as the cell's text/html output"
    (view,) = views_in(pages[0])
    assert view["kinds"] and external_references(pages[0]) == []
    # the static figure stays beside it, for nbval, PDF and GitHub's renderer
    assert any(
        "image/png" in output.get("data", {})
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )
