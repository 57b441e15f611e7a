"""Attribute views (AU heatmap, valence/arousal, expression probabilities) and frame mosaics.

Matplotlib is used through ``Figure`` + the Agg canvas directly (no ``pyplot``, no global
backend switch). The animated view draws the figure once and moves a time cursor over it per
frame, so a 750-frame video costs one figure, not 750.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from react_data import schema

__all__ = ["AttributeView", "attribute_view", "figure_to_array", "label_strip", "mosaic",
           "mosaic_frames", "png_bytes"]

_VA_COLORS = ("#d62728", "#1f77b4")  # valence red, arousal blue
_EXPR_COLORS = ("#9e9e9e", "#ffbf00", "#1f77b4", "#17becf", "#9467bd", "#2ca02c", "#d62728",
                "#8c564b")


def figure_to_array(fig) -> np.ndarray:  # noqa: ANN001 - a matplotlib Figure
    """Render a matplotlib ``Figure`` to an (H, W, 3) uint8 RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@dataclass
class AttributeView:
    """A drawn attribute figure and where its time axes are.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        columns: per panel column, (x of frame 0, x of the last frame, top y, bottom y) in
            pixels; the time cursor of frame t is drawn there.
        num_frames: T.
    """

    image: np.ndarray
    columns: list[tuple[float, float, int, int]]
    num_frames: int

    def frames(self, step: int = 1) -> Iterator[np.ndarray]:
        """The figure with a red cursor at frame 0, step, 2 step, ... (one array per frame)."""
        h, w, _ = self.image.shape
        last = max(self.num_frames - 1, 1)
        for t in range(0, self.num_frames, step):
            img = self.image.copy()
            for x0, x1, top, bottom in self.columns:
                x = int(round(x0 + (x1 - x0) * t / last))
                img[max(top, 0):min(bottom, h), max(x - 1, 0):min(x + 1, w)] = (220, 0, 0)
            yield img


def _check_attr(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.ndim != 2 or a.shape[1] != schema.ATTR_DIM:
        raise ValueError(f"attributes {name!r} must be (T, {schema.ATTR_DIM}), got {a.shape}")
    return a


def attribute_view(rows: Mapping[str, np.ndarray], *, fps: float = schema.FPS,
                   title: str = "", dpi: int = 80) -> AttributeView:
    """Draw one row per sequence: AU occurrences, valence/arousal, expression probabilities.

    Args:
        rows: row label -> (T, 25) attributes (e.g. "speaker", "listener (real)",
            "generated 1", ...), all the same T.
        fps: frame rate of the time axis (seconds).
        title: figure title.
        dpi: pixels per inch (sets the image size: 16 x (1.2 rows + 0.9) inches).

    Returns:
        The `AttributeView`.
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("attribute_view needs at least one row")
    data = {k: _check_attr(k, v) for k, v in rows.items()}
    lengths = {v.shape[0] for v in data.values()}
    if len(lengths) != 1:
        raise ValueError(f"every row must have the same number of frames, got "
                         f"{ {k: v.shape[0] for k, v in data.items()} }")
    t = lengths.pop()
    secs = np.arange(t) / fps
    n = len(data)
    fig = Figure(figsize=(16, 1.2 * n + 0.9), dpi=dpi)
    axes = fig.subplots(n, 3, squeeze=False, sharex=True,
                        gridspec_kw={"width_ratios": (1.2, 1, 1), "hspace": 0.25,
                                     "wspace": 0.12})
    extent = (0.0, (t - 1) / fps if t > 1 else 1.0 / fps, schema.N_AU - 0.5, -0.5)
    for r, (label, a) in enumerate(data.items()):
        ax_au, ax_va, ax_ex = axes[r]
        ax_au.imshow(a[:, schema.AU].T, aspect="auto", cmap="Greys", vmin=0, vmax=1,
                     interpolation="nearest", extent=extent)
        ax_au.set_yticks([0, schema.N_AU - 1], [schema.AU_NAMES[0], schema.AU_NAMES[-1]],
                         fontsize=7)
        ax_au.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
        for i, name in enumerate(("valence", "arousal")):
            ax_va.plot(secs, a[:, schema.VALENCE + i], color=_VA_COLORS[i], lw=1, label=name)
        ax_va.set_ylim(-1.05, 1.05)
        ax_va.axhline(0, color="#bbbbbb", lw=0.5)
        ax_va.tick_params(labelsize=7)
        ax_ex.stackplot(secs, np.clip(a[:, schema.EXPR], 0, None).T, colors=_EXPR_COLORS,
                        labels=schema.EXPR_NAMES, lw=0)
        ax_ex.set_ylim(0, 1)
        ax_ex.tick_params(labelsize=7)
    axes[0, 0].set_title("AU occurrence (15 AUs)", fontsize=10)
    axes[0, 1].set_title("valence / arousal", fontsize=10)
    axes[0, 2].set_title("expression probabilities", fontsize=10)
    axes[0, 1].legend(fontsize=7, loc="upper right", ncol=2)
    axes[-1, 2].legend(fontsize=7, loc="upper center", ncol=8, bbox_to_anchor=(0.5, -0.45),
                       frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("seconds", fontsize=8)
        ax.tick_params(labelsize=7)
    inches = 1.2 * n + 0.9
    fig.subplots_adjust(left=0.09, right=0.99, top=1 - 0.45 / inches, bottom=0.7 / inches)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.08 / inches)
    image = figure_to_array(fig)
    h = image.shape[0]
    columns = []
    for c in range(3):
        top_ax, bottom_ax = axes[0, c], axes[-1, c]
        x0 = top_ax.transData.transform((secs[0], 0))[0]
        x1 = top_ax.transData.transform((secs[-1], 0))[0]
        top = h - int(top_ax.get_window_extent().y1)
        bottom = h - int(bottom_ax.get_window_extent().y0)
        columns.append((float(x0), float(x1), top, bottom))
    return AttributeView(image=image, columns=columns, num_frames=t)


def label_strip(labels: Sequence[str], tile_width: int, height: int = 22) -> np.ndarray:
    """A black strip with one white centred label per tile: (height, n * tile_width, 3)."""
    from matplotlib.figure import Figure

    dpi = 100
    width = tile_width * len(labels)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="black")
    for i, text in enumerate(labels):
        fig.text((i + 0.5) / len(labels), 0.5, text, color="white", ha="center", va="center",
                 fontsize=max(6, min(11, tile_width // 16)))
    img = figure_to_array(fig)
    return img[:height, :width]


def mosaic_frames(tiles: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                  columns: int | None = None) -> Iterator[np.ndarray]:
    """Frame by frame, same-sized videos tiled side by side, each under its label.

    Args:
        tiles: each (T, H, W, 3) uint8, same shape.
        labels: one per tile, drawn above it.
        columns: tiles per row (default: all in one row).

    Yields:
        T frames of (rows * (H + label), columns * W, 3) uint8.
    """
    if not tiles:
        raise ValueError("mosaic needs at least one tile")
    shapes = {np.shape(x) for x in tiles}
    if len(shapes) != 1:
        raise ValueError(f"mosaic tiles must share one shape, got {sorted(shapes)}")
    t, h, w, _ = np.shape(tiles[0])
    cols = columns or len(tiles)
    labels = list(labels) if labels is not None else [""] * len(tiles)
    if len(labels) != len(tiles):
        raise ValueError(f"{len(labels)} labels for {len(tiles)} tiles")
    n_rows = -(-len(tiles) // cols)
    strips = [label_strip((labels[r * cols:(r + 1) * cols] + [""] * cols)[:cols], w)
              for r in range(n_rows)]
    sh = strips[0].shape[0]
    canvas = np.zeros((n_rows * (sh + h), cols * w, 3), np.uint8)
    for r, strip in enumerate(strips):
        canvas[r * (sh + h):r * (sh + h) + sh] = strip
    for i in range(t):
        frame = canvas.copy()
        for k, tile in enumerate(tiles):
            r, c = divmod(k, cols)
            top = r * (sh + h) + sh
            frame[top:top + h, c * w:(c + 1) * w] = tile[i]
        yield frame


def mosaic(tiles: Sequence[np.ndarray], labels: Sequence[str] | None = None,
           columns: int | None = None) -> np.ndarray:
    """All frames of `mosaic_frames` as one (T, rows * (H + label), columns * W, 3) array."""
    return np.stack(list(mosaic_frames(tiles, labels, columns)))
