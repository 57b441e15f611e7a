"""Attribute views and mosaics."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.render.plots import attribute_view, mosaic


def attrs(t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    au = (rng.random((t, 15)) > 0.7).astype(np.float32)
    va = rng.uniform(-1, 1, (t, 2))
    ex = rng.random((t, 8))
    return np.concatenate([au, va, ex / ex.sum(1, keepdims=True)], 1)


def test_attribute_view_draws_rows_and_a_moving_cursor():
    view = attribute_view({"speaker": attrs(20, 0), "generated 1": attrs(20, 1)}, dpi=40)
    h, w, _ = view.image.shape
    assert view.image.std() > 10 and len(view.columns) == 3
    frames = list(view.frames())
    assert len(frames) == 20
    first, last = frames[0].astype(int), frames[-1].astype(int)
    red = lambda f: (f[..., 0] > 200) & (f[..., 1] < 30) & (f[..., 2] < 30)  # noqa: E731
    x_first, x_last = np.nonzero(red(first))[1], np.nonzero(red(last))[1]
    assert x_last.mean() > x_first.mean() + 20  # the cursor travels right
    with pytest.raises(ValueError, match="same number of frames"):
        attribute_view({"a": attrs(5, 0), "b": attrs(6, 0)})
    with pytest.raises(ValueError, match=r"\(T, 25\)"):
        attribute_view({"a": np.zeros((5, 24))})


def test_mosaic_tiles_with_labels():
    tiles = [np.full((4, 10, 12, 3), 50 * i, np.uint8) for i in range(5)]
    out = mosaic(tiles, [f"t{i}" for i in range(5)], columns=3)
    assert out.shape == (4, 2 * (10 + 22), 3 * 12, 3)
    assert (out[:, 22:32, 12:24] == 50).all()  # second tile under its label
    with pytest.raises(ValueError, match="share one shape"):
        mosaic([tiles[0], tiles[0][:, :5]])
