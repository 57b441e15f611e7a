"""FRSyn (TLCC): both NaN policies against the plain lag loop, shifted copies, all K scored."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import frsyn

from . import _reference as ref
from .conftest import reactions


def _shifted(speaker: np.ndarray, lag: int) -> np.ndarray:
    """A reaction whose frame t + lag copies the speaker's frame t (ends filled with noise)."""
    out = np.random.default_rng(lag + 100).normal(size=speaker.shape).astype(np.float32)
    if lag >= 0:
        out[lag:] = speaker[:len(speaker) - lag]
    else:
        out[:lag] = speaker[-lag:]
    return out


@pytest.mark.parametrize("policy", ["reactune", "challenge"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_frsyn_matches_the_plain_lag_loop(rng, policy, backend):
    # Sparse AUs: some windows have constant channels, so the two policies differ.
    pred = reactions(rng, 2, 2, frames=70, au_rate=0.03)
    speaker = reactions(rng, 2, frames=70, au_rate=0.05)
    pred[1, 0, :, 3] = 1.0  # a channel constant over the whole clip
    got = frsyn(pred, speaker, nan_policy=policy, backend=backend)
    assert got == pytest.approx(ref.frsyn(pred, speaker, policy=policy), abs=1e-12)


def test_the_two_policies_differ_on_constant_channels(rng):
    pred = reactions(rng, 2, 2, frames=70, au_rate=0.03)
    speaker = reactions(rng, 2, frames=70, au_rate=0.05)
    pred[..., 0] = 1.0
    assert frsyn(pred, speaker, nan_policy="challenge") == 49.0
    assert frsyn(pred, speaker) < 49.0


@pytest.mark.parametrize("lag", [7, -5, 0])
def test_a_lagged_copy_of_the_speaker_has_that_offset(rng, lag):
    speaker = rng.normal(size=(1, 120, 25)).astype(np.float32)
    pred = _shifted(speaker[0], lag)[None, None]
    assert frsyn(pred, speaker) == abs(lag)


def test_every_one_of_the_k_reactions_is_scored(rng):
    # The baseline's multiprocessing path would score only k = 0 (offset 0) here.
    speaker = rng.normal(size=(1, 120, 25)).astype(np.float32)
    pred = np.stack([_shifted(speaker[0], 0), _shifted(speaker[0], 10)])[None]
    assert frsyn(pred, speaker) == 5.0


def test_a_constant_reaction_gets_the_largest_offset(rng):
    speaker = rng.normal(size=(1, 80, 25)).astype(np.float32)
    pred = np.full((1, 1, 80, 25), 0.5, np.float32)
    assert frsyn(pred, speaker) == 49.0
    assert frsyn(pred, speaker, nan_policy="challenge") == 49.0


def test_fps_sets_the_lag_window(rng):
    speaker = rng.normal(size=(1, 150, 25)).astype(np.float32)
    pred = _shifted(speaker[0], 55)[None, None]
    assert frsyn(pred, speaker, fps=30) == 55.0  # within +-59 at 30 fps
    assert frsyn(pred, speaker) != 55.0  # outside +-49 at 25 fps


def test_frsyn_errors(rng):
    speaker = rng.normal(size=(1, 40, 25)).astype(np.float32)
    pred = rng.normal(size=(1, 1, 40, 25)).astype(np.float32)
    with pytest.raises(ValueError, match=r"expected shape \(N, K, T>=51, 25\)"):
        frsyn(pred, speaker)
    with pytest.raises(ValueError, match="nan_policy"):
        frsyn(np.zeros((1, 1, 60, 25)), np.zeros((1, 60, 25)), nan_policy="omit")
    with pytest.raises(ValueError, match=r"speaker: expected shape \(1, 60, 25\), received "
                                         r"\(1, 59, 25\)"):
        frsyn(np.zeros((1, 1, 60, 25)), np.zeros((1, 59, 25)))
