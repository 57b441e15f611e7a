"""Reference rows: GT, Random, Mime, MeanFr predictions and their scores."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import baselines, frdiv, frdvs, frvar
from react_data.schema import AU, EXPR, VA

from .conftest import reactions


def test_gt_and_mime_repeat_the_sequence_k_times(rng):
    x = reactions(rng, 2, frames=7)
    for fn in (baselines.gt, baselines.mime):
        out = fn(x, 4)
        assert out.shape == (2, 4, 7, 25) and out.dtype == np.float32
        assert all(np.array_equal(out[:, k], x) for k in range(4))


def test_meanfr_is_the_train_mean_everywhere():
    mean = np.linspace(0, 1, 25)
    out = baselines.meanfr(mean, n=3, t=5, k=2)
    assert out.shape == (3, 2, 5, 25)
    np.testing.assert_allclose(out, np.broadcast_to(mean, out.shape), rtol=1e-7)


def test_uniform_random_matches_the_2023_sanity_values(rng):
    ref = reactions(rng, 40, frames=50)
    out = baselines.random_like(ref, 10, seed=0, kind="uniform")
    assert frvar(out) == pytest.approx(1 / 12, rel=0.02)
    assert frdiv(out) == pytest.approx(1 / 6, rel=0.02)
    assert frdvs(out) == pytest.approx(1 / 6, rel=0.02)


def test_gt_statistics_random_has_the_gt_statistics(rng):
    ref = reactions(rng, 30, frames=40, au_rate=0.2)
    out = baselines.random_like(ref, 5, seed=3)
    assert set(np.unique(out[..., AU])) <= {0.0, 1.0}
    np.testing.assert_allclose(out[..., AU].mean(axis=(0, 1, 2)),
                               ref[..., AU].mean(axis=(0, 1)), atol=0.02)
    np.testing.assert_allclose(out[..., EXPR].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[..., EXPR].mean(axis=(0, 1, 2)),
                               ref[..., EXPR].mean(axis=(0, 1)), atol=0.01)
    assert out[..., VA].min() >= ref[..., VA].min() and out[..., VA].max() <= ref[..., VA].max()
    np.testing.assert_allclose(out[..., VA].mean(axis=(0, 1, 2)),
                               ref[..., VA].mean(axis=(0, 1)), atol=0.03)


def test_random_is_seeded(rng):
    ref = reactions(rng, 2, frames=5)
    a, b = baselines.random_like(ref, 2, seed=0), baselines.random_like(ref, 2, seed=0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, baselines.random_like(ref, 2, seed=1))


def test_reference_rows_score_each_reference(rng):
    listener = reactions(rng, 3, frames=60)
    speaker = rng.normal(size=(3, 60, 25)).astype(np.float32)
    app = [np.concatenate([listener[i:i + 1], reactions(rng, 2, frames=60)]) for i in range(3)]
    rows = baselines.reference_rows(listener, speaker, app, np.full(25, 0.3), k=3, seed=0)
    assert list(rows) == ["GT", "Random", "Mime", "MeanFr"]
    assert rows["GT"]["FRDist"] == 0.0 and rows["GT"]["FRDiv"] == 0.0
    assert rows["Mime"]["FRSyn"] == 0.0  # the speaker is perfectly in sync with itself
    assert rows["MeanFr"]["FRVar"] == 0.0 and rows["MeanFr"]["FRCorr"] == 0.0
    assert rows["Random"]["FRDist"] > rows["GT"]["FRDist"]


def test_baseline_errors():
    with pytest.raises(ValueError, match=r"train_mean: expected shape \(25,\)"):
        baselines.meanfr(np.zeros(24), 1, 1, 1)
    with pytest.raises(ValueError, match="kind"):
        baselines.random_like(np.zeros((1, 2, 25)), 1, 0, kind="gauss")
    with pytest.raises(ValueError, match="k: expected a positive int"):
        baselines.gt(np.zeros((1, 2, 25)), 0)
