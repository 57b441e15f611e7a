"""Plain loop implementations of the REACT metrics, written from the definitions.

They follow the challenge's own way of computing (np.corrcoef per dimension, tslearn's dtw per
group, torch.cdist distance matrices, Python loops over lags) and are the yardstick the fast
paths are tested against. Slow on purpose: small inputs only.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg
from tslearn.metrics import dtw as tslearn_dtw

GROUPS = ((0, 15, 1.0 / 15.0), (15, 17, 1.0), (17, 25, 1.0 / 8.0))


def ccc(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over dims of the challenge CCC (np.corrcoef, NaN -> 0, clipped; population moments)."""
    out = []
    for d in range(a.shape[1]):
        x, y = a[:, d].astype(np.float64), b[:, d].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(x, y)[0, 1]
        r = float(np.clip(np.nan_to_num(r), -1.0, 1.0))
        num = 2 * r * np.std(x) * np.std(y)
        den = np.var(x) + np.var(y) + (np.mean(x) - np.mean(y)) ** 2
        out.append(num / (den + 1e-8))
    return float(np.mean(out))


def frcorr(pred: np.ndarray, appropriate: list[np.ndarray]) -> float:
    per = []
    for n in range(pred.shape[0]):
        per.append(sum(max(ccc(a, pred[n, k]) for a in appropriate[n])
                       for k in range(pred.shape[1])))
    return float(np.mean(per))


def pair_distance(p: np.ndarray, a: np.ndarray) -> float:
    """Weighted grouped tslearn DTW, inputs cast to float32 as the challenge does."""
    p32, a32 = p.astype(np.float32), a.astype(np.float32)
    return sum(w * tslearn_dtw(p32[:, s:e], a32[:, s:e]) for s, e, w in GROUPS)


def frdist(pred: np.ndarray, appropriate: list[np.ndarray]) -> float:
    per = []
    for n in range(pred.shape[0]):
        per.append(sum(min(pair_distance(pred[n, k], a) for a in appropriate[n])
                       for k in range(pred.shape[1])))
    return float(np.mean(per))


def frdiv(pred: np.ndarray) -> float:
    n, k = pred.shape[:2]
    total = 0.0
    for i in range(n):
        z = torch.from_numpy(pred[i].reshape(k, -1)).double()
        total += float(torch.cdist(z, z).square().sum()) / (k * (k - 1) * z.shape[1])
    return total / n


def frvar(pred: np.ndarray) -> float:
    return float(torch.from_numpy(pred).double().var(dim=2, unbiased=True).mean())


def frdvs(pred: np.ndarray) -> float:
    n, k = pred.shape[:2]
    z = torch.from_numpy(pred.reshape(n, k, -1)).double().transpose(0, 1)  # (K, N, D')
    return float(torch.cdist(z, z).square().sum()) / (n * (n - 1) * k) / z.shape[-1]


def _shift(x: np.ndarray, y: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    if lag > 0:
        return x[lag:], y[:-lag]
    if lag < 0:
        return x[:lag], y[-lag:]
    return x, y


def tlcc_offset(pred: np.ndarray, speaker: np.ndarray, *, fps: int = 25,
                policy: str = "reactune") -> int:
    """|best lag| of one (T, D) reaction against its (T, D) speaker, by loops."""
    lag_max = 2 * fps - 1
    curve = []
    for lag in range(-lag_max, lag_max + 1):
        per_dim = []
        for d in range(pred.shape[1]):
            x, y = _shift(pred[:, d].astype(np.float64), speaker[:, d].astype(np.float64), lag)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_dim.append(np.corrcoef(x, y)[0, 1])
        per_dim = np.array(per_dim)
        if policy == "challenge":
            curve.append(float(np.float32(per_dim).astype(np.float32).mean()))
        else:
            ok = ~np.isnan(per_dim)
            curve.append(float(per_dim[ok].mean()) if ok.any() else -np.inf)
    curve = np.array(curve)
    if policy == "challenge":
        best = int(np.argmax(curve))  # numpy's argmax, like torch's, returns the first NaN
    else:
        best = int(np.argmax(curve)) if np.isfinite(curve).any() else 0
    return abs(best - lag_max)


def frsyn(pred: np.ndarray, speaker: np.ndarray, *, fps: int = 25,
          policy: str = "reactune") -> float:
    return float(np.mean([tlcc_offset(pred[n, k], speaker[n], fps=fps, policy=policy)
                          for n in range(pred.shape[0]) for k in range(pred.shape[1])]))


def frechet(gen: np.ndarray, real: np.ndarray) -> float:
    """FID-style formula with scipy's sqrtm on (F, D) samples."""
    mu1, mu2 = gen.mean(0), real.mean(0)
    c1, c2 = np.cov(gen, rowvar=False), np.cov(real, rowvar=False)
    root = linalg.sqrtm(c1 @ c2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(root)))
