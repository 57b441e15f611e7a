"""Concordance correlation coefficient (CCC) as the REACT challenge computes it.

For one dimension d of two sequences a, b (T frames):
``CCC_d = 2 r_d s_a s_b / (s_a^2 + s_b^2 + (m_a - m_b)^2 + 1e-8)`` with population means,
variances and standard deviations, and r_d the Pearson correlation clipped to [-1, 1], a
constant channel (undefined r_d) counting as r_d = 0. ``CCC(a, b)`` is the mean over the D dims.
Binary AU channels are often constant within a clip, so even a perfect prediction scores below
1 there (the challenge's GT row is about 8.5 of 10, not 10).

>>> import numpy as np
>>> a = np.stack([np.arange(5.0), np.arange(5.0) ** 2], axis=1)
>>> round(ccc(a, a), 6)
1.0
"""

from __future__ import annotations

import torch

from metrics._validate import ArrayLike, as_tensor, check_finite

EPS = 1e-8  # the challenge's denominator guard


def ccc(a: ArrayLike, b: ArrayLike) -> float:
    """CCC of one pair: mean over dims.

    Args:
        a: (T, D) sequence.
        b: (T, D) sequence, same shape.

    Returns:
        The mean CCC over the D dims, as a float in [-1, 1].
    """
    x = as_tensor("a", a)
    y = as_tensor("b", b)
    if x.ndim != 2 or x.shape[0] == 0 or tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"b: expected shape {tuple(x.shape)} (the shape of a, (T, D)), "
                         f"received {tuple(y.shape)} (a is {tuple(x.shape)}); CCC compares "
                         f"frame by frame")
    check_finite("a", x)
    check_finite("b", y)
    return float(ccc_matrix(x[None, None], y[None, None])[0, 0, 0])


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., T, D) -> mean (..., D), population variance (..., D), centred x (..., T, D)."""
    x = x.to(torch.float64)
    mean = x.mean(dim=-2)
    centred = x - mean.unsqueeze(-2)
    var = centred.square().mean(dim=-2)
    return mean, var, centred


def ccc_matrix(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Batched CCC of every prediction against every reference of the same item.

    Args:
        pred: (B, K, T, D).
        ref: (B, G, T, D).

    Returns:
        (B, K, G) float64: CCC(pred[b, k], ref[b, g]) (mean over dims).
    """
    mp, vp, cp = moments(pred)
    mr, vr, cr = moments(ref)
    frames = pred.shape[-2]
    # Cross-covariance of every (k, g) per dim: (B, K, G, D).
    cov = torch.einsum("bktd,bgtd->bkgd", cp, cr) / frames
    vp_, vr_ = vp[:, :, None, :], vr[:, None, :, :]
    prod = vp_ * vr_
    defined = prod > 0
    r = torch.where(defined, cov / torch.sqrt(torch.where(defined, prod, 1.0)), 0.0)
    r = r.clamp(-1.0, 1.0)
    num = 2.0 * r * torch.sqrt(vp_) * torch.sqrt(vr_)
    den = vp_ + vr_ + (mp[:, :, None, :] - mr[:, None, :, :]).square() + EPS
    return (num / den).mean(dim=-1)
