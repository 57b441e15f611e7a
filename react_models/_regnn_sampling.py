"""REGNN's sampling helpers: the bounded latent noise of the baseline's test time and the
projection of generated (unconstrained) attributes to metric space."""

from __future__ import annotations

import math

import torch

from react_data import schema

_EPS = 1e-8  # guards the peak of an all-zero noise draw

__all__ = ["attrs_to_metric", "bounded_noise", "project_simplex"]


def bounded_noise(shape: tuple[int, ...], threshold: float, *, device: torch.device | str,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gaussian noise rescaled per leading item so that ``max|eps| <= sqrt(threshold)``.

    Each item (index along dim 0: one window of one sample) is drawn from N(0, I) and scaled
    by ``min(1, sqrt(threshold) / max|eps|)`` (the baseline's test-time noise), then clamped
    so the bound holds exactly in floating point. Uses the global torch RNG.

    Args:
        shape: (N, ...) noise shape.
        threshold: >= 0; 0 gives zeros.

    Returns:
        ``shape`` tensor.
    """
    if threshold < 0:
        raise ValueError(f"noise threshold must be >= 0, got {threshold}")
    bound = math.sqrt(threshold)
    eps = torch.randn(shape, device=device, dtype=dtype)
    peak = eps.flatten(1).abs().amax(1).clamp_min(_EPS)  # (N,)
    scale = (bound / peak).clamp(max=1.0).view(-1, *([1] * (eps.dim() - 1)))
    return (eps * scale).clamp(-bound, bound)


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row (last dim) onto the probability simplex.

    The nearest distribution to the generated expression vector (Duchi et al. 2008).

    Args:
        v: (..., n).

    Returns:
        (..., n) non-negative, rows summing to 1.

    >>> project_simplex(torch.tensor([[0.6, 0.6, -1.0]])).tolist()
    [[0.5, 0.5, 0.0]]
    """
    u = v.sort(dim=-1, descending=True).values
    css = u.cumsum(-1) - 1.0
    ind = torch.arange(1, v.shape[-1] + 1, device=v.device, dtype=v.dtype)
    rho = (u - css / ind > 0).sum(-1, keepdim=True).clamp_min(1)  # support size
    theta = css.gather(-1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp_min(0.0)


def attrs_to_metric(x: torch.Tensor) -> torch.Tensor:
    """Generated (unconstrained) attributes -> metric space.

    AUs thresholded at 0.5 to {0, 1} (the targets are binary), valence/arousal clamped to
    [-1, 1], expressions projected onto the simplex.

    Args:
        x: (..., 25).

    Returns:
        (..., 25).
    """
    au = (x[..., schema.AU] >= 0.5).to(x.dtype)
    va = x[..., schema.VA].clamp(-1.0, 1.0)
    return torch.cat([au, va, project_simplex(x[..., schema.EXPR])], dim=-1)
