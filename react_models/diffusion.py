"""Noise schedules and samplers for x0-predicting diffusion models, independent of any denoiser.

The schedule (``NoiseSchedule``) is fixed at training time; the sampler (DDIM with any number of
steps, η and timestep spacing, or ancestral DDPM) is chosen at *sampling* time, so sampler kind
and step count are search knobs that need no retraining. A sampler only sees a callable
``denoise(x_t, t) -> x0_hat`` with ``x_t`` of the requested shape and ``t`` a (N,) long tensor.

Notation: ``ᾱ_t = alphas_cumprod[t]``; ``q(x_t | x0) = N(√ᾱ_t x0, (1 − ᾱ_t) I)``.

Example (a perfect x0-oracle is recovered exactly)::

    >>> import torch
    >>> sched = NoiseSchedule(num_train_steps=100)
    >>> x0 = torch.ones(2, 3)
    >>> out = ddim_sample(sched, lambda x, t: x0, (2, 3), steps=10,
    ...                   generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(out, x0))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SCHEDULES = ("cosine", "linear")
SAMPLERS = ("ddim", "ddpm")
SPACINGS = ("leading", "trailing", "linspace")
DDPM_VARIANCES = ("fixed_small", "fixed_large")


def _betas(kind: str, n: int, beta_start: float, beta_end: float, cosine_s: float) -> torch.Tensor:
    """(n,) float64 betas of the named schedule."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
    if kind == "cosine":  # Nichol & Dhariwal 2021: ᾱ(t) = cos²((t/n + s)/(1 + s) · π/2)
        steps = torch.arange(n + 1, dtype=torch.float64) / n
        f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)  # clamp avoids a singular last step
    raise ValueError(f"noise schedule must be one of {SCHEDULES}, got {kind!r}")


class NoiseSchedule(nn.Module):
    """Discrete forward-process schedule with ``num_train_steps`` steps.

    Buffers are non-persistent (rebuilt from the arguments, so they never clash with a saved
    state dict) and follow the owning model's ``.to()``; sampler arithmetic uses a float64 CPU copy.

    Args:
        num_train_steps: number of training timesteps T (t in 0 .. T-1).
        kind: "cosine" (Nichol & Dhariwal) or "linear" (Ho et al.) betas.
        beta_start, beta_end: endpoints of the linear schedule.
        cosine_s: offset of the cosine schedule.
    """

    def __init__(self, num_train_steps: int = 1000, kind: str = "cosine", *,
                 beta_start: float = 1e-4, beta_end: float = 0.02,
                 cosine_s: float = 0.008) -> None:
        super().__init__()
        if not isinstance(num_train_steps, int) or num_train_steps < 1:
            raise ValueError(f"num_train_steps must be a positive int, got {num_train_steps!r}")
        if kind == "linear" and not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                "linear schedule needs 0 < beta_start <= beta_end < 1, got "
                f"{beta_start}, {beta_end}"
            )
        self.num_train_steps = num_train_steps
        self.kind = kind
        betas = _betas(kind, num_train_steps, beta_start, beta_end, cosine_s)
        self.alphas_cumprod64 = torch.cumprod(1 - betas, 0)  # (T,) float64, CPU, sampler maths
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas_cumprod", self.alphas_cumprod64.float(), persistent=False)

    def _check_t(self, t: torch.Tensor) -> None:
        if t.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"timesteps must be an integer tensor, got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_train_steps):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_train_steps}), got range "
                f"[{int(t.min())}, {int(t.max())}]"
            )

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x0)``.

        Args:
            x0: (N, ...) clean data.
            t: (N,) integer timesteps.
            noise: (N, ...) standard normal noise (drawn with the global RNG when None).

        Returns:
            (N, ...) ``√ᾱ_t x0 + √(1 − ᾱ_t) noise``.
        """
        self._check_t(t)
        if t.shape != x0.shape[:1]:
            raise ValueError(
                f"t must have shape ({x0.shape[0]},) to match x0, got {tuple(t.shape)}"
            )
        if noise is None:
            noise = torch.randn_like(x0)
        ab = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
        ab = ab.view(-1, *([1] * (x0.dim() - 1)))  # broadcast over the data dims
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def sample_timesteps(self, n: int, *, device: torch.device | str = "cpu",
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """(n,) uniform training timesteps in [0, T)."""
        return torch.randint(0, self.num_train_steps, (n,), generator=generator,
                             device=generator.device if generator is not None else device)


def sampling_timesteps(num_train_steps: int, steps: int, spacing: str = "leading") -> list[int]:
    """Descending timesteps visited by a ``steps``-step sampler.

    "leading": ``[0, r, 2r, ...]`` with ``r = T // steps`` (ends at t=0, starts below T−1);
    "trailing": ``round(T − i·T/steps) − 1`` (starts at T−1); "linspace": evenly spread over
    [0, T−1].

    Args:
        num_train_steps: T.
        steps: number of sampling steps, 1 <= steps <= T.
        spacing: "leading", "trailing" or "linspace".

    Returns:
        ``steps`` distinct timesteps, descending.
    """
    if not isinstance(steps, int) or not 1 <= steps <= num_train_steps:
        raise ValueError(
            f"sampling steps must be an int in [1, {num_train_steps}] (the training steps), "
            f"got {steps!r}"
        )
    if spacing == "leading":
        ts = [i * (num_train_steps // steps) for i in range(steps)]
    elif spacing == "trailing":
        ratio = num_train_steps / steps
        ts = [round(num_train_steps - i * ratio) - 1 for i in range(steps)][::-1]
    elif spacing == "linspace":
        ts = torch.linspace(0, num_train_steps - 1, steps, dtype=torch.float64).round().long()
        ts = ts.tolist()
    else:
        raise ValueError(f"timestep_spacing must be one of {SPACINGS}, got {spacing!r}")
    return sorted(ts, reverse=True)


def _randn(shape: Sequence[int], generator: torch.Generator | None,
           device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """Noise drawn on the generator's device (reproducible there), then moved to ``device``."""
    src = generator.device if generator is not None else (device or "cpu")
    x = torch.randn(tuple(shape), generator=generator, device=src, dtype=dtype)
    return x if device is None else x.to(device)


def _start(shape: Sequence[int], generator: torch.Generator | None, x_T: torch.Tensor | None,
           device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
        return x_T if device is None else x_T.to(device)
    if len(shape) < 1 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape must be non-empty positive sizes, got {tuple(shape)}")
    return _randn(shape, generator, device, dtype)


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return _randn(x.shape, generator, x.device, x.dtype)


def ddim_sample(schedule: NoiseSchedule, denoise: Denoiser, shape: Sequence[int], *,
                steps: int = 50, eta: float = 0.0, timestep_spacing: str = "leading",
                generator: torch.Generator | None = None, x_T: torch.Tensor | None = None,
                device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """DDIM (Song et al. 2021) for an x0-predicting denoiser.

    Step ``t -> s``: ``ε̂ = (x_t − √ᾱ_t x̂0)/√(1−ᾱ_t)``,
    ``σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s)``,
    ``x_s = √ᾱ_s x̂0 + √(1−ᾱ_s−σ²) ε̂ + σ z``; after the last step ``ᾱ_s = 1`` so the result is
    the final x0 prediction.

    Args:
        schedule: the training schedule.
        denoise: ``denoise(x_t, t) -> x0_hat``; x_t of ``shape``, t (shape[0],) long.
        shape: (N, ...) output shape.
        steps: number of denoiser calls (1 .. T).
        eta: 0 = deterministic DDIM, 1 = DDPM-like posterior noise.
        timestep_spacing: see :func:`sampling_timesteps`.
        generator: seeds the initial noise (and the η-noise); noise is drawn on its device.
        x_T: optional starting noise of ``shape`` (overrides the generator's first draw).
        device: where the samples live (default: the generator's device, else CPU).
        dtype: dtype of the drawn noise.

    Returns:
        (N, ...) sampled x0.
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"DDIM eta must lie in [0, 1], got {eta}")
    ts = sampling_timesteps(schedule.num_train_steps, steps, timestep_spacing)
    ab = schedule.alphas_cumprod64
    x = _start(shape, generator, x_T, device, dtype)
    x0_hat = x
    for i, t in enumerate(ts):
        a_t = float(ab[t])
        a_s = float(ab[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0_hat = denoise(x, tt)
        eps = (x - math.sqrt(a_t) * x0_hat) / math.sqrt(1 - a_t)
        sigma = eta * math.sqrt((1 - a_s) / (1 - a_t)) * math.sqrt(max(0.0, 1 - a_t / a_s))
        x = math.sqrt(a_s) * x0_hat + math.sqrt(max(0.0, 1 - a_s - sigma**2)) * eps
        if sigma > 0:
            x = x + sigma * _noise_like(x, generator)
    return x


def ddpm_sample(schedule: NoiseSchedule, denoise: Denoiser, shape: Sequence[int], *,
                steps: int | None = None, variance: str = "fixed_small",
                timestep_spacing: str = "leading", generator: torch.Generator | None = None,
                x_T: torch.Tensor | None = None, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Ancestral DDPM (Ho et al. 2020) for an x0-predicting denoiser, optionally respaced.

    Step ``t -> s`` samples the posterior ``q(x_s | x_t, x̂0)``: with ``β = 1 − ᾱ_t/ᾱ_s``,
    mean ``√ᾱ_s β/(1−ᾱ_t) x̂0 + √(1−β)(1−ᾱ_s)/(1−ᾱ_t) x_t`` and variance
    ``β(1−ᾱ_s)/(1−ᾱ_t)`` ("fixed_small") or ``β`` ("fixed_large"). No noise after the last step.

    Args:
        schedule: the training schedule.
        denoise: ``denoise(x_t, t) -> x0_hat``.
        shape: (N, ...) output shape.
        steps: number of denoiser calls; None = all ``num_train_steps``.
        variance: "fixed_small" (posterior) or "fixed_large".
        timestep_spacing: spacing used when ``steps`` < T.
        generator: seeds all noise; noise is drawn on its device.
        x_T: optional starting noise of ``shape``.
        device: where the samples live (default: the generator's device, else CPU).
        dtype: dtype of the drawn noise.

    Returns:
        (N, ...) sampled x0.
    """
    if variance not in DDPM_VARIANCES:
        raise ValueError(f"DDPM variance must be one of {DDPM_VARIANCES}, got {variance!r}")
    steps = schedule.num_train_steps if steps is None else steps
    ts = sampling_timesteps(schedule.num_train_steps, steps, timestep_spacing)
    ab = schedule.alphas_cumprod64
    x = _start(shape, generator, x_T, device, dtype)
    for i, t in enumerate(ts):
        a_t = float(ab[t])
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0_hat = denoise(x, tt)
        if i + 1 == len(ts):
            return x0_hat
        a_s = float(ab[ts[i + 1]])
        beta = 1 - a_t / a_s
        x = (math.sqrt(a_s) * beta / (1 - a_t) * x0_hat
             + math.sqrt(1 - beta) * (1 - a_s) / (1 - a_t) * x)
        var = beta * (1 - a_s) / (1 - a_t) if variance == "fixed_small" else beta
        x = x + math.sqrt(var) * _noise_like(x, generator)
    return x  # unreachable: ts is non-empty


def sample(kind: str, schedule: NoiseSchedule, denoise: Denoiser, shape: Sequence[int], *,
           steps: int | None = None, eta: float = 0.0, timestep_spacing: str = "leading",
           ddpm_variance: str = "fixed_small", generator: torch.Generator | None = None,
           x_T: torch.Tensor | None = None,
           device: torch.device | str | None = None) -> torch.Tensor:
    """Dispatch to the named sampler ("ddim" or "ddpm"); ``steps=None`` means 50 for DDIM and
    all training steps for DDPM. Returns (N, ...) sampled x0."""
    if kind == "ddim":
        return ddim_sample(schedule, denoise, shape, steps=50 if steps is None else steps,
                           eta=eta, timestep_spacing=timestep_spacing, generator=generator,
                           x_T=x_T, device=device)
    if kind == "ddpm":
        return ddpm_sample(schedule, denoise, shape, steps=steps, variance=ddpm_variance,
                           timestep_spacing=timestep_spacing, generator=generator, x_T=x_T,
                           device=device)
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {kind!r}")


def classifier_free_guidance(denoise_cond: Denoiser, denoise_uncond: Denoiser | None,
                             scale: float) -> Denoiser:
    """Combine conditional and unconditional x0 predictions: ``x̂u + scale·(x̂c − x̂u)``.

    In the x0 parameterisation this equals guidance on ε (the map x0 -> ε is affine in x0).
    ``scale == 1`` returns ``denoise_cond`` itself (the unconditional branch is never run).

    Args:
        denoise_cond: conditional denoiser.
        denoise_uncond: unconditional denoiser (condition dropped); may be None when scale == 1.
        scale: guidance scale (>= 0; 1 = conditional only, 0 = unconditional only).

    Returns:
        A denoiser callable.
    """
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0, got {scale}")
    if scale == 1.0:
        return denoise_cond
    if denoise_uncond is None:
        raise ValueError(f"guidance scale {scale} != 1 needs an unconditional denoiser")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        u = denoise_uncond(x, t)
        return u + scale * (denoise_cond(x, t) - u)

    return guided


@dataclass(frozen=True)
class SamplerConfig:
    """Everything chosen at sampling time, validated against a schedule's step count.

    Attributes:
        kind: "ddim" or "ddpm".
        steps: denoiser calls per sample (DDPM is respaced when steps < num_train_steps).
        eta: DDIM noise scale in [0, 1].
        timestep_spacing: "leading", "trailing" or "linspace".
        ddpm_variance: "fixed_small" or "fixed_large".
        guidance_scale: classifier-free guidance scale (1 = conditional only).
    """

    kind: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    timestep_spacing: str = "leading"
    ddpm_variance: str = "fixed_small"
    guidance_scale: float = 1.0

    def validated(self, num_train_steps: int) -> SamplerConfig:
        """Raise ValueError naming the bad field; return self."""
        if self.kind not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.kind!r}")
        sampling_timesteps(num_train_steps, self.steps, self.timestep_spacing)
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"DDIM eta must lie in [0, 1], got {self.eta}")
        if self.ddpm_variance not in DDPM_VARIANCES:
            raise ValueError(
                f"ddpm_variance must be one of {DDPM_VARIANCES}, got {self.ddpm_variance!r}"
            )
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {self.guidance_scale}")
        return self

    def override(self, **changes: object) -> SamplerConfig:
        """A copy with the non-None ``changes`` applied (per-call overrides)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def run(self, schedule: NoiseSchedule, denoise_cond: Denoiser,
            denoise_uncond: Denoiser | None, shape: Sequence[int], *,
            generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
        """Sample (N, ...) x0 with guidance (``denoise_uncond`` only runs when scale != 1)."""
        self.validated(schedule.num_train_steps)
        return sample(self.kind, schedule,
                      classifier_free_guidance(denoise_cond, denoise_uncond, self.guidance_scale),
                      shape, steps=self.steps, eta=self.eta,
                      timestep_spacing=self.timestep_spacing, ddpm_variance=self.ddpm_variance,
                      generator=generator, device=device)
