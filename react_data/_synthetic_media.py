"""Audio and face-crop video rendering for `react_data.synthetic`.

Audio: a voiced signal (three harmonics of the person's pitch plus breath noise) whose amplitude
follows a per-frame loudness envelope, over a faint noise floor; 16-bit mono PCM.
Video: a drawn face (head, eyes, brows, mouth) whose pose follows the 3DMM rotation and whose
eyes, brows and mouth follow the AUs; encoded with PyAV.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from react_data import schema

VIDEO_SIZE = 64  # pixels; small enough that writing video stays cheap
_VIDEO_CODEC = "mpeg4"  # in every FFmpeg build PyAV bundles, and fast at this size
_AU = {name: i for i, name in enumerate(schema.AU_NAMES)}
_TABLE = 4096  # samples per period of the waveform tables
_THETA = 2 * np.pi * np.arange(_TABLE) / _TABLE
_COS = np.cos(_THETA)
_VOICED = (np.sin(_THETA) + 0.5 * np.sin(2 * _THETA) + 0.25 * np.sin(3 * _THETA)).astype(np.float32)


def _table_lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """table evaluated at ``cycles`` periods (nearest of _TABLE points per period)."""
    return np.take(table, (cycles * _TABLE).astype(np.int64) & (_TABLE - 1))


def render_audio(envelope: np.ndarray, f0: float, fps: float, rng: np.random.Generator,
                 sample_rate: int = schema.AUDIO_SAMPLE_RATE) -> np.ndarray:
    """A voiced signal whose loudness follows ``envelope``.

    Args:
        envelope: (T,) per-frame loudness in [0, 1].
        f0: fundamental frequency in Hz.
        fps: frame rate of ``envelope``.
        rng: noise source.
        sample_rate: output rate in Hz.

    Returns:
        (round(T / fps * sample_rate),) int16 samples.
    """
    n = int(round(len(envelope) / fps * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    frame_t = (np.arange(len(envelope)) + 0.5) / fps
    amp = np.interp(t, frame_t, envelope).astype(np.float32)  # (S,)
    # 3% vibrato at 5 Hz, integrated analytically: phase = 2 pi int f0 (1 + 0.03 sin(2 pi 5 t)) dt;
    # waveforms come from one-period tables (cheaper than sin over every sample).
    cycles = f0 * t - f0 * 0.03 / (2 * np.pi * 5.0) * _table_lookup(_COS, 5.0 * t)
    voiced = _table_lookup(_VOICED, cycles)
    noise = rng.standard_normal(n, dtype=np.float32)
    x = 0.35 * amp * voiced + (0.1 * amp + 0.003) * noise  # breath noise + floor
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = schema.AUDIO_SAMPLE_RATE) -> None:
    """Write (S,) int16 samples as a mono 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())


def draw_faces(attr: np.ndarray, coef: np.ndarray, skin: np.ndarray,
               size: int = VIDEO_SIZE) -> np.ndarray:
    """Draw one cartoon face per frame.

    Args:
        attr: (T, 25) facial attributes (AUs drive eyes, brows, mouth).
        coef: (T, 58) 3DMM (rotation moves the face: yaw left/right, pitch up/down).
        skin: (3,) uint8 skin colour (the person's).
        size: square frame size in pixels.

    Returns:
        (T, size, size, 3) uint8 RGB frames.
    """
    coord = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = coord[None, None, :], coord[None, :, None]  # (1, 1, W), (1, H, 1)
    rot = coef[:, schema.COEF_ROT].astype(np.float32)
    cx = (0.5 + 0.3 * rot[:, 1])[:, None, None]  # (T, 1, 1): yaw moves the face sideways
    cy = (0.5 + 0.3 * rot[:, 0])[:, None, None]  # pitch moves it up/down
    au = attr[:, schema.AU].astype(np.float32)

    def ellipse(x0, y0, rx, ry):  # (T, H, W) bool; separable terms keep it cheap
        return ((xx - x0) / rx) ** 2 + ((yy - y0) / ry) ** 2 <= 1.0

    def col(v):  # (T,) -> (T, 1, 1)
        return v[:, None, None]

    labels = np.zeros((len(attr), size, size), np.uint8)  # palette index per pixel

    def paint(mask, k):
        np.copyto(labels, np.uint8(k), where=mask)

    paint(ellipse(cx, cy, 0.32, 0.42), 1)
    eye_ry = col(0.06 - 0.03 * au[:, _AU["AU7"]] - 0.02 * au[:, _AU["AU6"]])
    paint(ellipse(cx - 0.13, cy - 0.1, 0.07, eye_ry), 2)
    paint(ellipse(cx + 0.13, cy - 0.1, 0.07, eye_ry), 2)
    brow_y = cy - 0.2 - col(0.05 * au[:, _AU["AU1"]] + 0.04 * au[:, _AU["AU2"]]
                            - 0.04 * au[:, _AU["AU4"]])
    paint((np.abs(yy - brow_y) < 0.02) & (np.abs(np.abs(xx - cx) - 0.13) < 0.07), 3)
    mouth_ry = col(0.015 + 0.05 * au[:, _AU["AU25"]] + 0.05 * au[:, _AU["AU26"]])
    paint(ellipse(cx, cy + 0.2, col(0.12 + 0.05 * au[:, _AU["AU12"]]), mouth_ry), 4)
    palette = np.array([(70, 80, 95), skin, (30, 30, 40), (60, 40, 30), (150, 40, 50)], np.uint8)
    return np.take(palette, labels, axis=0)  # (T, H, W, 3)


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as an MPEG-4 .mp4 with PyAV."""
    from fractions import Fraction

    import av  # imported here: only video writing needs FFmpeg

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_VIDEO_CODEC, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 60_000  # a 64x64 cartoon needs little
        stream.thread_count = 1  # frame threads cost more than they save at 64x64 (5x slower)
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
