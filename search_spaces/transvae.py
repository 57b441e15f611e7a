"""Trans-VAE search space (spec 4.7): optimiser, KL/diversity/pose weights, width, crop, window.

Keys are Hydra override paths into ``orchestrator/conf`` (``baseline/transvae.yaml``,
``task/online.yaml``). ``feature_dim`` moves in steps that keep it a multiple of
``2 * n_heads`` (the model's rule).
"""

from __future__ import annotations

from typing import Any

# Architecture ranges per size: (feature_dim low, high, step), (train crop low, high, step).
_WIDTH = {"full": (64, 256, 64), "tiny": (16, 32, 16)}
_CROP = {"full": (128, 736, 32), "tiny": (32, 96, 32)}
_WINDOWS = (4, 8, 16, 32)  # online generation window (frames): 4 - 32


def define_space(trial: Any, *, task: str = "offline", size: str = "full") -> dict[str, Any]:
    """Sample one Trans-VAE configuration.

    Args:
        trial: an ``optuna.Trial`` (or anything with its ``suggest_*`` methods).
        task: "online" adds ``task.window_size`` (the offline model has no window).
        size: "full" or "tiny" architecture/crop ranges.

    Returns:
        Hydra override path -> value, for every parameter this trial fixed.
    """
    lo, hi, step = _WIDTH[size]
    c_lo, c_hi, c_step = _CROP[size]
    params: dict[str, Any] = {
        "baseline.trainer.lr": trial.suggest_float("baseline.trainer.lr", 5e-6, 2e-4, log=True),
        "baseline.model.kl_p": trial.suggest_float("baseline.model.kl_p", 1e-6, 1e-3, log=True),
        "baseline.model.div_p": trial.suggest_float("baseline.model.div_p", 0.0, 100.0),
        "baseline.model.feature_dim": trial.suggest_int("baseline.model.feature_dim", lo, hi,
                                                        step=step),
        "baseline.trainer.max_seq_len": trial.suggest_int("baseline.trainer.max_seq_len", c_lo,
                                                          c_hi, step=c_step),
    }
    # One pose weight for rotation and translation, as in the baseline loss.
    pose = trial.suggest_float("baseline.model.w_rot", 1.0, 10.0)
    params["baseline.model.w_rot"] = pose
    params["baseline.model.w_trans"] = pose
    if task == "online":
        window = trial.suggest_categorical("task.window_size", _WINDOWS)
        params["task.window_size"] = window
        # The online model re-encodes at most one training crop of history per window.
        params["baseline.model.max_history"] = params["baseline.trainer.max_seq_len"]
    return params
