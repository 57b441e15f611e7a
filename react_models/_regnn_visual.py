"""REGNN's visual feature encoder and the loader for its (optional) pretrained weights.

The baseline extracts speaker visual features with a pretrained swin transformer that cannot be
downloaded here; this small per-frame encoder over the speaker's attributes and 3DMM replaces
it, trained from scratch unless ``Config.visual_weights`` names a state dict.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from react_data import schema

__all__ = ["VisualEncoder", "load_visual_weights"]


class VisualEncoder(nn.Module):
    """Per-frame visual features from speaker attributes (+3DMM): (N,W,25),(N,W,58)|None -> D."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attr = nn.Linear(schema.ATTR_DIM, dim)
        self.coef = nn.Linear(schema.COEF_DIM, dim)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(dim, dim))

    def forward(self, attr: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
        h = self.attr(attr) if coef is None else (self.attr(attr) + self.coef(coef)) / 2
        return self.out(h)


def load_visual_weights(module: nn.Module, path: str | Path) -> None:
    """Load a visual-encoder state dict (or a whole REGNN state dict) into ``module``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a torch state dict, or keys/shapes that do not fit the encoder.
    """
    p = Path(path)
    how = "torch.save(model.visual.state_dict(), path)"
    if not p.is_file():
        raise FileNotFoundError(
            f"REGNN visual_weights file {str(p)!r} does not exist; pass a state dict saved with "
            f"{how} (or a whole REGNN state dict), or set visual_weights=None to train the "
            f"visual encoder from scratch"
        )
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        raise ValueError(f"REGNN visual_weights {str(p)!r} is not a readable torch state dict "
                         f"({type(e).__name__}: {e}); save one with {how}") from e
    if not isinstance(sd, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise ValueError(f"REGNN visual_weights {str(p)!r} holds a {type(sd).__name__}, "
                         f"expected a dict of name -> tensor; save one with {how}")
    if any(k.startswith("visual.") for k in sd):  # a whole REGNN state dict
        sd = {k.removeprefix("visual."): v for k, v in sd.items() if k.startswith("visual.")}
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    shapes = [f"{k}: expected {tuple(v.shape)}, got {tuple(sd[k].shape)}"
              for k, v in expected.items() if k in sd and v.shape != sd[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"REGNN visual_weights {str(p)!r} does not fit the visual encoder: missing keys "
            f"{missing}, unexpected keys {unexpected}, shape mismatches {shapes}; use weights "
            f"saved from a REGNN with the same visual_dim, or set visual_weights=None"
        )
    module.load_state_dict(sd)
