"""Search-space contract: sample -> compose (Hydra overrides) -> build -> forward -> sample ->
metrics, for every baseline and task."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

import metrics
import react_models
import search_spaces
from orchestrator.config import as_overrides, compose, to_plain
from tests.react_models.conftest import random_batch

optuna.logging.set_verbosity(optuna.logging.WARNING)

CASES = [(b, t) for b in search_spaces.available() for t in search_spaces.TASKS]


def _sample(name: str, task: str, size: str, seed: int) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    params = search_spaces.get(name, task=task, size=size)(trial)
    # define-by-run: every suggested parameter is returned under its Hydra path
    assert set(trial.params) <= set(params)
    return params


def test_every_baseline_has_a_space() -> None:
    assert search_spaces.available() == react_models.available()


@pytest.mark.parametrize(("name", "task"), CASES)
def test_sampled_trial_composes_builds_and_generates(name: str, task: str) -> None:
    params = _sample(name, task, "tiny", seed=3)
    cfg = to_plain(compose([f"baseline={name}", f"task={task}", "size=tiny",
                            *as_overrides(params)]))
    for key, value in params.items():  # every key is a real config path holding the value
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key
    model = react_models.build(name, cfg["baseline"]["model"])
    assert model.config.online == (task == "online")
    batch = random_batch(b=2, t=32, seed=1)
    losses = model(batch)
    assert math.isfinite(float(losses["total"].detach()))
    losses["total"].backward()
    k, t = 2, 64  # FRSyn needs > 2 s of frames
    ref = random_batch(b=2, t=t, seed=2)
    out = model.sample(random_batch(b=2, t=t, seed=2, targets=False), num_samples=k)
    assert tuple(out.attr.shape) == (2, k, t, 25)
    assert torch.isfinite(out.attr).all()
    scores = metrics.evaluate(out.attr, [ref.listener_attr[i:i + 1] for i in range(2)],
                              ref.speaker_attr)
    assert set(scores) == set(metrics.METRICS)
    assert all(math.isfinite(v) for v in scores.values())


@pytest.mark.parametrize(("name", "task"), CASES)
def test_full_size_space_composes_to_a_valid_model_config(name: str, task: str) -> None:
    for seed in range(3):
        params = _sample(name, task, "full", seed)
        cfg = to_plain(compose([f"baseline={name}", f"task={task}", *as_overrides(params)]))
        react_models.make_config(name, cfg["baseline"]["model"])  # validates, builds nothing


def test_window_size_is_searched_only_online() -> None:
    for name in search_spaces.available():
        assert "task.window_size" not in _sample(name, "offline", "full", 0)
        assert "task.window_size" in _sample(name, "online", "full", 0)


def test_perfrdiff_ddim_eta_exists_only_for_the_ddim_sampler() -> None:
    seen = set()
    for seed in range(20):
        p = _sample("perfrdiff", "offline", "full", seed)
        sampler = p["baseline.model.sampler"]
        seen.add(sampler)
        assert ("baseline.model.ddim_eta" in p) == (sampler == "ddim")
        assert 10 <= p["baseline.model.sample_steps"] <= 100
    assert seen == {"ddim", "ddpm"}


def test_ranges_follow_the_spec_table() -> None:
    for seed in range(30):
        tv = _sample("transvae", "online", "full", seed)
        assert 5e-6 <= tv["baseline.trainer.lr"] <= 2e-4
        assert 1e-6 <= tv["baseline.model.kl_p"] <= 1e-3
        assert 0 <= tv["baseline.model.div_p"] <= 100
        assert 64 <= tv["baseline.model.feature_dim"] <= 256
        assert 4 <= tv["task.window_size"] <= 32
        assert tv["baseline.model.w_rot"] == tv["baseline.model.w_trans"]
        rg = _sample("regnn", "offline", "full", seed)
        assert 5e-5 <= rg["baseline.trainer.lr"] <= 5e-4
        assert 1 <= rg["baseline.model.num_layers"] <= 6
        assert 0.01 <= rg["baseline.model.noise_threshold"] <= 0.5
        assert 3 <= rg["baseline.model.top_k"] <= 10
        pf = _sample("perfrdiff", "online", "full", seed)
        assert 256 <= pf["baseline.model.latent_dim"] <= 768
        assert 1.0 <= pf["baseline.model.guidance_scale"] <= 7.5
        assert 1 <= pf["baseline.model.s_ratio"] <= 3


def test_same_seed_same_trial() -> None:
    assert _sample("regnn", "online", "full", 7) == _sample("regnn", "online", "full", 7)


def test_unknown_baseline_task_or_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="available"):
        search_spaces.get("belfusion")
    with pytest.raises(ValueError, match="task"):
        search_spaces.get("regnn", task="realtime")
    with pytest.raises(ValueError, match="size"):
        search_spaces.get("regnn", size="huge")
