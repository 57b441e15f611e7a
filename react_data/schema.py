"""Dimensions, named feature slices and the Parquet schema: the only place they are spelled out.

Frames are 25 fps (the challenge metrics' clock). Facial attributes are 25-d:
15 AU occurrences, valence and arousal, 8 expression probabilities. 3DMM coefficients are the
58-d FaceVerse v2 per-frame vector: 52 expression, 3 rotation (Euler, radians), 3 translation.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

FPS = 25  # the challenge evaluates at 25 fps (TLCC lags, windows)
MARS_FPS = 30  # real MARS recordings are 30 fps; recorded per clip in the manifest
AUDIO_SAMPLE_RATE = 16_000  # synthetic wavs; real MARS wavs are resampled to this at prepare time

# --- 25-d facial attributes -------------------------------------------------------------------
ATTR_DIM = 25
AU = slice(0, 15)
VALENCE = 15
AROUSAL = 16
VA = slice(15, 17)
EXPR = slice(17, 25)
N_AU = AU.stop - AU.start
N_EXPR = EXPR.stop - EXPR.start
# Commonly quoted identities (the data's own header is authoritative; no code depends on them).
AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
            "AU23", "AU24", "AU25", "AU26")
EXPR_NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
ATTR_NAMES = AU_NAMES + ("valence", "arousal") + tuple(f"expr_{n}" for n in EXPR_NAMES)
# FRDist feature groups and their weights (challenge definition).
ATTR_GROUPS: tuple[tuple[str, slice, float], ...] = (
    ("au", AU, 1.0 / 15.0),
    ("va", VA, 1.0),
    ("expr", EXPR, 1.0 / 8.0),
)

# --- 58-d 3DMM (FaceVerse v2) -----------------------------------------------------------------
COEF_DIM = 58
COEF_EXP = slice(0, 52)
COEF_ROT = slice(52, 55)
COEF_TRANS = slice(55, 58)
N_COEF_EXP = 52

# --- audio features: one vector per video frame ------------------------------------------------
# 13 MFCC (with energy) + deltas + delta-deltas over 2 analysis hops per 40 ms frame = 78 (the
# Trans-VAE baseline's audio input width).
N_MFCC = 13
AUDIO_DIM = 78

# --- MARS tree ---------------------------------------------------------------------------------
SPLITS = ("train", "val", "test")
ROLES = ("speaker", "listener")
N_SESSIONS = 23  # session0 .. session22
MODALITIES = {
    "facial-attributes": ".npy",
    "coefficients": ".npy",
    "audio": ".wav",
    "video-face-crop": ".mp4",
}


def parquet_schema() -> pa.Schema:
    """Arrow schema of one shard row (one dyad: a speaker clip and its paired listener clip).

    Per-frame features are one ``binary`` value per row: the (n_frames, dim) float32 array in
    little-endian row-major bytes (``np.frombuffer(v, "<f4").reshape(-1, dim)``; ``dim`` is also
    in the field metadata). Raw bytes parse several times faster than ``list<float32>`` (no
    repetition levels) and compress smaller. A missing modality is a null, never zeros.
    """

    def f32(dim: int) -> dict:
        return {"type": pa.binary(), "metadata": {b"dtype": b"<f4", b"dim": str(dim).encode()}}

    return pa.schema(
        [
            pa.field("split", pa.string(), nullable=False),
            pa.field("session", pa.int32(), nullable=False),
            pa.field("clip", pa.string(), nullable=False),  # the recording's file stem
            pa.field("dyad", pa.string(), nullable=False),  # layout.Dyad.key (unique per row)
            pa.field("speaker_clip", pa.string(), nullable=False),  # layout.Clip.key of the input
            pa.field("listener_clip", pa.string(), nullable=False),  # Clip.key of the target
            pa.field("direction", pa.string(), nullable=False),  # "speaker->listener" | reverse
            pa.field("speaker_person", pa.string(), nullable=False),
            pa.field("listener_person", pa.string(), nullable=False),
            pa.field("listener_person_idx", pa.int32(), nullable=False),
            pa.field("n_frames", pa.int32(), nullable=False),
            pa.field("fps", pa.float32(), nullable=False),
            pa.field("speaker_attr", nullable=False, **f32(ATTR_DIM)),
            pa.field("speaker_coef", **f32(COEF_DIM)),
            pa.field("speaker_audio", **f32(AUDIO_DIM)),
            pa.field("listener_attr", nullable=False, **f32(ATTR_DIM)),
            pa.field("listener_coef", **f32(COEF_DIM)),
        ],
        metadata={b"reactune_schema_version": str(SCHEMA_VERSION).encode()},
    )
