"""The dataset manifest: what a complete set of Parquet shards holds (written last, read first).

Layout of a prepared dataset at ``uri``::

    manifest.json                 this file; its presence marks the dataset complete
    protocol.json                 appropriate-reaction table and the test protocol's GT sets
    <split>/part-<nnnnn>.parquet  one row per dyad (`react_data.schema.parquet_schema`)
    _progress/<shard>.json        resume record of each written shard (`react_data.shards.write`)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from react_data import schema

__all__ = ["MANIFEST_FILE", "PROGRESS_DIR", "PROTOCOL_FILE", "FileEntry", "Manifest"]

MANIFEST_FILE = "manifest.json"
PROTOCOL_FILE = "protocol.json"
PROGRESS_DIR = "_progress"


@dataclass(frozen=True)
class FileEntry:
    """One file of the dataset.

    Attributes:
        file: path relative to the dataset root (``train/part-00000.parquet``).
        bytes: size in bytes.
        sha256: hex digest of the whole file.
        rows: dyads in the shard (0 for tables).
        frames: total frames over the shard's rows.
        fingerprint: digest of the source the shard was built from (resume key).
    """

    file: str
    bytes: int
    sha256: str
    rows: int = 0
    frames: int = 0
    fingerprint: str = ""


@dataclass
class Manifest:
    """Contents of ``manifest.json``.

    Attributes:
        schema_version: `schema.SCHEMA_VERSION` the shards were written with.
        fps: frame rate of the clips.
        persons: target person ids; position = ``listener_person_idx`` in the rows.
        modalities: per-frame modalities present in the rows (others are null).
        shards: split -> its shard files, in row order.
        stats: feature group -> {"mean": [...], "std": [...], "count": n}, from the train split
            only ("coef": speaker and listener 3DMM, "audio": speaker MFCC, "listener_attr",
            "speaker_attr"); empty without a train split.
        protocol: the ``protocol.json`` entry.
        gt_k: GT reactions per input in the test protocol.
        gt_seed: seed of the test protocol's GT sampling.
        bidirectional: whether listener->speaker dyads are included.
        fingerprint: digest of everything the dataset was built from (settings and sources).
        created: provenance: time, versions, source root, shards written/reused by the last run.
    """

    schema_version: int
    fps: float
    persons: list[str]
    modalities: list[str]
    shards: dict[str, list[FileEntry]]
    stats: dict[str, dict[str, Any]]
    protocol: FileEntry
    gt_k: int
    gt_seed: int
    bidirectional: bool
    fingerprint: str
    created: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        """Splits with at least one shard, in `schema.SPLITS` order."""
        return [s for s in schema.SPLITS if self.shards.get(s)]

    def rows(self, split: str) -> int:
        return sum(s.rows for s in self.shards.get(split, []))

    def frames(self, split: str) -> int:
        return sum(s.frames for s in self.shards.get(split, []))

    def nbytes(self, split: str | None = None) -> int:
        """Parquet bytes of one split, or of all shards."""
        splits = [split] if split else list(self.shards)
        return sum(s.bytes for sp in splits for s in self.shards.get(sp, []))

    def files(self) -> list[FileEntry]:
        """Every data file (shards of all splits, then the protocol table)."""
        return [s for sp in self.shards.values() for s in sp] + [self.protocol]

    def mean_std(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(D,) mean and (D,) std of a feature group (see ``stats``) as float32 arrays."""
        if name not in self.stats:
            raise ValueError(
                f"the dataset has no train statistics for {name!r} (has {sorted(self.stats)}); "
                "normalisation statistics come from the train split: prepare the dataset with "
                "the train split (and the modality) included")
        s = self.stats[name]
        return np.asarray(s["mean"], np.float32), np.asarray(s["std"], np.float32)

    def column_stats(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Row column -> (mean, std) it is normalised with (3DMM and audio columns present)."""
        cols = {"speaker_coef": ("coef", "coefficients"), "listener_coef": ("coef", "coefficients"),
                "speaker_audio": ("audio", "audio")}
        return {col: self.mean_std(group) for col, (group, mod) in cols.items()
                if mod in self.modalities}

    def summary(self) -> str:
        """Counts per split: shards, dyads, frames, MB."""
        lines = [f"schema v{self.schema_version}, fps {self.fps:g}, modalities "
                 f"{', '.join(self.modalities)}, {len(self.persons)} target persons"]
        for split in self.splits:
            lines.append(f"  {split:5s}: {len(self.shards[split])} shard(s), {self.rows(split)} "
                         f"dyads, {self.frames(split)} frames, "
                         f"{self.nbytes(split) / 1e6:.1f} MB")
        return "\n".join(lines)

    def to_json(self) -> str:
        d = asdict(self)
        d["counts"] = {s: {"shards": len(self.shards[s]), "rows": self.rows(s),
                           "frames": self.frames(s), "bytes": self.nbytes(s)}
                       for s in self.splits}  # for people reading the file; ignored on load
        return json.dumps(d, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "manifest.json") -> Manifest:
        """Parse a manifest; ValueError naming ``where`` if it is not one this version reads."""
        try:
            d = json.loads(text)
            d.pop("counts", None)
            d["shards"] = {k: [FileEntry(**e) for e in v] for k, v in d["shards"].items()}
            d["protocol"] = FileEntry(**d["protocol"])
            m = cls(**d)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{where} is not a valid reactune manifest ({exc}); re-run "
                             "`python -m react_data.prepare` to rewrite the dataset") from None
        if m.schema_version != schema.SCHEMA_VERSION:
            raise ValueError(f"{where} has schema version {m.schema_version}, this reactune "
                             f"reads version {schema.SCHEMA_VERSION}; re-run prepare with "
                             "overwrite to rebuild the shards")
        return m
