"""`evaluate`: every REACT metric of one set of predictions, validated once, as a dict of floats.

A search trial calls this every epoch, so it runs the fast paths: the SIMD numba DTW on CPU
threads, or torch (FRDist's wavefront included) on a GPU with ``device="cuda"``.
"""

from __future__ import annotations

from typing import Any

import torch

from metrics._validate import appropriate_list, pred_tensor, resolve_device, speaker_tensor
from metrics.appropriateness import frcorr_checked, frdist_checked
from metrics.diversity import diversity_checked
from metrics.realism import frechet_checked
from metrics.synchrony import NAN_POLICIES, max_lag, offsets
from react_data.schema import FPS

# name -> higher_is_better
METRICS: dict[str, bool] = {
    "FRCorr": True,
    "FRDist": False,
    "FRDiv": True,
    "FRVar": True,
    "FRDvs": True,
    "FRSyn": False,
    "FRRea_features": False,
}
DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)


def evaluate(pred: Any, appropriate: Any, speaker: Any = None, *,
             metrics: tuple[str, ...] | list[str] | None = None,
             device: torch.device | str | None = None, threads: int | None = None,
             fps: int = FPS, nan_policy: str = "reactune") -> dict[str, float]:
    """Score generated reactions with the REACT metrics.

    Args:
        pred: (N, K, T, 25) generated reactions (numpy or torch, CPU or CUDA).
        appropriate: N arrays (G_n, T_n, 25) of appropriate real reactions, or (N, G, T, 25).
            FRCorr needs T_n == T (see `metrics.align`); FRDist takes any T_n.
        speaker: (N, T, 25) speaker behaviour; needed by FRSyn only.
        metrics: names to compute: FRCorr (needs T_n == T), FRDist (sums over K), FRDiv
            (K >= 2), FRVar (T >= 2), FRDvs (N >= 2), FRSyn (speaker given, T >= 2 s * fps + 1),
            FRRea_features (Fréchet distance of attribute statistics against the pooled
            appropriate reactions; not the rendered-image FID). A name asked for whose need is
            not met raises ``ValueError``. None: every metric of `METRICS` that these inputs
            allow (the returned keys say which).
        device: "cpu" or "cuda" (default: pred's device). On CUDA every metric runs in torch.
        threads: CPU threads for FRDist's numba kernel (default: all usable cores).
        fps: FRSyn's lag clock (the challenge uses 25).
        nan_policy: FRSyn's treatment of constant channels ("reactune" or "challenge").

    Returns:
        {name: float} in the order asked.
    """
    names = _applicable(pred, appropriate, speaker, fps) if metrics is None else tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics: expected names from {tuple(METRICS)}, received "
                         f"{list(names)}")
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy: expected one of {NAN_POLICIES}, received {nan_policy!r}")
    dev = resolve_device(device, pred, speaker)
    need = {
        "min_k": 2 if "FRDiv" in names else 1,
        "min_n": 2 if "FRDvs" in names else 1,
        "min_t": max(2 if "FRVar" in names else 1,
                     max_lag(fps) + 2 if "FRSyn" in names else 1),
    }
    p = pred_tensor(pred, dtype=torch.float32, device=dev, **need)
    n, _, frames, _ = p.shape
    apps = appropriate_list(appropriate, n, dtype=torch.float32, device=dev,
                            frames=frames if "FRCorr" in names else None)
    spk = None
    if "FRSyn" in names:
        if speaker is None:
            raise ValueError("speaker: expected an (N, T, 25) array for FRSyn, received None; "
                             "pass the speaker behaviour or drop FRSyn from metrics")
        spk = speaker_tensor(speaker, n, frames, dtype=torch.float32, device=dev)
    out: dict[str, float] = {}
    diversity = diversity_checked(p, tuple(m for m in names if m in ("FRDiv", "FRVar", "FRDvs")),
                                  threads=threads)
    for name in names:
        if name == "FRCorr":
            out[name] = frcorr_checked(p, apps, threads=threads)
        elif name == "FRDist":
            out[name] = frdist_checked(p, apps, threads=threads)
        elif name in diversity:
            out[name] = diversity[name]
        elif name == "FRSyn":
            out[name] = float(offsets(p, spk, fps=fps, nan_policy=nan_policy,
                                      threads=threads).mean())
        elif name == "FRRea_features":
            out[name] = frechet_checked(p.reshape(-1, p.shape[-1]),
                                        [a.reshape(-1, a.shape[-1]) for a in apps])
    return out


def _applicable(pred: Any, appropriate: Any, speaker: Any, fps: int) -> tuple[str, ...]:
    """The metrics of `DEFAULT_METRICS` whose input requirements hold (shapes only)."""
    shape = tuple(pred.shape) if hasattr(pred, "shape") else ()
    if len(shape) != 4:
        return DEFAULT_METRICS  # let validation report the shape
    n, k, frames, _ = shape
    try:
        lengths = {int(a.shape[-2]) for a in appropriate}
    except (AttributeError, IndexError, TypeError):
        return DEFAULT_METRICS  # let validation report the sets
    need = {
        "FRCorr": lengths == {frames},
        "FRDiv": k >= 2,
        "FRVar": frames >= 2,
        "FRDvs": n >= 2,
        "FRSyn": speaker is not None and frames >= max_lag(fps) + 2,
    }
    return tuple(m for m in DEFAULT_METRICS if need.get(m, True))
