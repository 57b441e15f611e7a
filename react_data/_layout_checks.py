"""File-level checks for `react_data.layout`: .npy arrays and .wav files.

Every check appends `Problem`s (errors) and warnings to caller-owned lists instead of raising, so
that `layout.scan` can report every problem of a tree at once.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from react_data import schema

AU_TOLERANCE = 1e-3  # an AU occurrence may differ from 0 or 1 by float rounding only
EXPR_SUM_TOLERANCE = 0.02  # softmax outputs stored as float16/32 sum to 1 within ~1e-3
_NPY_MAGIC = b"\x93NUMPY"
_WAV_FIX = "re-encode it as PCM WAV, e.g. `ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav`"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a MARS tree: where, what was expected, what was found, the fix."""

    path: Path | None
    expected: str
    found: str
    fix: str

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<tree>"
        return f"{where}: expected {self.expected}; found {self.found}; fix: {self.fix}"


def read_npy_header(path: Path, problems: list[Problem]) -> tuple[tuple[int, ...], np.dtype] | None:
    """Read a .npy header without loading the data; append a Problem and return None if unusable.

    Detects empty files, non-.npy files (e.g. text or CSV saved as .npy), corrupt headers, object
    (pickled) arrays and truncated data sections.

    Returns:
        (shape, dtype) of the stored array, or None.
    """
    size = path.stat().st_size
    if size == 0:
        problems.append(Problem(path, "a NumPy .npy array", "an empty file (0 bytes)",
                                "re-export or re-copy the file (interrupted copies leave "
                                "empty files)"))
        return None
    with path.open("rb") as f:
        magic = f.read(len(_NPY_MAGIC))
        if magic != _NPY_MAGIC:
            problems.append(Problem(path, "a NumPy .npy file (starting with b'\\x93NUMPY')",
                                    f"a file starting with {magic!r} (text/CSV or another format)",
                                    "convert it: np.save(path, np.asarray(data, "
                                    "dtype=np.float32))"))
            return None
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, OSError, EOFError, SyntaxError) as exc:
            problems.append(Problem(path, "a readable .npy header", f"a corrupt header ({exc})",
                                    "re-export the file with np.save"))
            return None
        data_bytes = size - f.tell()
    if dtype.hasobject:
        problems.append(Problem(path, "a numeric float array",
                                f"an object array (dtype {dtype}); loading it needs pickle, "
                                "which is refused for safety",
                                "save a numeric array: np.save(path, np.asarray(x, "
                                "dtype=np.float32))"))
        return None
    needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if data_bytes < needed:
        problems.append(Problem(path, f"{needed} data bytes for an array of shape {shape}",
                                f"{data_bytes} bytes: the file is truncated",
                                "re-copy or re-export the file (the copy was interrupted)"))
        return None
    return tuple(int(s) for s in shape), dtype


def check_npy(path: Path, width: int, what: str, problems: list[Problem],
              warnings_: list[Problem], *, deep: bool = True) -> int | None:
    """Validate a per-frame feature array of shape (T, width); return T or None if unusable.

    Args:
        path: the .npy file.
        width: expected number of columns (25 attributes, 58 3DMM coefficients).
        what: "attributes" (also checks AU values and expression sums) or "coefficients".
        problems: errors are appended here.
        warnings_: non-fatal findings are appended here.
        deep: load the data to check finiteness and value ranges (header checks only if False).
    """
    header = read_npy_header(path, problems)
    if header is None:
        return None
    shape, dtype = header
    fix_shape = f"store one row per frame: an array of shape (n_frames, {width}), float32"
    if len(shape) != 2:
        problems.append(Problem(path, f"a 2-D array (n_frames, {width})",
                                f"a {len(shape)}-D array of shape {shape}", fix_shape))
        return None
    if shape[1] != width:
        problems.append(Problem(path, f"{width} columns ({what})",
                                f"{shape[1]} columns (shape {shape})", fix_shape))
        return None
    if dtype.kind != "f":
        problems.append(Problem(path, "a floating-point array", f"dtype {dtype}",
                                "convert with np.save(path, x.astype(np.float32))"))
        return None
    if shape[0] == 0:
        problems.append(Problem(path, "at least one frame", "0 frames (shape (0, ...))",
                                "remove the empty clip (and its partner) or re-extract it"))
        return None
    if not deep:
        return shape[0]
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        problems.append(Problem(path, "a loadable .npy array", f"a load error ({exc})",
                                "re-export the file with np.save"))
        return None
    names = schema.ATTR_NAMES if what == "attributes" else None
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[r, c]) else "inf"
        problems.append(Problem(path, "finite values in every frame",
                                f"{int(bad.sum())} non-finite values in {int(bad.any(1).sum())} "
                                f"frames; first at frame {r}, column {_col(c, names)}: {kind}",
                                "interpolate or drop the bad frames (typically failed face "
                                "tracking) before preparing the data"))
        return None
    if what == "attributes":
        _check_attribute_values(path, arr, problems, warnings_)
    return shape[0]


def _col(c: int, names: tuple[str, ...] | None) -> str:
    return f"{c} ({names[c]})" if names is not None else str(c)


def _check_attribute_values(path: Path, arr: np.ndarray, problems: list[Problem],
                            warnings_: list[Problem]) -> None:
    au = arr[:, schema.AU].astype(np.float64)
    bad = np.minimum(np.abs(au), np.abs(au - 1.0)) > AU_TOLERANCE
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        problems.append(Problem(path, "AU occurrences (columns 0-14) in {0, 1}",
                                f"{int(bad.sum())} values outside {{0, 1}}; first at frame {r}, "
                                f"column {_col(c, schema.ATTR_NAMES)}: {au[r, c]:.4g}",
                                "binarise AU probabilities: x[:, :15] = (x[:, :15] >= 0.5)"))
    expr = arr[:, schema.EXPR].astype(np.float64)
    off = (np.abs(expr.sum(1) - 1.0) > EXPR_SUM_TOLERANCE) | (expr < -AU_TOLERANCE).any(1)
    if off.any():
        r = int(np.argmax(off))
        warnings_.append(Problem(path, "expression probabilities (columns 17-24) >= 0 summing to 1",
                                 f"{int(off.sum())} frames that do not; first frame {r} sums to "
                                 f"{expr[r].sum():.4g}",
                                 "store softmax probabilities, not logits or scores"))


def check_wav(path: Path, problems: list[Problem], *, deep: bool = True) -> float | None:
    """Validate a PCM .wav file; return its duration in seconds, or None if unusable."""
    try:
        with wave.open(str(path), "rb") as w:
            n, sr, ch, width = w.getnframes(), w.getframerate(), w.getnchannels(), w.getsampwidth()
            got = len(w.readframes(n)) // max(ch * width, 1) if deep else n
    except (wave.Error, EOFError, OSError, ValueError) as exc:
        problems.append(Problem(path, "a readable PCM WAV file", f"an unreadable file ({exc})",
                                _WAV_FIX))
        return None
    if width not in (1, 2, 3, 4):
        problems.append(Problem(path, "8/16/24/32-bit PCM samples", f"{8 * width}-bit samples",
                                _WAV_FIX))
        return None
    if n == 0 or sr <= 0:
        problems.append(Problem(path, "audio samples", f"{n} samples at {sr} Hz", _WAV_FIX))
        return None
    if got < n:
        problems.append(Problem(path, f"{n} samples (as its header says)",
                                f"{got} samples: the file is truncated", "re-copy or re-export it"))
        return None
    return n / sr


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a PCM WAV as mono float32 in [-1, 1] (channels averaged).

    Returns:
        (samples (S,) float32, sample rate in Hz).

    Raises:
        ValueError: if the file is not a readable 8/16/24/32-bit PCM WAV.
    """
    try:
        with wave.open(str(path), "rb") as w:
            sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: expected a readable PCM WAV file, got {exc}; "
                         f"{_WAV_FIX}") from exc
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:
        raise ValueError(f"{path}: expected 8/16/24/32-bit PCM, got {8 * width}-bit; {_WAV_FIX}")
    x = x[: len(x) - len(x) % ch].reshape(-1, ch).mean(axis=1)  # (S,) mono
    return np.clip(x, -1.0, 1.0).astype(np.float32), sr
