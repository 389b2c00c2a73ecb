"""The lessons' figures: attention heatmaps say which axis is which and carry a
colorbar; the drawn diagrams keep every label inside its box and draw the
attention inputs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tf_transformer.course.build import diagrams  # noqa: E402
from tf_transformer.inference import plot_attention, plot_attention_head  # noqa: E402

ENCODER = [("multi-head self-attention", "attention"), ("feed-forward", "ffn")]
DECODER = [
    ("masked self-attention", "attention"),
    ("cross-attention", "attention"),
    ("feed-forward", "ffn"),
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _weights(heads, rows, columns, seed=0):
    scores = np.random.default_rng(seed).normal(size=(heads, rows, columns))
    weights = np.exp(scores)
    return weights / weights.sum(-1, keepdims=True)


def _colorbars(figure):
    return [ax for ax in figure.axes if ax.get_ylabel() == "attention weight"]


def test_every_head_grid_has_one_colorbar_and_titled_axes():
    figure = plot_attention(
        _weights(4, 3, 5), list("abcde"), ["x", "y", "z"], title="cross-attention"
    )
    heads = [ax for ax in figure.axes if ax.get_title().startswith("head")]
    assert len(heads) == 4
    assert len(_colorbars(figure)) == 1
    assert all("key" in ax.get_xlabel() for ax in heads[2:])  # the bottom row
    assert all("query" in ax.get_ylabel() for ax in heads[::2])  # the left column


def test_every_head_grid_keeps_its_old_call(tmp_path):
    path = tmp_path / "attention.png"
    plot_attention(_weights(2, 2, 3), ["a", "b", "c"], ["x", "y"], path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_one_head_is_drawn_with_titled_axes_and_a_colorbar():
    figure, ax = plt.subplots()
    image = plot_attention_head(
        _weights(1, 3, 4)[0],
        ["a", "b", "c", "d"],
        ["x", "y", "z"],
        ax=ax,
        key_label="key position",
        query_label="query position",
    )
    assert image.get_clim() == (0.0, 1.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("key position", "query position")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    assert len(_colorbars(figure)) == 1


def test_one_head_without_tokens_is_labelled_by_position():
    figure = plt.figure()
    plot_attention_head(_weights(1, 2, 3)[0], colorbar=False, ax=figure.subplots())
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1"]
    assert not _colorbars(figure)


def test_bad_attention_plots_name_the_argument():
    with pytest.raises(ValueError, match="weights"):
        plot_attention_head(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="key_tokens"):
        plot_attention_head(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="query_tokens"):
        plot_attention_head(np.zeros((2, 3)), None, ["x"])


def _texts(ax, text):
    return [t for t in ax.texts if t.get_text() == text]


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_labels_stay_in_their_boxes(norm_first):
    ax = diagrams.draw_layer(ENCODER, title="encoder", norm_first=norm_first)
    assert diagrams.labels_outside_boxes(ax) == []


def test_decoder_layer_labels_stay_in_their_boxes():
    ax = diagrams.draw_layer(
        DECODER, title="decoder", memory=(1, "encoder output\n(keys, values)")
    )
    assert diagrams.labels_outside_boxes(ax) == []


def test_layers_side_by_side_keep_their_labels_in_their_boxes():
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 6.2))
    diagrams.draw_layer(ENCODER, title="post-LN", ax=left)
    diagrams.draw_layer(ENCODER, title="pre-LN", norm_first=True, ax=right)
    assert diagrams.labels_outside_boxes(left) == []
    assert diagrams.labels_outside_boxes(right) == []


def test_whole_model_labels_stay_in_their_boxes():
    assert diagrams.labels_outside_boxes(diagrams.draw_transformer()) == []


def test_a_label_too_long_for_its_box_is_shrunk_to_fit():
    _, ax = plt.subplots(figsize=(3, 2))
    diagrams.box(ax, 0, 0, "a label too long for this box", "io", 1.2)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    assert diagrams.labels_outside_boxes(ax) != []
    diagrams.fit_labels(ax)
    assert diagrams.labels_outside_boxes(ax) == []


def test_every_self_attention_gets_q_k_v_from_below():
    ax = diagrams.draw_layer(ENCODER, title="encoder")
    for name in "QKV":
        assert len(_texts(ax, name)) == 1
    (box_label,) = [t for t in ax.texts if t.get_text() == ENCODER[0][0]]
    below = box_label.get_position()[1]
    assert all(_texts(ax, name)[0].get_position()[1] < below for name in "QKV")


def test_cross_attention_takes_k_v_from_the_memory_and_q_from_below():
    ax = diagrams.draw_layer(DECODER, title="decoder", memory=(1, "memory"))
    for name in "QKV":
        assert len(_texts(ax, name)) == 2  # masked self-attention, cross-attention
    (cross,) = [t for t in ax.texts if t.get_text() == "cross-attention"]
    cross_y = cross.get_position()[1]

    def nearest_below(name):
        below = [t for t in _texts(ax, name) if t.get_position()[1] < cross_y]
        return max(below, key=lambda t: t.get_position()[1]).get_position()

    (memory,) = _texts(ax, "memory")
    # K and V sit between the memory's label (left) and the query (right).
    assert memory.get_position()[0] < nearest_below("V")[0] < nearest_below("Q")[0]
    assert nearest_below("K")[0] < nearest_below("Q")[0] and nearest_below("Q")[0] > 0


def test_draw_layer_rejects_a_bad_memory():
    with pytest.raises(ValueError, match="memory"):
        diagrams.draw_layer(ENCODER, title="x", memory=(5, "memory"))
