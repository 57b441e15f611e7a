"""The model contract, checked for every registered model, offline and online.

Exclusions, documented: none. A parameter a model uses only online (or only offline) must be
created only in that mode, so "every parameter gets a gradient" holds in each mode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
import torch

from react_data import schema
from react_data.batch import ReactionBatch
from react_models import ReactionModel, available, build, model_class
from tests.react_models.conftest import random_batch

# Size fields shrunk for fast tests; only the ones a model's Config has are used.
_SMALL = {
    "feature_dim": 32, "latent_dim": 32, "hidden_dim": 32, "d_model": 32, "embed_dim": 32,
    "ff_dim": 64, "n_heads": 2, "num_heads": 2, "n_layers": 1, "num_layers": 1,
    "window_size": 8, "max_history": 32,
    # diffusion: few sampling steps, few training repeats, small personalisation parts
    "sample_steps": 2, "num_preds_train": 2, "time_embed_dim": 16, "person_embed_dim": 32,
    "hyper_hidden": 32, "person_encoder_layers": 1, "history_max_len": 32, "num_persons": 8,
    # graph models: shallow fusion, narrow perceptual/graph widths
    "fusion_layers": 1, "percept_dim": 16, "cognitive_hidden": 16, "visual_dim": 32,
    "node_dim": 16, "edge_channels": 2,
}
T = 48  # frames per test clip (6 windows of 8, the last item padded)


def small_config(name: str, online: bool) -> dict:
    """Tiny config overrides for model ``name`` (only fields its Config defines)."""
    fields = {f.name for f in dataclasses.fields(model_class(name).config_cls)}
    cfg = {k: v for k, v in _SMALL.items() if k in fields}
    if "online" in fields:
        cfg["online"] = online
    return cfg


def _cases() -> list:
    cases = []
    for name in available():
        fields = {f.name for f in dataclasses.fields(model_class(name).config_cls)}
        cases.append(pytest.param(name, False, id=f"{name}-offline"))
        if "online" in fields:
            cases.append(pytest.param(name, True, id=f"{name}-online"))
    return cases


CASES = _cases()


def make(name: str, online: bool) -> ReactionModel:
    torch.manual_seed(0)
    return build(name, small_config(name, online))


def _assert_valid_attributes(attr: torch.Tensor) -> None:
    au, va, ex = attr[..., schema.AU], attr[..., schema.VA], attr[..., schema.EXPR]
    assert torch.all((au == 0) | (au == 1)), "AUs must be binary in samples"
    assert va.min() >= -1 and va.max() <= 1, "valence/arousal must lie in [-1, 1]"
    assert ex.min() >= 0
    torch.testing.assert_close(ex.sum(-1), torch.ones_like(ex[..., 0]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name,online", CASES)
def test_forward_returns_finite_scalar_losses_with_total(name, online):
    losses = make(name, online)(random_batch(t=T))
    assert "total" in losses
    for key, v in losses.items():
        assert isinstance(v, torch.Tensor) and v.dim() == 0, key
        assert v.dtype == torch.float32 and torch.isfinite(v), (key, v)


@pytest.mark.parametrize("name,online", CASES)
def test_sample_has_contract_shapes_dtypes_and_valid_attributes(name, online):
    model = make(name, online).eval()
    batch = random_batch(b=2, t=T, targets=False)
    s = model.sample(batch, num_samples=3)
    assert s.attr.shape == (2, 3, T, schema.ATTR_DIM) and s.attr.dtype == torch.float32
    assert s.coef.shape == (2, 3, T, schema.COEF_DIM) and s.coef.dtype == torch.float32
    assert torch.isfinite(s.attr).all() and torch.isfinite(s.coef).all()
    _assert_valid_attributes(s.attr)
    # K reactions differ (diversity comes from sampling)
    assert not (torch.equal(s.attr[:, 0], s.attr[:, 1]) and torch.equal(s.coef[:, 0], s.coef[:, 1]))


@pytest.mark.parametrize("name,online", CASES)
def test_gradients_reach_every_parameter(name, online):
    model = make(name, online).train()
    model(random_batch(t=T))["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None
           and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


@pytest.mark.parametrize("name,online", CASES)
def test_loss_ignores_targets_on_padded_frames(name, online):
    model = make(name, online).train()
    batch = random_batch(t=T)
    pad = ~batch.mask  # the last item is padded
    assert pad.any()
    noisy = replace(
        batch,
        listener_attr=torch.where(pad[..., None], batch.listener_attr + 5.0, batch.listener_attr),
        listener_coef=torch.where(pad[..., None], batch.listener_coef + 5.0, batch.listener_coef),
    )
    torch.manual_seed(1)
    a = model(batch)["total"]
    torch.manual_seed(1)
    b = model(noisy)["total"]
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name,online", CASES)
def test_same_seed_gives_identical_samples(name, online):
    model = make(name, online).eval()
    batch = random_batch(t=T, targets=False)
    torch.manual_seed(7)
    s1 = model.sample(batch, num_samples=2)
    torch.manual_seed(7)
    s2 = model.sample(batch, num_samples=2)
    torch.manual_seed(8)
    s3 = model.sample(batch, num_samples=2)
    assert torch.equal(s1.attr, s2.attr) and torch.equal(s1.coef, s2.coef)
    assert not torch.equal(s1.coef, s3.coef)


@pytest.mark.parametrize("name,online", CASES)
@pytest.mark.parametrize("audio,coef", [(False, True), (True, False), (False, False)],
                         ids=["no-audio", "no-3dmm", "attrs-only"])
def test_missing_modalities_are_accepted(name, online, audio, coef):
    model = make(name, online)
    batch = random_batch(t=T, audio=audio, coef=coef)
    assert (batch.speaker_audio is None) != audio and (batch.speaker_coef is None) != coef
    losses = model.train()(batch)
    assert torch.isfinite(losses["total"])
    s = model.eval().sample(batch, num_samples=2)
    assert s.attr.shape == (2, 2, T, schema.ATTR_DIM) and s.coef.shape == (2, 2, T, schema.COEF_DIM)
    assert torch.isfinite(s.attr).all() and torch.isfinite(s.coef).all()


ONLINE = [c for c in CASES if c.values[1]]


def _chunks(batch: ReactionBatch, w: int):
    for s in range(0, batch.num_frames, w):
        sl = slice(s, s + w)
        yield (batch.speaker_attr[:, sl],
               None if batch.speaker_coef is None else batch.speaker_coef[:, sl],
               None if batch.speaker_audio is None else batch.speaker_audio[:, sl])


@pytest.mark.parametrize("name,online", ONLINE)
def test_online_sample_equals_step_driven_generation(name, online):
    model = make(name, online).eval()
    batch = random_batch(t=T - 3, targets=False)  # a shorter last chunk too
    # step() sees no padding mask, so compare on unpadded clips (a model may use the mask in
    # sample() to ignore padded frames inside the last window of a shorter clip)
    batch = replace(batch, mask=torch.ones_like(batch.mask))
    torch.manual_seed(3)
    s = model.sample(batch, num_samples=2)
    torch.manual_seed(3)
    with torch.no_grad():
        state = model.start(batch.batch_size, num_samples=2, listener_idx=batch.listener_idx,
                            device="cpu")
        outs = [model.step(state, *c) for c in _chunks(batch, model.config.window_size)]
    torch.testing.assert_close(s.attr, torch.cat([a for a, _ in outs], 2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.coef, torch.cat([c for _, c in outs], 2), atol=1e-5, rtol=1e-5)
    for a, c in outs[:-1]:
        assert a.shape[2] == c.shape[2] == model.config.window_size


@pytest.mark.parametrize("name,online", ONLINE)
@pytest.mark.parametrize("j", [0, 2])
def test_online_outputs_do_not_depend_on_future_speaker_frames(name, online, j):
    model = make(name, online).eval()
    batch = random_batch(t=T, targets=False)
    cut = (j + 1) * model.config.window_size  # end of chunk j
    g = torch.Generator().manual_seed(5)

    def perturb(x):
        if x is None:
            return None
        y = x.clone()
        y[:, cut:] = torch.randn(y[:, cut:].shape, generator=g) * 3
        return y

    future = replace(batch, speaker_attr=perturb(batch.speaker_attr),
                     speaker_coef=perturb(batch.speaker_coef),
                     speaker_audio=perturb(batch.speaker_audio))
    torch.manual_seed(11)
    a = model.sample(batch, num_samples=2)
    torch.manual_seed(11)
    b = model.sample(future, num_samples=2)
    assert torch.equal(a.attr[:, :, :cut], b.attr[:, :, :cut])
    assert torch.equal(a.coef[:, :, :cut], b.coef[:, :, :cut])
    assert not torch.equal(a.coef[:, :, cut:], b.coef[:, :, cut:])  # the perturbation matters
