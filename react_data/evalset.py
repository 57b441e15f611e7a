"""Evaluation sets: equal-length speaker inputs and their appropriate listener reactions.

Read directly with pyarrow (no Ray), so a trial actor or a notebook can build one cheaply.
Re-exported by `react_data.stream`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from react_data import features, schema, shards
from react_data.batch import ReactionBatch
from react_data.manifest import Manifest
from react_data.storage import Store

__all__ = ["EvalSet", "load_eval_set", "train_stats"]

PROTOCOLS = ("session", "test10")


@dataclass
class EvalSet:
    """N speaker inputs cropped to a common T frames, with their appropriate reactions.

    Attributes:
        batch: the N dyads as one `ReactionBatch` (T frames from frame 0, no padding; 3DMM and
            audio normalised, attributes raw; targets = the paired listeners).
        appropriate: N arrays (G_n, T, 25) of appropriate listener attributes; the paired
            listener is always first (``appropriate[n][0] == listener[n]``).
        appropriate_keys: the clip keys of ``appropriate``, same order.
        speaker: (N, T, 25) speaker attributes.
        listener: (N, T, 25) the paired listener attributes.
        keys: N dyad keys.
        protocol: "session" (every target clip of the split and session) or "test10" (the
            partner + 9 seeded same-session samples, the 2025 test protocol).
    """

    batch: ReactionBatch
    appropriate: list[np.ndarray]
    appropriate_keys: list[list[str]]
    speaker: np.ndarray
    listener: np.ndarray
    keys: list[str]
    protocol: str

    @property
    def num_frames(self) -> int:
        return int(self.speaker.shape[1])

    def __len__(self) -> int:
        return len(self.keys)


def _frames(table: pa.Table, name: str, dim: int, t: int) -> np.ndarray | None:
    """A frame column -> (R, t, dim) first t frames of every row; None if all null."""
    flat = shards.unpack_frames(table.column(name))
    if flat is None:
        return None
    offsets, values = flat
    return np.stack([values[o:o + t * dim].reshape(t, dim) for o in offsets[:-1]]) \
        if len(table) else np.zeros((0, t, dim), np.float32)


def _read_split(store: Store, manifest: Manifest, split: str, checksums: bool) -> pa.Table:
    """A split's rows sorted by dyad key; each shard read whole and its sha256 checked."""
    if not manifest.shards.get(split):
        raise ValueError(f"the dataset at {store.url()} has no {split!r} shards; it has "
                         f"{manifest.splits}")
    tables = []
    for entry in manifest.shards[split]:
        data = store.read_bytes(entry.file)
        if checksums and hashlib.sha256(data).hexdigest() != entry.sha256:
            raise shards.CorruptShardError(f"{store.url(entry.file)} does not match its sha256 "
                                           f"in the manifest; {shards.rerun_hint(store.uri)}")
        tables.append(pq.read_table(pa.BufferReader(data)))
    table = pa.concat_tables(tables)
    return table.take(pa.array(np.argsort(np.array(table.column("dyad").to_pylist()),
                                          kind="stable")))


def load_eval_set(uri: str, split: str = "val", *, num_frames: int | None = None,
                  max_items: int | None = None, protocol: str = "session", seed: int = 1234,
                  verify: bool | str = True,
                  storage_options: dict[str, Any] | None = None) -> EvalSet:
    """Speakers of a split with their appropriate listener reactions, all T frames long.

    Args:
        uri: dataset location.
        split: which split.
        num_frames: common length T (from frame 0); default the shortest clip of the split.
        max_items: keep the first N dyads (sorted by key); appropriate sets still use every
            target clip of the split.
        protocol: "session" or "test10" (see `EvalSet`).
        seed: the test protocol's sampling seed; must be the one the dataset was prepared with.
        verify: True checks sizes and every read shard's sha256; else see
            `react_data.shards.open_dataset`.
        storage_options: `storage.filesystem` options.

    Returns:
        The `EvalSet`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1 or None, got {max_items}")
    store, manifest = shards.open_dataset(uri, verify="size" if verify is True else verify,
                                          split=split, storage_options=storage_options)
    if protocol == "test10" and seed != manifest.gt_seed:
        raise ValueError(f"protocol 'test10' GT sets of {store.url()} were sampled with seed "
                         f"{manifest.gt_seed}, got seed={seed}; pass seed={manifest.gt_seed} "
                         "or re-run prepare with gt_seed")
    table = _read_split(store, manifest, split, checksums=verify is True)
    n_frames = table.column("n_frames").to_numpy()
    shortest = int(n_frames.min())
    t = shortest if num_frames is None else int(num_frames)
    if not 1 <= t <= shortest:
        worst = table.column("dyad")[int(n_frames.argmin())].as_py()
        raise ValueError(f"num_frames must be in [1, {shortest}] (the shortest clip of "
                         f"{split!r}, {worst}), got {num_frames}; pass a smaller num_frames")
    proto = shards.read_protocol(store, manifest)
    listener_keys = table.column("listener_clip").to_pylist()
    target_row = {k: i for i, k in enumerate(listener_keys)}
    attr = {name: _frames(table, name, dim, t) for name, dim in
            (("speaker_attr", schema.ATTR_DIM), ("listener_attr", schema.ATTR_DIM),
             ("speaker_coef", schema.COEF_DIM), ("listener_coef", schema.COEF_DIM),
             ("speaker_audio", schema.AUDIO_DIM))}
    n_items = len(table) if max_items is None else min(max_items, len(table))
    keys = table.column("dyad").to_pylist()[:n_items]
    if protocol == "session":
        by_group = {(a["split"], a["session"], a["role"]): a["targets"]
                    for a in proto["appropriate"]}
        sessions = table.column("session").to_pylist()
        sets = []
        for i in range(n_items):
            role = listener_keys[i].split("/")[1]
            others = [k for k in by_group[(split, sessions[i], role)] if k != listener_keys[i]]
            sets.append([listener_keys[i], *others])
    else:
        sets = [proto["gt_sets"][split][k] for k in keys]
    missing = sorted({k for s in sets for k in s if k not in target_row})
    if missing:
        raise ValueError(f"appropriate clips {missing[:3]} of {store.url()} have no row in the "
                         f"{split!r} shards; re-run prepare")
    appropriate = [attr["listener_attr"][[target_row[k] for k in s]] for s in sets]
    norm = manifest.column_stats()

    def tensor(name: str, raw: bool = False) -> torch.Tensor | None:
        x = attr[name]
        if x is None:
            return None
        x = x[:n_items]
        if not raw and name in norm:
            x = features.normalize(x, *norm[name])
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    batch = ReactionBatch(
        speaker_attr=tensor("speaker_attr", raw=True), speaker_coef=tensor("speaker_coef"),
        speaker_audio=tensor("speaker_audio"), listener_attr=tensor("listener_attr", raw=True),
        listener_coef=tensor("listener_coef"), mask=torch.ones(n_items, t, dtype=torch.bool),
        listener_idx=torch.from_numpy(
            table.column("listener_person_idx").to_numpy()[:n_items].astype(np.int64)),
        session=torch.from_numpy(table.column("session").to_numpy()[:n_items].astype(np.int64)),
        clip=table.column("clip").to_pylist()[:n_items])
    return EvalSet(batch=batch, appropriate=appropriate, appropriate_keys=sets,
                   speaker=attr["speaker_attr"][:n_items].copy(),
                   listener=attr["listener_attr"][:n_items].copy(), keys=keys, protocol=protocol)


def train_stats(uri: str, *, storage_options: dict[str, Any] | None = None
                ) -> dict[str, np.ndarray]:
    """Train-split statistics of a dataset (the MeanFr reference and normalisation).

    Returns:
        ``{"listener_attr_mean": (25,), "listener_attr_std": (25,), "speaker_attr_mean", ...,
        "coef_mean": (58,), "coef_std", "audio_mean": (78,), "audio_std"}`` float32 arrays
        (groups the dataset has).
    """
    manifest = shards.read_manifest(uri, storage_options=storage_options)
    if not manifest.stats:
        raise ValueError(f"{uri} has no train statistics (prepared without the train split); "
                         "re-run prepare including train")
    out = {}
    for name in manifest.stats:
        mean, std = manifest.mean_std(name)
        out[f"{name}_mean"], out[f"{name}_std"] = mean, std
    return out
