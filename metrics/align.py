"""Resample appropriate reactions in time to the predictions' length (reactune's own alignment).

The 2025 evaluation re-times every ground-truth reaction to the prediction length with a frozen
EmotionVAE whose weights are not public, so its numbers cannot be reproduced exactly. reactune
uses a transparent substitute: linear interpolation in time (frame centres, like
``torch.nn.functional.interpolate(mode="linear", align_corners=False)``), after which the AU
channels are re-binarised (>= 0.5 -> 1, as the challenge's post-processor thresholds AUs);
valence/arousal stay continuous and the expression probabilities stay a convex combination
(they still sum to 1). Needed by FRCorr, which compares frame by frame; FRDist takes any length.

>>> import numpy as np
>>> a = np.zeros((1, 4, 25), np.float32); a[0, 2:, 0] = 1.0
>>> align([a], 8)[0][0, :, 0].tolist()
[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metrics._validate import appropriate_list
from react_data.schema import AU


def align(appropriate: Any, frames: int) -> list[np.ndarray] | list[torch.Tensor]:
    """Resample every appropriate reaction to ``frames`` frames.

    Args:
        appropriate: N arrays (G_n, T_n, 25), or one (N, G, T, 25) array/tensor.
        frames: target length T (the predictions' T), >= 1.

    Returns:
        N arrays (G_n, frames, 25): numpy float32 for numpy input, tensors (input device,
        float32) for tensor input. Sets already of length ``frames`` are returned unchanged
        (as float32).
    """
    if not isinstance(frames, (int, np.integer)) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames: expected a positive int (the predictions' T), received "
                         f"{frames!r}")
    n = len(appropriate)
    items = appropriate_list(appropriate, n, dtype=torch.float32)
    as_numpy = not isinstance(appropriate, torch.Tensor) and not (
        n and isinstance(appropriate[0], torch.Tensor))
    out = []
    for t in items:
        if t.shape[1] != frames:
            t = torch.nn.functional.interpolate(t.transpose(1, 2), size=int(frames),
                                                mode="linear", align_corners=False)
            t = t.transpose(1, 2).contiguous()
            t[..., AU] = (t[..., AU] >= 0.5).to(t.dtype)
        out.append(t.cpu().numpy() if as_numpy else t)
    return out
