"""Stream prepared shards into `ReactionBatch`es with Ray Data (local disk or S3).

The only `react_data` module that imports ray. `load` checks the manifest and shard sizes, reads
the split's shard files whole with ``ray.data.read_binary_files`` through the pyarrow filesystem
of `react_data.storage` (checking each one's sha256 on the bytes it decodes), parses the Parquet
in memory and decodes rows into items:

- ``task="offline"``: one item per dyad, the whole clip, or a ``max_seq_len`` crop (a random
  start when ``shuffle``, else frame 0);
- ``task="online"``: windows of ``window_size`` target frames, each preceded by
  ``context_frames`` past frames (inputs a causal model may use, never loss targets). Items never
  contain frames after their window's end. The first ``context_frames`` frames of a clip are
  therefore context only, never targets: every item has the full context, so a batch has one
  ``context_frames`` value and no padding before real frames.

3DMM and audio features are normalised with the manifest's train statistics; attributes stay in
metric space. `iter_batches` pads items to the batch's longest and builds the mask. Crops and
window positions are a function of ``(seed, dyad)``: pass a new seed per epoch for new crops.

`load_eval_set` reads a split directly with pyarrow (no Ray needed) into equal-length speaker
inputs plus, per speaker, the appropriate listener reactions of its split and session.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch
from ray.data.collate_fn import ArrowBatchCollateFn

from react_data import features, schema, shards
from react_data._rows import FRAME_COLS
from react_data.batch import ReactionBatch
from react_data.evalset import EvalSet, load_eval_set, train_stats

__all__ = ["EvalSet", "collate", "iter_batches", "load", "load_eval_set", "train_stats"]

_FRAME_COLS = FRAME_COLS
_READ_COLS = [*_FRAME_COLS, "session", "clip", "dyad", "listener_person_idx", "n_frames"]
DEFAULT_CONTEXT_WINDOWS = 2  # online: past context = this many windows by default


class _Decoder:
    """map_batches callable: shard rows (pyarrow) -> fixed-size items (pyarrow)."""

    def __init__(self, task: str, max_seq_len: int | None, window_size: int, context: int,
                 windows_per_clip: int | None, seed: int, random: bool,
                 norm: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.task, self.max_seq_len, self.window, self.context = task, max_seq_len, \
            window_size, context
        self.windows_per_clip, self.seed, self.random, self.norm = windows_per_clip, seed, \
            random, norm

    def _spans(self, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """(start, length) item spans within a clip of n frames."""
        if self.task == "offline":
            if self.max_seq_len is None or n <= self.max_seq_len:
                return [(0, n)]
            start = int(rng.integers(0, n - self.max_seq_len + 1)) if self.random else 0
            return [(start, self.max_seq_len)]
        c, w = self.context, self.window
        if n <= c:
            return []
        if self.windows_per_clip is None:
            t0s = list(range(c, n, w))
        elif self.random:
            t0s = rng.integers(c, max(c, n - w) + 1, size=self.windows_per_clip).tolist()
        else:
            t0s = np.linspace(c, max(c, n - w), self.windows_per_clip).round().astype(int)
        return [(t0 - c, min(t0 + w, n) - (t0 - c)) for t0 in t0s]

    def __call__(self, table: pa.Table) -> pa.Table:
        n_frames = table.column("n_frames").to_numpy()
        dyads = table.column("dyad").to_pylist()
        items = []  # (row, start, length)
        for r, (n, key) in enumerate(zip(n_frames, dyads, strict=True)):
            rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
            items += [(r, s, ln) for s, ln in self._spans(int(n), rng)]
        if self.random and items:
            block_rng = np.random.default_rng([self.seed, zlib.crc32(dyads[0].encode())])
            items = [items[i] for i in block_rng.permutation(len(items))]
        rows = np.array([i[0] for i in items], np.int64)
        starts = np.array([i[1] for i in items], np.int64)
        lengths = np.array([i[2] for i in items], np.int64)
        whole_rows = len(items) == len(table) and (rows == np.arange(len(rows))).all() \
            and (starts == 0).all() and (lengths == n_frames).all()
        out: dict[str, pa.Array] = {}
        for name, dim in _FRAME_COLS.items():
            flat = shards.unpack_frames(table.column(name))
            if flat is None:
                out[name] = pa.nulls(len(items), pa.binary())
                continue
            offsets, values = flat
            if whole_rows:  # whole clips in row order: no slicing, attributes zero-copy
                if name in self.norm:
                    part = values[offsets[0]:offsets[-1]].reshape(-1, dim)
                    out[name] = shards.pack_flat(features.normalize(part, *self.norm[name]),
                                                 lengths * dim)
                else:
                    out[name] = table.column(name).combine_chunks()
                continue
            chunks = [values[b:b + ln * dim].reshape(ln, dim) for b, ln in
                      zip(offsets[rows] + starts * dim, lengths, strict=True)]
            if name in self.norm and chunks:  # one pass over the block, not per item
                normed = features.normalize(np.concatenate(chunks), *self.norm[name])
                out[name] = shards.pack_flat(normed, lengths * dim)
            else:
                out[name] = shards.pack_frames(chunks)
        take = pa.array(rows)
        out["n"] = pa.array(lengths, pa.int32())
        out["start"] = pa.array(starts, pa.int32())
        out["context"] = pa.array(np.full(len(items), self.context if self.task == "online"
                                          else 0), pa.int32())
        out["listener_idx"] = table.column("listener_person_idx").take(take).cast(pa.int64())
        out["session"] = table.column("session").take(take).cast(pa.int64())
        out["clip"] = table.column("clip").take(take)
        out["dyad"] = table.column("dyad").take(take)
        return pa.table(out)


def load(uri: str, split: str, *, task: str = "offline", max_seq_len: int | None = None,
         window_size: int = 16, context_frames: int | None = None,
         windows_per_clip: int | None = None, seed: int = 0, shuffle: bool = False,
         verify: bool | str = True, storage_options: dict[str, Any] | None = None,
         concurrency: int | None = None, num_cpus: float = 1.0) -> ray.data.Dataset:
    """A Ray Dataset of decoded items of one split (see the module docstring).

    Args:
        uri: dataset location (local directory or ``s3://bucket/prefix``).
        split: "train", "val" or "test".
        task: "offline" (whole clips) or "online" (context + window items).
        max_seq_len: offline: crop clips longer than this.
        window_size: online: target frames per item.
        context_frames: online: past frames before each window (default 2 windows).
        windows_per_clip: online: this many windows per clip (random positions when
            ``shuffle``, evenly spaced otherwise); None: every window, non-overlapping.
        seed: crop/window/order randomness (only used when ``shuffle``).
        shuffle: random crops, windows, file order and item order within blocks.
        verify: True: manifest, file sizes, and every shard's sha256 as it is read (a mismatch
            fails the iteration naming the shard); "checksum": hash every file before
            returning (reads the data twice); "size": sizes and Parquet footers; False: the
            manifest only.
        storage_options: `storage.filesystem` options.
        concurrency: Ray tasks reading/decoding at once (None: Ray's default).
        num_cpus: CPUs reserved per read/decode task (below 1 overlaps S3 waits with decoding).

    Returns:
        ``ray.data.Dataset`` of items; iterate with `iter_batches`.
    """
    if task not in ("offline", "online"):
        raise ValueError(f"task must be 'offline' or 'online', got {task!r}")
    if split not in schema.SPLITS:
        raise ValueError(f"split must be one of {schema.SPLITS}, got {split!r}")
    if max_seq_len is not None and (task != "offline" or max_seq_len < 1):
        raise ValueError(f"max_seq_len applies to task='offline' and must be >= 1, got "
                         f"{max_seq_len!r} with task={task!r}")
    if window_size < 1 or (windows_per_clip is not None and windows_per_clip < 1):
        raise ValueError(f"window_size and windows_per_clip must be >= 1, got {window_size}, "
                         f"{windows_per_clip}")
    context = window_size * DEFAULT_CONTEXT_WINDOWS if context_frames is None else context_frames
    if context < 0:
        raise ValueError(f"context_frames must be >= 0, got {context_frames}")
    checksums = verify is True
    store, manifest = shards.open_dataset(uri, verify=False if verify is True else verify,
                                          split=split, storage_options=storage_options)
    if verify is True:
        shards.check_sizes(store, manifest, split)
    paths = shards.shard_paths(store, manifest, split)
    # Whole-file reads (one GET per shard, 32 MiB buffered) then Parquet from memory: several
    # times faster from S3 than read_parquet's ranged column-chunk reads, and the sha256 is
    # checked on the very bytes that are decoded, at no extra I/O.
    ds = ray.data.read_binary_files(
        paths, filesystem=store.fs, include_paths=True, concurrency=concurrency, num_cpus=num_cpus,
        shuffle=ray.data.FileShuffleConfig(seed=seed) if shuffle else None,
        override_num_blocks=len(paths))
    decoder = _Decoder(task, max_seq_len, window_size, context if task == "online" else 0,
                       windows_per_clip, seed, shuffle, manifest.column_stats())
    expected = {e.file: e.sha256 for e in manifest.shards[split]} if checksums else None
    return ds.map_batches(_ShardReader(decoder, expected, store.url()), batch_format="pyarrow",
                          batch_size=None, concurrency=concurrency, zero_copy_batch=True,
                          num_cpus=num_cpus)


class _ShardReader:
    """map_batches callable: whole shard files -> decoded items, sha256 checked if expected."""

    def __init__(self, decoder: _Decoder, expected: dict[str, str] | None, where: str) -> None:
        self.decoder, self.expected, self.where = decoder, expected, where

    def __call__(self, table: pa.Table) -> pa.Table:
        col = table.column("bytes")
        out = []
        for i, path in enumerate(table.column("path").to_pylist()):
            name = "/".join(path.split("/")[-2:])  # "<split>/part-nnnnn.parquet"
            url = f"{self.where.rstrip('/')}/{name}"
            buf = col[i].as_buffer()
            if self.expected is not None and \
                    hashlib.sha256(memoryview(buf)).hexdigest() != self.expected.get(name):
                raise shards.CorruptShardError(
                    f"{url} does not match its sha256 in the manifest (corrupted or replaced "
                    f"since prepare); {shards.rerun_hint(self.where)}")
            try:
                rows = pq.read_table(pa.BufferReader(buf), columns=_READ_COLS)
            except (pa.ArrowInvalid, OSError) as exc:
                raise shards.CorruptShardError(f"{url} is not a readable shard ({exc}); "
                                               f"{shards.rerun_hint(self.where)}") from None
            out.append(self.decoder(rows))
        return pa.concat_tables(out)


def _pad(col: pa.ChunkedArray, lengths: np.ndarray, dim: int) -> torch.Tensor | None:
    """Frame items -> (B, T_max, dim) zero-padded tensor; None if all null."""
    flat = shards.unpack_frames(col)
    if flat is None:
        return None
    offsets, values = flat
    b, t = len(lengths), int(lengths.max()) if len(lengths) else 0
    if (lengths == t).all():
        out = values[offsets[0]:offsets[0] + b * t * dim].reshape(b, t, dim).copy()
    else:
        out = np.zeros((b, t, dim), np.float32)
        for i, (o, n) in enumerate(zip(offsets[:-1], lengths, strict=True)):
            out[i, :n] = values[o:o + n * dim].reshape(n, dim)
    return torch.from_numpy(out)


def collate(table: pa.Table) -> ReactionBatch:
    """Decoded items (pyarrow) -> padded `ReactionBatch` (CPU tensors)."""
    lengths = table.column("n").to_numpy().astype(np.int64)
    t = int(lengths.max())
    context = table.column("context").to_numpy()
    if len(set(context.tolist())) > 1:
        raise ValueError(f"items of one batch have different context_frames {set(context)}")
    frames = {name: _pad(table.column(name), lengths, dim) for name, dim in _FRAME_COLS.items()}
    mask = torch.from_numpy(np.arange(t)[None, :] < lengths[:, None])
    return ReactionBatch(**frames, mask=mask,
                         listener_idx=torch.tensor(table.column("listener_idx").to_numpy()),
                         session=torch.tensor(table.column("session").to_numpy()),
                         clip=table.column("clip").to_pylist(), context_frames=int(context[0]))


class _Collate(ArrowBatchCollateFn):
    def __call__(self, batch: pa.Table) -> ReactionBatch:
        return collate(batch)


def iter_batches(ds: ray.data.Dataset, batch_size: int, *, drop_last: bool = False,
                 device: str | torch.device = "cpu", prefetch_batches: int = 2,
                 shuffle_buffer: int | None = None,
                 seed: int | None = None) -> Iterator[ReactionBatch]:
    """Iterate a `load` dataset as padded `ReactionBatch`es.

    Args:
        ds: from `load`.
        batch_size: items per batch.
        drop_last: drop a last, smaller batch.
        device: where the tensors go.
        prefetch_batches: batches prepared ahead in background threads.
        shuffle_buffer: items in a local shuffle buffer (None: no extra shuffling).
        seed: seed of the local shuffle.

    Yields:
        ReactionBatch with ``mask`` (B, T) True on real frames; online batches set
        ``context_frames``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = ds.iter_torch_batches(batch_size=batch_size, collate_fn=_Collate(),
                                    drop_last=drop_last, prefetch_batches=prefetch_batches,
                                    local_shuffle_buffer_size=shuffle_buffer,
                                    local_shuffle_seed=seed, device="cpu")
    try:
        for batch in batches:
            yield batch if torch.device(device).type == "cpu" else batch.to(device)
    except ray.exceptions.RayError as exc:
        cause = _data_error(exc)
        if cause is None:
            raise
        raise cause from exc  # the shard error itself, not Ray's wrappers


_DATA_ERRORS = {"react_data.shards.CorruptShardError": shards.CorruptShardError,
                "FileNotFoundError": FileNotFoundError, "ConnectionError": ConnectionError}
_DATA_ERROR_RE = re.compile(rf"^\s*({'|'.join(map(re.escape, _DATA_ERRORS))}): (.+)$", re.M)


def _data_error(exc: BaseException) -> BaseException | None:
    """The dataset error (bad shard, storage) inside Ray's task-error wrappers, if any.

    Ray Data re-raises a UDF's exception as a ``UserCodeException`` that keeps only the
    original's traceback text, so the error is recovered from that text.
    """
    m = _DATA_ERROR_RE.search(str(exc))
    return _DATA_ERRORS[m.group(1)](m.group(2)) if m else None
