"""Reference rows the challenge reports beside models: GT, Random, Mime, MeanFr.

Each function returns (N, K, T, 25) float32 "predictions" that are scored like a model's:

- GT: every speaker's real (paired) listener reaction, repeated K times.
- Random: noise. Default ``kind="gt_stats"`` is noise with the GT statistics (the 2025 wording):
  i.i.d. per frame; each AU ~ Bernoulli(its GT frequency), valence/arousal ~ Normal(GT mean,
  GT std) clipped to the GT range, expressions ~ Dirichlet with the GT mean probabilities and a
  concentration matched to their GT variance (method of moments). ``kind="uniform"`` is the
  2023 definition, i.i.d. U[0, 1) per element (FRVar ~ 1/12, FRDiv ~ FRDvs ~ 1/6).
- Mime: the speaker's own behaviour, repeated K times.
- MeanFr: the training-set mean frame (the 2026 definition: training listeners), constant.

>>> import numpy as np
>>> meanfr(np.full(25, 0.5), n=2, t=3, k=4).shape
(2, 4, 3, 25)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metrics._validate import as_tensor, check_finite
from metrics.evaluate import evaluate
from react_data.schema import ATTR_DIM, AU, EXPR, VA

RANDOM_KINDS = ("gt_stats", "uniform")
REFERENCE_NAMES = ("GT", "Random", "Mime", "MeanFr")


def _sequences(name: str, value: Any) -> np.ndarray:
    t = as_tensor(name, value, torch.float32, "cpu")
    if t.ndim != 3 or t.shape[-1] != ATTR_DIM or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected shape (N>=1, T>=1, {ATTR_DIM}), received "
                         f"{tuple(t.shape)}")
    check_finite(name, t)
    return t.numpy()


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k: expected a positive int (reactions per speaker), received {k!r}")
    return int(k)


def gt(listener: Any, k: int) -> np.ndarray:
    """GT reference: (N, T, 25) real listener reactions -> (N, K, T, 25), repeated K times."""
    x = _sequences("listener", listener)
    return np.repeat(x[:, None], _check_k(k), axis=1)


def mime(speaker: Any, k: int) -> np.ndarray:
    """Mime reference: (N, T, 25) speaker behaviour -> (N, K, T, 25), repeated K times."""
    x = _sequences("speaker", speaker)
    return np.repeat(x[:, None], _check_k(k), axis=1)


def meanfr(train_mean: Any, n: int, t: int, k: int) -> np.ndarray:
    """MeanFr reference: the (25,) training mean frame as (N, K, T, 25) constant predictions."""
    m = as_tensor("train_mean", train_mean, torch.float32, "cpu").numpy()
    if m.shape != (ATTR_DIM,):
        raise ValueError(f"train_mean: expected shape ({ATTR_DIM},), received {m.shape}")
    check_finite("train_mean", torch.from_numpy(m))
    for name, v in (("n", n), ("t", t)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive int, received {v!r}")
    return np.broadcast_to(m, (int(n), _check_k(k), int(t), ATTR_DIM)).copy()


def random_like(reference: Any, k: int, seed: int, *, kind: str = "gt_stats") -> np.ndarray:
    """Random reference: noise shaped like K copies of ``reference``.

    Args:
        reference: (N, T, 25) real listener reactions (their statistics, for "gt_stats").
        k: reactions per speaker.
        seed: generator seed (any int, 0 included, is a real seed).
        kind: "gt_stats" (default; noise with the GT statistics) or "uniform" (U[0, 1), 2023).

    Returns:
        (N, K, T, 25) float32.
    """
    if kind not in RANDOM_KINDS:
        raise ValueError(f"kind: expected one of {RANDOM_KINDS}, received {kind!r}")
    ref = _sequences("reference", reference)
    k = _check_k(k)
    rng = np.random.default_rng(seed)
    n, t, _ = ref.shape
    shape = (n, k, t)
    if kind == "uniform":
        return rng.random(shape + (ATTR_DIM,), dtype=np.float32)
    frames = ref.reshape(-1, ATTR_DIM).astype(np.float64)
    out = np.empty(shape + (ATTR_DIM,), dtype=np.float32)
    p_au = frames[:, AU].mean(axis=0)
    out[..., AU] = rng.random(shape + (p_au.size,)) < p_au
    va = frames[:, VA]
    noise = rng.normal(va.mean(axis=0), va.std(axis=0), size=shape + (va.shape[1],))
    out[..., VA] = np.clip(noise, va.min(axis=0), va.max(axis=0))
    out[..., EXPR] = _dirichlet_like(frames[:, EXPR], shape, rng)
    return out


def _dirichlet_like(probs: np.ndarray, shape: tuple[int, ...],
                    rng: np.random.Generator) -> np.ndarray:
    """Dirichlet samples with the mean of ``probs`` (F, E) and a moment-matched concentration."""
    eps = 1e-6
    mean = np.clip(probs.mean(axis=0), eps, None)
    mean = mean / mean.sum()
    var = probs.var(axis=0)
    # Var(p_e) = m_e (1 - m_e) / (s + 1) for a Dirichlet of total concentration s.
    ratio = mean * (1.0 - mean) / np.clip(var, eps, None) - 1.0
    concentration = float(np.clip(np.median(ratio), 0.05, 1e4))
    return rng.dirichlet(mean * concentration, size=shape)


def reference_rows(listener: Any, speaker: Any, appropriate: Any, train_mean: Any, k: int = 10,
                   seed: int = 0, *, metrics: tuple[str, ...] | list[str] | None = None,
                   device: torch.device | str | None = None,
                   threads: int | None = None) -> dict[str, dict[str, float]]:
    """Score the four references with `metrics.evaluate` on the same sets as the models.

    Args:
        listener: (N, T, 25) paired real listener reactions (GT and Random's statistics).
        speaker: (N, T, 25) speaker behaviour (Mime, FRSyn).
        appropriate: N arrays (G_n, T_n, 25) appropriate reactions.
        train_mean: (25,) training-set mean frame (MeanFr).
        k: reactions per speaker (the challenge uses 10).
        seed: Random's seed.
        metrics, device, threads: passed to `evaluate`.

    Returns:
        {"GT": {metric: value}, "Random": ..., "Mime": ..., "MeanFr": ...}.
    """
    lis = _sequences("listener", listener)
    spk = _sequences("speaker", speaker)
    if spk.shape != lis.shape:
        raise ValueError(f"speaker: expected shape {lis.shape} (the listener's), received "
                         f"{spk.shape}")
    n, t, _ = lis.shape
    preds = {
        "GT": gt(lis, k),
        "Random": random_like(lis, k, seed),
        "Mime": mime(spk, k),
        "MeanFr": meanfr(train_mean, n, t, k),
    }
    return {name: evaluate(p, appropriate, spk, metrics=metrics, device=device, threads=threads)
            for name, p in preds.items()}
