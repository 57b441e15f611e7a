"""Diversity: FRDiv (among one speaker's K reactions), FRVar (over time), FRDvs (across speakers).

All higher is better. With z the flattened (T * 25) reaction and D' = T * 25:

    FRDiv = mean_n sum_{i,j} ||z_{n,i} - z_{n,j}||^2 / (K (K - 1) D')          (S-MSE; K >= 2)
    FRVar = mean_{n,k,d} Var_t(P[n, k, t, d])            (unbiased variance over frames; T >= 2)
    FRDvs = sum_k sum_{n,m} ||z_{n,k} - z_{m,k}||^2 / (N (N - 1) K D')                (N >= 2)

The pairwise sums use the identity sum_{i,j} ||z_i - z_j||^2 = 2 M sum_i ||z_i - mean(z)||^2
(M items), exact and O(M) instead of the challenge's O(M^2) distance matrices. float64 sums.
CPU: one numba pass per speaker for all three (plus one for FRDvs's spread), threads over
speakers; CUDA: torch, speaker chunk by speaker chunk (bounded memory).

>>> import numpy as np
>>> p = np.zeros((1, 2, 2, 25)); p[0, 1] = 1.0
>>> frdiv(p)
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metrics import _kernels
from metrics._threads import parallel_ranges
from metrics._validate import pred_tensor, resolve_device

_CHUNK_ELEMS = 8 << 20  # float64 elements converted at a time (torch path)
BACKENDS = ("numba", "torch")


def frdiv(pred: Any, *, device: torch.device | str | None = None, backend: str | None = None,
          threads: int | None = None) -> float:
    """FRDiv (S-MSE): mean over speakers of the mean squared difference between its reactions.

    Args:
        pred: (N, K, T, 25) generated reactions, K >= 2.
        device: torch device (default: pred's).
        backend: "numba" (CPU default) or "torch" (CUDA default).
        threads: CPU threads for numba (default: all usable cores).

    Returns:
        FRDiv as a float (higher is more diverse).
    """
    p = pred_tensor(pred, dtype=torch.float32, device=resolve_device(device, pred), min_k=2)
    return diversity_checked(p, ("FRDiv",), backend=backend, threads=threads)["FRDiv"]


def frvar(pred: Any, *, device: torch.device | str | None = None, backend: str | None = None,
          threads: int | None = None) -> float:
    """FRVar: mean over speakers, reactions and dims of the unbiased variance over frames.

    Args:
        pred: (N, K, T, 25) generated reactions, T >= 2.
        device, backend, threads: as `frdiv`.

    Returns:
        FRVar as a float (higher varies more over time).
    """
    p = pred_tensor(pred, dtype=torch.float32, device=resolve_device(device, pred), min_t=2)
    return diversity_checked(p, ("FRVar",), backend=backend, threads=threads)["FRVar"]


def frdvs(pred: Any, *, device: torch.device | str | None = None, backend: str | None = None,
          threads: int | None = None) -> float:
    """FRDvs: mean squared difference between different speakers' k-th reactions.

    Args:
        pred: (N, K, T, 25) generated reactions, N >= 2.
        device, backend, threads: as `frdiv`.

    Returns:
        FRDvs as a float (higher: reactions depend more on the speaker).
    """
    p = pred_tensor(pred, dtype=torch.float32, device=resolve_device(device, pred), min_n=2)
    return diversity_checked(p, ("FRDvs",), backend=backend, threads=threads)["FRDvs"]


def diversity_checked(pred: torch.Tensor, names: tuple[str, ...], *, backend: str | None = None,
                      threads: int | None = None) -> dict[str, float]:
    """The requested subset of FRDiv, FRVar, FRDvs on validated float32 (N, K, T, 25)."""
    backend = backend or ("torch" if pred.is_cuda else "numba")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, received {backend!r}")
    n, k, frames, dim = pred.shape
    if backend == "torch":
        spread, tvar, dvs = _torch_sums(pred, "FRDvs" in names)
    else:
        spread, tvar, dvs = _numba_sums(pred, "FRDvs" in names, threads)
    out = {}
    for name in names:
        if name == "FRDiv":
            out[name] = 2.0 * spread / ((k - 1) * frames * dim) / n
        elif name == "FRVar":
            out[name] = tvar / (n * k * dim)
        elif name == "FRDvs":
            out[name] = 2.0 * dvs / ((n - 1) * k) / (frames * dim)
    return out


def _numba_sums(pred: torch.Tensor, with_dvs: bool, threads: int | None):
    """(sum_n spread_n, sum_n sum_{k,d} Var_t, sum_n spread about the speaker mean)."""
    x = np.ascontiguousarray(pred.cpu().numpy())
    n, k, frames, dim = x.shape
    spread = np.zeros(n)
    tvar = np.zeros(n)
    partials: list[np.ndarray] = []

    def task(lo: int, hi: int) -> None:
        total = np.zeros((k, frames, dim))
        _kernels.diversity_stats(x, lo, hi, spread, tvar, total)
        partials.append(total)

    parallel_ranges(task, n, threads)
    dvs = 0.0
    if with_dvs:
        mean = np.sum(partials, axis=0) / n
        per = np.zeros(n)
        parallel_ranges(lambda lo, hi: _kernels.spread_about(x, mean, lo, hi, per), n, threads)
        dvs = float(per.sum())
    return float(spread.sum()), float(tvar.sum()), dvs


def _chunks(pred: torch.Tensor):
    """Yield float64 slices of pred along N, each about ``_CHUNK_ELEMS`` elements."""
    per = max(1, _CHUNK_ELEMS // max(1, pred[0].numel()))
    for s in range(0, pred.shape[0], per):
        yield pred[s:s + per].to(torch.float64)


def _torch_sums(pred: torch.Tensor, with_dvs: bool):
    n, k, frames, dim = pred.shape
    spread = tvar = 0.0
    mean = torch.zeros((k, frames, dim), dtype=torch.float64, device=pred.device)
    for c in _chunks(pred):
        spread += float((c - c.mean(dim=1, keepdim=True)).square().sum())
        tvar += float(c.var(dim=2, unbiased=True).sum())
        mean += c.sum(dim=0)
    dvs = 0.0
    if with_dvs:
        mean /= n
        for c in _chunks(pred):
            dvs += float((c - mean).square().sum())
    return spread, tvar, dvs
