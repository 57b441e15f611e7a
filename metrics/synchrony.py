"""FRSyn: synchrony of each generated reaction with its speaker by time-lagged cross-correlation.

For a reaction P (T x 25) and its speaker S (T x 25), for every lag L in [-(W-1), W-1] with
W = 2 s * fps (99 lags at the challenge's fps=25): pair P[t + L] with S[t] over the frames where
both exist (L > 0 drops the first L frames of P and the last L of S) and take
``r(L) = mean_d Pearson(P_d, S_d)``. The reaction's offset is ``|L*|`` with L* the first lag of
maximal r; FRSyn is the mean offset (frames; lower is better) over ALL n and k.

Differences from the challenge's code, on purpose:
- All K reactions are scored. The baseline's multiprocessing path (``compute_TLCC_mp``, the one
  its evaluation scripts call) returns inside its loop and so scores only k = 0 per speaker;
  its serial path scores every k, as here.
- ``nan_policy="reactune"`` (default): a channel that is constant within a window has no Pearson
  correlation; it is left out of that lag's mean over dims. A lag with no defined channel is never
  chosen, and a reaction with no defined lag at all (e.g. a constant reaction) gets the largest
  offset, W - 1.
- ``nan_policy="challenge"`` reproduces the baseline: an undefined channel makes r(L) NaN, and the
  argmax treats NaN as the maximum, so the first NaN lag wins (a reaction or speaker with a
  channel constant over the whole clip gets offset W - 1 = 49). Use it to match leaderboard
  numbers; it mostly measures how many channels are constant.
"Constant" means max == min over the window (exact; binary AUs are the common case).
The baseline keeps fps = 25 on the 30 fps MARS data; so does the default here.

Implementation: window sums, sums of squares and constancy from prefix/suffix scans, float64
on centred data. CPU (numba, threads over speakers): direct cross products per lag. CUDA
(torch): cross products for all lags as one matrix product per (speaker, dim) with a sliding
window view of the zero-padded speaker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metrics import _kernels
from metrics._threads import parallel_ranges
from metrics._validate import pred_tensor, resolve_device, speaker_tensor
from react_data.schema import FPS

NAN_POLICIES = ("reactune", "challenge")
BACKENDS = ("numba", "torch")
_CHUNK_BYTES = 192 << 20


def max_lag(fps: int, seconds: float = 2.0) -> int:
    """Largest lag in frames: W - 1 with W = seconds * fps (49 at 25 fps)."""
    return int(seconds * fps) - 1


def frsyn(pred: Any, speaker: Any, *, fps: int = FPS, nan_policy: str = "reactune",
          device: torch.device | str | None = None, backend: str | None = None,
          threads: int | None = None) -> float:
    """FRSyn: mean absolute lag (frames) of the best time-lagged correlation with the speaker.

    Args:
        pred: (N, K, T, 25) generated reactions.
        speaker: (N, T, 25) speaker behaviour.
        fps: frame rate of the lag window (the challenge computes at 25 even on 30 fps data).
        nan_policy: "reactune" (undefined channels left out) or "challenge" (NaN-as-max).
        device: torch device (default: pred's).
        backend: "numba" (CPU default) or "torch" (CUDA default).
        threads: CPU threads for numba (default: all usable cores).

    Returns:
        FRSyn as a float in [0, W - 1] (lower is better).
    """
    lag = max_lag(fps)
    if lag < 0:
        raise ValueError(f"fps: expected a positive frame rate, received {fps}")
    dev = resolve_device(device, pred, speaker)
    p = pred_tensor(pred, dtype=torch.float32, device=dev, min_t=lag + 2)
    s = speaker_tensor(speaker, p.shape[0], p.shape[2], dtype=torch.float32, device=dev)
    return float(offsets(p, s, fps=fps, nan_policy=nan_policy, backend=backend,
                         threads=threads).mean())


def offsets(pred: torch.Tensor, speaker: torch.Tensor, *, fps: int = FPS,
            nan_policy: str = "reactune", backend: str | None = None,
            threads: int | None = None) -> torch.Tensor:
    """|best lag| of every reaction on validated float32 inputs.

    Args:
        pred: (N, K, T, D); speaker: (N, T, D); T >= W + 1.
        fps, nan_policy, backend, threads: as `frsyn`.

    Returns:
        (N, K) float64 offsets in frames (on CPU for numba, pred's device for torch).
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy: expected one of {NAN_POLICIES}, received {nan_policy!r}")
    backend = backend or ("torch" if pred.is_cuda else "numba")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, received {backend!r}")
    n, k, frames, dim = pred.shape
    lag = max_lag(fps)
    if backend == "numba":
        x = np.ascontiguousarray(pred.cpu().numpy())
        y = np.ascontiguousarray(speaker.cpu().numpy())
        res = np.empty((n, k))
        challenge = nan_policy == "challenge"
        parallel_ranges(lambda lo, hi: _kernels.tlcc_offsets(x, y, lag, challenge, lo, hi, res),
                        n, threads)
        return torch.from_numpy(res)
    per = max(1, _CHUNK_BYTES // (8 * dim * (frames * (2 * lag + 1) + 3 * k * frames)))
    out = torch.empty((n, k), dtype=torch.float64, device=pred.device)
    for s in range(0, n, per):
        r = lagged_correlations(pred[s:s + per], speaker[s:s + per], lag)  # (b, K, L, D)
        out[s:s + per] = _best_offsets(r, lag, nan_policy)
    return out


def _best_offsets(r: torch.Tensor, lag: int, nan_policy: str) -> torch.Tensor:
    """(b, K, L, D) per-dim correlations (NaN where undefined) -> (b, K) |argmax lag|."""
    if nan_policy == "challenge":
        # float32 mean of the per-dim values, NaN propagating; argmax takes NaN as the maximum.
        curve = r.to(torch.float32).mean(dim=-1)
        nan = torch.isnan(curve)
        first_nan = torch.where(nan.any(dim=-1), nan.to(torch.int32).argmax(dim=-1), -1)
        best = torch.where(first_nan >= 0, first_nan, curve.argmax(dim=-1))
    else:
        defined = ~torch.isnan(r)
        count = defined.sum(dim=-1)
        curve = torch.where(defined, r, 0.0).sum(dim=-1) / count.clamp(min=1)
        curve = torch.where(count > 0, curve, float("-inf"))
        best = torch.where((count > 0).any(dim=-1), curve.argmax(dim=-1), 0)
    return (best - lag).abs().to(torch.float64)


def lagged_correlations(pred: torch.Tensor, speaker: torch.Tensor, lag: int) -> torch.Tensor:
    """Pearson correlation per dim at every lag in [-lag, lag].

    Args:
        pred: (b, K, T, D); speaker: (b, T, D).
        lag: largest lag (frames), T >= lag + 2.

    Returns:
        (b, K, 2 * lag + 1, D) float64; index l holds lag l - ``lag``; NaN where a window of
        either series is constant. Values are clipped to [-1, 1] as ``np.corrcoef`` does.
    """
    b, k, frames, dim = pred.shape
    n_lags = 2 * lag + 1
    x = pred.to(torch.float64)
    y = speaker.to(torch.float64)
    x = x - x.mean(dim=2, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    # Cross products: xy[L] = sum_u x[u] y[u - L]; y padded by `lag` zeros on both sides, so
    # window column c covers y[u - lag + c], i.e. lag L = lag - c.
    ypad = torch.nn.functional.pad(y.transpose(1, 2), (lag, lag))  # (b, D, T + 2 lag)
    windows = ypad.unfold(-1, n_lags, 1)  # (b, D, T, n_lags), a view
    xy = torch.matmul(x.permute(0, 3, 1, 2).contiguous(), windows)  # (b, D, K, n_lags)
    xy = xy.flip(-1).permute(0, 2, 3, 1)  # (b, K, n_lags, D), index l -> lag l - lag
    lags = torch.arange(-lag, lag + 1, device=pred.device)
    length = (frames - lags.abs()).to(torch.float64)[None, None, :, None]
    # Window sums: x over [max(0, L), T + min(0, L)), y over [max(0, -L), T - max(0, L)).
    x_lo, x_hi = lags.clamp(min=0), frames + lags.clamp(max=0)
    y_lo, y_hi = (-lags).clamp(min=0), frames - lags.clamp(min=0)
    sx, sxx = _window_sums(x, 2, x_lo, x_hi)  # (b, K, n_lags, D)
    sy, syy = _window_sums(y, 1, y_lo, y_hi)  # (b, n_lags, D)
    sy, syy = sy[:, None], syy[:, None]
    cov = xy - sx * sy / length
    vx = (sxx - sx * sx / length).clamp(min=0.0)
    vy = (syy - sy * sy / length).clamp(min=0.0)
    r = (cov / torch.sqrt(vx * vy)).clamp(-1.0, 1.0)
    const_x = _window_constant(x, 2, lag)  # (b, K, n_lags, D)
    const_y = _window_constant(y, 1, lag).flip(-2)[:, None]  # y's windows mirror x's
    return torch.where(const_x | const_y, float("nan"), r)


def _window_sums(v: torch.Tensor, axis: int, lo: torch.Tensor,
                 hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums and sums of squares of v over frames [lo[l], hi[l]) along ``axis`` for every lag l."""
    pad = [0] * (2 * (v.ndim - axis - 1)) + [1, 0]
    c1 = torch.nn.functional.pad(v.cumsum(axis), pad)
    c2 = torch.nn.functional.pad(v.square().cumsum(axis), pad)
    s1 = c1.index_select(axis, hi) - c1.index_select(axis, lo)
    s2 = c2.index_select(axis, hi) - c2.index_select(axis, lo)
    return s1, s2


def _window_constant(v: torch.Tensor, axis: int, lag: int) -> torch.Tensor:
    """Whether v is constant over the lag windows of the *prediction* side along ``axis``.

    Lag L < 0 uses the prefix [0, T + L), L > 0 the suffix [L, T) (L = 0: everything); the
    speaker's windows are the same sets in mirror order (prefix for L > 0, suffix for L < 0).
    Returns a bool tensor with ``axis`` replaced by the 2 * lag + 1 lags.
    """
    frames = v.shape[axis]
    pre_max = v.cummax(axis).values
    pre_min = v.cummin(axis).values
    suf_max = v.flip(axis).cummax(axis).values.flip(axis)
    suf_min = v.flip(axis).cummin(axis).values.flip(axis)
    idx_pre = torch.arange(frames - 1 - lag, frames - 1, device=v.device)  # L = -lag .. -1
    idx_suf = torch.arange(0, lag + 1, device=v.device)  # L = 0 .. lag
    const_pre = (pre_max.index_select(axis, idx_pre) == pre_min.index_select(axis, idx_pre))
    const_suf = (suf_max.index_select(axis, idx_suf) == suf_min.index_select(axis, idx_suf))
    return torch.cat([const_pre, const_suf], dim=axis)
