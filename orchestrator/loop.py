"""The framework-free training loop: optimiser, one epoch, evaluation with the REACT metrics.

Plain functions on plain objects (a model, an iterable of ``ReactionBatch``, an eval set), so a
Ray Tune trainable, a CLI stage and a test call exactly the same code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from react_data.batch import ReactionBatch
from react_models.base import ReactionModel

ProgressFn = Callable[[int, dict[str, float]], None]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) default generators.

    This deliberately sets the process's default RNG states (the point of the call); it changes
    nothing else (no ``np.seterr``, no deterministic-algorithm flags). Seed 0 is a seed like any
    other, never "unseeded".

    Args:
        seed: a non-negative integer.

    Returns:
        A fresh ``np.random.Generator`` seeded with ``seed``, for code that prefers an explicit
        generator over the global state.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 5e-4,
                   betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW (the baselines' optimiser) with weight decay on matrices only.

    Biases, norm scales and single learned tokens (parameters with fewer than 2 dims) are not
    decayed: shrinking them toward 0 only shifts activations.

    Args:
        model: the model to optimise.
        lr: learning rate (Trans-VAE README 1e-5; diffusion/REGNN 1e-4).
        weight_decay: decoupled weight decay on >=2-d parameters (baselines: 5e-4).
        betas: Adam moment coefficients.
    """
    if not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas)


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def train_epoch(model: ReactionModel, batches: Iterable[ReactionBatch],
                optimizer: torch.optim.Optimizer, *, grad_clip: float | None = 1.0,
                max_steps: int | None = None, progress: ProgressFn | None = None
                ) -> dict[str, float]:
    """One pass over ``batches``: forward, backward, clip, step.

    Batches are moved to the model's device. A non-finite loss stops the epoch with
    FloatingPointError (a diverged trial must fail, not report NaN as a score).

    Args:
        model: a ReactionModel (set to train mode).
        batches: iterable of ReactionBatch with listener targets.
        optimizer: e.g. from :func:`make_optimizer`.
        grad_clip: max global gradient norm; None or 0 disables clipping.
        max_steps: stop after this many optimiser steps (None: the whole iterable).
        progress: called after each step with (step index, {loss name: value}).

    Returns:
        The mean of every loss the model returned, over the steps taken (a loss a model
        reports only on some batches is averaged over those).
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    device = _device_of(model)
    model.train()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    steps = 0
    for batch in batches:
        if max_steps is not None and steps >= max_steps:
            break
        losses = model(batch.to(device))
        if "total" not in losses:
            raise ValueError(f"{type(model).__name__}.forward returned {sorted(losses)}; the "
                             f"contract needs a 'total' loss to optimise")
        values = {k: float(v.detach()) for k, v in losses.items()}
        if not math.isfinite(values["total"]):
            raise FloatingPointError(
                f"non-finite loss at step {steps}: {values}; lower the learning rate or check "
                f"the batch (clip {batch.clip[:3]})"
            )
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
        if progress is not None:
            progress(steps, values)
        steps += 1
    if steps == 0:
        raise ValueError("train_epoch got no batches: the training split is empty or the "
                         "iterable was already consumed; build a fresh iterator per epoch")
    return {k: sums[k] / counts[k] for k in sums}


def slice_batch(batch: ReactionBatch, start: int, stop: int) -> ReactionBatch:
    """Items ``start:stop`` of a batch (every per-item field sliced alike)."""
    def cut(v: Any) -> Any:
        return v[start:stop] if isinstance(v, (torch.Tensor, list)) else v

    return replace(batch, **{f: cut(getattr(batch, f)) for f in (
        "speaker_attr", "speaker_coef", "speaker_audio", "listener_attr", "listener_coef",
        "mask", "listener_idx", "session", "clip")})


@torch.no_grad()
def sample_eval_set(model: ReactionModel, batch: ReactionBatch, *, num_samples: int = 10,
                    seed: int = 0, batch_size: int = 8) -> np.ndarray:
    """K reactions for every speaker of ``batch``, generated in mini-batches, seeded.

    The model runs in eval mode (its previous mode is restored) and the global RNG state is
    left as it was (the seed applies inside a forked RNG).

    Returns:
        (N, K, T, 25) float32 predicted attributes.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples}, "
                         f"{batch_size}")
    device = _device_of(model)
    cuda = [device.index or 0] if device.type == "cuda" else []
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            for s in range(0, batch.batch_size, batch_size):
                sub = slice_batch(batch, s, s + batch_size).to(device)
                out.append(model.sample(sub, num_samples).attr.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out, axis=0)


def evaluate(model: ReactionModel, eval_set: Any, *, num_samples: int = 10,
             metrics: list[str] | tuple[str, ...] | None = None, seed: int = 0,
             batch_size: int = 8, metrics_device: str | None = None) -> dict[str, float]:
    """Sample K reactions for the eval set's speakers and score them with ``metrics.evaluate``.

    Args:
        model: a ReactionModel (any device; its train/eval mode is restored afterwards).
        eval_set: a ``react_data.stream.EvalSet`` (``batch``: the N speakers as one
            ReactionBatch; ``appropriate``: N arrays (G_n, T, 25); ``speaker``: (N, T, 25)).
        num_samples: K reactions per speaker (the challenge uses 10).
        metrics: metric names to compute (None: the metrics package's default set).
        seed: sampling seed (same seed, same model -> same scores).
        batch_size: speakers per sampling call.
        metrics_device: passed to ``metrics.evaluate`` as ``device`` when given.

    Returns:
        {metric name: value}, e.g. {"FRDist": ..., "FRDiv": ...}.

    Raises:
        ImportError: the metrics package has no ``evaluate`` (never a silent fallback).
    """
    try:
        from metrics import evaluate as metrics_evaluate
    except ImportError as e:
        raise ImportError("orchestrator.loop.evaluate needs metrics.evaluate (the REACT metrics "
                          "package); install reactune fully (pip install -e .)") from e
    if not callable(metrics_evaluate):
        raise ImportError(f"metrics.evaluate is a {type(metrics_evaluate).__name__}, not the "
                          f"metrics function; the metrics package must export evaluate()")
    pred = sample_eval_set(model, eval_set.batch, num_samples=num_samples, seed=seed,
                           batch_size=batch_size)
    kwargs: dict[str, Any] = {"metrics": metrics}
    if metrics_device is not None:
        kwargs["device"] = metrics_device
    scores = metrics_evaluate(pred, eval_set.appropriate, eval_set.speaker, **kwargs)
    return {k: float(v) for k, v in scores.items()}
