"""PerFRDiff's hyperparameters and their validation (the model is in `react_models.perfrdiff`)."""

from __future__ import annotations

from dataclasses import dataclass

from react_data import schema
from react_models import diffusion


@dataclass(frozen=True)
class PerFRDiffConfig:
    """PerFRDiff hyperparameters (spec §4.4/§4.5 values unless noted)."""

    online: bool = False  # offline task by default: the whole speaker sequence is visible
    window_size: int = 30  # online listener window (frames), spec
    s_ratio: int = 2  # speaker window = s_ratio * window_size frames ending at the window end, spec
    max_len: int = 750  # offline chunk/crop length and PE table size (baseline clip_length)
    latent_dim: int = 512  # spec width; the spec default is kept, shrink it for CPU runs
    num_layers: int = 9  # decoder depth of the 2025 yaml
    num_heads: int = 8  # spec
    ff_dim: int = 1024  # spec
    dropout: float = 0.1  # spec
    time_embed_dim: int = 64  # sinusoidal timestep features before the MLP, spec
    audio_dim: int = schema.AUDIO_DIM  # our audio features (78-d MFCC); the 2025 yaml used 768
    num_train_steps: int = 1000  # spec
    noise_schedule: str = "cosine"  # spec; "linear" also available
    sampler: str = "ddim"  # default sampler; overridable per sample() call
    sample_steps: int = 50  # spec DDIM steps (also the respaced DDPM step count)
    ddim_eta: float = 0.0  # deterministic DDIM, as diffusers' default
    timestep_spacing: str = "leading"  # spec
    ddpm_variance: str = "fixed_large"  # spec's variance type (used by the "ddpm" sampler)
    guidance_scale: float = 1.0  # spec: 1 = conditional branch only
    cond_drop_audio: float = 0.2  # per-sample condition dropout (CFG training), spec
    cond_drop_3dmm: float = 0.2  # spec
    cond_drop_emotion: float = 0.2  # spec (speaker attributes)
    w_au: float = 1.0  # loss weights, spec yaml
    w_va: float = 5.0  # spec yaml
    w_em: float = 5.0  # spec yaml (expressions)
    w_coef: float = 1.0  # ours: the 3DMM group the baseline does not diffuse
    temporal_loss_w: float = 0.0  # spec loss yaml (0 = off): weight of the velocity MSE
    num_preds_train: int = 10  # each item repeated with independent t/noise (/window), spec
    personalised: bool = False  # the 2025 generic baseline; True = §4.5 weight editing
    num_persons: int = 1024  # person-table size; must exceed every listener_idx in the data
    person_embed_dim: int = 512  # spec person embedding width
    person_encoder_layers: int = 4  # spec history encoder depth (online only); 0 = table only
    history_max_len: int = 750  # spec history length (last frames of the listener context)
    edit_rank: int = 8  # low-rank deviation from the full-rank hypernet (spec table: 4-16)
    edited_layers: tuple[int, ...] = (-3, -1)  # spec's layers 4 and 6 of 7, counted from the end
    edit_head: bool = True  # spec also edits the output projection
    hyper_hidden: int = 1024  # modifier shared-MLP width, spec
    distance_bias: bool = False  # ours, off = spec: ALiBi-style listener-speaker frame distance
    # bias on the cross-attention logits (a prior that reactions follow nearby speaker frames)

    def __post_init__(self) -> None:
        object.__setattr__(self, "edited_layers", tuple(int(i) for i in self.edited_layers))
        for f in ("window_size", "s_ratio", "max_len", "latent_dim", "num_layers", "num_heads",
                  "ff_dim", "time_embed_dim", "audio_dim", "num_train_steps", "sample_steps",
                  "num_preds_train", "num_persons", "person_embed_dim", "history_max_len",
                  "edit_rank", "hyper_hidden"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"PerFRDiffConfig.{f} must be >= 1, got {getattr(self, f)}")
        _check(self.person_encoder_layers >= 0,
               f"person_encoder_layers must be >= 0, got {self.person_encoder_layers}")
        _check(self.latent_dim % self.num_heads == 0 and self.time_embed_dim % 2 == 0,
               f"latent_dim ({self.latent_dim}) must be divisible by num_heads "
               f"({self.num_heads}) and time_embed_dim ({self.time_embed_dim}) even")
        _check(self.s_ratio * self.window_size <= self.max_len,
               f"s_ratio*window_size = {self.s_ratio * self.window_size} exceeds max_len "
               f"{self.max_len}; raise max_len or shrink the windows")
        _check(self.noise_schedule in diffusion.SCHEDULES,
               f"noise_schedule must be one of {diffusion.SCHEDULES}, got {self.noise_schedule!r}")
        self.sampler_config()
        for f in ("w_au", "w_va", "w_em", "w_coef", "temporal_loss_w"):
            v = getattr(self, f)
            _check(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
                   f"PerFRDiffConfig.{f} is a loss weight and must be a number >= 0, got {v!r}")
        for f in ("online", "personalised", "edit_head", "distance_bias"):
            _check(isinstance(getattr(self, f), bool),
                   f"PerFRDiffConfig.{f} must be true or false, got {getattr(self, f)!r}")
        for f in ("dropout", "cond_drop_audio", "cond_drop_3dmm", "cond_drop_emotion"):
            _check(0.0 <= getattr(self, f) <= 1.0,
                   f"PerFRDiffConfig.{f} must lie in [0, 1], got {getattr(self, f)}")
        if self.personalised:
            self.edit_targets()

    def sampler_config(self, **overrides: object) -> diffusion.SamplerConfig:
        """The default sampler settings with non-None ``overrides``, validated."""
        return diffusion.SamplerConfig(
            self.sampler, self.sample_steps, self.ddim_eta, self.timestep_spacing,
            self.ddpm_variance, self.guidance_scale,
        ).override(**overrides).validated(self.num_train_steps)

    def edit_targets(self) -> list[int]:
        """Edited decoder layers as non-negative indices (validated against num_layers)."""
        n = self.num_layers
        bad = [i for i in self.edited_layers if not -n <= i < n]
        _check(not bad, f"edited_layers {list(self.edited_layers)} has indices {bad} outside a "
               f"{n}-layer decoder; use indices in [-{n}, {n})")
        idx = sorted({i % n for i in self.edited_layers})
        _check(len(idx) == len(self.edited_layers),
               f"edited_layers {list(self.edited_layers)} names a layer twice")
        return idx


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)
