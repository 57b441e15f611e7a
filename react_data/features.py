"""Audio features aligned to video frames, and per-feature normalisation statistics.

MFCC follows Kaldi's ``compute-mfcc-feats`` defaults (as exposed by
``torchaudio.compliance.kaldi.mfcc``, which the Trans-VAE baseline used), implemented with numpy:
25 ms Povey windows every 10 ms (``snip_edges``), DC removal, raw log energy, pre-emphasis 0.97,
power spectrum over a 512-point FFT (16 kHz), 23 triangular mel bins from 20 Hz to Nyquist,
log, orthonormal DCT-II keeping 13 cepstra, cepstral lifter 22, and c0 replaced by the log
energy (``use_energy=True``). Samples are scaled to the 16-bit range Kaldi reads, so the energy
floor of 1.0 only clips digital silence. Deltas and delta-deltas use the regression window of
``torchaudio.functional.compute_deltas`` (win_length 5) along time over the whole clip.

Per video frame ``i`` (starting at sample ``i * sr / fps``), the two analysis frames starting at
and one hop after the frame start are taken (at 25 fps: 4 hops per 40 ms frame, frames 4i and
4i+1), giving ``3 (static, delta, delta-delta) x 13 x 2 = 78`` values, flattened in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from react_data import schema

__all__ = ["HOPS_PER_FRAME", "RunningStats", "denormalize", "kaldi_mfcc", "mfcc_per_frame",
           "normalize"]

HOPS_PER_FRAME = 2  # analysis frames kept per video frame (13 * 2 * 3 = AUDIO_DIM)
FRAME_LENGTH_MS = 25.0  # Kaldi default analysis window
FRAME_SHIFT_MS = 10.0  # Kaldi default hop
NUM_MEL_BINS = 23  # Kaldi default
LOW_FREQ = 20.0  # Hz, Kaldi default
PREEMPHASIS = 0.97  # Kaldi default
CEPSTRAL_LIFTER = 22.0  # Kaldi default
ENERGY_FLOOR = 1.0  # torchaudio's kaldi.mfcc default (absolute, on the 16-bit scale)
DELTA_WIN = 2  # frames each side: torchaudio compute_deltas(win_length=5)
_INT16_SCALE = 32768.0  # Kaldi reads 16-bit PCM; our loaders give [-1, 1] floats
_EPS = float(np.finfo(np.float32).eps)  # Kaldi's floor on mel energies


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_banks(sr: int, n_fft: int, num_bins: int = NUM_MEL_BINS,
               low_freq: float = LOW_FREQ) -> np.ndarray:
    """(num_bins, n_fft // 2 + 1) Kaldi triangular filters, triangles in the mel domain."""
    nyquist = sr / 2.0
    mel_low, mel_high = _mel(low_freq), _mel(nyquist)
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + np.arange(num_bins)[:, None] * delta  # (M, 1)
    center, right = left + delta, left + 2 * delta
    mel = _mel(np.arange(n_fft // 2) * sr / n_fft)[None, :]  # (1, n_fft/2); Nyquist bin gets 0
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))


def _dct_matrix(num_bins: int, num_ceps: int) -> np.ndarray:
    """(num_bins, num_ceps) orthonormal DCT-II, as torchaudio's create_dct(norm='ortho')."""
    n = np.arange(num_bins)[:, None]
    k = np.arange(num_ceps)[None, :]
    d = np.cos(np.pi / num_bins * (n + 0.5) * k) * math.sqrt(2.0 / num_bins)
    d[:, 0] = math.sqrt(1.0 / num_bins)
    return d


def kaldi_mfcc(samples: np.ndarray, sr: int, *, num_ceps: int = schema.N_MFCC) -> np.ndarray:
    """Kaldi-style MFCC (with energy) of a mono signal, one row per 10 ms hop.

    Args:
        samples: (S,) mono samples in [-1, 1].
        sr: sample rate in Hz.
        num_ceps: cepstra kept (c0 is the log energy).

    Returns:
        (F, num_ceps) float64 with ``F = 1 + (S - win) // hop`` (0 rows if S < win).
    """
    x = np.asarray(samples, dtype=np.float64) * _INT16_SCALE
    win = int(sr * FRAME_LENGTH_MS / 1000.0)
    hop = int(sr * FRAME_SHIFT_MS / 1000.0)
    if len(x) < win:
        return np.zeros((0, num_ceps))
    n_frames = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n_frames].copy()  # (F, W)
    frames -= frames.mean(axis=1, keepdims=True)  # remove DC offset
    log_energy = np.log(np.maximum((frames**2).sum(axis=1), _EPS))  # raw energy
    log_energy = np.maximum(log_energy, math.log(ENERGY_FLOOR))
    prev = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = frames - PREEMPHASIS * prev
    frames *= np.hanning(win) ** 0.85  # Povey window (symmetric Hann ** 0.85)
    n_fft = 1 << (win - 1).bit_length()  # round up to a power of two
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2  # (F, n_fft/2 + 1)
    mel = np.log(np.maximum(power @ _mel_banks(sr, n_fft).T, _EPS))  # (F, M)
    ceps = mel @ _dct_matrix(NUM_MEL_BINS, num_ceps)  # (F, C)
    ceps *= 1.0 + 0.5 * CEPSTRAL_LIFTER * np.sin(np.pi * np.arange(num_ceps) / CEPSTRAL_LIFTER)
    ceps[:, 0] = log_energy
    return ceps


def _deltas(x: np.ndarray, n: int = DELTA_WIN) -> np.ndarray:
    """(F, C) -> (F, C) regression deltas along time, edges replicated."""
    padded = np.pad(x, ((n, n), (0, 0)), mode="edge")
    denom = n * (n + 1) * (2 * n + 1) / 3.0
    f = len(x)
    out = np.zeros_like(x)
    for k in range(1, n + 1):
        out += k * (padded[n + k:n + k + f] - padded[n - k:n - k + f])
    return out / denom


def _resample(samples: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = math.gcd(int(sr), int(target_sr))
    return resample_poly(samples, target_sr // g, sr // g)


def mfcc_per_frame(samples: np.ndarray, sr: int, n_frames: int, fps: float, *,
                   target_sr: int | None = schema.AUDIO_SAMPLE_RATE) -> np.ndarray:
    """78-d MFCC features per video frame (see the module docstring for the layout).

    The signal is resampled to ``target_sr`` (None keeps ``sr``), then zero-padded or trimmed to
    exactly ``n_frames / fps`` seconds, so frame ``i`` always describes the same 1/fps seconds.

    Args:
        samples: (S,) mono samples in [-1, 1].
        sr: sample rate of ``samples`` in Hz.
        n_frames: video frames to describe.
        fps: video frame rate.
        target_sr: rate the features are computed at (features depend on it).

    Returns:
        (n_frames, schema.AUDIO_DIM) float32.

    Raises:
        ValueError: for a non-1-D signal or non-positive rates/counts.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"samples must be mono (S,), got shape {x.shape}; mix channels first")
    if sr <= 0 or fps <= 0 or n_frames < 0:
        raise ValueError(f"sr and fps must be > 0 and n_frames >= 0, got sr={sr}, fps={fps}, "
                         f"n_frames={n_frames}")
    if target_sr is not None and int(sr) != int(target_sr):
        x, sr = _resample(x, int(sr), int(target_sr)), int(target_sr)
    hop = int(sr * FRAME_SHIFT_MS / 1000.0)
    win = int(sr * FRAME_LENGTH_MS / 1000.0)
    total = int(round(n_frames * sr / fps))
    x = x[:total] if len(x) >= total else np.pad(x, (0, total - len(x)))
    starts = np.round(np.arange(n_frames) * sr / fps).astype(np.int64) // hop  # analysis index
    need = int(starts.max()) + HOPS_PER_FRAME if n_frames else 0  # analysis frames to cover
    x = np.pad(x, (0, max(0, (need - 1) * hop + win - len(x))))  # room for the last frame's hops
    ceps = kaldi_mfcc(x, sr)  # (F, 13)
    feats = np.stack([ceps, _deltas(ceps), _deltas(_deltas(ceps))], axis=1)  # (F, 3, 13)
    idx = starts[:, None] + np.arange(HOPS_PER_FRAME)[None, :]  # (T, 2)
    per_frame = feats[idx]  # (T, 2, 3, 13)
    out = per_frame.transpose(0, 2, 3, 1).reshape(n_frames, -1)  # (T, 3 * 13 * 2)
    if out.shape[1] != schema.AUDIO_DIM:
        raise ValueError(f"MFCC width {out.shape[1]} != schema.AUDIO_DIM {schema.AUDIO_DIM}")
    return out.astype(np.float32)


@dataclass
class RunningStats:
    """Streaming per-feature mean and variance (Chan et al.'s parallel update, float64).

    Attributes:
        count: rows seen.
        mean: (D,) running mean.
        m2: (D,) sum of squared deviations from the mean.
    """

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.dim) if self.mean is None else np.asarray(self.mean, np.float64)
        self.m2 = np.zeros(self.dim) if self.m2 is None else np.asarray(self.m2, np.float64)

    def update(self, x: np.ndarray) -> RunningStats:
        """Add rows. ``x``: (N, D) (or (..., D), flattened to rows). Returns self."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        if len(x):
            self.merge(RunningStats(self.dim, len(x), x.mean(axis=0),
                                    ((x - x.mean(axis=0)) ** 2).sum(axis=0)))
        return self

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold another accumulator into this one (order independent). Returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge RunningStats of dim {other.dim} into dim {self.dim}")
        if other.count == 0:
            return self
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        self.count = n
        return self

    @property
    def var(self) -> np.ndarray:
        """(D,) population variance (0 when empty)."""
        return self.m2 / self.count if self.count else np.zeros(self.dim)

    @property
    def std(self) -> np.ndarray:
        """(D,) population standard deviation."""
        return np.sqrt(np.maximum(self.var, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "count": self.count, "mean": self.mean.tolist(),
                "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunningStats:
        return cls(int(d["dim"]), int(d["count"]), np.asarray(d["mean"], np.float64),
                   np.asarray(d["m2"], np.float64))


def _safe_std(std: np.ndarray, eps: float) -> np.ndarray:
    # constant features (e.g. a 3DMM slot that never moves) keep unit scale instead of blowing up
    return np.where(np.asarray(std) > eps, std, 1.0)


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray, *,
              eps: float = 1e-6) -> np.ndarray:
    """``(x - mean) / std`` per feature (last axis); features with std <= eps are only centred.

    Args:
        x: (..., D) values.
        mean: (D,) train mean.
        std: (D,) train standard deviation.
        eps: std threshold below which a feature is treated as constant.

    Returns:
        (..., D) float32.
    """
    return ((np.asarray(x) - mean) / _safe_std(std, eps)).astype(np.float32)


def denormalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray, *,
                eps: float = 1e-6) -> np.ndarray:
    """Inverse of `normalize`: ``x * std + mean`` (same constant-feature rule). (..., D) float32."""
    return (np.asarray(x) * _safe_std(std, eps) + mean).astype(np.float32)
