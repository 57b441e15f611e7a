"""Shared model blocks."""

from __future__ import annotations

import pytest
import torch

from react_data import schema
from react_models._blocks import (
    SpeakerEncoder,
    attr_to_metric,
    attribute_loss,
    causal_mask,
    coef_loss,
    masked_mean,
    sinusoidal_pe,
)


def test_sinusoidal_pe_matches_the_formula_and_is_shift_consistent():
    pe = sinusoidal_pe(torch.arange(10), 8)
    assert pe.shape == (10, 8)
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 1], torch.cos(torch.tensor(3.0)))
    torch.testing.assert_close(sinusoidal_pe(torch.arange(5, 10), 8), pe[5:])
    with pytest.raises(ValueError, match="even"):
        sinusoidal_pe(torch.arange(3), 7)


def test_causal_mask_forbids_exactly_the_future():
    m = causal_mask(3)
    assert m.tolist() == [[False, True, True], [False, False, True], [False, False, False]]
    m = causal_mask(2, offset=2)  # two past keys visible to both queries
    assert m.tolist() == [[False, False, False, True], [False, False, False, False]]


def test_masked_mean_ignores_unselected_frames_and_is_zero_when_empty():
    x = torch.tensor([[1.0, 2.0, 100.0]])
    mask = torch.tensor([[True, True, False]])
    assert float(masked_mean(x, mask)) == 1.5
    assert float(masked_mean(x, torch.zeros_like(mask))) == 0.0


def test_speaker_encoder_skips_missing_modalities_instead_of_zero_filling():
    torch.manual_seed(0)
    enc = SpeakerEncoder(16)
    attr = torch.rand(1, 4, schema.ATTR_DIM)
    audio = torch.randn(1, 4, schema.AUDIO_DIM)
    got = enc(attr, None, audio)
    expected = enc.fuse((enc.attr(attr) + enc.audio(audio)) / 2)
    torch.testing.assert_close(got, expected)
    zero_filled = enc(attr, torch.zeros(1, 4, schema.COEF_DIM), audio)
    assert not torch.allclose(got, zero_filled)


def test_attr_to_metric_gives_valid_attributes():
    out = attr_to_metric(torch.randn(2, 5, schema.ATTR_DIM) * 5, binarize=True)
    assert set(out[..., schema.AU].unique().tolist()) <= {0.0, 1.0}
    assert out[..., schema.VA].abs().max() <= 1
    torch.testing.assert_close(out[..., schema.EXPR].sum(-1), torch.ones(2, 5))


def test_attribute_loss_is_minimal_at_the_target():
    target = attr_to_metric(torch.randn(1, 6, schema.ATTR_DIM), binarize=True)
    target[..., schema.AU] = 0.5  # soft AU targets make the exact-logit optimum reachable
    logits = torch.cat([torch.zeros(1, 6, schema.N_AU),
                        torch.atanh(target[..., schema.VA]),
                        torch.log(target[..., schema.EXPR])], -1)
    mask = torch.ones(1, 6, dtype=torch.bool)
    best = attribute_loss(logits, target, mask, au_loss="mse")
    assert float(best) < 1e-10
    assert attribute_loss(logits + 0.3, target, mask, au_loss="mse") > best
    with pytest.raises(ValueError, match="au_loss"):
        attribute_loss(logits, target, mask, au_loss="l1")


def test_coef_loss_weights_groups():
    pred = torch.zeros(1, 2, schema.COEF_DIM)
    target = torch.zeros(1, 2, schema.COEF_DIM)
    target[..., schema.COEF_ROT] = 1.0
    mask = torch.ones(1, 2, dtype=torch.bool)
    assert float(coef_loss(pred, target, mask, w_rot=10.0)) == pytest.approx(10.0)
    assert float(coef_loss(pred, target, mask, w_rot=1.0, w_exp=5.0)) == pytest.approx(1.0)
