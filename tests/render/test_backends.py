"""Renderer choice: pytorch3d only where it imports, the torch rasterizer otherwise."""

from __future__ import annotations

import pytest

from orchestrator.render import MeshRenderer, make_renderer, pytorch3d_available


def test_auto_picks_torch_without_pytorch3d_and_names_the_choice():
    renderer, name = make_renderer("auto")
    if pytorch3d_available():
        assert name == "pytorch3d"
    else:
        assert name == "torch" and isinstance(renderer, MeshRenderer)
    assert make_renderer("torch")[1] == "torch"


def test_unknown_or_unavailable_backends_raise():
    with pytest.raises(ValueError, match="one of"):
        make_renderer("opengl")
    if not pytorch3d_available():
        with pytest.raises(ValueError, match="pytorch3d does not import"):
            make_renderer("pytorch3d")
