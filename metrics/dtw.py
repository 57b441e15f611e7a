"""Dynamic time warping as the REACT challenge computes it (tslearn ``dtw``), plain and batched.

Definition (tslearn ``dtw``, no window): with squared-Euclidean local cost
``c(i, j) = ||x_i - y_j||^2``, accumulated cost
``D(i, j) = c(i, j) + min(D(i-1, j), D(i, j-1), D(i-1, j-1))``, ``D(-1, -1) = 0`` and
``DTW(x, y) = sqrt(D(Tx-1, Ty-1))``. The challenge casts its inputs to float32; tslearn then
computes in float64. x and y may have different lengths.

Three forms, one definition:
- `dtw`: one pair, a plain scalar loop in float64 (the reference path; equals tslearn to ~1e-12).
- `grouped_dtw`: many pairs and several feature groups at once; the CPU backend is a 16-lane
  SIMD numba kernel (float32 accumulation, within ~1e-6 relative of tslearn; groups holding
  only 0/1 values are bit-packed and costed by popcount, same result) run on several threads;
  the torch backend (`metrics.dtw_torch`) is an anti-diagonal wavefront for CUDA.

>>> import numpy as np
>>> dtw(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [2.0], [3.0], [4.0]]))
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from numba import njit

from metrics._dtw_kernel import LANES, MAX_BINARY_DIMS, is_binary, make_chunk_runner, pack_bits
from metrics._threads import check_threads, default_threads, parallel_ranges
from metrics._validate import ArrayLike, as_tensor, check_finite
from react_data.schema import ATTR_GROUPS

__all__ = ["BACKENDS", "default_threads", "dtw", "grouped_dtw", "normalize_groups"]

BACKENDS = ("numba", "torch", "plain")


@njit(nogil=True, cache=True)
def _dtw_plain(x, y):  # pragma: no cover - compiled
    tx, ty, dim = x.shape[0], y.shape[0], x.shape[1]
    prev = np.full(ty + 1, np.inf)
    cur = np.full(ty + 1, np.inf)
    prev[0] = 0.0
    for i in range(tx):
        cur[0] = np.inf
        for j in range(ty):
            c = 0.0
            for d in range(dim):
                diff = x[i, d] - y[j, d]
                c += diff * diff
            cur[j + 1] = c + min(prev[j], prev[j + 1], cur[j])
        prev, cur = cur, prev
    return np.sqrt(prev[ty])


def _sequence(name: str, value: Any) -> np.ndarray:
    """(T, D) or (T,) -> float64 (T, D) of the float32-rounded values (the challenge's cast)."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=np.float64)
    t = as_tensor(name, value, torch.float32, "cpu")
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (T>=1, D), received {tuple(t.shape)}; pass one "
                         f"sequence of frames")
    check_finite(name, t)
    return t.numpy().astype(np.float64)


def dtw(x: ArrayLike, y: ArrayLike) -> float:
    """DTW distance of one pair: the plain reference path (tslearn semantics).

    Args:
        x: (Tx, D) or (Tx,) sequence (array, tensor or list).
        y: (Ty, D) or (Ty,) sequence, same D.

    Returns:
        sqrt of the minimal accumulated squared-Euclidean cost, as a float.
    """
    a, b = _sequence("x", x), _sequence("y", y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"y: expected shape (Ty, {a.shape[1]}) to match x's D, received "
                         f"{b.shape}")
    return float(_dtw_plain(a, b))


def normalize_groups(groups: Any, dim: int) -> tuple[tuple[int, int], ...]:
    """ATTR_GROUPS-style ((name, slice, weight), ...) or ((start, stop), ...) -> contiguous bounds.

    Groups must tile ``[0, dim)`` in order (the kernels read each frame once for all groups).
    """
    bounds = []
    for g in groups:
        if isinstance(g, tuple) and len(g) == 3 and isinstance(g[1], slice):
            bounds.append((int(g[1].start), int(g[1].stop)))
        elif isinstance(g, slice):
            bounds.append((int(g.start), int(g.stop)))
        else:
            start, stop = g
            bounds.append((int(start), int(stop)))
    edges = [0] + [b for _, b in bounds]
    if [a for a, _ in bounds] != edges[:-1] or edges[-1] != dim or any(
            a >= b for a, b in bounds):
        raise ValueError(f"groups: expected contiguous non-empty slices tiling [0, {dim}) in "
                         f"order, received {bounds}")
    return tuple(bounds)


@lru_cache(maxsize=8)
def _runner(groups: tuple[tuple[int, int], ...], binary: tuple[bool, ...]):
    return make_chunk_runner(groups, binary)


def _binary_groups(x: np.ndarray, frames: np.ndarray,
                   bounds: tuple[tuple[int, int], ...]) -> tuple[bool, ...]:
    """Which groups hold only 0/1 in every x and y frame (those get the popcount kernel).

    Groups of under 4 dims gain little and are not checked; the check stops at the first
    non-binary value, so continuous groups cost next to nothing.
    """
    xf = x.reshape(-1, x.shape[-1])
    return tuple(4 <= b - a <= MAX_BINARY_DIMS and is_binary(frames, a, b) and is_binary(xf, a, b)
                 for a, b in bounds)


def _pack_sequences(y: Any, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequence of (T_r, D) arrays, or (R, T, D) -> concatenated float32 frames, starts, lengths."""
    if isinstance(y, (np.ndarray, torch.Tensor)) and y.ndim == 3:
        t = as_tensor("y", y, torch.float32, "cpu")
        lengths = np.full(t.shape[0], t.shape[1], dtype=np.int64)
        frames = t.reshape(-1, t.shape[-1]).numpy()
    elif isinstance(y, Sequence) and not isinstance(y, (str, bytes)):
        parts = [as_tensor(f"y[{r}]", v, torch.float32, "cpu") for r, v in enumerate(y)]
        for r, p in enumerate(parts):
            if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != dim:
                raise ValueError(f"y[{r}]: expected shape (T>=1, {dim}), received "
                                 f"{tuple(p.shape)}")
        lengths = np.array([p.shape[0] for p in parts], dtype=np.int64)
        frames = (torch.cat(parts).numpy() if parts else np.zeros((0, dim), np.float32))
    else:
        raise TypeError(f"y: expected an (R, T, {dim}) array or a sequence of (T_r, {dim}) "
                        f"arrays, received {type(y).__name__}")
    if frames.shape[-1] != dim:
        raise ValueError(f"y: expected frames of {dim} dims to match x, received "
                         f"{frames.shape[-1]}")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.ascontiguousarray(frames), starts, lengths


def grouped_dtw(x: ArrayLike, y: Any, pairs: ArrayLike | None = None, *,
                groups: Any = ATTR_GROUPS, backend: str = "numba", threads: int | None = None,
                device: torch.device | str | None = None,
                max_pairs_per_batch: int | None = None) -> np.ndarray:
    """DTW distances of many (x, y) pairs, one per feature group.

    Args:
        x: (M, Tx, D) sequences (all of length Tx).
        y: (R, Ty, D) array, or a sequence of R arrays (Ty_r, D) of any lengths.
        pairs: (P, 2) integer (x index, y index) pairs; None pairs x[m] with y[m] (M == R).
        groups: feature groups tiling the D dims in order, as ``react_data.schema.ATTR_GROUPS``
            or ((start, stop), ...). Each group gets its own DTW on its columns.
        backend: "numba" (CPU SIMD kernel, multi-threaded), "torch" (anti-diagonal wavefront;
            CUDA when ``device`` is a GPU) or "plain" (the scalar reference loop).
        threads: CPU threads for "numba" (default: the cores this process may use).
        device: torch device for "torch".
        max_pairs_per_batch: "torch" only: pairs per wavefront batch (bounds memory).

    Returns:
        (P, G) float64 DTW distances, row p for pairs[p], column g for groups[g].
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, received {backend!r}")
    threads = check_threads(threads)
    xt = as_tensor("x", x, torch.float32, "cpu" if backend != "torch" else device)
    if xt.ndim != 3 or xt.shape[1] == 0:
        raise ValueError(f"x: expected shape (M, Tx>=1, D), received {tuple(xt.shape)}")
    check_finite("x", xt)
    dim = int(xt.shape[2])
    bounds = normalize_groups(groups, dim)
    frames, starts, lengths = _pack_sequences(y, dim)
    check_finite("y", torch.from_numpy(frames))
    if pairs is None:
        if xt.shape[0] != len(lengths):
            raise ValueError(f"pairs: None pairs x[m] with y[m] and needs as many y as x "
                             f"({xt.shape[0]}), received {len(lengths)} y sequences")
        pair_arr = np.stack([np.arange(len(lengths))] * 2, axis=1)
    else:
        pair_arr = np.asarray(pairs.cpu() if isinstance(pairs, torch.Tensor) else pairs)
        if pair_arr.ndim != 2 or pair_arr.shape[1] != 2:
            raise ValueError(f"pairs: expected shape (P, 2), received {pair_arr.shape}")
        pair_arr = pair_arr.astype(np.int64)
        if ((pair_arr < 0).any() or (pair_arr[:, 0] >= xt.shape[0]).any()
                or (pair_arr[:, 1] >= len(lengths)).any()):
            raise ValueError(f"pairs: indices out of range: x has {xt.shape[0]} sequences and "
                             f"y has {len(lengths)}")
    out = np.empty((len(pair_arr), len(bounds)), dtype=np.float64)
    if len(pair_arr) == 0:
        return out
    if backend == "torch":
        from metrics.dtw_torch import grouped_dtw_torch

        return grouped_dtw_torch(xt, frames, starts, lengths, pair_arr, bounds,
                                 device=device, max_pairs_per_batch=max_pairs_per_batch)
    xn = np.ascontiguousarray(xt.numpy())
    if backend == "plain":
        for p, (i, r) in enumerate(pair_arr):
            seq = frames[starts[r]:starts[r] + lengths[r]].astype(np.float64)
            for g, (a, b) in enumerate(bounds):
                out[p, g] = _dtw_plain(xn[i, :, a:b].astype(np.float64), seq[:, a:b])
        return out
    # Sort by y length so that the 16 lanes of a chunk have similar lengths (padding is wasted).
    order = np.argsort(-lengths[pair_arr[:, 1]], kind="stable")
    px = np.ascontiguousarray(pair_arr[order, 0])
    py = np.ascontiguousarray(pair_arr[order, 1])
    sorted_out = np.empty_like(out)
    binary = _binary_groups(xn, frames, bounds)
    run = _runner(bounds, binary)
    xbits, ybits = pack_bits(xn, frames, bounds, binary)
    # Tasks are ranges of 16-pair chunks; threads share the arrays (the kernel drops the GIL).
    parallel_ranges(
        lambda c0, c1: run(xn, frames, starts, lengths, px, py, c0, c1, sorted_out, xbits, ybits),
        -(-len(px) // LANES), threads)
    out[order] = sorted_out
    return out
