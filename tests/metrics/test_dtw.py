"""DTW: the plain path, the SIMD numba kernel and the torch wavefront against tslearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw as tslearn_dtw

from metrics._dtw_kernel import MAX_BINARY_DIMS, make_chunk_runner, pack_bits
from metrics.dtw import _binary_groups, dtw, grouped_dtw
from react_data.schema import ATTR_GROUPS

from .conftest import reactions

SCHEMA_BOUNDS = [(s.start, s.stop) for _, s, _ in ATTR_GROUPS]


def _tslearn_grouped(x, ys, pairs, bounds=SCHEMA_BOUNDS):
    return np.array([[tslearn_dtw(x[i][:, a:b], ys[r][:, a:b]) for a, b in bounds]
                     for i, r in pairs])


def _random_case(rng, n_x=5, tx=23, y_lengths=(1, 2, 8, 9, 17, 40)):
    x = reactions(rng, n_x, frames=tx)
    ys = [reactions(rng, frames=t) for t in y_lengths]
    pairs = np.array([(i, r) for i in range(n_x) for r in range(len(ys))])
    return x, ys, pairs


@pytest.mark.parametrize("shape", [((7, 3), (5, 3)), ((1, 1), (4, 1)), ((12, 25), (12, 25))])
def test_plain_dtw_matches_tslearn(rng, shape):
    a = rng.normal(size=shape[0]).astype(np.float32)
    b = rng.normal(size=shape[1]).astype(np.float32)
    assert dtw(a, b) == pytest.approx(tslearn_dtw(a, b), rel=1e-12)


def test_numba_kernel_matches_tslearn_per_group_with_mixed_lengths(rng):
    # 30 pairs: two 16-lane chunks, y lengths from 1 to 40 (not multiples of the 16-frame block).
    x, ys, pairs = _random_case(rng)
    fast = grouped_dtw(x, ys, pairs, threads=2)
    np.testing.assert_allclose(fast, _tslearn_grouped(x, ys, pairs), rtol=1e-5)


@pytest.mark.parametrize("tx", [1, 2, 3])  # the odd tail alone, one 2-row tile, tile + tail
def test_numba_kernel_with_short_predictions(rng, tx):
    x, ys, pairs = _random_case(rng, n_x=2, tx=tx)
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs), _tslearn_grouped(x, ys, pairs),
                               rtol=1e-5)


def test_fast_paths_match_the_plain_loop_on_longer_sequences(rng):
    x = reactions(rng, 6, frames=120)
    ys = [reactions(rng, frames=t) for t in (120, 97, 130)]
    pairs = np.array([(i, r) for i in range(6) for r in range(3)])
    plain = grouped_dtw(x, ys, pairs, backend="plain")
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs, threads=1), plain, rtol=1e-5)
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs, backend="torch"), plain, rtol=1e-5)


def test_torch_wavefront_matches_numba_in_small_batches(rng):
    x, ys, pairs = _random_case(rng)
    np.testing.assert_allclose(
        grouped_dtw(torch.from_numpy(x), ys, pairs, backend="torch", max_pairs_per_batch=4),
        grouped_dtw(x, ys, pairs), rtol=1e-5)


@pytest.mark.parametrize("backend", ["numba", "torch", "plain"])
def test_dtw_of_a_sequence_with_itself_is_exactly_zero(rng, backend):
    x = reactions(rng, 3, frames=31)
    assert np.all(grouped_dtw(x, list(x), backend=backend) == 0.0)


def test_dtw_is_symmetric(rng):
    a, b = reactions(rng, frames=19), reactions(rng, frames=33)
    ab = grouped_dtw(a[None], [b], [(0, 0)])
    ba = grouped_dtw(b[None], [a], [(0, 0)])
    np.testing.assert_allclose(ab, ba, rtol=1e-6)


def test_hand_computed_cases():
    # tslearn's own examples: a repeated frame costs nothing; one extra frame at distance 1.
    assert dtw([1.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0]) == 0.0
    assert dtw([1.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0, 4.0]) == 1.0
    # x = (0, 0), y = (1,): both x frames match the single y frame: sqrt(1 + 1).
    assert dtw([0.0, 0.0], [1.0]) == pytest.approx(math.sqrt(2.0))
    # Same cases through the kernel, one group over a single dim.
    x = np.array([[[1.0], [2.0], [3.0]]], np.float32)
    got = grouped_dtw(x, [np.array([[1.0], [2.0], [2.0], [3.0], [4.0]], np.float32)],
                      groups=[(0, 1)])
    assert got[0, 0] == 1.0


def test_other_groupings_compile_their_own_kernel(rng):
    x = rng.normal(size=(3, 11, 4)).astype(np.float32)
    ys = [rng.normal(size=(t, 4)).astype(np.float32) for t in (5, 13)]
    pairs = np.array([(i, r) for i in range(3) for r in range(2)])
    bounds = [(0, 1), (1, 4)]
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs, groups=bounds),
                               _tslearn_grouped(x, ys, pairs, bounds), rtol=1e-5)


def _kernel_distances(x, ys, pairs, bounds, binary):
    """grouped_dtw's numba path with the binary flags forced (one thread, unsorted pairs)."""
    frames = np.ascontiguousarray(np.concatenate(ys))
    lengths = np.array([len(y) for y in ys], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out = np.empty((len(pairs), len(bounds)))
    x = np.ascontiguousarray(x)
    make_chunk_runner(tuple(bounds), binary)(
        x, frames, starts, lengths, np.ascontiguousarray(pairs[:, 0]),
        np.ascontiguousarray(pairs[:, 1]), 0, -(-len(pairs) // 16), out,
        *pack_bits(x, frames, tuple(bounds), binary))
    return out


def test_binary_au_groups_use_the_popcount_kernel_with_identical_distances(rng):
    x, ys, pairs = _random_case(rng)  # AUs in {0, 1}: the AU group is bit-packed
    assert _binary_groups(x, np.concatenate(ys), tuple(SCHEMA_BOUNDS)) == (True, False, False)
    packed = _kernel_distances(x, ys, pairs, SCHEMA_BOUNDS, (True, False, False))
    floats = _kernel_distances(x, ys, pairs, SCHEMA_BOUNDS, ())
    np.testing.assert_array_equal(packed, floats)  # integer costs: the same float32 sums
    np.testing.assert_array_equal(grouped_dtw(x, ys, pairs), packed)
    np.testing.assert_allclose(packed, _tslearn_grouped(x, ys, pairs), rtol=1e-5)
    # one AU that is not 0/1, in any y frame, sends every pair back to the float kernel
    ys[-1][7, 3] = 0.5
    assert _binary_groups(x, np.concatenate(ys), tuple(SCHEMA_BOUNDS)) == (False,) * 3
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs), _tslearn_grouped(x, ys, pairs),
                               rtol=1e-5)


def test_binary_group_on_long_opposite_sequences_accumulates_exactly():
    # All AUs on against all off: every cell costs 15, the cheapest path has max(Tx, Ty) cells,
    # so the integer DP of the popcount kernel must reach 15 * 1200 over 75 column blocks.
    x = np.zeros((1, 1000, 25), np.float32)
    y = np.zeros((1, 1200, 25), np.float32)
    y[..., :15] = 1.0
    x[..., 17:] = y[..., 17:] = 0.125  # expressions: equal and not 0/1
    assert _binary_groups(x, y[0], tuple(SCHEMA_BOUNDS)) == (True, False, False)
    np.testing.assert_array_equal(grouped_dtw(x, y), [[math.sqrt(15 * 1200), 0.0, 0.0]])


def test_a_full_width_binary_group_and_two_binary_groups(rng):
    bounds = [(0, 2), (2, 2 + MAX_BINARY_DIMS), (2 + MAX_BINARY_DIMS, 40)]
    x = (rng.random((3, 19, 40)) < 0.5).astype(np.float32)
    ys = [(rng.random((t, 40)) < 0.5).astype(np.float32) for t in (4, 19, 33)]
    x[..., :2] = rng.normal(size=(3, 19, 2))  # group 0 continuous
    pairs = np.array([(i, r) for i in range(3) for r in range(3)])
    assert _binary_groups(x, np.concatenate(ys), tuple(bounds)) == (False, True, True)
    np.testing.assert_allclose(grouped_dtw(x, ys, pairs, groups=bounds),
                               _tslearn_grouped(x, ys, pairs, bounds), rtol=1e-5)
    with pytest.raises(ValueError, match="more than 31 dims"):
        make_chunk_runner(((0, 2 + MAX_BINARY_DIMS),), (True,))


def test_float32_rounding_of_inputs_like_the_challenge():
    # The challenge casts to float32 before tslearn: 0.1 + 1e-12 and 0.1 are the same frame.
    assert dtw(np.array([0.1 + 1e-12]), np.array([0.1])) == 0.0


def test_grouped_dtw_rejects_bad_inputs(rng):
    x = reactions(rng, 2, frames=5)
    ys = [reactions(rng, frames=4)]
    bad = ys[0].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"y: expected finite"):
        grouped_dtw(x, [bad], [(0, 0)])
    with pytest.raises(ValueError, match=r"y\[0\]: expected shape \(T>=1, 25\)"):
        grouped_dtw(x, [ys[0][:, :3]], [(0, 0)])
    with pytest.raises(ValueError, match="out of range"):
        grouped_dtw(x, ys, [(2, 0)])
    with pytest.raises(ValueError, match="tiling"):
        grouped_dtw(x, ys, [(0, 0)], groups=[(0, 10), (12, 25)])
    with pytest.raises(ValueError, match="backend"):
        grouped_dtw(x, ys, [(0, 0)], backend="cuda")
    with pytest.raises(ValueError, match="pairs: None"):
        grouped_dtw(x, ys)
    with pytest.raises(ValueError, match="threads"):
        grouped_dtw(x, ys, [(0, 0)], threads=0)
