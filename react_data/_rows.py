"""Shard rows: featurise dyads into Arrow tables, and the frame-column byte encoding.

Used by `react_data.shards` (writing) and `react_data.stream` / `react_data.evalset` (reading).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from react_data import features, schema

__all__ = ["COMPRESSION", "FEATURE_VERSION", "FRAME_COLS", "STAT_DIMS", "build_shard",
           "fingerprint", "pack_flat", "pack_frames", "parquet_bytes", "unpack_frames"]

FEATURE_VERSION = 1  # bump when features.mfcc_per_frame changes output (invalidates resume)
COMPRESSION = "lz4"  # decodes ~4x faster than zstd here for ~10% more bytes
STAT_DIMS = {"coef": schema.COEF_DIM, "audio": schema.AUDIO_DIM,
              "listener_attr": schema.ATTR_DIM, "speaker_attr": schema.ATTR_DIM}
FRAME_COLS = {"speaker_attr": schema.ATTR_DIM, "speaker_coef": schema.COEF_DIM,
               "speaker_audio": schema.AUDIO_DIM, "listener_attr": schema.ATTR_DIM,
               "listener_coef": schema.COEF_DIM}


def fingerprint(index: Any, dyads: Sequence[Any], modalities: Sequence[str]) -> str:
    """Digest of everything a shard of these dyads is built from (resume key)."""
    items: list[Any] = [schema.SCHEMA_VERSION, schema.parquet_schema().to_string(),
                        FEATURE_VERSION, COMPRESSION, list(modalities)]
    for d in dyads:
        srcs = []
        for clip in (d.speaker, d.listener):
            for mod in modalities:
                st = os.stat(clip.files[mod])
                srcs.append([mod, st.st_size, st.st_mtime_ns])
        items.append([d.key, d.speaker.n_frames, d.listener.n_frames, d.speaker.fps,
                      d.speaker.person, d.listener.person,
                      index.person_index(d.listener.person), srcs])
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def pack_frames(chunks: Sequence[np.ndarray | None]) -> pa.Array:
    """Per-row (T_i, dim) arrays -> a binary column of float32 bytes; all None -> all null.

    Raises:
        ValueError: when only some rows are None (a modality is dataset-wide).
    """
    if all(c is None for c in chunks):
        return pa.nulls(len(chunks), pa.binary())
    if any(c is None for c in chunks):
        raise ValueError("a modality is present for some dyads of a shard only")
    values = np.concatenate([np.asarray(c, "<f4").reshape(-1) for c in chunks])
    return pack_flat(values, np.array([c.size for c in chunks], np.int64))


def pack_flat(values: np.ndarray, sizes: np.ndarray) -> pa.Array:
    """Contiguous float32 ``values`` cut into rows of ``sizes`` floats -> a binary column."""
    values = np.ascontiguousarray(values, "<f4").reshape(-1)
    offsets = np.concatenate([[0], np.cumsum(sizes) * 4]).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), len(sizes),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(values)])


def unpack_frames(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A frame column -> (offsets (R+1,) in floats, float32 values) zero-copy; None if all null.

    Row r is ``values[offsets[r]:offsets[r + 1]]`` (``n_frames * dim`` floats).

    Raises:
        ValueError: when only some rows are null.
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_binary(arr.type) or pa.types.is_null(arr.type)):
        raise ValueError(f"a frame column has type {arr.type}, expected binary (float32 bytes): "
                         "the shards were written by another reactune version; re-run prepare "
                         "with overwrite")
    if len(arr) and arr.null_count == len(arr):
        return None
    if arr.null_count:
        raise ValueError("a shard has a modality for some rows only; re-run prepare")
    _, off_buf, data = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    if data is None:
        return offsets // 4, np.zeros(0, np.float32)
    return offsets // 4, np.frombuffer(data, "<f4", count=data.size // 4)


def build_shard(index: Any, dyads: Sequence[Any], modalities: Sequence[str],
                 with_stats: bool) -> tuple[pa.Table, dict[str, features.RunningStats]]:
    """Load, featurise and pack dyads into one table; train statistics if ``with_stats``."""
    from react_data import layout

    cols: dict[str, list[Any]] = {f.name: [] for f in schema.parquet_schema()}
    stats = {k: features.RunningStats(d) for k, d in STAT_DIMS.items()}
    for d in dyads:
        spk, lis = d.speaker, d.listener
        n = min(spk.n_frames, lis.n_frames)
        frame = {"speaker_attr": layout.load_attributes(spk)[:n],
                 "listener_attr": layout.load_attributes(lis)[:n],
                 "speaker_coef": None, "listener_coef": None, "speaker_audio": None}
        if "coefficients" in modalities:
            frame["speaker_coef"] = layout.load_coefficients(spk)[:n]
            frame["listener_coef"] = layout.load_coefficients(lis)[:n]
        if "audio" in modalities:
            samples, sr = layout.load_audio(spk)
            frame["speaker_audio"] = features.mfcc_per_frame(samples, sr, n, spk.fps)
        for name, value in (("split", d.split), ("session", d.session), ("clip", d.stem),
                            ("dyad", d.key), ("speaker_clip", spk.key),
                            ("listener_clip", lis.key), ("direction", d.direction),
                            ("speaker_person", spk.person), ("listener_person", lis.person),
                            ("listener_person_idx", index.person_index(lis.person)),
                            ("n_frames", n), ("fps", spk.fps), *frame.items()):
            cols[name].append(value)
        if with_stats:
            for key in ("speaker_attr", "listener_attr"):
                stats[key].update(frame[key])
            for key in ("speaker_coef", "listener_coef"):
                if frame[key] is not None:
                    stats["coef"].update(frame[key])
            if frame["speaker_audio"] is not None:
                stats["audio"].update(frame["speaker_audio"])
    sch = schema.parquet_schema()
    arrays = [pack_frames(cols[f.name]) if f.name in FRAME_COLS
              else pa.array(cols[f.name], type=f.type) for f in sch]
    return pa.Table.from_arrays(arrays, schema=sch), stats


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION, use_dictionary=["split", "direction"],
                   write_statistics=False)
    return sink.getvalue().to_pybytes()
