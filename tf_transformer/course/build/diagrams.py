"""Block diagrams of the Transformer's parts, drawn with matplotlib.

The lessons draw their architecture pictures with these functions instead of
ASCII art or image files, so every picture is code that runs with the lesson:

- `draw_layer`: one encoder or decoder layer: its sublayers, the residual
  connections around them, LayerNorm after (post-LN, the paper) or before
  (pre-LN) each sublayer, and an optional input from the side (the encoder
  output that cross-attention reads).
- `draw_transformer`: the whole encoder–decoder model, from token ids to
  logits.

Colours follow one key: embeddings pink, attention orange, normalization
yellow, feed-forward blue, inputs grey, outputs green.
"""

from __future__ import annotations

import weakref

COLORS = {
    "embed": "#f6d5e5",
    "attention": "#fde2b8",
    "norm": "#fff6c2",
    "ffn": "#cfe6f7",
    "io": "#eeeeee",
    "out": "#d9f2d0",
}
_KINDS = tuple(COLORS)


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


# Each axes' boxes and the labels written inside them, so that `fit_labels`
# can shrink a label that would spill over its box.
_BOX_LABELS = weakref.WeakKeyDictionary()


def box(ax, x, y, text, kind, width=3.0, height=0.55, fontsize=9):
    """A rounded box centred at (x, y), coloured by `kind` (a key of COLORS).

    Returns the label's `Text`; `fit_labels(ax)` keeps it inside the box.
    """
    from matplotlib.patches import FancyBboxPatch

    if kind not in COLORS:
        raise ValueError(
            f"`kind` must be one of {', '.join(_KINDS)}. Received: kind={kind!r}"
        )
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor=COLORS[kind],
        edgecolor="#555555",
    )
    ax.add_patch(patch)
    label = ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    _BOX_LABELS.setdefault(ax, []).append((label, patch))
    return label


def _renderer(figure):
    figure.draw_without_rendering()  # lays out the axes (aspect, limits)
    if hasattr(figure.canvas, "get_renderer"):
        return figure.canvas.get_renderer()
    return figure._get_renderer()


def labels_outside_boxes(ax, margin=2.0):
    """The box labels of `ax` that reach outside their box (empty: all fit).

    Measured by the figure's renderer, in display units, with `margin`
    pixels kept free on every side.
    """
    renderer = _renderer(ax.figure)
    spilling = []
    for label, patch in _BOX_LABELS.get(ax, []):
        inner = label.get_window_extent(renderer)
        outer = patch.get_window_extent(renderer)
        if (
            inner.x0 < outer.x0 + margin
            or inner.x1 > outer.x1 - margin
            or inner.y0 < outer.y0 + margin / 2
            or inner.y1 > outer.y1 - margin / 2
        ):
            spilling.append(label)
    return spilling


def fit_labels(ax, smallest=5.0):
    """Shrink each box label of `ax` until it fits inside its box.

    Call it after the axes has its final size (a diagram function calls it
    last; call it again after changing the figure's layout).
    """
    for _ in range(20):
        spilling = labels_outside_boxes(ax)
        if not spilling:
            return
        for label in spilling:
            label.set_fontsize(max(smallest, label.get_fontsize() * 0.92))
        if all(label.get_fontsize() <= smallest for label in spilling):
            return


def arrow(ax, start, end, **kwargs):
    """An arrow from `start` to `end` (data coordinates)."""
    from matplotlib.patches import FancyArrowPatch

    style = {"arrowstyle": "-|>", "mutation_scale": 12, "color": "#444444"}
    style.update(kwargs)
    ax.add_patch(FancyArrowPatch(start, end, **style))


def _add_node(ax, x, y, radius=0.17):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), radius, facecolor="white", edgecolor="#444444"))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def _check_sublayers(sublayers):
    if not sublayers:
        raise ValueError("`sublayers` must name at least one sublayer. Received: []")
    for item in sublayers:
        if (
            not isinstance(item, tuple | list)
            or len(item) != 2
            or item[1] not in COLORS
        ):
            raise ValueError(
                "`sublayers` must be (label, kind) pairs with kind in "
                f"{', '.join(_KINDS)}. Received: {item!r}"
            )


QKV_COLOR = "#b35a00"
MEMORY_COLOR = "#2a7ab0"
_INCHES_PER_UNIT = 0.82  # drawing scale of the diagrams that make their own figure


def _attention_inputs(ax, x, start, bottom, memory_label=None, left=None):
    """Arrows V, K, Q into an attention box whose bottom edge is at `bottom`.

    Self-attention: all three leave the main path at `start` (below).
    Cross-attention (`memory_label` given): Q from below, K and V from the
    memory, which enters from the left at x = `left`.
    """

    def tagged(name, tail, head, side):
        arrow(ax, tail, head, color=QKV_COLOR, lw=1.3)
        ax.text(
            head[0] + 0.09 * side,
            bottom - 0.2,
            name,
            ha="left" if side > 0 else "right",
            va="center",
            fontsize=9,
            fontweight="bold",
            color=QKV_COLOR,
        )

    split = (x, bottom - 0.45)
    ax.plot([x, x], [start, split[1]], color="#444444", lw=1.2)
    if memory_label is None:
        tagged("V", split, (x - 0.95, bottom), -1)
        tagged("K", split, (x, bottom), 1)
        tagged("Q", split, (x + 0.95, bottom), 1)
        return
    tagged("Q", split, (x + 0.75, bottom), 1)
    level = bottom - 0.3
    ax.plot([left, x - 0.4], [level, level], color=MEMORY_COLOR, lw=1.5)
    for name, column, side in (("V", x - 1.05, -1), ("K", x - 0.4, 1)):
        arrow(ax, (column, level), (column, bottom), color=QKV_COLOR, lw=1.3)
        ax.text(
            column + 0.09 * side,
            bottom - 0.13,
            name,
            ha="left" if side > 0 else "right",
            va="center",
            fontsize=9,
            fontweight="bold",
            color=QKV_COLOR,
        )
    ax.text(
        left - 0.05,
        level,
        memory_label,
        ha="right",
        va="center",
        fontsize=9,
        color=MEMORY_COLOR,
    )


def draw_layer(sublayers, *, title, norm_first=False, memory=None, ax=None):
    """Draw one layer: each sublayer inside a residual connection.

    Post-LN (the paper): `x ← LayerNorm(x + Dropout(Sublayer(x)))`.
    Pre-LN: `x ← x + Dropout(Sublayer(LayerNorm(x)))`. The data flows bottom
    to top; the residual path goes round each sublayer on the right. Every
    attention sublayer gets its three inputs drawn as arrows V, K, Q: from the
    path below (self-attention), or K and V from the memory and Q from below
    (cross-attention).

    Args:
        sublayers: (label, kind) pairs from bottom to top, e.g.
            `[("multi-head self-attention", "attention"), ("feed-forward", "ffn")]`.
        title: the title above the drawing.
        norm_first: draw the pre-LN arrangement. Defaults to False (post-LN).
        memory: optional `(index, label)`: an input that enters sublayer
            `index` from the left (the encoder output of cross-attention): it
            gives that sublayer's keys and values.
        ax: the matplotlib axes to draw on; a new figure if None.

    Returns:
        The axes.
    """
    _check_sublayers(sublayers)
    if memory is not None and not (
        isinstance(memory, tuple | list)
        and len(memory) == 2
        and isinstance(memory[0], int)
        and 0 <= memory[0] < len(sublayers)
    ):
        raise ValueError(
            "`memory` must be (index of a sublayer, label). "
            f"Received: memory={memory!r} for {len(sublayers)} sublayers"
        )
    own_figure = ax is None
    if own_figure:
        _, ax = _pyplot().subplots()
    x, right = 0.0, 2.1
    memory_left = x - 2.6
    y = 0.0
    box(ax, x, y, "input x  (batch, length, d_model)", "io")
    top = y + 0.28
    for index, (label, kind) in enumerate(sublayers):
        branch = top + 0.25  # where the residual path leaves the main path
        steps = (
            [("LayerNorm", "norm"), (label, kind)] if norm_first else [(label, kind)]
        )
        below = top  # where the arrow into the next box starts
        for step_kind_index, (text, step_kind) in enumerate(steps):
            start = branch if step_kind_index == 0 else below
            if step_kind == "attention":
                y = start + 0.7 + 0.28
                is_cross = memory is not None and memory[0] == index
                if step_kind_index == 0:
                    ax.plot([x, x], [below, branch], color="#444444", lw=1.2)
                _attention_inputs(
                    ax,
                    x,
                    start,
                    y - 0.28,
                    memory_label=memory[1] if is_cross else None,
                    left=memory_left,
                )
            else:
                y = start + 0.3 + 0.28
                arrow(ax, (x, below), (x, y - 0.28))
            box(ax, x, y, text, step_kind)
            below = y + 0.28
        y += 0.75
        ax.text(x + 0.12, y - 0.45, "dropout", fontsize=7, color="#777777")
        arrow(ax, (x, y - 0.75 + 0.28), (x, y - 0.17))
        _add_node(ax, x, y)
        # The residual path: right, up, and back into the sum.
        ax.plot([x, right, right], [branch, branch, y], color=MEMORY_COLOR, lw=1.5)
        arrow(ax, (right, y), (x + 0.17, y), color=MEMORY_COLOR)
        ax.text(
            right + 0.08,
            (branch + y) / 2,
            "residual",
            rotation=90,
            va="center",
            fontsize=8,
            color=MEMORY_COLOR,
        )
        top = y + 0.17
        if not norm_first:
            y += 0.8
            arrow(ax, (x, top), (x, y - 0.28))
            box(ax, x, y, "LayerNorm", "norm")
            top = y + 0.28
    if norm_first:
        y += 0.8
        arrow(ax, (x, top), (x, y - 0.28))
        box(ax, x, y, "final LayerNorm (once, after the stack)", "norm", width=3.4)
        top = y + 0.28
    y += 0.8
    arrow(ax, (x, top), (x, y - 0.28))
    box(ax, x, y, "output  (batch, length, d_model)", "out")
    ax.set_title(title, fontsize=11)
    left = -2.0 - (2.7 if memory is not None else 0.0)
    ax.set_xlim(left, 2.7)
    ax.set_ylim(-0.5, y + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    if own_figure:
        ax.figure.set_size_inches(
            (2.7 - left) * _INCHES_PER_UNIT, (y + 1.0) * _INCHES_PER_UNIT + 0.4
        )
        ax.set_position([0.0, 0.0, 1.0, 1.0 - 0.4 / ax.figure.get_figheight()])
    fit_labels(ax)
    return ax


def draw_transformer(ax=None, num_layers="N"):
    """Draw the encoder–decoder model from token ids to logits.

    Args:
        ax: the matplotlib axes to draw on; a new figure if None.
        num_layers: the label of the stacks' depth. Defaults to "N".

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(10, 4.6))
    encoder = [
        ("source ids  (batch, source_len)", "io"),
        ("PositionalEmbedding", "embed"),
        (f"Encoder: {num_layers} encoder layers", "attention"),
    ]
    decoder = [
        ("target ids, shifted right  (batch, target_len)", "io"),
        ("PositionalEmbedding", "embed"),
        (f"Decoder: {num_layers} decoder layers", "attention"),
        ("Dense(target vocabulary size)", "out"),
        ("logits  (batch, target_len, vocabulary)", "out"),
    ]
    positions = {}
    for column, x in ((encoder, 0.0), (decoder, 5.0)):
        for row, (text, kind) in enumerate(column):
            y = row * 1.0
            box(ax, x, y, text, kind, width=4.0, fontsize=8)
            positions[(x, row)] = y
            if row:
                arrow(ax, (x, y - 1.0 + 0.28), (x, y - 0.28))
    # The encoder output is the memory of every decoder layer's cross-attention.
    arrow(ax, (2.0, 2.0), (3.0, 2.0), color="#2a7ab0")
    ax.text(
        2.5,
        2.2,
        "encoder output\n(keys, values)",
        ha="center",
        va="bottom",
        fontsize=8,
        color="#2a7ab0",
    )
    ax.set_xlim(-2.2, 7.2)
    ax.set_ylim(-0.6, 4.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("The Transformer: two stacks joined by cross-attention", fontsize=11)
    fit_labels(ax)
    return ax


def draw_projection(length=10, d_model=512, d_k=64, name="Q", ax=None):
    """Draw `X × W = Q` as blocks whose feature axes are to scale.

    X is (length, d_model), W is (d_model, d_k), the result (length, d_k).
    The feature axes (d_model, d_k) share one scale, so the reduction from
    d_model to d_k is visible; the token axis has its own scale (one band per
    token).

    Args:
        length: number of tokens (rows of X). Defaults to 10.
        d_model: features per token. Defaults to 512 (the paper).
        d_k: features after the projection. Defaults to 64 (the paper's
            d_model / h for h = 8 heads).
        name: the result's name, "Q", "K" or "V". Defaults to "Q".
        ax: the matplotlib axes to draw on; a new figure if None.

    Returns:
        The axes.
    """
    from matplotlib.patches import Rectangle

    for argument, value in (("length", length), ("d_model", d_model), ("d_k", d_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{argument}` must be a positive int. Received: {argument}={value!r}"
            )
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(11, 4.2))
    unit = 8.0 / max(d_model, d_k)  # feature axes: the widest is 8 units
    band = min(0.3, 3.0 / length)  # token axis: one band per token
    blocks = [
        (f"X  ({length} × {d_model})", d_model * unit, length * band, "embed", True),
        (
            f"W_{name}  ({d_model} × {d_k})",
            d_k * unit,
            d_model * unit,
            "attention",
            False,
        ),
        (f"{name}  ({length} × {d_k})", d_k * unit, length * band, "attention", True),
    ]
    x, middle = 0.0, 0.0
    for index, (label, width, height, kind, per_token) in enumerate(blocks):
        bottom = middle - height / 2
        ax.add_patch(
            Rectangle(
                (x, bottom), width, height, facecolor=COLORS[kind], edgecolor="#555555"
            )
        )
        if per_token:
            for row in range(1, length):
                y = bottom + row * band
                ax.plot([x, x + width], [y, y], color="#999999", lw=0.5)
        ax.text(x + width / 2, bottom - 0.25, label, ha="center", va="top", fontsize=9)
        x += width
        if index < 2:
            ax.text(
                x + 0.35,
                middle,
                "×" if index == 0 else "=",
                ha="center",
                va="center",
                fontsize=18,
            )
            x += 0.7
    ax.text(
        0.0,
        middle + length * band / 2 + 0.15,
        "one row per token",
        fontsize=8,
        color="#666666",
    )
    ax.set_xlim(-0.3, x + 0.3)
    ax.set_ylim(-d_model * unit / 2 - 0.9, d_model * unit / 2 + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"X × W_{name} = {name}: every token's {d_model} features become {d_k} "
        "(feature axes to scale)",
        fontsize=11,
    )
    return ax


HEAD_COLORS = (
    "#e07b39",
    "#3a87c8",
    "#5aa55a",
    "#b05fb0",
    "#c8b43a",
    "#4fb3b3",
    "#d0606a",
    "#7a7a7a",
)


def draw_multi_head(num_heads=4, ax=None):
    """Draw multi-head attention's shapes: project, split, attend, concat, W_O.

    Each head's channels keep one colour from the projection to the
    concatenation, so the split and the merge read as a regrouping of the
    same numbers.

    Args:
        num_heads: number of heads to draw (1 to 8). Defaults to 4.
        ax: the matplotlib axes to draw on; a new figure if None.

    Returns:
        The axes.
    """
    from matplotlib.patches import Rectangle

    if (
        isinstance(num_heads, bool)
        or not isinstance(num_heads, int)
        or not 1 <= num_heads <= len(HEAD_COLORS)
    ):
        raise ValueError(
            f"`num_heads` must be an int from 1 to {len(HEAD_COLORS)}. "
            f"Received: num_heads={num_heads!r}"
        )
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(14, 4.8))
    height, channel = 2.0, 0.45  # a block is (length) tall, each head's d_k wide

    def banded(x, y, heads, label):
        for head in heads:
            ax.add_patch(
                Rectangle(
                    (x, y),
                    channel,
                    height,
                    facecolor=HEAD_COLORS[head],
                    alpha=0.75,
                    edgecolor="#444444",
                )
            )
            x += channel
        ax.text(
            x - channel * len(heads) / 2,
            y - 0.15,
            label,
            ha="center",
            va="top",
            fontsize=8,
        )
        return x

    def plain(x, y, width, label, kind):
        ax.add_patch(
            Rectangle(
                (x, y), width, height, facecolor=COLORS[kind], edgecolor="#444444"
            )
        )
        ax.text(x + width / 2, y - 0.15, label, ha="center", va="top", fontsize=8)
        return x + width

    heads = range(num_heads)
    width = channel * num_heads
    x = plain(0.0, 0.0, width, "x\n(length, d_model)", "embed")
    arrow(ax, (x + 0.1, height / 2), (x + 0.9, height / 2))
    ax.text(
        x + 0.5, height / 2 + 0.15, "× W_Q\n(W_K, W_V\nalike)", ha="center", fontsize=8
    )
    x = banded(x + 1.0, 0.0, heads, "x W_Q\n(length, h · d_k)")
    # Split: one small block per head, stacked, in the head's colour.
    split_x = x + 1.2
    step = (height + 0.5) * 2 / max(num_heads, 2)
    tops = [height * 1.6 - i * step for i in heads]
    for head, top in zip(heads, tops, strict=True):
        arrow(ax, (x + 0.1, height / 2), (split_x - 0.05, top + 0.2), lw=0.8)
        ax.add_patch(
            Rectangle(
                (split_x, top),
                channel,
                0.4 * height / 2,
                facecolor=HEAD_COLORS[head],
                alpha=0.75,
                edgecolor="#444444",
            )
        )
        ax.text(
            split_x + channel + 0.1,
            top + 0.2,
            f"head {head + 1}: attention(q, k, v)",
            va="center",
            fontsize=8,
        )
        arrow(
            ax,
            (split_x + channel + 2.7, top + 0.2),
            (split_x + 3.6, height / 2),
            lw=0.8,
        )
    ax.text(
        split_x + 1.4,
        height * 1.6 + 0.7,
        "split: (batch, heads, length, d_k)\nevery head attends on its own",
        ha="center",
        fontsize=8,
    )
    x = banded(split_x + 3.7, 0.0, heads, "concat heads\n(length, h · d_k)")
    arrow(ax, (x + 0.1, height / 2), (x + 0.9, height / 2))
    ax.text(x + 0.5, height / 2 + 0.15, "× W_O", ha="center", fontsize=8)
    x = plain(x + 1.0, 0.0, width, "output\n(length, d_model)", "out")
    ax.set_xlim(-0.3, x + 0.3)
    ax.set_ylim(-1.2, height * 1.6 + 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"Multi-head attention with h = {num_heads}: project, split into heads, "
        "attend, concatenate, mix with W_O (same colour = same head's channels)",
        fontsize=10,
    )
    return ax
