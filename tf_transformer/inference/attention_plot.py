"""Attention heads as a grid of heatmaps, tokens on the axes."""

import math

import numpy as np


def plot_attention(weights, source_tokens, target_tokens, path=None, title=None):
    """Plot every head's attention as a heatmap.

    Args:
        weights: (heads, target_len, source_len) weights of one layer, or
            (layers, heads, target_len, source_len), of which the last layer
            is drawn (as `Translator.translate_with_attention` returns).
        source_tokens: labels of the columns (keys).
        target_tokens: labels of the rows (queries).
        path: if given, the figure is saved there (PNG by extension).
        title: optional figure title.

    Returns:
        The matplotlib `Figure`.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype="float32")
    if weights.ndim == 4:
        weights = weights[-1]
    if weights.ndim != 3:
        raise ValueError(
            "`weights` must be (heads, target_len, source_len) or "
            f"(layers, heads, target_len, source_len). Received: weights with shape "
            f"{weights.shape}"
        )
    heads, rows, columns = weights.shape
    if (len(target_tokens), len(source_tokens)) != (rows, columns):
        raise ValueError(
            f"`source_tokens` ({len(source_tokens)}) and `target_tokens` "
            f"({len(target_tokens)}) must label the weights' {columns} columns and "
            f"{rows} rows. Received: weights with shape {weights.shape}"
        )
    grid = math.ceil(math.sqrt(heads))
    fig, axes = plt.subplots(
        math.ceil(heads / grid),
        grid,
        figsize=(3.2 * grid + 1, 0.28 * rows * math.ceil(heads / grid) + 2.5),
        squeeze=False,
    )
    for head, ax in enumerate(axes.flat):
        if head >= heads:
            ax.axis("off")
            continue
        ax.imshow(weights[head], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(f"head {head + 1}", fontsize=9)
        ax.set_xticks(range(columns), source_tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(rows), target_tokens, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
