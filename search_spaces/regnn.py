"""REGNN search space (spec 4.7): optimiser, graph depth, edges/top-k, noise, loss-mid, norm.

The graph width ``window_size`` (frames per node feature; ``num_frames`` in the baseline) is a
model parameter here in both tasks (the model generates window by window offline too); online it
is also the task's generation window, so it is searched as ``task.window_size`` there.
"""

from __future__ import annotations

from typing import Any

# Per size: motor-processor layers (low, high), edge channels (low, high), windows.
_LAYERS = {"full": (1, 6), "tiny": (1, 2)}
_EDGES = {"full": (4, 16), "tiny": (2, 4)}
_WINDOWS = {"full": (25, 50, 75, 100), "tiny": (8, 16)}


def define_space(trial: Any, *, task: str = "offline", size: str = "full") -> dict[str, Any]:
    """Sample one REGNN configuration.

    Args:
        trial: an ``optuna.Trial``.
        task: "online" searches the window as ``task.window_size``.
        size: "full" or "tiny" architecture ranges.

    Returns:
        Hydra override path -> value, for every parameter this trial fixed.
    """
    m = "baseline.model."
    window_key = "task.window_size" if task == "online" else m + "window_size"
    return {
        "baseline.trainer.lr": trial.suggest_float("baseline.trainer.lr", 5e-5, 5e-4, log=True),
        m + "num_layers": trial.suggest_int(m + "num_layers", *_LAYERS[size]),
        m + "edge_channels": trial.suggest_int(m + "edge_channels", *_EDGES[size]),
        m + "top_k": trial.suggest_int(m + "top_k", 3, 10),
        m + "noise_threshold": trial.suggest_float(m + "noise_threshold", 0.01, 0.5, log=True),
        m + "loss_mid": trial.suggest_categorical(m + "loss_mid", (True, False)),
        m + "norm": trial.suggest_categorical(m + "norm", (True, False)),
        window_key: trial.suggest_categorical(window_key, _WINDOWS[size]),
    }
