"""Trans-VAE specifics (the shared contract lives in test_contract.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from react_data import schema
from react_models import build
from react_models.transvae import Config, TransVAE
from tests.react_models.conftest import random_batch

SMALL = {"feature_dim": 32, "n_heads": 2, "ff_dim": 64, "window_size": 8, "max_history": 24}


def make(**kw) -> TransVAE:
    torch.manual_seed(0)
    return build("transvae", {**SMALL, **kw})


@pytest.mark.parametrize("kw,match", [
    ({"feature_dim": 30, "n_heads": 4}, "multiple of 2 \\* n_heads"),
    ({"window_size": 32, "max_history": 16}, "window_size <= max_history"),
    ({"au_loss": "hinge"}, "au_loss"),
])
def test_config_rejects_inconsistent_values(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_build_rejects_unknown_config_keys():
    with pytest.raises(ValueError, match="unknown config key"):
        build("transvae", {"featuredim": 64})


def test_forward_without_targets_raises_a_clear_error():
    with pytest.raises(ValueError, match="listener_attr"):
        make()(random_batch(targets=False))


def test_audio_width_mismatch_names_the_config_field():
    b = random_batch()
    b = replace(b, speaker_audio=torch.randn(b.batch_size, b.num_frames, 768))
    with pytest.raises(ValueError, match="audio_dim"):
        make()(b)
    assert torch.isfinite(make(audio_dim=768)(b)["total"])


def test_total_is_rec_plus_weighted_kl_and_diversity():
    model = make(kl_p=1e-3, div_p=2.0)
    losses = model(random_batch())
    expected = losses["rec"] + 1e-3 * losses["kl"] + 2.0 * losses["div"]
    torch.testing.assert_close(losses["total"], expected)
    torch.testing.assert_close(losses["rec"], losses["attr"] + losses["coef"])
    assert 0 < losses["div"] <= 2.0  # two similarity terms, each in (0, 1]


@pytest.mark.parametrize("online", [False, True])
def test_context_frames_are_not_loss_targets(online):
    model = make(online=online)
    batch = random_batch(t=32, context_frames=8)
    noisy = replace(batch, listener_attr=batch.listener_attr.clone(),
                    listener_coef=batch.listener_coef.clone())
    noisy.listener_attr[:, :8] = 1 - noisy.listener_attr[:, :8]
    noisy.listener_coef[:, :8] += 10
    torch.manual_seed(2)
    a = model(batch)
    torch.manual_seed(2)
    b = model(noisy)
    torch.testing.assert_close(a["total"], b["total"])
    # ...while the same change after the context does move the loss
    noisy.listener_coef[:, 8:16] += 10
    torch.manual_seed(2)
    assert model(noisy)["coef"] > a["coef"] + 1


def test_offline_padded_speaker_frames_do_not_change_real_frames():
    model = make().eval()
    batch = random_batch(b=2, t=40, targets=False)
    pad = ~batch.mask
    other = replace(batch, speaker_attr=torch.where(pad[..., None], 0.5, batch.speaker_attr),
                    speaker_audio=torch.where(pad[..., None], 9.0, batch.speaker_audio))
    torch.manual_seed(0)
    a = model.sample(batch, 3)
    torch.manual_seed(0)
    b = model.sample(other, 3)
    valid = batch.mask[:, None, :, None].expand_as(a.coef)
    assert torch.equal(a.coef[valid], b.coef[valid])


def test_online_predicts_the_final_partial_window():
    # the baseline leaves the last T mod w frames at zero; this model predicts them
    model = make(online=True).eval()
    s = model.sample(random_batch(t=8 * 3 + 5, targets=False), 2)
    assert s.coef.shape[2] == 29
    assert s.coef[:, :, -5:].abs().sum() > 0


def test_online_history_is_bounded_by_max_history():
    model = make(online=True).eval()
    state = model.start(2, num_samples=3)
    for _ in range(6):
        model.step(state, torch.rand(2, 8, schema.ATTR_DIM), None, None)
    assert state.t == 48
    # per-frame speaker features keep speaker_context - 1 extra frames for the causal filter
    assert state.spk.shape == (2, 24 + 16 - 1, 32)
    assert state.fb.shape[:2] == (6, 24)


def test_step_validates_its_inputs():
    model = make(online=True)
    state = model.start(2)
    with pytest.raises(ValueError, match="window_size"):
        model.step(state, torch.rand(2, 9, schema.ATTR_DIM), None, None)
    with pytest.raises(ValueError, match="start"):
        model.step(state, torch.rand(3, 8, schema.ATTR_DIM), None, None)
    with pytest.raises(NotImplementedError, match="online=True"):
        make(online=False).start(2)


@pytest.mark.parametrize("online", [False, True])
def test_a_few_steps_fit_a_fixed_batch(online):
    model = make(online=online, dropout=0.0, div_p=0.0)
    batch = random_batch(b=2, t=24)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = model(batch)["rec"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
