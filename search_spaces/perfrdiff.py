"""PerFRDiff search space (spec 4.7 "Diffusion"): denoiser size, sampler, guidance, losses.

The sampler kind and its step count are sampling-time knobs (``react_models.diffusion``), so
they are searched without changing what is trained; DDIM's ``eta`` exists only for DDIM, and
the speaker-window ratio and the window only for the online task.
"""

from __future__ import annotations

from typing import Any

# Per size: denoiser layers (low, high), heads choices, latent width (low, high, step),
# sampler steps (low, high), online windows.
_LAYERS = {"full": (6, 12), "tiny": (1, 2)}
_HEADS = {"full": (4, 8), "tiny": (2, 4)}
_LATENT = {"full": (256, 768, 128), "tiny": (16, 32, 16)}
_STEPS = {"full": (10, 100), "tiny": (4, 16)}
_WINDOWS = {"full": (30, 40, 50, 60), "tiny": (8, 16)}


def define_space(trial: Any, *, task: str = "offline", size: str = "full") -> dict[str, Any]:
    """Sample one PerFRDiff configuration.

    Args:
        trial: an ``optuna.Trial``.
        task: "online" adds the window and the speaker-window ratio.
        size: "full" or "tiny" architecture ranges.

    Returns:
        Hydra override path -> value, for every parameter this trial fixed.
    """
    m = "baseline.model."
    lat_lo, lat_hi, lat_step = _LATENT[size]
    p: dict[str, Any] = {
        "baseline.trainer.lr": trial.suggest_float("baseline.trainer.lr", 5e-5, 3e-4, log=True),
        m + "num_layers": trial.suggest_int(m + "num_layers", *_LAYERS[size]),
        m + "num_heads": trial.suggest_categorical(m + "num_heads", _HEADS[size]),
        # every choice is a multiple of every head count, as the attention split needs
        m + "latent_dim": trial.suggest_int(m + "latent_dim", lat_lo, lat_hi, step=lat_step),
        m + "sampler": trial.suggest_categorical(m + "sampler", ("ddim", "ddpm")),
        m + "sample_steps": trial.suggest_int(m + "sample_steps", *_STEPS[size], log=True),
        m + "guidance_scale": trial.suggest_float(m + "guidance_scale", 1.0, 7.5),
        m + "cond_drop_emotion": trial.suggest_float(m + "cond_drop_emotion", 0.0, 0.5),
        m + "cond_drop_audio": trial.suggest_float(m + "cond_drop_audio", 0.0, 0.5),
        m + "cond_drop_3dmm": trial.suggest_float(m + "cond_drop_3dmm", 0.0, 0.5),
        m + "w_va": trial.suggest_float(m + "w_va", 1.0, 10.0),
        m + "w_em": trial.suggest_float(m + "w_em", 1.0, 10.0),
        # ours (off in the spec): a frame-distance prior on the cross-attention
        m + "distance_bias": trial.suggest_categorical(m + "distance_bias", (False, True)),
    }
    if p[m + "sampler"] == "ddim":
        p[m + "ddim_eta"] = trial.suggest_float(m + "ddim_eta", 0.0, 1.0)
    if task == "online":
        p["task.window_size"] = trial.suggest_categorical("task.window_size", _WINDOWS[size])
        p[m + "s_ratio"] = trial.suggest_int(m + "s_ratio", 1, 3)
    return p
