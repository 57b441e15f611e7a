"""MFCC per video frame and normalisation statistics."""

from __future__ import annotations

import numpy as np
import pytest

from react_data import features, schema


def _noise(seconds: float, sr: int = 16_000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.1, int(seconds * sr))


def _split(feats: np.ndarray) -> np.ndarray:
    """(T, 78) -> (T, 3 kinds, 13 ceps, 2 hops)."""
    return feats.reshape(len(feats), 3, schema.N_MFCC, features.HOPS_PER_FRAME)


def test_mfcc_per_frame_has_one_78d_row_per_video_frame():
    out = features.mfcc_per_frame(_noise(1.2), 16_000, n_frames=30, fps=25)
    assert out.shape == (30, schema.AUDIO_DIM) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_audio_longer_than_the_clip_is_trimmed_and_shorter_audio_is_zero_padded():
    x = _noise(2.0)
    n, fps, sr = 25, 25, 16_000
    exact = x[: n * sr // fps]
    np.testing.assert_array_equal(features.mfcc_per_frame(x, sr, n, fps),
                                  features.mfcc_per_frame(exact, sr, n, fps))
    short = exact[: len(exact) // 2]
    padded = np.concatenate([short, np.zeros(len(exact) - len(short))])
    np.testing.assert_array_equal(features.mfcc_per_frame(short, sr, n, fps),
                                  features.mfcc_per_frame(padded, sr, n, fps))


def test_c0_is_the_kaldi_log_energy_of_the_frames_first_window():
    sr, fps, i = 16_000, 25, 7
    x = _noise(1.0, seed=3)
    out = _split(features.mfcc_per_frame(x, sr, n_frames=20, fps=fps))
    start = i * sr // fps
    for hop in range(features.HOPS_PER_FRAME):
        w = x[start + hop * 160: start + hop * 160 + 400] * 32768.0  # 25 ms at 10 ms hops
        expected = np.log(((w - w.mean()) ** 2).sum())
        assert out[i, 0, 0, hop] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("sr", "fps"), [(16_000, 25), (44_100, 30)])
def test_a_sound_burst_shows_up_in_the_video_frame_it_falls_in(sr, fps):
    n, k = 40, 23
    x = np.zeros(int(n * sr / fps))
    start, stop = int(np.ceil(k * sr / fps)), int((k + 1) * sr / fps)
    x[start:stop] = np.random.default_rng(0).normal(0.0, 0.3, stop - start)
    c0 = _split(features.mfcc_per_frame(x, sr, n, fps))[:, 0, 0, 0]
    assert int(np.argmax(c0)) == k


def test_mel_filters_peak_in_increasing_frequency_order_and_a_tone_lights_its_band():
    sr, n_fft = 16_000, 512
    banks = features._mel_banks(sr, n_fft)
    assert banks.shape == (features.NUM_MEL_BINS, n_fft // 2 + 1)
    assert (np.diff(banks.argmax(axis=1)) > 0).all()
    assert banks[:, 0].sum() == 0 and banks[:, -1].sum() == 0  # DC below 20 Hz, Nyquist unused
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(sr) / sr)
    power = np.abs(np.fft.rfft(tone[:400] * np.hanning(400), n=n_fft)) ** 2
    bin_1k = int(round(1000.0 * n_fft / sr))
    assert int(np.argmax(banks @ power)) == int(np.argmax(banks[:, bin_1k]))


def test_deltas_of_a_ramp_are_its_slope_and_of_a_constant_are_zero():
    ramp = np.arange(20, dtype=np.float64)[:, None] * np.array([[0.5, -2.0]])
    d = features._deltas(ramp)
    np.testing.assert_allclose(d[2:-2], np.tile([[0.5, -2.0]], (16, 1)))
    assert np.abs(features._deltas(np.ones((10, 3)))).max() == 0


def test_mfcc_rejects_multichannel_audio_with_a_message():
    with pytest.raises(ValueError, match="mono"):
        features.mfcc_per_frame(np.zeros((2, 1000)), 16_000, 5, 25)


def test_running_stats_match_numpy_in_any_chunking_and_merge_order():
    x = np.random.default_rng(1).normal(3.0, 2.0, (500, 4))
    a = features.RunningStats(4).update(x[:123]).update(x[123:300])
    b = features.RunningStats(4).update(x[300:])
    for merged in (features.RunningStats(4).merge(a).merge(b),
                   features.RunningStats.from_dict(b.to_dict()).merge(a)):
        assert merged.count == 500
        np.testing.assert_allclose(merged.mean, x.mean(axis=0))
        np.testing.assert_allclose(merged.std, x.std(axis=0))
    with pytest.raises(ValueError, match="dim"):
        a.merge(features.RunningStats(3))


def test_normalize_round_trips_and_centres_constant_features_only():
    x = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    x[:, 2] = 5.0
    stats = features.RunningStats(3).update(x)
    z = features.normalize(x, stats.mean, stats.std)
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1.0, atol=1e-5)
    assert np.all(z[:, 2] == 0.0)
    np.testing.assert_allclose(features.denormalize(z, stats.mean, stats.std), x, atol=1e-5)
