"""Small synthetic MARS trees and file surgery for the react_data tests."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np

from react_data.schema import MODALITIES
from react_data.synthetic import generate

# 3 splits x 2 sessions x 2 dyads of 40-60 frames, no video: ~0.3 s to write.
TINY = dict(seed=0, sessions=2, clips_per_session=2, min_frames=40, max_frames=60, video=False,
            progress=False)


def tiny_tree(root: Path, **overrides) -> Path:
    """Write a tiny synthetic tree at ``root`` (keyword overrides go to `generate`)."""
    return generate(root, **{**TINY, **overrides})


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def clip_file(root: Path, modality: str, role: str = "speaker", split: str = "train",
              index: int = 0) -> Path:
    """The ``index``-th file (sorted) of a modality/role/split."""
    return sorted((root / split / modality / role).rglob("*.*"))[index]


def sibling(path: Path, modality: str, role: str | None = None) -> Path:
    """The same clip's file under another modality (and role): <split>/<modality>/<role>/..."""
    session_dir = path.parent
    role = role or session_dir.parent.name
    split_dir = session_dir.parents[2]
    return split_dir / modality / role / session_dir.name / (path.stem + MODALITIES[modality])


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000, width: int = 2) -> None:
    """Write (S,) or (S, C) float samples in [-1, 1] as PCM of ``width`` bytes."""
    x = samples if samples.ndim == 2 else samples[:, None]
    if width == 2:
        raw = (x * 32767).astype("<i2").tobytes()
    elif width == 3:
        v = (x * (2**23 - 1)).astype(np.int32).reshape(-1)
        raw = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], 1).astype(np.uint8).tobytes()
    else:
        raise ValueError(width)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def wav_samples(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return w.getnframes()
