"""Realism without rendering: the Fréchet distance between facial-attribute statistics.

NOT the challenge's FRRea. The challenge renders reactions to face images (PIRender) and reports
FID on Inception-v3 features of those images; reactune cannot render here. `frrea_features` fits
a Gaussian to the 25-d per-frame attributes of the generated reactions and another to those of
real listener reactions, and returns their Fréchet distance

    FD = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g^1/2 S_r S_g^1/2)^1/2)

(lower is better, 0 when the statistics match). Report it under its own name
("FRRea_features"), never as FID.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((4, 2, 30, 25))
>>> frrea_features(x, x.reshape(-1, 30, 25)) < 1e-9
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from metrics import _kernels
from metrics._validate import as_tensor, check_finite, pred_tensor, resolve_device
from react_data.schema import ATTR_DIM

_CHUNK_ROWS = 1 << 20  # frames converted to float64 at a time


def frrea_features(pred: Any, real: Any, *, device: torch.device | str | None = None) -> float:
    """Fréchet distance between Gaussian fits of generated and real per-frame attributes.

    Args:
        pred: (N, K, T, 25) generated reactions.
        real: real listener reactions: an array (..., 25) or a sequence of such arrays (e.g.
            the appropriate sets); every frame counts once.
        device: torch device (default: pred's).

    Returns:
        The Fréchet distance as a float (lower is better).
    """
    dev = resolve_device(device, pred)
    p = pred_tensor(pred, dtype=torch.float32, device=dev)
    if isinstance(real, Sequence) and not isinstance(real, (str, bytes, np.ndarray)):
        parts = [as_tensor(f"real[{i}]", r, torch.float32, dev) for i, r in enumerate(real)]
    else:
        parts = [as_tensor("real", real, torch.float32, dev)]
    frames = []
    for i, t in enumerate(parts):
        if t.ndim < 1 or t.shape[-1] != ATTR_DIM:
            raise ValueError(f"real: expected arrays of shape (..., {ATTR_DIM}), received "
                             f"{tuple(t.shape)} at item {i}")
        check_finite("real", t)
        frames.append(t.reshape(-1, ATTR_DIM))
    return frechet_checked(p.reshape(-1, ATTR_DIM), frames)


def gaussian_fit(frames: Sequence[torch.Tensor],
                 backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of all rows of the (F_i, D) blocks (two passes).

    backend: "numba" (CPU default: float64 sums, no float64 copies) or "torch" (CUDA default).
    """
    count = sum(int(f.shape[0]) for f in frames)
    if count < 2:
        raise ValueError(f"real: expected at least 2 frames to estimate a covariance, received "
                         f"{count}")
    dim = int(frames[0].shape[1])
    if (backend or ("torch" if frames[0].is_cuda else "numba")) == "numba":
        blocks = [np.ascontiguousarray(f.cpu().numpy()) for f in frames]
        mean = np.zeros(dim)
        for b in blocks:
            _kernels.frame_moments(b, mean, np.zeros((0, 0)))
        mean /= count
        scatter = np.zeros((dim, dim))
        for b in blocks:
            _kernels.frame_moments(b, mean, scatter)
        scatter = np.triu(scatter) + np.triu(scatter, 1).T
        return mean, scatter / (count - 1)
    total = torch.zeros(dim, dtype=torch.float64, device=frames[0].device)
    for f in frames:
        for s in range(0, f.shape[0], _CHUNK_ROWS):
            total += f[s:s + _CHUNK_ROWS].to(torch.float64).sum(dim=0)
    mean = total / count
    scatter = torch.zeros((dim, dim), dtype=torch.float64, device=frames[0].device)
    for f in frames:
        for s in range(0, f.shape[0], _CHUNK_ROWS):
            c = f[s:s + _CHUNK_ROWS].to(torch.float64) - mean
            scatter += c.T @ c
    return mean.cpu().numpy(), (scatter / (count - 1)).cpu().numpy()


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (symmetric PSD square roots)."""
    w1, v1 = np.linalg.eigh(cov1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    inner = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    trace_sqrt = float(np.sqrt(np.clip(inner, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def frechet_checked(pred_frames: torch.Tensor, real_frames: Sequence[torch.Tensor]) -> float:
    """`frrea_features` on validated (F, 25) generated frames and real frame blocks."""
    mu_g, cov_g = gaussian_fit([pred_frames])
    mu_r, cov_r = gaussian_fit(real_frames)
    return frechet_distance(mu_g, cov_g, mu_r, cov_r)
