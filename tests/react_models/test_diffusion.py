"""Noise schedules and samplers (react_models.diffusion), independent of any model."""

from __future__ import annotations

import math

import pytest
import torch

from react_models import diffusion as D


@pytest.mark.parametrize("kind", D.SCHEDULES)
def test_alphas_cumprod_decreases_strictly_from_near_one_to_near_zero(kind: str) -> None:
    s = D.NoiseSchedule(1000, kind)
    ab = s.alphas_cumprod64
    assert ab.shape == (1000,)
    assert torch.all(ab[1:] < ab[:-1])
    assert 0.99 < float(ab[0]) < 1.0
    assert float(ab[-1]) < 0.01
    assert torch.all((s.betas > 0) & (s.betas < 1))


def test_cosine_and_linear_schedules_differ() -> None:
    assert not torch.allclose(D.NoiseSchedule(100, "cosine").alphas_cumprod,
                              D.NoiseSchedule(100, "linear").alphas_cumprod)


def test_schedule_buffers_follow_the_module_but_stay_out_of_the_state_dict() -> None:
    s = D.NoiseSchedule(10)
    assert dict(s.state_dict()) == {}
    assert s.double().alphas_cumprod.dtype == torch.float64


def test_q_sample_has_the_marginal_mean_and_variance() -> None:
    s = D.NoiseSchedule(1000, "cosine")
    g = torch.Generator().manual_seed(0)
    n = 20_000
    x0 = torch.full((n, 1), 2.0)
    for t in (0, 300, 700, 999):
        tt = torch.full((n,), t, dtype=torch.long)
        xt = s.q_sample(x0, tt, torch.randn(n, 1, generator=g))
        ab = float(s.alphas_cumprod64[t])
        assert float(xt.mean()) == pytest.approx(2 * math.sqrt(ab), abs=0.03)
        assert float(xt.var()) == pytest.approx(1 - ab, abs=0.03)


def test_q_sample_rejects_bad_timesteps() -> None:
    s = D.NoiseSchedule(10)
    x0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        s.q_sample(x0, torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="integer"):
        s.q_sample(x0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        s.q_sample(x0, torch.tensor([0, 1, 2]))


def test_invalid_schedule_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="cosine"):
        D.NoiseSchedule(10, "quadratic")
    with pytest.raises(ValueError, match="positive int"):
        D.NoiseSchedule(0)


@pytest.mark.parametrize("spacing", D.SPACINGS)
@pytest.mark.parametrize("steps", [1, 7, 50, 1000])
def test_sampling_timesteps_are_distinct_descending_and_in_range(spacing: str, steps: int) -> None:
    ts = D.sampling_timesteps(1000, steps, spacing)
    assert len(ts) == len(set(ts)) == steps
    assert ts == sorted(ts, reverse=True)
    assert 0 <= ts[-1] and ts[0] <= 999


def test_leading_and_trailing_spacing_match_their_definitions() -> None:
    assert D.sampling_timesteps(1000, 50, "leading")[:2] == [980, 960]
    assert D.sampling_timesteps(1000, 50, "leading")[-1] == 0
    assert D.sampling_timesteps(1000, 50, "trailing")[:2] == [999, 979]
    assert D.sampling_timesteps(1000, 50, "trailing")[-1] == 19


def test_sampling_timesteps_reject_invalid_arguments() -> None:
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        D.sampling_timesteps(100, 101)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        D.sampling_timesteps(100, 0)
    with pytest.raises(ValueError, match="timestep_spacing"):
        D.sampling_timesteps(100, 10, "middle")


def _recording_oracle(x0: torch.Tensor, calls: list[tuple[torch.Tensor, int]]) -> D.Denoiser:
    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert t.shape == (x.shape[0],) and t.dtype == torch.long
        calls.append((x.clone(), int(t[0])))
        return x0
    return denoise


@pytest.mark.parametrize("spacing", D.SPACINGS)
def test_deterministic_ddim_with_an_x0_oracle_stays_on_the_noising_path_and_recovers_x0(
        spacing: str) -> None:
    s = D.NoiseSchedule(1000, "cosine")
    x0 = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    x_T = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))
    calls: list[tuple[torch.Tensor, int]] = []
    out = D.ddim_sample(s, _recording_oracle(x0, calls), x0.shape, steps=20,
                        timestep_spacing=spacing, x_T=x_T)
    torch.testing.assert_close(out, x0)
    assert [t for _, t in calls] == D.sampling_timesteps(1000, 20, spacing)
    # eta=0 keeps the implied noise fixed: every x_t equals sqrt(ab) x0 + sqrt(1-ab) x_T
    for i, (x, t) in enumerate(calls[1:], start=1):
        ab = float(s.alphas_cumprod64[t])
        a_first = float(s.alphas_cumprod64[calls[0][1]])
        eps0 = (x_T - math.sqrt(a_first) * x0) / math.sqrt(1 - a_first)
        torch.testing.assert_close(x, math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps0,
                                   msg=f"step {i}")


@pytest.mark.parametrize("kind,kw", [("ddim", {"eta": 0.5}), ("ddim", {"eta": 1.0}),
                                     ("ddpm", {"steps": 30}), ("ddpm", {})])
def test_stochastic_samplers_with_an_x0_oracle_return_x0(kind: str, kw: dict) -> None:
    s = D.NoiseSchedule(100)
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    out = D.sample(kind, s, lambda x, t: x0, x0.shape, generator=torch.Generator().manual_seed(3),
                   **kw)
    torch.testing.assert_close(out, x0)


@pytest.mark.parametrize("kind,steps", [("ddim", 1), ("ddim", 13), ("ddpm", 13), ("ddpm", None)])
def test_samplers_call_the_denoiser_exactly_steps_times(kind: str, steps: int | None) -> None:
    s = D.NoiseSchedule(40)
    calls: list[tuple[torch.Tensor, int]] = []
    D.sample(kind, s, _recording_oracle(torch.zeros(2, 2), calls), (2, 2), steps=steps,
             generator=torch.Generator().manual_seed(0))
    assert len(calls) == (40 if steps is None else steps)


@pytest.mark.parametrize("kind", D.SAMPLERS)
def test_samplers_are_deterministic_for_a_seeded_generator(kind: str) -> None:
    s = D.NoiseSchedule(50)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x  # a non-oracle denoiser, so the noise draws matter

    def run(seed: int) -> torch.Tensor:
        return D.sample(kind, s, denoise, (3, 4), steps=10, eta=1.0,
                        generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(5), run(5))
    assert not torch.allclose(run(5), run(6))


@pytest.mark.parametrize("kind,kw", [("ddpm", {"steps": None}), ("ddim", {"steps": 50}),
                                     ("ddim", {"steps": 50, "eta": 1.0})])
def test_samplers_with_the_exact_posterior_mean_reproduce_a_gaussian_data_distribution(
        kind: str, kw: dict) -> None:
    # Data x0 ~ N(mu, sd^2): E[x0 | x_t] is closed-form, so a correct sampler returns N(mu, sd^2).
    mu, sd = 1.5, 0.4
    s = D.NoiseSchedule(200, "cosine")

    def posterior_mean(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = s.alphas_cumprod64[t].to(x.dtype)[:, None]
        gain = sd**2 * ab.sqrt() / (ab * sd**2 + 1 - ab)
        return mu + gain * (x - ab.sqrt() * mu)

    out = D.sample(kind, s, posterior_mean, (20_000, 1), generator=torch.Generator().manual_seed(0),
                   **kw)
    assert float(out.mean()) == pytest.approx(mu, abs=0.03)
    assert float(out.std()) == pytest.approx(sd, rel=0.08)


def test_samplers_reject_invalid_arguments() -> None:
    s = D.NoiseSchedule(20)
    den = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match="sampler"):
        D.sample("euler", s, den, (1, 2))
    with pytest.raises(ValueError, match="eta"):
        D.ddim_sample(s, den, (1, 2), steps=5, eta=1.5)
    with pytest.raises(ValueError, match=r"\[1, 20\]"):
        D.ddim_sample(s, den, (1, 2), steps=21)
    with pytest.raises(ValueError, match="variance"):
        D.ddpm_sample(s, den, (1, 2), variance="learned")
    with pytest.raises(ValueError, match="x_T"):
        D.ddim_sample(s, den, (1, 2), steps=5, x_T=torch.zeros(2, 2))


def test_classifier_free_guidance_extrapolates_and_skips_uncond_at_scale_one() -> None:
    cond = lambda x, t: torch.ones_like(x)  # noqa: E731
    uncond = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x, t = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    assert D.classifier_free_guidance(cond, None, 1.0) is cond
    torch.testing.assert_close(D.classifier_free_guidance(cond, uncond, 3.0)(x, t),
                               torch.full((2, 3), 3.0))
    torch.testing.assert_close(D.classifier_free_guidance(cond, uncond, 0.0)(x, t), x)
    with pytest.raises(ValueError, match="unconditional"):
        D.classifier_free_guidance(cond, None, 2.0)
    with pytest.raises(ValueError, match=">= 0"):
        D.classifier_free_guidance(cond, uncond, -1.0)


def test_sampler_config_overrides_validate_and_run_guidance_only_when_needed() -> None:
    s = D.NoiseSchedule(30)
    base = D.SamplerConfig(steps=5)
    assert base.override(kind=None, steps=7).steps == 7 and base.override(kind=None).kind == "ddim"
    calls = {"c": 0, "u": 0}

    def cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls["c"] += 1
        return torch.ones_like(x)

    def uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls["u"] += 1
        return torch.zeros_like(x)

    out = base.run(s, cond, uncond, (2, 3), generator=torch.Generator().manual_seed(0))
    assert calls == {"c": 5, "u": 0}
    torch.testing.assert_close(out, torch.ones(2, 3))
    out = base.override(guidance_scale=2.0).run(s, cond, uncond, (2, 3),
                                                generator=torch.Generator().manual_seed(0))
    assert calls == {"c": 10, "u": 5}
    torch.testing.assert_close(out, torch.full((2, 3), 2.0))
    for bad, match in (({"kind": "plms"}, "sampler"), ({"steps": 31}, r"\[1, 30\]"),
                       ({"eta": -0.1}, "eta"), ({"ddpm_variance": "x"}, "ddpm_variance"),
                       ({"guidance_scale": -1.0}, "guidance_scale"),
                       ({"timestep_spacing": "x"}, "timestep_spacing")):
        with pytest.raises(ValueError, match=match):
            base.override(**bad).validated(30)
