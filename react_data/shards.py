"""Write, read and verify Parquet shards of a MARS `ClipIndex` (local directory or S3).

One row per dyad (`schema.parquet_schema`): ids, the target person's index, fps, frame count,
speaker and listener attributes (raw), 3DMM and speaker MFCC (raw; the manifest carries the
train-split mean/std the stream normalises with). A modality the index lacks is null.

Completeness: ``manifest.json`` is written last and removed first when a dataset is rewritten,
so a dataset without it is never read as complete. Resume: shard names and contents are
deterministic (split, position); ``_progress/<shard>.json`` records each finished shard
with its size, sha256, the fingerprint of its sources (clip keys, frame counts, person indices,
file sizes and modification times, schema and feature versions) and its partial train
statistics (it stays after completion, so a damaged dataset is repaired the same way). A re-run
skips every recorded shard whose fingerprint matches and whose stored bytes still hash to the
recorded sha256, and writes only the rest.
"""

from __future__ import annotations

import hashlib
import json
import platform
import posixpath
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from react_data import features, schema
from react_data._rows import (
    COMPRESSION,
    FEATURE_VERSION,
    STAT_DIMS,
    pack_flat,
    pack_frames,
    parquet_bytes,
    unpack_frames,
)
from react_data._rows import build_shard as _build_shard  # a module attribute: tests interrupt it
from react_data._rows import fingerprint as shard_fingerprint
from react_data.manifest import (
    MANIFEST_FILE,
    PROGRESS_DIR,
    PROTOCOL_FILE,
    FileEntry,
    Manifest,
)
from react_data.storage import Store

__all__ = ["COMPRESSION", "FEATURE_VERSION", "CorruptShardError", "FileEntry", "Manifest",
           "check_sizes", "open_dataset", "pack_flat", "pack_frames", "read_manifest",
           "read_protocol", "rerun_hint", "shard_paths", "unpack_frames", "verify", "write"]

ROWS_PER_SHARD = 16  # ~11 MB per shard of 750-frame dyads: big S3 objects, quick first batch
GT_K = 10  # test protocol: GT reactions per input
GT_SEED = 1234  # the challenge configs' seed


class CorruptShardError(ValueError):
    """A dataset file whose size, checksum or Parquet structure disagrees with the manifest."""


def rerun_hint(uri: str) -> str:
    """The fix for a damaged or incomplete dataset at ``uri``."""
    return (f"re-run `python -m react_data.prepare --out {uri}` (it resumes and rewrites only "
            "missing or damaged shards)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _protocol(index: Any, splits: Sequence[str], k: int, seed: int) -> dict[str, Any]:
    appropriate = [{"split": s, "session": sess, "role": role, "targets": list(keys)}
                   for (s, sess, role), keys in sorted(index.appropriate_by_role.items())
                   if s in splits]
    gts = {s: index.test_gt_sets(s, k=k, seed=seed) for s in splits if index.split_dyads(s)}
    return {"appropriate": appropriate, "gt_sets": gts, "gt_k": k, "gt_seed": seed}


def _record_name(shard: str) -> str:
    return f"{PROGRESS_DIR}/{shard}.json"


def _read_progress(store: Store) -> dict[str, Any]:
    """Shard file -> its resume record (unreadable records are ignored: rebuilt)."""
    done = {}
    for name in store.list(PROGRESS_DIR):
        try:
            rec = json.loads(store.read_bytes(name))
            if name == _record_name(rec["file"]):
                done[rec["file"]] = rec
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    return done


def _reusable(store: Store, entry: dict[str, Any] | None, fingerprint: str) -> bool:
    if not entry or entry.get("fingerprint") != fingerprint:
        return False
    if store.size(entry["file"]) != entry["bytes"]:
        return False
    return _sha256(store.read_bytes(entry["file"])) == entry["sha256"]


def write(index: Any, uri: str, *, rows_per_shard: int = ROWS_PER_SHARD,
          splits: Sequence[str] | None = None, progress: bool = True, overwrite: bool = False,
          gt_k: int = GT_K, gt_seed: int = GT_SEED,
          storage_options: dict[str, Any] | None = None) -> Manifest:
    """Write a `layout.ClipIndex` as Parquet shards + protocol table + manifest (resumable).

    Args:
        index: the scanned MARS tree.
        uri: local directory or ``s3://bucket/prefix``.
        rows_per_shard: dyads per shard file.
        splits: splits to write (default: every split with dyads).
        progress: tqdm bar on stderr.
        overwrite: replace a complete dataset built from different sources or settings (a
            complete dataset built from the same ones is returned as is).
        gt_k: GT reactions per input in the test protocol.
        gt_seed: seed of the test protocol's GT sampling.
        storage_options: `storage.filesystem` options (endpoint_url, region, ...).

    Returns:
        The written `Manifest`.

    Raises:
        FileExistsError: a different complete dataset is at ``uri`` and ``overwrite`` is False.
        ValueError: bad arguments or an empty selection.
    """
    if not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be a positive int, got {rows_per_shard!r}")
    splits = [s for s in schema.SPLITS if index.split_dyads(s)] if splits is None \
        else list(splits)
    bad = [s for s in splits if s not in schema.SPLITS]
    if bad or not splits or not any(index.split_dyads(s) for s in splits):
        raise ValueError(f"splits must name splits of {schema.SPLITS} that have dyads in "
                         f"{index.root}, got {splits!r}")
    store = Store.open(uri, **(storage_options or {}))
    mods = [m for m in ("coefficients", "audio") if m in index.modalities]
    plan = []  # (split, file, dyads, fingerprint)
    for split in splits:
        dyads = index.split_dyads(split)
        for i in range(0, len(dyads), rows_per_shard):
            part = dyads[i:i + rows_per_shard]
            plan.append((split, f"{split}/part-{i // rows_per_shard:05d}.parquet", part,
                         shard_fingerprint(index, part, mods)))
    settings = [index.persons, gt_k, gt_seed, index.bidirectional, [p[1:2] + p[3:] for p in plan]]
    fingerprint = _sha256(json.dumps(settings).encode())
    if store.exists(MANIFEST_FILE):
        old = read_manifest(store)
        if old.fingerprint == fingerprint and not overwrite:
            try:
                verify(store, checksums=True)
                if progress:
                    print(f"shards at {store.url()} are up to date with {index.root}")
                n = sum(len(v) for v in old.shards.values())
                return replace(old, created={**old.created, "shards_written": 0,
                                             "shards_reused": n})
            except (FileNotFoundError, CorruptShardError) as exc:
                if progress:
                    print(f"repairing {store.url()}: {str(exc).split(';')[0]}")
        elif not overwrite:
            raise FileExistsError(
                f"{store.url(MANIFEST_FILE)} describes a dataset built from other sources or "
                f"settings than {index.root}; pass overwrite=True (--overwrite) to replace it, "
                "or write to another location")
        store.delete(MANIFEST_FILE)  # from here on the dataset is incomplete until rewritten
    done = _read_progress(store)
    from tqdm import tqdm

    bar = tqdm(total=sum(len(p[2]) for p in plan), unit="dyad", disable=not progress,
               desc=f"shards -> {store.url()}")
    stats = {k: features.RunningStats(d) for k, d in STAT_DIMS.items()}
    entries: dict[str, list[FileEntry]] = {s: [] for s in splits}
    written = 0
    for split, name, dyads, fp in plan:
        rec = done.get(name)
        if not _reusable(store, rec, fp):
            table, part_stats = _build_shard(index, dyads, mods, with_stats=split == "train")
            data = parquet_bytes(table)
            store.write_bytes(name, data)
            rec = {"file": name, "bytes": len(data), "sha256": _sha256(data), "rows": len(dyads),
                   "frames": int(sum(table.column("n_frames").to_numpy())), "fingerprint": fp,
                   "stats": {k: v.to_dict() for k, v in part_stats.items() if v.count}}
            store.write_bytes(_record_name(name), json.dumps(rec).encode())
            written += 1
        if split == "train":
            for k, v in rec["stats"].items():
                stats[k].merge(features.RunningStats.from_dict(v))
        entries[split].append(FileEntry(**{k: v for k, v in rec.items() if k != "stats"}))
        bar.update(len(dyads))
    bar.close()
    planned = {p[1] for p in plan}
    for split in splits:  # stale parts of an earlier, larger plan, and their records
        for name in store.list(split):
            if name.endswith(".parquet") and name not in planned:
                store.delete(name)
                store.delete(_record_name(name))
    proto = json.dumps(_protocol(index, splits, gt_k, gt_seed), indent=0).encode()
    store.write_bytes(PROTOCOL_FILE, proto)
    manifest = Manifest(
        schema_version=schema.SCHEMA_VERSION, fps=float(index.fps), persons=list(index.persons),
        modalities=["facial-attributes", *mods], shards=entries,
        stats={k: {"mean": v.mean.tolist(), "std": v.std.tolist(), "count": v.count}
               for k, v in stats.items() if v.count},
        protocol=FileEntry(PROTOCOL_FILE, len(proto), _sha256(proto)), gt_k=gt_k,
        gt_seed=gt_seed, bidirectional=bool(index.bidirectional), fingerprint=fingerprint,
        created={"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": str(index.root),
                 "shards_written": written, "shards_reused": len(plan) - written,
                 "pyarrow": pa.__version__, "python": platform.python_version()})
    store.write_bytes(MANIFEST_FILE, manifest.to_json().encode())
    return manifest


def _as_store(uri: str | Store, storage_options: dict[str, Any] | None) -> Store:
    return uri if isinstance(uri, Store) else Store.open(uri, **(storage_options or {}))


def read_manifest(uri: str | Store, *,
                  storage_options: dict[str, Any] | None = None) -> Manifest:
    """The manifest of a complete dataset.

    Raises:
        FileNotFoundError: no ``manifest.json`` (not prepared, or a prepare run did not finish).
        ValueError: unreadable manifest or another schema version.
    """
    store = _as_store(uri, storage_options)
    try:
        text = store.read_bytes(MANIFEST_FILE)
    except FileNotFoundError:
        found = store.list()
        state = (f"a prepare run was interrupted ({PROGRESS_DIR}/ is there)"
                 if any(f.startswith(PROGRESS_DIR + "/") for f in found) else
                 f"it holds {len(found)} file(s) but is not a complete reactune dataset"
                 if found else "nothing is there")
        raise FileNotFoundError(
            f"no {MANIFEST_FILE} at {store.url()}: {state}. Shards are only usable once "
            f"prepare has finished; {rerun_hint(store.uri)}") from None
    return Manifest.from_json(text, where=store.url(MANIFEST_FILE))


def read_protocol(uri: str | Store, manifest: Manifest | None = None, *,
                  storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``protocol.json`` (appropriate table and GT sets), checked against the manifest."""
    store = _as_store(uri, storage_options)
    manifest = manifest or read_manifest(store)
    data = store.read_bytes(PROTOCOL_FILE)
    if _sha256(data) != manifest.protocol.sha256:
        raise CorruptShardError(f"{store.url(PROTOCOL_FILE)} does not match its manifest "
                                f"checksum; {rerun_hint(store.uri)}")
    return json.loads(data)


def verify(uri: str | Store, *, checksums: bool = True,
           storage_options: dict[str, Any] | None = None) -> Manifest:
    """Check that every file the manifest lists is present and intact.

    Args:
        uri: dataset location (or an open `Store`).
        checksums: hash every file (reads all bytes); False checks sizes and Parquet footers.
        storage_options: `storage.filesystem` options.

    Returns:
        The manifest.

    Raises:
        FileNotFoundError: the manifest or a listed file is missing (named).
        CorruptShardError: a file with the wrong size, checksum or an unreadable footer (named).
    """
    return _verify_store(_as_store(uri, storage_options), checksums)


def _entries(manifest: Manifest, split: str | None) -> list[FileEntry]:
    """Files to check: one split's shards and the protocol table, or every file."""
    if split is None:
        return manifest.files()
    return [*manifest.shards.get(split, []), manifest.protocol]


def check_sizes(store: Store, manifest: Manifest, split: str | None = None) -> None:
    """Every file of the manifest exists with its recorded size (one listing, no reads).

    Raises:
        FileNotFoundError / CorruptShardError: naming the first bad file and the fix.
    """
    sizes = store.list()
    for entry in _entries(manifest, split):
        url = store.url(entry.file)
        if entry.file not in sizes:
            raise FileNotFoundError(f"{url} is listed in the manifest but missing; "
                                    f"{rerun_hint(store.uri)}")
        if sizes[entry.file] != entry.bytes:
            raise CorruptShardError(f"{url} has {sizes[entry.file]} bytes, the manifest says "
                                    f"{entry.bytes} (truncated or overwritten); "
                                    f"{rerun_hint(store.uri)}")


def _verify_store(store: Store, checksums: bool, split: str | None = None) -> Manifest:
    manifest = read_manifest(store)
    check_sizes(store, manifest, split)
    for entry in _entries(manifest, split):
        url = store.url(entry.file)
        if checksums:
            if _sha256(store.read_bytes(entry.file)) != entry.sha256:
                raise CorruptShardError(f"{url} does not match its sha256 in the manifest "
                                        f"(corrupted); {rerun_hint(store.uri)}")
        elif entry.file.endswith(".parquet"):
            try:
                meta = pq.read_metadata(store.path(entry.file), filesystem=store.fs)
            except (OSError, pa.ArrowInvalid) as exc:
                raise CorruptShardError(f"{url} is not a readable Parquet file ({exc}); "
                                        f"{rerun_hint(store.uri)}") from None
            if meta.num_rows != entry.rows:
                raise CorruptShardError(f"{url} has {meta.num_rows} rows, the manifest says "
                                        f"{entry.rows}; {rerun_hint(store.uri)}")
    return manifest


def open_dataset(uri: str | Store, *, verify: bool | str = True, split: str | None = None,
                 storage_options: dict[str, Any] | None = None) -> tuple[Store, Manifest]:
    """Open a prepared dataset: its `Store` and checked `Manifest`.

    Args:
        uri: local directory or ``s3://bucket/prefix`` (or an open `Store`).
        verify: True or "checksum": hash every file; "size": sizes and Parquet footers;
            False: read the manifest only.
        split: check only this split's shards (and the protocol table); None: every file.
        storage_options: `storage.filesystem` options (endpoint_url, region, ...).
    """
    if verify not in (True, False, "checksum", "size"):
        raise ValueError(f"verify must be True, False, 'checksum' or 'size', got {verify!r}")
    store = _as_store(uri, storage_options)
    if verify:
        return store, _verify_store(store, verify in (True, "checksum"), split)
    return store, read_manifest(store)


def shard_paths(store: Store, manifest: Manifest, split: str) -> list[str]:
    """Filesystem paths of a split's shards (for readers given ``store.fs``)."""
    if not manifest.shards.get(split):
        raise ValueError(f"the dataset at {store.url()} has no {split!r} shards; it has "
                         f"{manifest.splits}")
    return [posixpath.join(store.root, e.file) for e in manifest.shards[split]]

