"""Attention weights as heatmaps: queries down the rows, keys along the columns.

- `plot_attention_head` draws one (queries, keys) matrix on one axes, with
  both axes titled (which one is the query, which one the key) and a colorbar.
- `plot_attention` draws every head of one layer as a grid of such heatmaps
  sharing one colorbar.
"""

import math

import numpy as np

KEY_LABEL = "key: source token (attended to)"
QUERY_LABEL = "query: target token (attending)"


def _tokens(tokens, count, argument):
    if tokens is None:
        return [str(index) for index in range(count)]
    tokens = [str(token) for token in tokens]
    if len(tokens) != count:
        raise ValueError(
            f"`{argument}` must label the weights' {count} "
            f"{'columns' if argument == 'key_tokens' else 'rows'}. Received: "
            f"{len(tokens)} tokens"
        )
    return tokens


def plot_attention_head(
    weights,
    key_tokens=None,
    query_tokens=None,
    *,
    ax=None,
    title=None,
    key_label=KEY_LABEL,
    query_label=QUERY_LABEL,
    colorbar=True,
    cmap="viridis",
    fontsize=7,
):
    """Draw one attention matrix as a heatmap with titled axes and a colorbar.

    Row i is query i, column j is key j; cell (i, j) is how much query i
    takes from key j (each row sums to 1). The colour scale is fixed to
    [0, 1] so two plots side by side compare.

    Args:
        weights: (query_len, key_len) attention weights.
        key_tokens: labels of the columns. Defaults to the positions 0, 1, ….
        query_tokens: labels of the rows. Defaults to the positions 0, 1, ….
        ax: the matplotlib axes to draw on; a new figure if None.
        title: optional axes title.
        key_label: the x-axis title. Defaults to a source token as the key.
        query_label: the y-axis title. Defaults to a target token as the query.
        colorbar: add a colorbar beside the axes. Defaults to True.
        cmap: the colormap. Defaults to "viridis".
        fontsize: size of the tick labels. Defaults to 7.

    Returns:
        The matplotlib `AxesImage` (pass it to `Figure.colorbar` to share one).
    """
    weights = np.asarray(weights, dtype="float32")
    if weights.ndim != 2:
        raise ValueError(
            "`weights` must be (query_len, key_len). Received: weights with shape "
            f"{weights.shape}"
        )
    rows, columns = weights.shape
    key_tokens = _tokens(key_tokens, columns, "key_tokens")
    query_tokens = _tokens(query_tokens, rows, "query_tokens")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(
            figsize=(0.3 * columns + 2.8, 0.3 * rows + 1.8), layout="constrained"
        )
    image = ax.imshow(weights, vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto")
    ax.set_xticks(range(columns), key_tokens, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(rows), query_tokens, fontsize=fontsize)
    if key_label:
        ax.set_xlabel(key_label, fontsize=fontsize + 1)
    if query_label:
        ax.set_ylabel(query_label, fontsize=fontsize + 1)
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.03)
        bar.set_label("attention weight", fontsize=fontsize + 1)
        bar.ax.tick_params(labelsize=fontsize)
    return image


def plot_attention(
    weights,
    source_tokens,
    target_tokens,
    path=None,
    title=None,
    *,
    key_label=KEY_LABEL,
    query_label=QUERY_LABEL,
):
    """Plot every head's attention as a heatmap, with one shared colorbar.

    Args:
        weights: (heads, target_len, source_len) weights of one layer, or
            (layers, heads, target_len, source_len), of which the last layer
            is drawn (as `Translator.translate_with_attention` returns).
        source_tokens: labels of the columns (keys).
        target_tokens: labels of the rows (queries).
        path: if given, the figure is saved there (PNG by extension).
        title: optional figure title.
        key_label: the x-axis title of the bottom row. Defaults to a source
            token as the key.
        query_label: the y-axis title of the left column. Defaults to a
            target token as the query.

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
    grid_rows = math.ceil(heads / grid)
    fig, axes = plt.subplots(
        grid_rows,
        grid,
        figsize=(3.2 * grid + 1.6, 0.28 * rows * grid_rows + 3.0),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for head, ax in enumerate(axes.flat):
        if head >= heads:
            ax.axis("off")
            continue
        row, column = divmod(head, grid)
        last_in_column = head + grid >= heads
        image = plot_attention_head(
            weights[head],
            source_tokens,
            target_tokens,
            ax=ax,
            title=f"head {head + 1}",
            key_label=key_label if last_in_column else None,
            query_label=query_label if column == 0 else None,
            colorbar=False,
        )
    bar = fig.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    bar.set_label("attention weight", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
