"""frrea_features (Fréchet distance of attribute statistics) and align (time resampling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics import align, frrea_features
from react_data.schema import AU, EXPR

from . import _reference as ref
from .conftest import reactions


def test_frrea_features_matches_the_sqrtm_formula(rng):
    pred = reactions(rng, 3, 2, frames=40)
    real = [reactions(rng, g, frames=t, au_rate=0.5) for g, t in ((2, 40), (1, 55))]
    frames_real = np.concatenate([r.reshape(-1, 25) for r in real]).astype(np.float64)
    expected = ref.frechet(pred.reshape(-1, 25).astype(np.float64), frames_real)
    assert frrea_features(pred, real) == pytest.approx(expected, rel=1e-6)


def test_frrea_features_is_zero_for_the_same_frames_and_a_mean_shift_costs_its_square(rng):
    pred = reactions(rng, 2, 3, frames=30)
    assert frrea_features(pred, pred.reshape(-1, 30, 25)) == pytest.approx(0.0, abs=1e-9)
    shifted = pred + np.float32(0.5)
    assert frrea_features(pred, shifted) == pytest.approx(25 * 0.25, rel=1e-6)


def test_frrea_features_rejects_wrong_feature_width(rng):
    with pytest.raises(ValueError, match=r"real: expected arrays of shape \(\.\.\., 25\)"):
        frrea_features(reactions(rng, 1, 1, frames=5), np.zeros((5, 24)))


def test_align_resamples_keeps_binary_aus_and_probabilities(rng):
    app = [reactions(rng, 2, frames=37), reactions(rng, 3, frames=60)]
    out = align(app, 60)
    assert [a.shape for a in out] == [(2, 60, 25), (3, 60, 25)]
    assert out[1] is not app[1] and np.array_equal(out[1], app[1])  # same length: unchanged
    assert set(np.unique(out[0][..., AU])) <= {0.0, 1.0}
    np.testing.assert_allclose(out[0][..., EXPR].sum(-1), 1.0, rtol=1e-5)


def test_align_keeps_the_input_kind(rng):
    app = torch.from_numpy(reactions(rng, 2, 3, frames=10))
    out = align(app, 20)
    assert isinstance(out[0], torch.Tensor) and out[0].shape == (3, 20, 25)


def test_align_rejects_bad_lengths(rng):
    with pytest.raises(ValueError, match="frames: expected a positive int"):
        align([reactions(rng, 1, frames=10)], 0)


def test_gaussian_fit_backends_agree(rng):
    from metrics.realism import gaussian_fit

    blocks = [torch.from_numpy(reactions(rng, frames=t).astype(np.float32)) for t in (30, 45)]
    mean_n, cov_n = gaussian_fit(blocks, backend="numba")
    mean_t, cov_t = gaussian_fit(blocks, backend="torch")
    np.testing.assert_allclose(mean_n, mean_t, rtol=1e-12)
    np.testing.assert_allclose(cov_n, cov_t, rtol=1e-10, atol=1e-14)
    frames = torch.cat(blocks).double().numpy()
    np.testing.assert_allclose(cov_n, np.cov(frames, rowvar=False), rtol=1e-10, atol=1e-14)
