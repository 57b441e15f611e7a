"""FRDiv, FRVar, FRDvs: the challenge's cdist/var formulas, hand cases, set-size errors."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import frdiv, frdvs, frvar

from . import _reference as ref
from .conftest import reactions


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_diversity_metrics_match_the_reference(rng, backend):
    pred = reactions(rng, 4, 3, frames=20)
    assert frdiv(pred, backend=backend) == pytest.approx(ref.frdiv(pred), rel=1e-10)
    assert frvar(pred, backend=backend) == pytest.approx(ref.frvar(pred), rel=1e-10)
    assert frdvs(pred, backend=backend) == pytest.approx(ref.frdvs(pred), rel=1e-10)


def test_hand_computed_tiny_cases():
    p = np.zeros((2, 2, 2, 25), np.float32)
    p[0, 1] = 1.0  # speaker 0: reactions 0 and 1 differ by 1 everywhere
    # FRDiv: speaker 0 -> (2 * 50) / (2 * 1 * 50) = 1, speaker 1 -> 0; mean 0.5.
    assert frdiv(p) == pytest.approx(0.5)
    # FRVar: every sequence is constant over its 2 frames.
    assert frvar(p) == 0.0
    # FRDvs: only k = 1 differs across speakers: 2 * 50 / (2 * 1 * 2) / 50 = 0.5.
    assert frdvs(p) == pytest.approx(0.5)
    q = np.zeros((1, 1, 3, 25), np.float32)
    q[0, 0, :, 0] = [0.0, 1.0, 2.0]  # unbiased variance 1 in one dim of 25
    assert frvar(q) == pytest.approx(1 / 25)


def test_diversity_is_invariant_to_order(rng):
    pred = reactions(rng, 3, 4, frames=15)
    assert frdiv(pred[:, ::-1]) == pytest.approx(frdiv(pred), rel=1e-12)
    assert frdvs(pred[::-1]) == pytest.approx(frdvs(pred), rel=1e-12)


def test_set_size_errors_name_the_requirement(rng):
    with pytest.raises(ValueError, match=r"pred: expected shape \(N, K>=2, T, 25\), received "
                                         r"\(2, 1, 5, 25\)"):
        frdiv(reactions(rng, 2, 1, frames=5))
    with pytest.raises(ValueError, match=r"expected shape \(N>=2, K, T, 25\)"):
        frdvs(reactions(rng, 1, 3, frames=5))
    with pytest.raises(ValueError, match=r"expected shape \(N, K, T>=2, 25\)"):
        frvar(reactions(rng, 2, 3, frames=1))
    with pytest.raises(ValueError, match=r"pred\[:, None\]"):
        frdiv(reactions(rng, 2, frames=5))
