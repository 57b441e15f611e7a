"""FRDist against the challenge's loop (tslearn per group), properties and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics import frdist

from . import _reference as ref
from .conftest import reactions


def _case(rng, n=3, k=2, frames=30, sizes=(2, 3, 1), lengths=(30, 22, 41)):
    pred = reactions(rng, n, k, frames=frames)
    app = [reactions(rng, g, frames=t) for g, t in zip(sizes, lengths, strict=True)]
    return pred, app


def test_frdist_matches_the_tslearn_reference_loop_with_variable_lengths(rng):
    pred, app = _case(rng)
    assert frdist(pred, app) == pytest.approx(ref.frdist(pred, app), rel=1e-5)


@pytest.mark.parametrize("backend", ["numba", "torch", "plain"])
def test_frdist_backends_agree(rng, backend):
    pred, app = _case(rng, frames=17, lengths=(17, 9, 20))
    assert frdist(pred, app, backend=backend) == pytest.approx(ref.frdist(pred, app), rel=1e-5)


def test_frdist_is_zero_when_every_prediction_is_an_appropriate_reaction(rng):
    app = [reactions(rng, 3, frames=25) for _ in range(2)]
    pred = np.stack([a[[2, 0, 1]] for a in app])  # K = 3 reactions, each one of the set
    assert frdist(pred, app) == 0.0


def test_frdist_is_invariant_to_the_order_of_k_and_of_the_appropriate_set(rng):
    pred, app = _case(rng)
    base = frdist(pred, app)
    shuffled_app = [a[rng.permutation(len(a))] for a in app]
    assert frdist(pred[:, ::-1], shuffled_app) == pytest.approx(base, rel=1e-12)


def test_frdist_is_a_sum_over_k(rng):
    pred, app = _case(rng, k=1)
    doubled = np.concatenate([pred, pred], axis=1)
    assert frdist(doubled, app) == pytest.approx(2 * frdist(pred, app), rel=1e-12)


def test_frdist_accepts_tensors_and_one_stacked_array(rng):
    pred, _ = _case(rng)
    app = reactions(rng, 3, 2, frames=30)
    assert frdist(torch.from_numpy(pred), torch.from_numpy(app)) == pytest.approx(
        frdist(pred, list(app)), rel=1e-12)


def test_frdist_rejects_an_empty_appropriate_set(rng):
    pred, app = _case(rng)
    app[1] = app[1][:0]
    with pytest.raises(ValueError, match=r"appropriate\[1\]: expected shape \(G>=1, T, 25\), "
                                         r"received \(0, 22, 25\)"):
        frdist(pred, app)


def test_frdist_rejects_a_set_per_speaker_mismatch(rng):
    pred, app = _case(rng)
    with pytest.raises(ValueError, match="expected 3 sets"):
        frdist(pred, app[:2])
