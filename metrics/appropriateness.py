"""Appropriateness: FRCorr (CCC, higher is better) and FRDist (DTW, lower is better).

Both compare each of a speaker's K generated reactions with every reaction of its appropriate
set and keep the best match, then SUM over the K reactions (the challenge's scale: FRCorr lies
in [-K, K], FRDist grows with K) and average over the N speakers:

    FRCorr = mean_n sum_k max_{a in A[n]} CCC(a, P[n, k])
    FRDist = mean_n sum_k min_{a in A[n]} sum_g w_g DTW(P[n, k][:, g], a[:, g])

with the groups g and weights w_g of ``react_data.schema.ATTR_GROUPS`` (AU 1/15, VA 1,
expressions 1/8). Every (k, a, g) DTW is needed (a minimum, no pruning), so FRDist runs all of
them in one batched call (`metrics.dtw.grouped_dtw`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from metrics import _kernels
from metrics._threads import parallel_ranges
from metrics._validate import appropriate_list, pred_tensor, resolve_device
from metrics.ccc import ccc_matrix
from metrics.dtw import grouped_dtw
from react_data.schema import ATTR_GROUPS

_CHUNK_BYTES = 256 << 20  # float64 working set of one FRCorr batch


def frcorr(pred: Any, appropriate: Any, *, device: torch.device | str | None = None,
           backend: str | None = None, threads: int | None = None) -> float:
    """FRCorr: mean over speakers of the sum over K of the best CCC with an appropriate reaction.

    Args:
        pred: (N, K, T, 25) generated reactions.
        appropriate: N arrays (G_n, T, 25) (same T as pred; see `metrics.align`).
        device: torch device (default: pred's device if a tensor, else CPU).
        backend: "numba" (CPU default: one pass per speaker, threads) or "torch" (CUDA default).
        threads: CPU threads for numba (default: all usable cores).

    Returns:
        FRCorr as a float (in [-K, K]; higher is better).
    """
    dev = resolve_device(device, pred)
    p = pred_tensor(pred, dtype=torch.float32, device=dev)
    apps = appropriate_list(appropriate, p.shape[0], dtype=torch.float32, device=dev,
                            frames=p.shape[2])
    return frcorr_checked(p, apps, backend=backend, threads=threads)


def frcorr_checked(pred: torch.Tensor, apps: list[torch.Tensor], *, backend: str | None = None,
                   threads: int | None = None) -> float:
    """FRCorr on validated float32 inputs (pred (N, K, T, 25); apps[n] (G_n, T, 25))."""
    backend = backend or ("torch" if pred.is_cuda else "numba")
    if backend not in ("numba", "torch"):
        raise ValueError(f"backend: expected 'numba' or 'torch', received {backend!r}")
    n, k, frames, dim = pred.shape
    if backend == "numba":
        x = pred.cpu().numpy()
        refs = [np.ascontiguousarray(a.cpu().numpy()) for a in apps]
        best = np.empty((n, k))

        def task(lo: int, hi: int) -> None:
            for i in range(lo, hi):  # one kernel call per speaker: no copy of the sets
                _kernels.best_ccc(np.ascontiguousarray(x[i]), refs[i], best[i])

        parallel_ranges(task, n, threads)
        return float(best.sum(axis=1).mean())
    per_speaker = torch.empty(n, dtype=torch.float64, device=pred.device)
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, a in enumerate(apps):
        by_size[int(a.shape[0])].append(i)
    for g, idx in by_size.items():
        step = max(1, _CHUNK_BYTES // (4 * 8 * (k + g) * frames * dim))
        for s in range(0, len(idx), step):
            sel = idx[s:s + step]
            ref = torch.stack([apps[i] for i in sel])
            best = ccc_matrix(pred[sel], ref).amax(dim=2)  # (b, K)
            per_speaker[sel] = best.sum(dim=1)
    return float(per_speaker.mean())


def frdist(pred: Any, appropriate: Any, *, device: torch.device | str | None = None,
           backend: str | None = None, threads: int | None = None) -> float:
    """FRDist: mean over speakers of the sum over K of the smallest weighted grouped DTW.

    Args:
        pred: (N, K, T, 25) generated reactions.
        appropriate: N arrays (G_n, T_n, 25); T_n may differ from T and between reactions'
            sets (DTW aligns any lengths).
        device: "cuda" runs the torch wavefront on the GPU; CPU (default) the numba kernel.
        backend: override: "numba", "torch" or "plain" (the reference loop).
        threads: CPU threads for the numba kernel (default: all usable cores).

    Returns:
        FRDist as a float (lower is better; a sum over K).
    """
    dev = resolve_device(device, pred)
    p = pred_tensor(pred, dtype=torch.float32, device=dev)
    apps = appropriate_list(appropriate, p.shape[0], dtype=torch.float32, device=dev)
    return frdist_checked(p, apps, backend=backend, threads=threads)


def frdist_checked(pred: torch.Tensor, apps: list[torch.Tensor], *, backend: str | None = None,
                   threads: int | None = None) -> float:
    """FRDist on validated float32 inputs; the backend defaults to torch on CUDA, numba on CPU."""
    n, k, frames, dim = pred.shape
    if backend is None:
        backend = "torch" if pred.is_cuda else "numba"
    sizes = np.array([a.shape[0] for a in apps], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Pairs ordered by (n, k, g): the G_n candidates of one (n, k) are contiguous.
    x_idx = np.repeat(np.arange(n * k), np.repeat(sizes, k))
    y_idx = np.concatenate([offsets[i] + np.arange(sizes[i]) for i in range(n) for _ in range(k)])
    ys = [r for a in apps for r in (a.cpu() if backend != "torch" else a)]
    x = pred.reshape(n * k, frames, dim)
    if backend != "torch":
        x = x.cpu()
    dist = grouped_dtw(x, ys, np.stack([x_idx, y_idx], axis=1), groups=ATTR_GROUPS,
                       backend=backend, threads=threads,
                       device=pred.device if backend == "torch" else None)
    weights = np.array([w for _, _, w in ATTR_GROUPS])
    combined = dist @ weights  # (P,)
    starts = np.concatenate([[0], np.cumsum(np.repeat(sizes, k))[:-1]])
    best = np.minimum.reduceat(combined, starts)  # (N * K,) min over the appropriate set
    return float(best.reshape(n, k).sum(axis=1).mean())
