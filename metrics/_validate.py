"""Input checks shared by every metric: shapes, finiteness, set sizes; one clear error each.

Every check raises ``ValueError`` (wrong shape or value) or ``TypeError`` (wrong kind of object)
naming the argument, the expected and the received shape, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from metrics import _kernels
from react_data.schema import ATTR_DIM

ArrayLike = np.ndarray | torch.Tensor


def as_tensor(name: str, value: Any, dtype: torch.dtype = torch.float64,
              device: torch.device | str | None = None) -> torch.Tensor:
    """numpy array or torch tensor -> torch tensor (no copy when dtype and device already match).

    Raises:
        TypeError: ``value`` is neither a numpy array nor a torch tensor.
    """
    if isinstance(value, torch.Tensor):
        t = value.detach()
    elif isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
                or value.dtype == np.bool_):
            raise TypeError(f"{name}: expected a numeric array, received dtype {value.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise TypeError(f"{name}: expected a numpy array or a torch tensor, received "
                        f"{type(value).__name__}; convert it with np.asarray(...)")
    return t.to(device=device if device is not None else t.device, dtype=dtype)


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or infinity, saying where the first one is."""
    if not t.is_floating_point() or t.numel() == 0:
        return
    if t.is_cuda:
        if bool(torch.isfinite(t).all()):
            return
        where = tuple(int(i) for i in torch.nonzero(~torch.isfinite(t))[0])
    else:
        flat = t.reshape(-1).numpy() if t.is_contiguous() else t.contiguous().reshape(-1).numpy()
        first = int(_kernels.first_nonfinite(flat))
        if first < 0:
            return
        where = tuple(int(i) for i in np.unravel_index(first, tuple(t.shape)))
    raise ValueError(f"{name}: expected finite values, received NaN/inf at index {where} "
                     f"(shape {tuple(t.shape)}); fill or drop those frames before scoring")


def _shape_error(name: str, expected: str, got: tuple[int, ...], fix: str) -> ValueError:
    return ValueError(f"{name}: expected shape {expected}, received {got}; {fix}")


def pred_tensor(pred: Any, *, dtype: torch.dtype = torch.float64,
                device: torch.device | str | None = None, min_k: int = 1,
                min_n: int = 1, min_t: int = 1, name: str = "pred") -> torch.Tensor:
    """Validate predictions: (N, K, T, 25) finite, with at least ``min_k``/``min_n``/``min_t``."""
    t = as_tensor(name, pred, dtype, device)
    if t.ndim != 4 or t.shape[-1] != ATTR_DIM:
        fix = ("add the K axis with pred[:, None] for a single reaction per speaker"
               if t.ndim == 3 else f"pass N speakers x K reactions x T frames x {ATTR_DIM} dims")
        raise _shape_error(name, f"(N, K, T, {ATTR_DIM})", tuple(t.shape), fix)
    n, k, frames, _ = t.shape
    if n < min_n:
        raise _shape_error(name, f"(N>={min_n}, K, T, {ATTR_DIM})", tuple(t.shape),
                           f"this metric compares speakers and needs at least {min_n}")
    if k < min_k:
        raise _shape_error(name, f"(N, K>={min_k}, T, {ATTR_DIM})", tuple(t.shape),
                           f"this metric compares the K reactions of a speaker and needs at "
                           f"least {min_k}; sample more reactions (the challenge uses K=10)")
    if frames < min_t:
        raise _shape_error(name, f"(N, K, T>={min_t}, {ATTR_DIM})", tuple(t.shape),
                           f"this metric needs at least {min_t} frames")
    check_finite(name, t)
    return t


def speaker_tensor(speaker: Any, n: int, frames: int, *, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Validate speaker behaviour: (N, T, 25) matching the predictions' N and T."""
    t = as_tensor("speaker", speaker, dtype, device)
    expected = (n, frames, ATTR_DIM)
    if tuple(t.shape) != expected:
        raise _shape_error("speaker", str(expected), tuple(t.shape),
                           "pass one (T, 25) speaker sequence per prediction row, cropped to "
                           "the predictions' T frames")
    check_finite("speaker", t)
    return t


def appropriate_list(appropriate: Any, n: int, *, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None,
                     frames: int | None = None) -> list[torch.Tensor]:
    """Validate appropriate sets: N arrays (G_n >= 1, T_n, 25), or one (N, G, T, 25) array.

    Args:
        appropriate: the sets.
        n: expected number of speakers (the predictions' N).
        dtype, device: conversion target.
        frames: if given, every T_n must equal it (FRCorr compares frame by frame).
    """
    if isinstance(appropriate, (np.ndarray, torch.Tensor)):
        if appropriate.ndim != 4:
            raise _shape_error("appropriate", f"(N, G, T, {ATTR_DIM}) or a list of N arrays "
                               f"(G_n, T_n, {ATTR_DIM})", tuple(appropriate.shape),
                               "wrap a single set per speaker as appropriate[:, None]")
        items: Sequence[Any] = list(appropriate)
    elif isinstance(appropriate, Sequence) and not isinstance(appropriate, (str, bytes)):
        items = appropriate
    else:
        raise TypeError(f"appropriate: expected a sequence of N arrays (G_n, T_n, {ATTR_DIM}), "
                        f"received {type(appropriate).__name__}")
    if len(items) != n:
        raise ValueError(f"appropriate: expected {n} sets (one per speaker of pred), received "
                         f"{len(items)}; pass appropriate[n] for every speaker n")
    out = []
    for i, item in enumerate(items):
        name = f"appropriate[{i}]"
        t = as_tensor(name, item, dtype, device)
        if t.ndim != 3 or t.shape[-1] != ATTR_DIM:
            raise _shape_error(name, f"(G, T, {ATTR_DIM})", tuple(t.shape),
                               "stack the speaker's appropriate reactions along axis 0")
        if t.shape[0] == 0:
            raise _shape_error(name, f"(G>=1, T, {ATTR_DIM})", tuple(t.shape),
                               "every speaker needs at least one appropriate reaction (its "
                               "paired listener)")
        if t.shape[1] == 0:
            raise _shape_error(name, f"(G, T>=1, {ATTR_DIM})", tuple(t.shape),
                               "drop empty reactions")
        if frames is not None and t.shape[1] != frames:
            raise _shape_error(name, f"(G, {frames}, {ATTR_DIM})", tuple(t.shape),
                               f"FRCorr compares frame by frame: resample with "
                               f"metrics.align(appropriate, {frames}) first")
        check_finite(name, t)
        out.append(t)
    return out


def resolve_device(device: torch.device | str | None, *tensors: Any) -> torch.device:
    """The device to compute on: ``device`` if given, else the first CUDA tensor's, else CPU."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: expected an available device, received {device!r} but "
                             f"CUDA is not available here; pass device='cpu'")
        return dev
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_cuda:
            return t.device
    return torch.device("cpu")
