"""CCC and FRCorr: hand-computed cases, properties, the reference loop, errors."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import align, ccc, frcorr

from . import _reference as ref
from .conftest import reactions


def test_ccc_of_a_non_constant_sequence_with_itself_is_one(rng):
    x = rng.normal(size=(40, 6))
    assert ccc(x, x) == pytest.approx(1.0, abs=1e-7)  # 1e-8 guard in the denominator


def test_ccc_hand_computed():
    # a = (1, 2, 3), b = 2a: r = 1, var 2/3 and 8/3, means 2 and 4:
    # 2 * sqrt(2/3) * sqrt(8/3) / (2/3 + 8/3 + 4) = (8/3) / (22/3) = 4/11.
    a = np.array([[1.0], [2.0], [3.0]])
    assert ccc(a, 2 * a) == pytest.approx(4 / 11, rel=1e-7)


def test_a_constant_channel_counts_as_zero():
    a = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])  # second channel constant
    assert ccc(a, a) == pytest.approx(0.5, abs=1e-7)


def test_ccc_is_symmetric_and_matches_the_reference(rng):
    a, b = reactions(rng, frames=50), reactions(rng, frames=50)
    assert ccc(a, b) == pytest.approx(ccc(b, a), abs=1e-15)
    assert ccc(a, b) == pytest.approx(ref.ccc(a, b), abs=1e-12)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_frcorr_matches_the_reference_loop(rng, backend):
    pred = reactions(rng, 3, 4, frames=60, au_rate=0.1)
    app = [reactions(rng, g, frames=60, au_rate=0.1) for g in (2, 3, 2)]
    assert frcorr(pred, app, backend=backend) == pytest.approx(ref.frcorr(pred, app),
                                                               abs=1e-9)


def test_frcorr_is_k_when_each_prediction_is_an_appropriate_reaction(rng):
    app = [rng.normal(size=(3, 40, 25)).astype(np.float32) for _ in range(2)]
    pred = np.stack([a[[1, 2]] for a in app])  # K = 2, no constant channel
    assert frcorr(pred, app) == pytest.approx(2.0, abs=1e-6)


def test_frcorr_is_invariant_to_the_order_of_k_and_of_the_appropriate_set(rng):
    pred = reactions(rng, 2, 5, frames=30)
    app = [reactions(rng, 4, frames=30) for _ in range(2)]
    base = frcorr(pred, app)
    assert frcorr(pred[:, ::-1], [a[::-1] for a in app]) == pytest.approx(base, abs=1e-12)


def test_frcorr_needs_equal_lengths_and_points_to_align(rng):
    pred = reactions(rng, 1, 2, frames=30)
    app = [reactions(rng, 2, frames=45)]
    with pytest.raises(ValueError, match=r"appropriate\[0\]: expected shape \(G, 30, 25\), "
                                         r"received \(2, 45, 25\).*metrics.align"):
        frcorr(pred, app)
    assert np.isfinite(frcorr(pred, align(app, 30)))


def test_ccc_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"b: expected shape \(3, 1\)"):
        ccc(np.zeros((3, 1)), np.zeros((4, 1)))
